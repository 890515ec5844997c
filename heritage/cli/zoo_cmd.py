"""``heritage zoo OUT``: build (or copy from the cache) a ground-truth model zoo.

The zoo is deterministic, so by default it is built once into the shared cache (see
:func:`heritage.evaluation.zoo.ensure_zoo`) and copied into ``OUT``; ``--no-cache`` trains
straight into ``OUT`` instead.  The ``wild`` zoo also has ``OUT/hub``, a Hugging Face
cache whose snapshot files are symlinks into its blobs: it is copied with its links.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path
from typing import Any

from heritage.cli import CLIError

_TRUTH = "truth.json"
_HUB = "hub"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "zoo",
        help="build a ground-truth genealogy of really fine-tuned models",
        description=(
            "Fine-tune packaged pretrained weights (MiniLM-L6, MiniLM-L3 and, in the full "
            "and wild zoos, SmolLM2) into a known genealogy, written as OUT/models/* plus "
            "OUT/truth.json.  The wild zoo is written only by the ecosystem's own writers "
            "(transformers, peft, mergekit's formulas, gguf/llama.cpp, original files) and "
            "adds OUT/hub, a Hugging Face cache of some of its models."
        ),
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="folder to write the zoo into")
    parser.add_argument(
        "--size",
        choices=("small", "full", "wild"),
        default="small",
        help=(
            "small: 11 models, a few minutes; full: ~30 models for benchmarks; wild: 25 models "
            "as published in the wild, about 6 minutes (default: small)"
        ),
    )
    parser.add_argument("--force", action="store_true", help="replace OUT/models, OUT/hub and OUT/truth.json if present")
    parser.add_argument(
        "--no-cache", action="store_true", help="train directly into OUT instead of copying the cached zoo"
    )
    parser.set_defaults(handler=run)


def _summary(record: dict[str, Any], seconds: float | None = None) -> str:
    parents = [p["name"] for p in record.get("parents", [])] or ([record["parent"]] if record["parent"] else [])
    timing = f" {seconds:5.1f}s" if seconds is not None else ""
    return (
        f"{record['name']:<28} {record['kind']:<14} {record['format']:<15} {record['dtype']:<9}"
        f" parent={'+'.join(parents) or '-'}{timing}"
    )


def _prepare(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CLIError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise CLIError(f"{out} is not empty (use --force to replace its zoo)")
        # Only what a zoo consists of is removed; anything else in OUT is left alone.
        shutil.rmtree(out / "models", ignore_errors=True)
        shutil.rmtree(out / _HUB, ignore_errors=True)
        (out / _TRUTH).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def run(args: argparse.Namespace) -> int:
    try:
        from heritage.evaluation.zoo import build_zoo, ensure_zoo, zoo_spec
        from heritage.evaluation.zoo.pretrained import PretrainedNotFound
        from heritage.evaluation.zoo.wild_spec import wild_spec
    except ImportError as exc:
        raise CLIError(f"the model zoo needs PyTorch, onnx and gguf ({exc.name} is missing)") from exc
    from tqdm import tqdm

    out: Path = args.out
    _prepare(out, args.force)
    started = time.perf_counter()
    count = len(wild_spec()) if args.size == "wild" else len(zoo_spec(args.size))
    bar = tqdm(total=count, unit="model", desc=f"zoo {args.size}", leave=False)

    def progress(record: dict[str, Any], seconds: float) -> None:
        bar.write(_summary(record, seconds))
        bar.update(1)

    try:
        if args.no_cache:
            truth = build_zoo(out, args.size, progress=progress)
        else:
            cached = ensure_zoo(args.size, progress=progress)
            shutil.copytree(cached / "models", out / "models", dirs_exist_ok=True)
            if (cached / _HUB).is_dir():
                shutil.copytree(cached / _HUB, out / _HUB, symlinks=True, dirs_exist_ok=True)
            shutil.copy2(cached / _TRUTH, out / _TRUTH)
            truth = json.loads((out / _TRUTH).read_text())
            if bar.n == 0:  # cache hit: nothing was reported while building
                for record in truth["models"]:
                    bar.write(_summary(record))
    except PretrainedNotFound as exc:
        raise CLIError(str(exc)) from exc
    finally:
        bar.close()
    print(
        f"zoo {args.size}: {len(truth['models'])} models in {len(truth['families'])} families, "
        f"{len(truth['edges'])} edges -> {out} ({time.perf_counter() - started:.0f}s)"
    )
    return 0
