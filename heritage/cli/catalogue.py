"""``heritage import|lineage|tree|recluster|stats``: the stored catalogue from the terminal.

Every command talks to Neo4j through :class:`heritage.catalogue.Catalogue`; reads print
the STORED genealogy (nothing is recomputed from weights).  Failures the user can fix
(Neo4j down, unknown model, bad options) are one line and a non-zero exit.
"""

from __future__ import annotations

import argparse
import logging
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from heritage.cli import CLIError

__all__ = ["register", "open_catalogue", "catalogue_errors", "print_family_tree", "import_with_progress"]

EXIT_ALL_FAILED = 1


def register(subparsers: Any) -> None:
    """Add ``import``, ``lineage``, ``tree``, ``mismatches``, ``recluster`` and ``stats``."""
    imp = subparsers.add_parser(
        "import",
        help="import model files/folders into the Neo4j catalogue (idempotent, resumable)",
        description="Each PATH is a model (a weights file or a model folder) or a folder whose "
        "entries are models, named by entry name as `heritage recover` reads them; a Hugging Face "
        "hub cache (~/.cache/huggingface/hub) gives one model per cached revision, named org/name "
        "(org/name@<revision> when several revisions of a repository are cached). Models already "
        "stored (same SHA-256) are skipped, so an interrupted import can simply be run again.",
    )
    imp.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    imp.add_argument("--recursive", action="store_true",
                     help="also import the entries of sub-folders that are not models themselves")
    imp.add_argument("--batch-size", type=int, default=None, metavar="N",
                     help="models hashed, fingerprinted and written per batch (default 32)")
    imp.add_argument("--description", default=None, help="description stored with every imported model")
    _scheduler_option(imp, "hashing and fingerprinting run on its workers, which read the weights where "
                           "they are (paths must be readable there)")
    imp.set_defaults(handler=_import)

    lin = subparsers.add_parser("lineage", help="ancestors and descendants of a stored model")
    lin.add_argument("model", metavar="MODEL", help="model name or id")
    lin.add_argument("--depth", type=int, default=10, help="generations each way, 1..50 (default 10)")
    lin.set_defaults(handler=_lineage)

    tree = subparsers.add_parser("tree", help="print a family's stored genealogy tree")
    tree.add_argument("family", metavar="FAMILY", help="family id, or the name or id of one of its models")
    tree.set_defaults(handler=_tree)

    mis = subparsers.add_parser(
        "mismatches", help="models whose declared base or relation (model card) disagrees with the recovered lineage")
    mis.set_defaults(handler=_mismatches)

    rec = subparsers.add_parser("recluster", help="recompute every family and tree from stored fingerprints")
    _scheduler_option(rec, "candidate searches and family trees run on its workers")
    rec.set_defaults(handler=_recluster)

    stats = subparsers.add_parser("stats", help="catalogue statistics")
    stats.set_defaults(handler=_stats)


# --------------------------------------------------------------------------- helpers


def _scheduler_option(parser: Any, what: str) -> None:
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help=f"a Dask scheduler, e.g. tcp://host:8786 (default: HERITAGE_DASK_SCHEDULER; "
                             f"none: everything in this process): {what}")


def _scheduler_override(args: argparse.Namespace) -> dict[str, Any]:
    return {"dask_scheduler": args.scheduler} if getattr(args, "scheduler", None) else {}


@contextmanager
def catalogue_errors() -> Iterator[None]:
    """Turn graph and catalogue errors into one-line :class:`CLIError`."""
    from graph.errors import DatabaseUnavailable, GraphError
    from graph.settings import Neo4jSettings
    from heritage.catalogue.errors import CatalogueError

    try:
        yield
    except DatabaseUnavailable as exc:
        uri = exc.uri or Neo4jSettings.from_env().uri
        raise CLIError(f"Neo4j is not reachable at {uri}: start it with `heritage neo4j start` "
                       "(or point NEO4J_URI at a running server)") from None
    except (GraphError, CatalogueError) as exc:
        raise CLIError(" ".join(str(exc).split())) from None
    except ValueError as exc:  # invalid configuration or option values
        raise CLIError(str(exc), exit_code=2) from None


def open_catalogue(settings: Any = None, **overrides: Any) -> Any:
    """A :class:`Catalogue` on the configured Neo4j (schema applied), or a CLIError.

    ``settings`` default to ``NEO4J_*``; ``overrides`` replace fields of the configuration
    read from the environment.  The catalogue owns its driver: use it as a context
    manager (or call ``close()``)."""
    # Schema notifications (e.g. "relationship type does not exist yet" on an empty
    # database) are not the user's concern on the terminal.
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    from heritage.catalogue import Catalogue, CatalogueConfig

    with catalogue_errors():
        return Catalogue.from_settings(settings, CatalogueConfig.from_env(**overrides))


