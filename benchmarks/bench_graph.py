"""Benchmark of the catalogue on Neo4j: batch import, lineage reads, placement at scale.

Prints figures; it is not a test.  It EMPTIES the database it is pointed at (NEO4J_URI
etc., like every other command), so it refuses to run on a non-empty database unless
``--wipe`` is given.

1. Batch import of ``--import-models`` (1,000) small generated models (real safetensors
   files, real fingerprints, tiny tensors) with ``Catalogue.import_many``: models and
   graph rows written per second, and the split of the wall time between Neo4j round
   trips and compute (hashing, fingerprints, placement distances, trees).
2. Lineage reads on a catalogue of ``--catalogue-models`` (10,000) models in families of
   ``--family-size`` (100) whose trees are up to 10 generations deep; the rows are
   written directly with UNWIND (real fingerprints, computed in memory, no files).
   Median and p95 latency of ``lineage_ancestors`` / ``lineage_descendants`` through the
   driver, and of the service's whole ``Catalogue.lineage`` call.
3. Placing one new model (``Catalogue.import_model``: hash, fingerprint, candidates,
   exact distances, tree rebuild, one write transaction) into that catalogue vs into one
   of ``--small-catalogue`` (100) models of the same family size; ratio (target < 2x).
   Two cases: a fine-tune of a stored model (joins its family of 100, whose tree is
   rebuilt) and an unrelated model (searched against every candidate, starts a family).

Run:  python benchmarks/bench_graph.py --wipe
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from graph.database import Database
from heritage.catalogue import Catalogue, CatalogueConfig, collect_entries
from heritage.catalogue import importer
from heritage.catalogue.context import Context
from heritage.catalogue.placement import placement_vector
from heritage.catalogue.timing import Timings
from heritage.reading.fingerprint import FINGERPRINT_VERSION, fingerprint_model
from heritage.reading.loader import LoadedModel, ModelFormat, TensorRef
from heritage.evaluation.synthetic import finetune, random_root

HIDDEN = 16
LAYERS = 1
MAX_DEPTH = 10
WRITE_CHUNK = 500


# --------------------------------------------------------------------------- generation


def tree_parents(size: int, rng: np.random.Generator, max_depth: int = MAX_DEPTH) -> list[int | None]:
    """Parent index of each node of a random tree (node 0 the root), at most ``max_depth`` deep,
    biased towards recent nodes so that deep chains occur."""
    parents: list[int | None] = [None]
    depth = [0]
    for i in range(1, size):
        candidates = [j for j in range(i) if depth[j] < max_depth]
        j = candidates[min(len(candidates) - 1, int(len(candidates) * rng.random() ** 0.3))]
        parents.append(j)
        depth.append(depth[j] + 1)
    return parents


def family_weights(size: int, rng: np.random.Generator) -> tuple[list[dict[str, np.ndarray]], list[int | None]]:
    parents = tree_parents(size, rng)
    weights = [random_root(rng, hidden=HIDDEN, layers=LAYERS)]
    for i in range(1, size):
        weights.append(finetune(weights[parents[i]], rng))
    return weights, parents


def in_memory_model(name: str, weights: dict[str, np.ndarray]) -> LoadedModel:
    tensors = {n: TensorRef(name=n, shape=w.shape, dtype="float32", loader=lambda w=w: w) for n, w in weights.items()}
    return LoadedModel(name=name, path=Path(name), format=ModelFormat.SAFETENSORS, tensors=tensors, files=[])


def write_files(directory: Path, families: int, size: int, seed: int) -> int:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    for f in range(families):
        weights, _ = family_weights(size, rng)
        for i, w in enumerate(weights):
            save_file(w, str(directory / f"f{f:03d}-m{i:03d}.safetensors"))
    return families * size


def store_catalogue(db: Database, families: int, size: int, seed: int, keep: int = 5,
                    prefix: str = "cat") -> dict[str, Any]:
    """Write ``families`` x ``size`` models (Model, Fingerprint, Family, IN_FAMILY,
    DERIVED_FROM) directly with UNWIND, named ``<prefix>-f<family>-m<model>``.  Returns the member ids by family (for the reads)
    and the weights of the first ``keep`` families (to fine-tune stored models later)."""
    rng = np.random.default_rng(seed)
    members: dict[str, list[str]] = {}
    kept: dict[str, list[dict[str, np.ndarray]]] = {}
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []

    def flush() -> None:
        if rows:
            db.write(
                "UNWIND $rows AS row "
                "CREATE (m:Model) SET m = row.props, m.createdAt = datetime() "
                "CREATE (:Fingerprint {modelId: m.id, sha256: m.sha256, data: row.data, version: $v})-[:OF]->(m) "
                "WITH m, row MATCH (f:Family {id: row.family}) CREATE (m)-[:IN_FAMILY]->(f)",
                rows=rows, v=FINGERPRINT_VERSION)
            rows.clear()
        if edges:
            db.write(
                "UNWIND $edges AS e MATCH (c:Model {id: e.child}), (p:Model {id: e.parent}) "
                "CREATE (c)-[:DERIVED_FROM {confidence: e.confidence, distance: 0.1, method: 'mother', "
                "runId: 'bench', lambda: 0.3}]->(p)", edges=edges)
            edges.clear()

    for f in range(families):
        family_id = uuid.uuid4().hex
        db.write("CREATE (:Family {id: $id, version: 1, memberCount: $n, metric: 'l2', threshold: 0.5, "
                    "createdAt: datetime(), updatedAt: datetime()})", id=family_id, n=size)
        weights, parents = family_weights(size, rng)
        ids = [uuid.uuid4().hex for _ in weights]
        members[family_id] = ids
        if len(kept) < keep:
            kept[family_id] = weights
        for i, w in enumerate(weights):
            fp = fingerprint_model(in_memory_model(ids[i], w))
            rows.append({"family": family_id, "data": fp.to_bytes(), "props": {
                "id": ids[i], "name": f"{prefix}-f{f:04d}-m{i:03d}", "sha256": uuid.uuid4().hex + uuid.uuid4().hex,
                "status": "ok", "isAdapter": False, "structureHash": fp.structure_hash,
                "backboneKey": fp.backbone_key, "layers": fp.block_count, "format": "safetensors",
                "kurtosis": fp.kurtosis, "placement": placement_vector(fp)}})
            if parents[i] is not None:
                edges.append({"child": ids[i], "parent": ids[parents[i]], "confidence": float(rng.random())})
        if len(rows) >= WRITE_CHUNK:
            flush()
    flush()
    db.read("CALL db.awaitIndexes(300)")
    return {"members": members, "kept": kept, "seconds": time.perf_counter() - started}


# --------------------------------------------------------------------------- measurements


def wipe(db: Database) -> None:
    """Empty the database in chunks (one huge transaction would need a huge heap)."""
    while db.write("MATCH (n) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS n")[0]["n"]:
        pass


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def latency(fn: Any, arguments: list[Any]) -> dict[str, float]:
    times = []
    for args in arguments:
        started = time.perf_counter()
        fn(*args)
        times.append((time.perf_counter() - started) * 1000)
    return {"median_ms": statistics.median(times), "p95_ms": percentile(times, 95), "n": len(times)}


def bench_import(catalogue: Catalogue, count: int, family_size: int, seed: int) -> None:
    print(f"\n== 1. batch import of {count} small generated models (families of {family_size})")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        written = write_files(folder, max(1, count // family_size), family_size, seed)
        entries = collect_entries([folder])
        summary = catalogue.import_many(entries)
    stats = catalogue.statistics()
    t = summary.timings
    neo4j = t.get("neo4j", 0.0)
    compute = t.get("hash", 0) + t.get("fingerprint", 0) + t.get("placement", 0) + t.get("trees", 0)
    rows = (stats["models"] + stats["fingerprints"] + stats["fingerprints"]  # Model, Fingerprint, OF
            + stats["models"] + stats["derived_edges"] + stats["families"])  # IN_FAMILY, DERIVED_FROM, Family
    print(f"models: {written} written to disk, {summary.created} imported, {summary.failed} failed, "
          f"{stats['families']} families, {stats['derived_edges']} edges")
    print(f"wall time {summary.seconds:.1f} s -> {summary.created / summary.seconds:.0f} models/s, "
          f"{rows / summary.seconds:.0f} graph rows/s (nodes + relationships: {rows})")
    print(f"time in Neo4j round trips: {neo4j:.1f} s ({neo4j / summary.seconds:.0%}); "
          f"compute: {compute:.1f} s ({compute / summary.seconds:.0%}) = hash {t.get('hash', 0):.1f} + "
          f"fingerprint {t.get('fingerprint', 0):.1f} + placement {t.get('placement', 0):.1f} + "
          f"trees {t.get('trees', 0):.1f}")
    print(f"Neo4j rows written per second of Neo4j time: {rows / neo4j:.0f}" if neo4j else "")


def bench_lineage(db: Database, catalogue: Catalogue, members: dict[str, list[str]], samples: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    everyone = [m for ids in members.values() for m in ids]
    picks = [everyone[i] for i in rng.integers(0, len(everyone), samples)]
    roots = [ids[0] for ids in members.values()][:samples]
    for query in ("lineage_ancestors", "lineage_descendants"):  # warm the plan cache
        db.read(query, id=picks[0], depth=MAX_DEPTH)
    catalogue.lineage(picks[0], MAX_DEPTH)
    figures = {
        "ancestors (random models)": latency(lambda m: db.read("lineage_ancestors", id=m, depth=MAX_DEPTH),
                                             [(m,) for m in picks]),
        "descendants (random models)": latency(lambda m: db.read("lineage_descendants", id=m, depth=MAX_DEPTH),
                                               [(m,) for m in picks]),
        "descendants (roots: whole trees)": latency(
            lambda m: db.read("lineage_descendants", id=m, depth=MAX_DEPTH), [(m,) for m in roots]),
        "Catalogue.lineage (4 queries, nested)": latency(lambda m: catalogue.lineage(m, MAX_DEPTH),
                                                         [(m,) for m in picks]),
    }
    for what, f in figures.items():
        print(f"  {what:<40} median {f['median_ms']:6.2f} ms   p95 {f['p95_ms']:6.2f} ms   (n={f['n']})")


def bench_placement(catalogue: Catalogue, kept: dict[str, list[dict[str, np.ndarray]]], repeats: int,
                    seed: int, folder: Path) -> dict[str, dict[str, float]]:
    """Import ``repeats`` fine-tunes of stored models (each joins a stored family, whose
    tree is rebuilt) and ``repeats`` unrelated models (each starts a family)."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    ctx: Context = catalogue._ctx  # the benchmark looks inside for the time split
    out: dict[str, dict[str, float]] = {}
    for kind in ("fine-tune of a stored model", "unrelated model (new family)"):
        times, timings, right = [], Timings(), 0
        families = list(kept)
        for r in range(repeats):
            family_id = families[r % len(families)]
            if kind.startswith("fine-tune"):
                member = kept[family_id][int(rng.integers(0, len(kept[family_id])))]
                weights = finetune(member, rng)
            else:
                weights = random_root(rng, hidden=HIDDEN, layers=LAYERS)
            path = folder / f"new-{seed}-{len(out)}-{r}.safetensors"
            save_file(weights, str(path))
            started = time.perf_counter()
            result = importer.import_one(ctx, path, timings=timings)
            times.append((time.perf_counter() - started) * 1000)
            if kind.startswith("fine-tune"):
                right += int(result.family_id == family_id)
            else:
                right += int(result.family_id not in kept)
        t = timings.as_dict()
        out[kind] = {"median_ms": statistics.median(times), "p95_ms": percentile(times, 95), "right": right,
                     "n": repeats, **{f"{k}_ms": v * 1000 / repeats for k, v in t.items()}}
    return out


