"""``heritage recover DIR``: families and trees of the models in a folder, offline."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from heritage.cli import CLIError
from heritage.cli.options import add_recovery_options, recovery_from_args
from heritage.cli.render import render_genealogy
from heritage.errors import ModelLoadError
from heritage.reading.ingest import IngestFailure, IngestedModel, ingest_many, model_entries


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "recover",
        help="recover families and genealogy trees of the models in a folder (no database)",
        description="Every entry directly inside DIR (a file or a folder) is one model, "
        "named by its entry name without extension. A Hugging Face hub cache folder "
        "(~/.cache/huggingface/hub) gives one model per cached revision, named org/name.",
    )
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--out", type=Path, help="write the result as JSON to this file")
    add_recovery_options(parser)
    parser.set_defaults(handler=run)


def recovery_document(models: list[IngestedModel], genealogy) -> dict[str, object]:
    """The ``--out`` JSON: models, families (lists of names) and edges (a merge child has
    one edge per parent, each with its ``weight``; other edges have ``weight`` null)."""
    family_index = {m: f.index for f in genealogy.families for m in f.members}
    return {
        "models": [
            {
                "name": m.name,
                "format": m.profile.format,
                "params": m.profile.params,
                "family": family_index.get(m.name),
                "quantization": m.profile.quantization,
                "revision": m.profile.revision,
            }
            for m in models
        ],
        "families": [list(f.members) for f in genealogy.families],
        "edges": [
            {"parent": e.parent, "child": e.child, "relation": e.relation,
             "weight": None if e.weight is None else round(e.weight, 4),
             "confidence": round(e.confidence, 4), "aligned": round(e.aligned, 4)}
            for e in genealogy.edges
        ],
    }


def run(args: argparse.Namespace) -> int:
    try:
        entries = model_entries(args.directory)
    except ModelLoadError as exc:
        raise CLIError(str(exc), exit_code=2) from None
    if not entries:
        raise CLIError(f"{args.directory}: no models found", exit_code=1)
    recovery = recovery_from_args(args)
    models: list[IngestedModel] = []
    failures: list[IngestFailure] = []
    for result in ingest_many(entries):
        if isinstance(result, IngestFailure):
            failures.append(result)
            print(f"skipped {result.name}: {result.error}", file=sys.stderr)
        else:
            models.append(result)
    if not models:
        raise CLIError(f"no model in {args.directory} could be read ({len(failures)} failed)")
    genealogy = recovery.recover(
        [m.fingerprint for m in models],
        declared_bases={m.name: m.profile.declared_base for m in models},
    )
    print(render_genealogy(genealogy))
    if args.out:
        document = recovery_document(models, genealogy)
        document["skipped"] = [{"name": f.name, "error": f.error} for f in failures]
        args.out.write_text(json.dumps(document, indent=2))
        print(f"wrote {args.out}")
    return 0