def _progress_bar(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="model", file=sys.stderr, dynamic_ncols=True,
                disable=None)  # None: no bar when stderr is not a terminal


def import_with_progress(catalogue: Any, entries: list[tuple[str, Path]], description: str | None = None) -> Any:
    """``import_many`` with a tqdm bar; returns the :class:`ImportSummary`."""
    bar = _progress_bar(len(entries), "importing")

    def tick(result: Any) -> None:
        bar.update(1)
        bar.set_postfix_str(f"{result.status} {result.name}"[:40], refresh=False)

    def stage(message: str) -> None:
        bar.set_description_str("placing")
        bar.refresh()

    try:
        with catalogue_errors():
            return catalogue.import_many(entries, progress=tick, stage=stage, description=description)
    finally:
        bar.close()


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [line.format(*header), line.format(*("-" * w for w in widths))]
    out += [line.format(*map(str, r)) for r in rows]
    return [s.rstrip() for s in out]


def print_import_summary(summary: Any) -> None:
    print()
    print("\n".join(_table(
        [("created", str(summary.created)), ("already stored", str(summary.duplicates)),
         ("failed", str(summary.failed)), ("families written", str(len(summary.families))),
         ("seconds", f"{summary.seconds:.1f}")],
        ("result", "models"),
    )))
    failures = [r for r in summary.results if r.status == "failed"]
    if failures:
        print()
        print("\n".join(_table([(r.name, r.error or "") for r in failures], ("failed model", "reason"))))


# --------------------------------------------------------------------------- import


def _import(args: argparse.Namespace) -> int:
    from heritage.catalogue import collect_entries
    from heritage.errors import ModelLoadError

    if args.batch_size is not None and args.batch_size < 1:
        raise CLIError("--batch-size must be at least 1", exit_code=2)
    try:
        entries = collect_entries(args.paths, recursive=args.recursive)
    except ModelLoadError as exc:
        raise CLIError(str(exc), exit_code=2) from None
    if not entries:
        raise CLIError(f"no models found in {', '.join(map(str, args.paths))}")
    overrides = {"batch_size": args.batch_size} if args.batch_size is not None else {}
    with open_catalogue(**overrides, **_scheduler_override(args)) as catalogue:
        summary = import_with_progress(catalogue, entries, args.description)
    print_import_summary(summary)
    return 0 if summary.created + summary.duplicates > 0 else EXIT_ALL_FAILED


# --------------------------------------------------------------------------- lineage


def _lineage(args: argparse.Namespace) -> int:
    from heritage.cli.render import ShownEdge, render_tree

    with open_catalogue() as catalogue, catalogue_errors():
        model = catalogue.find_model(args.model)
        lineage = catalogue.lineage(model["id"], depth=args.depth)
    name = model["name"]
    family = model["family_id"] or "none"
    print(f"{name} (id {model['id']}, family {family}, status {model['status']})")
    bases = model.get("declared_bases") or ([model["declared_base"]] if model["declared_base"] else [])
    relation = f" ({model['declared_relation']})" if model.get("declared_relation") else ""
    if len(bases) > 1:
        print(f"declared bases: {', '.join(bases)}{relation}")
    elif bases:
        print(f"declared base: {bases[0]}{relation}")
    if model.get("quantization"):
        print(f"quantization: {model['quantization']}")
    if model.get("revision"):
        print(f"revision: {model['revision']}")
    print()
    if lineage.ancestors:
        print(f"Ancestors (nearest first, up to {lineage.depth} generations):")
        names = {model["id"]: name, **{a.id: a.name for a in lineage.ancestors}}
        for a in lineage.ancestors:
            edge = ShownEdge(a.name, names.get(a.child_id, "?"), a.confidence, a.relation, a.weight)
            print(f"  {a.generation:>2}. {a.name}  (parent of {edge.child}, {edge.label().strip()[1:-1]})")
    else:
        print("Ancestors: none (a root)")
    print()
    if lineage.descendants:
        print(f"Descendants ({lineage.descendant_count}):")
        children: dict[str, list[ShownEdge]] = {}

        def collect(parent: str, nodes: list[Any]) -> None:
            for node in nodes:
                children.setdefault(parent, []).append(
                    ShownEdge(parent, node.name, node.confidence, node.relation, node.weight))
                collect(node.name, node.children)

        collect(name, lineage.descendants)
        print("\n".join("  " + line for line in render_tree(name, children)))
    else:
        print("Descendants: none (a leaf)")
    return 0