def show_placement(label: str, f: dict[str, float]) -> None:
    split = ", ".join(f"{k[:-3]} {v:.0f}" for k, v in f.items()
                      if k.endswith("_ms") and k not in ("median_ms", "p95_ms"))
    print(f"  {label:<42} median {f['median_ms']:7.1f} ms  p95 {f['p95_ms']:7.1f} ms  "
          f"placed right {f['right']}/{f['n']}  (mean ms: {split})")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wipe", action="store_true", help="allow emptying a non-empty database")
    parser.add_argument("--import-models", type=int, default=1000)
    parser.add_argument("--import-family-size", type=int, default=20)
    parser.add_argument("--catalogue-models", type=int, default=10_000)
    parser.add_argument("--small-catalogue", type=int, default=100)
    parser.add_argument("--family-size", type=int, default=100)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--placements", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)

    with Database.connect() as db:
        return _run(db, args)


def _run(db: Database, args: argparse.Namespace) -> int:
    catalogue = Catalogue(CatalogueConfig(), db=db)
    existing = db.read("MATCH (n) RETURN count(n) AS n")[0]["n"]
    if existing and not args.wipe:
        print(f"the database holds {existing} nodes; rerun with --wipe to empty it", file=sys.stderr)
        return 2
    print(f"Neo4j at {db.uri}; tensors {HIDDEN}x{HIDDEN}, {LAYERS} block per model")

    wipe(db)
    bench_import(catalogue, args.import_models, args.import_family_size, args.seed)

    results: dict[int, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for size in (args.small_catalogue, args.catalogue_models):
            wipe(db)
            catalogue = Catalogue(CatalogueConfig(), db=db)  # cold fingerprint cache for each catalogue
            families = max(1, size // args.family_size)
            per_family = min(size, args.family_size)
            built = store_catalogue(db, families, per_family, args.seed + size, keep=args.placements)
            print(f"\n== catalogue of {families * per_family} models ({families} families of {per_family}, "
                  f"trees <= {MAX_DEPTH} deep), written in {built['seconds']:.1f} s")
            if size == args.catalogue_models:
                print("2. lineage reads through the driver (depth 10):")
                bench_lineage(db, catalogue, built["members"], args.samples, args.seed)
            print("3. placing one new model (Catalogue.import_model end to end: hash, fingerprint, "
                  "candidates, distances, tree rebuild, one transaction):")
            folder = Path(tmp) / str(size)
            folder.mkdir()
            results[size] = bench_placement(catalogue, built["kept"], args.placements, args.seed, folder)
            for kind, figures in results[size].items():
                show_placement(kind, figures)
    print()
    for kind in results[args.catalogue_models]:
        ratio = results[args.catalogue_models][kind]["median_ms"] / results[args.small_catalogue][kind]["median_ms"]
        print(f"placement ({kind}), catalogue of {args.catalogue_models} vs {args.small_catalogue}: "
              f"x{ratio:.2f} median latency (target: within 2x)")
    wipe(db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
