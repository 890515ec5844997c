"""``heritage demo``: the whole system in one command, end to end, on real fine-tunes.

1. start the local Neo4j (idempotent: an already running server is reused);
2. build the small ground-truth model zoo once (cached; a few minutes the first time);
3. import its models into the catalogue (idempotent: a second demo stores nothing new);
4. recover the genealogy of the whole catalogue (``recluster``: the configured clustering);
5. print the stored trees and the share of truth.json's edges recovered with the right
   direction, read back from Neo4j;
6. print where to look next: the API docs and Neo4j Browser.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from heritage.cli import CLIError

__all__ = ["register", "directed_edge_accuracy", "API_DOCS_URL"]

API_DOCS_URL = "http://127.0.0.1:8000/docs"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="start Neo4j, build the model zoo, import it and show the recovered genealogy",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", default="small", help="zoo size (default: small)")
    parser.add_argument("--zoo", type=Path, default=None, metavar="DIR",
                        help="use this zoo folder (with models/ and truth.json) instead of building one")
    parser.add_argument("--serve", action="store_true", help="start the API (`heritage serve`) afterwards")
    parser.set_defaults(handler=run)


def directed_edge_accuracy(stored: set[tuple[str, str]], truth_edges: list[dict[str, str]]) -> tuple[int, int]:
    """(correct, total): truth edges parent -> child stored with the same direction."""
    wanted = {(e["parent"], e["child"]) for e in truth_edges}
    return len(wanted & stored), len(wanted)


def _start_neo4j() -> Any:
    from graph import local_server
    from graph.database import Database
    from graph.errors import GraphError
    from graph.settings import Neo4jSettings

    print("1. Neo4j")
    try:
        settings = Neo4jSettings.from_env()
    except ValueError as exc:
        raise CLIError(str(exc), exit_code=2) from None
    try:
        with Database.connect(settings) as db:
            db.ping()  # a server that already answers is used as it is
        print(f"   reachable: {settings.uri}")
        return settings
    except GraphError:
        pass
    try:
        result = local_server.start(settings)
    except GraphError as exc:
        raise CLIError(str(exc)) from None
    state = result.status
    how = "already running" if result.already_running else f"started in {result.seconds:.0f} s"
    print(f"   {how}: {state.bolt_uri}")
    return result.settings


def _zoo(size: str, folder: Path | None) -> Path:
    print("2. Model zoo")
    if folder is not None:
        if not (folder / "truth.json").is_file() or not (folder / "models").is_dir():
            raise CLIError(f"{folder} is not a zoo folder (needs models/ and truth.json)", exit_code=2)
        print(f"   using {folder}")
        return folder
    try:
        from heritage.evaluation.zoo import ensure_zoo, zoo_cache_dir
    except ImportError as exc:
        raise CLIError(f"the model zoo needs PyTorch (pip install 'model-heritage[torch,zoo]'): {exc}") from None
    target = zoo_cache_dir(size)
    if not (target / "truth.json").is_file():
        print(f"   building the {size} zoo into {target} (first time only, a few minutes)...")

    def progress(record: dict[str, Any], seconds: float) -> None:
        print(f"   built {record['name']} ({record['kind']}, {record['format']}) in {seconds:.0f} s", flush=True)

    try:
        path = ensure_zoo(size, progress=progress)
    except ValueError as exc:
        raise CLIError(str(exc), exit_code=2) from None
    print(f"   {path}")
    return path


def _import_and_show(catalogue: Any, zoo: Path, truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Steps 3 and 4: import the zoo, recluster, print the zoo's trees; the stored edges."""
    from heritage.catalogue import collect_entries
    from heritage.cli.catalogue import catalogue_errors, import_with_progress, print_family_tree, print_import_summary

    summary = import_with_progress(catalogue, collect_entries([zoo / "models"]))
    print_import_summary(summary)
    if summary.created + summary.duplicates == 0:
        raise CLIError("no zoo model could be imported")

    print()
    print("4. Genealogy (recluster: families and trees from the stored fingerprints)")
    with catalogue_errors():
        result = catalogue.recluster()
        print(f"   {result['models']} models -> {result['families']} families, {result['edges']} edges "
              f"in {result['seconds']:.2f} s")
        print()
        zoo_names = {m["name"] for m in truth["models"]}
        for family in catalogue.list_families():
            genealogy = catalogue.genealogy(family["id"])
            if not {n.name for n in genealogy.nodes} & zoo_names:
                continue
            print_family_tree(genealogy)
            print()
        return catalogue.db.read("lineage_all_edges")


def run(args: argparse.Namespace) -> int:
    from heritage.cli.catalogue import open_catalogue

    settings = _start_neo4j()
    zoo = _zoo(args.size, args.zoo)
    truth = json.loads((zoo / "truth.json").read_text())

    print("3. Import")
    with open_catalogue(settings) as catalogue:
        rows = _import_and_show(catalogue, zoo, truth)
    correct, total = directed_edge_accuracy({(r["parent"], r["child"]) for r in rows}, truth["edges"])
    share = correct / total if total else 0.0
    print(f"5. Directed-edge accuracy against truth.json: {correct}/{total} = {share:.0%}")
    print()
    print("6. Explore")
    print(f"   API:           {API_DOCS_URL}   (start it with `heritage serve`)")
    print(f"   Neo4j Browser: {settings.browser_url}   (user {settings.user}; try "
          "MATCH p=(:Model)-[:DERIVED_FROM*]->(:Model) RETURN p)")
    sys.stdout.flush()
    if args.serve:
        import os
        import secrets

        from heritage.cli import main

        if not os.environ.get("HERITAGE_API_KEYS"):
            # The API refuses anonymous writes; a demo session gets its own key.
            key = secrets.token_urlsafe(24)
            os.environ["HERITAGE_API_KEYS"] = key
            print(f"   API key for this session (send as 'Authorization: Bearer <key>'): {key}")
        return main(["serve"])
    return 0
