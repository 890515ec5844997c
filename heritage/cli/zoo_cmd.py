"""``heritage zoo OUT``: build (or copy from the cache) a ground-truth model zoo.

The zoo is deterministic, so by default it is built once into the shared cache (see
:func:`heritage.evaluation.zoo.ensure_zoo`) and copied into ``OUT``; ``--no-cache`` trains
straight into ``OUT`` instead.
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


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "zoo",
        help="build a ground-truth genealogy of really fine-tuned models",
        description=(
            "Fine-tune packaged pretrained weights (MiniLM-L6, MiniLM-L3 and, in the full "
            "zoo, SmolLM2) into a known genealogy, written as OUT/models/* plus "
            "OUT/truth.json."
        ),
    )
    parser.add_argument("out", type=Path, metavar="OUT", help="folder to write the zoo into")
    parser.add_argument(
        "--size",
        choices=("small", "full"),
        default="small",
        help="small: 11 models, a few minutes; full: ~30 models for benchmarks (default: small)",
    )
    parser.add_argument("--force", action="store_true", help="replace OUT/models and OUT/truth.json if present")
    parser.add_argument(
        "--no-cache", action="store_true", help="train directly into OUT instead of copying the cached zoo"
    )
    parser.set_defaults(handler=run)


def _summary(record: dict[str, Any], seconds: float | None = None) -> str:
    parent = record["parent"] or "-"
    timing = f" {seconds:5.1f}s" if seconds is not None else ""
    return (
        f"{record['name']:<28} {record['kind']:<14} {record['format']:<15} {record['dtype']:<9}"
        f" parent={parent}{timing}"
    )


def _prepare(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CLIError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise CLIError(f"{out} is not empty (use --force to replace its zoo)")
        # Only what a zoo consists of is removed; anything else in OUT is left alone.
        shutil.rmtree(out / "models", ignore_errors=True)
        (out / _TRUTH).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def run(args: argparse.Namespace) -> int:
    try:
        from heritage.evaluation.zoo import build_zoo, ensure_zoo, zoo_spec
        from heritage.evaluation.zoo.pretrained import PretrainedNotFound
    except ImportError as exc:
        raise CLIError(f"the model zoo needs PyTorch, onnx and gguf ({exc.name} is missing)") from exc
    from tqdm import tqdm

    out: Path = args.out
    _prepare(out, args.force)
    started = time.perf_counter()
    bar = tqdm(total=len(zoo_spec(args.size)), unit="model", desc=f"zoo {args.size}", leave=False)

    def progress(record: dict[str, Any], seconds: float) -> None:
        bar.write(_summary(record, seconds))
        bar.update(1)

    try:
        if args.no_cache:
            truth = build_zoo(out, args.size, progress=progress)
        else:
            cached = ensure_zoo(args.size, progress=progress)
            shutil.copytree(cached / "models", out / "models", dirs_exist_ok=True)
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