# --------------------------------------------------------------------------- tree


def print_family_tree(genealogy: Any) -> None:
    """The stored genealogy of one family (a :class:`FamilyGenealogy`) as indented text."""
    from heritage.cli.render import ShownEdge, edges_to_children, render_tree

    family = genealogy.family
    names = {n.id: n.name for n in genealogy.nodes}
    mean_conf = genealogy.mean_confidence
    print(f"Family {family['id']}: {len(genealogy.nodes)} model(s), metric {family.get('metric')}, "
          f"{family.get('regime_evidence') or family.get('regime')}"
          + (f", mean confidence {mean_conf:.2f}" if mean_conf is not None else ""))
    children = edges_to_children(ShownEdge(names[e.parent], names[e.child], e.confidence, e.relation, e.weight)
                                 for e in genealogy.edges)
    labels = {n.name: " [adapter]" for n in genealogy.nodes if n.is_adapter}
    for root in genealogy.roots:
        print("\n".join("  " + line for line in render_tree(names[root], children, labels)))
    if not genealogy.validation.valid:
        print("  warning: " + "; ".join(genealogy.validation.issues))


def _tree(args: argparse.Namespace) -> int:
    from heritage.catalogue.errors import FamilyNotFound, ModelNotFound

    with open_catalogue() as catalogue, catalogue_errors():
        try:
            genealogy = catalogue.genealogy(args.family)
        except FamilyNotFound:
            try:
                model = catalogue.find_model(args.family)
            except ModelNotFound:
                raise CLIError(f"no family or model {args.family!r} in the catalogue") from None
            if not model["family_id"]:
                raise CLIError(f"model {model['name']} belongs to no family (status {model['status']})") from None
            genealogy = catalogue.genealogy(model["family_id"])
    print_family_tree(genealogy)
    return 0


# --------------------------------------------------------------------------- mismatches


def _mismatches(args: argparse.Namespace) -> int:
    catalogue = open_catalogue()
    with catalogue_errors():
        found = catalogue.declared_mismatches()
    if not found:
        print("declared and recovered lineage agree for every model that declares a base")
        return 0
    rows = []
    for m in found:
        declared = ", ".join(f"{b['name']}{' (not in catalogue)' if b['external'] else ''}"
                             for b in m["declared_bases"])
        recovered = ", ".join(f"{p['name']} ({p['relation']})" for p in m["recovered_parents"]) or "none"
        rows.append((m["name"], m["reason"], f"{declared} ({m['relation'] or '-'})", recovered))
    print("\n".join(_table(rows, ("model", "disagrees on", "declared bases (relation)", "recovered parents"))))
    return 0


# --------------------------------------------------------------------------- recluster, stats


def _recluster(args: argparse.Namespace) -> int:
    def progress(fraction: float, message: str) -> None:
        print(f"[{fraction:4.0%}] {message}", file=sys.stderr)

    with open_catalogue(**_scheduler_override(args)) as catalogue, catalogue_errors():
        result = catalogue.recluster(progress=progress)
    print("\n".join(_table([(k.replace("_", " "), str(v)) for k, v in result.items()], ("recluster", "value"))))
    return 0


def _stats(args: argparse.Namespace) -> int:
    with open_catalogue() as catalogue, catalogue_errors():
        stats = catalogue.statistics()
        clustering = catalogue.clustering_statistics()
    rows = [
        ("models", str(stats.models)),
        *((f"  {status}", str(n)) for status, n in sorted(stats.models_by_status.items())),
        ("adapters", str(stats.adapters)),
        ("families", str(stats.families)),
        ("recovered edges (DERIVED_FROM)", str(stats.derived_edges)),
        ("declared bases (DECLARED_BASE)", str(stats.declared_edges)),
        ("external declared bases", str(stats.external_models)),
        ("models without a family", str(stats.unplaced_models)),
        ("stale / empty families", f"{stats.stale_families} / {stats.empty_families}"),
    ]
    if stats.jobs_by_state:
        rows.append(("jobs", ", ".join(f"{k} {v}" for k, v in sorted(stats.jobs_by_state.items()))))
    print("\n".join(_table(rows, ("catalogue", "count"))))
    sizes = clustering.family_size_distribution
    if sizes:
        print()
        print("\n".join(_table([(str(s), str(n)) for s, n in sorted(sizes.items())], ("family size", "families"))))
    print()
    config = clustering.configuration
    print("configuration: " + ", ".join(f"{k}={config[k]}" for k in ("metric", "clustering", "threshold",
                                                                    "tree_method", "lambda")))
    return 0
