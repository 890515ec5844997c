"""Hub-scale benchmark: recluster of 1k, 10k and 100k synthetic models; Dask ingest.

Prints figures; asserts nothing.  Absolute times on a shared machine are noisy, so the
growth ratios are measured side by side in one run, each size in a fresh process (its
peak RSS is that process's ``ru_maxrss``).

1. **In process** (what ``recluster`` computes, on fingerprints): a synthetic catalogue
   of N models is generated (families of varied sizes, 1 to 400, trees up to 8
   generations deep, three architectures; tiny attention matrices: the point is the
   count), its fingerprints spooled to a temporary file (:class:`SpooledSource`, a
   bounded cache in front), and ``GenealogyRecovery().recover_source`` is timed: families
   (sparse nearest-neighbour search) and trees.  Reported: seconds, growth per 10x,
   peak RSS, family ARI and directed-edge accuracy against the generated truth, and,
   up to ``--exact-up-to`` models, whether the exact path (every pairwise distance)
   gives identical families and edges (and its time).
2. **Through Neo4j** (``--neo4j``, sizes up to ``--neo4j-up-to``): the same catalogue
   bulk-loaded with batched UNWIND writes (``model_create``: rate in models/s), then
   ``Catalogue.recluster()`` end to end (stream keys, vectors, fingerprints; write the
   genealogy in transactions of about ``HERITAGE_RECLUSTER_BATCH`` models, each group of
   overlapping families whole), compared with the in-process result; a watcher polls
   ``SHOW TRANSACTIONS`` and reports the largest transaction's estimated heap.  It EMPTIES the
   database it is pointed at (NEO4J_URI etc.): refused on a non-empty one without ``--wipe``.
3. **Dask ingest** (``--dask``): fingerprinting the small zoo's real model files on a
   ``LocalCluster`` of 1 and of 2 worker processes (one thread each), models/s and MB/s.
4. **One very large family** (``--big-family 1000 2000 5000 10000``): a single synthetic
   family of N fine-tunes (one root, the same random trees, up to 8 generations), spooled,
   recovered with its tree on candidate edges (``tree_limit`` the default, or N - 1) and,
   up to ``--dense-up-to`` members, with ``tree_limit=None`` (the dense tree), each in a
   fresh process: seconds, peak RSS, directed accuracy against the generated truth, and
   whether the two trees have the same edges (and the same confidences).

Run:  python benchmarks/bench_scale.py --sizes 1000 10000 100000 [--neo4j --wipe] [--dask]
      python benchmarks/bench_scale.py --sizes --big-family 1000 2000 5000 10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from heritage.evaluation.synthetic import finetune, random_root
from heritage.reading.fingerprint import fingerprint_model
from heritage.reading.loader import LoadedModel, ModelFormat, TensorRef

ARCHITECTURES = (16, 20, 24)  # hidden sizes: three structural hashes
MAX_DEPTH = 8
FAMILY_SIZES = (1, 1, 1, 2, 2, 3, 4, 5, 8, 12, 20, 40, 100, 400)
BULK_ROWS = 1000  # models per UNWIND write when bulk-loading


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _attention_only(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {n: w for n, w in weights.items() if "attention" in n}


def _in_memory_model(name: str, weights: dict[str, np.ndarray]) -> LoadedModel:
    tensors = {n: TensorRef(name=n, shape=w.shape, dtype="float32", loader=lambda w=w: w) for n, w in weights.items()}
    return LoadedModel(name=name, path=Path(name), format=ModelFormat.SAFETENSORS, tensors=tensors, files=[])


def _parents(size: int, rng: np.random.Generator) -> list[int | None]:
    """A random tree, node 0 the root, at most MAX_DEPTH deep, biased to recent nodes."""
    parents: list[int | None] = [None]
    depth = [0]
    for i in range(1, size):
        j = min(i - 1, int(i * rng.random() ** 0.3))
        while depth[j] >= MAX_DEPTH:
            j = parents[j]  # type: ignore[assignment]
        parents.append(j)
        depth.append(depth[j] + 1)
    return parents


def generate(n: int, seed: int, sink: Any) -> tuple[list[str], dict[str, str | None], list[int]]:
    """Generate ``n`` models; each fingerprint goes to ``sink(fp)``.  Returns names, true
    parents and true family labels (in generation order)."""
    rng = np.random.default_rng(seed)
    names: list[str] = []
    parents: dict[str, str | None] = {}
    family: list[int] = []
    f = 0
    while len(names) < n:
        size = min(int(rng.choice(FAMILY_SIZES)), n - len(names))
        hidden = ARCHITECTURES[f % len(ARCHITECTURES)]
        tree = _parents(size, rng)
        weights = [_attention_only(random_root(rng, hidden=hidden, layers=1))]
        for i in range(1, size):
            weights.append(finetune(weights[tree[i]], rng))  # type: ignore[index]
        for i, w in enumerate(weights):
            name = f"f{f}-m{i}"
            sink(fingerprint_model(_in_memory_model(name, w)))
            names.append(name)
            parents[name] = None if tree[i] is None else f"f{f}-m{tree[i]}"
            family.append(f)
        f += 1
    return names, parents, family


def generate_family(n: int, seed: int, sink: Any) -> dict[str, str | None]:
    """One family of ``n`` models (hidden size 16, the random trees of :func:`generate`);
    each fingerprint goes to ``sink(fp)``, parents are streamed from the weights kept for
    the models still to be fine-tuned.  Returns the true parents."""
    rng = np.random.default_rng(seed)
    tree = _parents(n, rng)
    last_child = {p: i for i, p in enumerate(tree) if p is not None}
    weights = {0: _attention_only(random_root(rng, hidden=ARCHITECTURES[0], layers=1))}
    parents: dict[str, str | None] = {}
    for i in range(n):
        if i:
            weights[i] = finetune(weights[tree[i]], rng)  # type: ignore[index]
            if last_child[tree[i]] == i:
                del weights[tree[i]]  # type: ignore[arg-type]
        sink(fingerprint_model(_in_memory_model(f"m{i}", weights[i])))
        if i not in last_child:
            del weights[i]
        parents[f"m{i}"] = None if tree[i] is None else f"m{tree[i]}"
    return parents


def one_big_family(n: int, seed: int, dense: bool) -> dict[str, Any]:
    """Generate, spool and recover one family of ``n`` models in this process: the dense
    tree with ``dense``, else the tree on candidate edges (the default ``tree_limit``, or
    ``n - 1`` for a family not above it)."""
    from heritage.lineage.recovery import DEFAULT_TREE_LIMIT, GenealogyRecovery
    from heritage.lineage.sources import SpooledSource

    source = SpooledSource()
    parents = generate_family(n, seed, source.add)
    rss_before = _rss_mb()
    recovery = GenealogyRecovery(tree_limit=None if dense else min(DEFAULT_TREE_LIMIT, n - 1))
    started = time.perf_counter()
    genealogy = recovery.recover_source(source)
    seconds = time.perf_counter() - started
    source.close()
    truth = {(p, c) for c, p in parents.items() if p}
    found = sorted((e.parent, e.child) for e in genealogy.edges)
    return {"models": n, "dense": dense, "tree_limit": recovery.tree_limit, "families": len(genealogy.families),
            "recover_s": seconds, "peak_rss_mb": _rss_mb(), "peak_rss_before_recover_mb": rss_before,
            "directed": len(truth & set(found)) / max(1, len(truth)),
            "valid": all(f.validation().valid for f in genealogy.families),
            "regime": genealogy.families[0].regime,
            "tree_digest": _digest([], found),
            "edges_digest": _digest([], [(e.parent, e.child, e.relation, round(e.confidence, 12))
                                         for e in genealogy.edges])}


def report_big_family(rows: list[tuple[dict[str, Any], dict[str, Any] | None]]) -> None:
    print("\n== 4. one very large family (fingerprints spooled; tree on candidate edges above tree_limit)")
    print(f"{'members':>8} {'tree_limit':>10} {'recover s':>10} {'peak RSS MB':>12} {'directed':>9} {'valid':>6} "
          f"{'dense tree':>50}")
    for sparse, dense in rows:
        if dense is None:
            versus = "not run"
        else:
            same = "same edges" if dense["tree_digest"] == sparse["tree_digest"] else "DIFFERENT edges"
            confidences = "same confidences" if dense["edges_digest"] == sparse["edges_digest"] else "other confidences"
            versus = (f"{dense['recover_s']:.1f} s (x{dense['recover_s'] / sparse['recover_s']:.1f}), "
                      f"{dense['peak_rss_mb']:.0f} MB, directed {dense['directed']:.3f}, {same}, {confidences}")
        print(f"{sparse['models']:>8} {sparse['tree_limit']:>10} {sparse['recover_s']:>10.1f} "
              f"{sparse['peak_rss_mb']:>12.0f} {sparse['directed']:>9.3f} {'yes' if sparse['valid'] else 'NO':>6}  "
              f"{versus}")
    print("(regime decided: " + ", ".join(sorted({r[0]['regime'] for r in rows})) + "; peak RSS is the whole "
          "process's, generation included)")


def _scores(genealogy: Any, names: list[str], parents: dict[str, str | None], family: list[int]) -> dict[str, float]:
    from sklearn.metrics import adjusted_rand_score

    label = {m: i for i, fam in enumerate(genealogy.families) for m in fam.members}
    truth = {(p, c) for c, p in parents.items() if p}
    found = {(e.parent, e.child) for e in genealogy.edges}
    return {"ari": float(adjusted_rand_score(family, [label[m] for m in names])),
            "directed": len(truth & found) / max(1, len(truth)),
            "undirected": len({frozenset(e) for e in truth} & {frozenset(e) for e in found}) / max(1, len(truth))}


def one_size(n: int, seed: int, exact_up_to: int) -> dict[str, Any]:
    """Generate, spool and recover one catalogue in this process; figures as a dict."""
    from heritage.lineage.recovery import GenealogyRecovery
    from heritage.lineage.sources import SpooledSource

    started = time.perf_counter()
    source = SpooledSource()
    names, parents, family = generate(n, seed, source.add)
    generated = time.perf_counter() - started
    rss_before = _rss_mb()
    started = time.perf_counter()
    genealogy = GenealogyRecovery().recover_source(source)
    seconds = time.perf_counter() - started
    out: dict[str, Any] = {
        "models": n, "families_true": len(set(family)), "families": len(genealogy.families),
        "edges": len(genealogy.edges), "generate_s": generated, "recover_s": seconds,
        "peak_rss_mb": _rss_mb(), "peak_rss_before_recover_mb": rss_before,
        **_scores(genealogy, names, parents, family),
        "digest": _digest([f.members for f in genealogy.families],
                          [(e.parent, e.child, e.relation) for e in genealogy.edges]),
    }
    if n <= exact_up_to:
        started = time.perf_counter()
        exact = GenealogyRecovery(search="exact").recover_source(source)
        out["exact_s"] = time.perf_counter() - started
        out["exact_identical"] = ([f.members for f in exact.families] == [f.members for f in genealogy.families]
                                  and exact.edges == genealogy.edges)
        out["exact_scores"] = _scores(exact, names, parents, family)
    source.close()
    return out


def _digest(families: list[list[str]], edges: list[tuple[str, str, str]]) -> str:
    """A fingerprint of a genealogy (families as name sets, typed edges) to compare two runs."""
    import hashlib

    text = json.dumps([sorted(sorted(f) for f in families), sorted(edges)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TransactionMemoryWatch:
    """Polls ``SHOW TRANSACTIONS`` from its own connection while the recluster runs and
    keeps the largest ``estimatedUsedHeapMemory`` seen (a sample every 0.2 s: a lower
    bound of the true peak)."""

    def __init__(self, db: Any) -> None:
        import threading

        self._db, self.peak_bytes = db, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            rows = self._db.read("SHOW TRANSACTIONS YIELD estimatedUsedHeapMemory AS heap "
                                 "RETURN max(heap) AS heap")
            self.peak_bytes = max(self.peak_bytes, int(rows[0]["heap"] or 0))

    def __enter__(self) -> "TransactionMemoryWatch":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def one_size_neo4j(n: int, seed: int) -> dict[str, Any]:
    """Bulk-load the catalogue of ``n`` models with batched UNWIND writes, then recluster it."""
    import uuid

    from graph.database import Database
    from heritage.catalogue import Catalogue, CatalogueConfig
    from heritage.catalogue.placement import placement_vector
    from heritage.reading.fingerprint import FINGERPRINT_VERSION

    db = Database.connect()  # NEO4J_* settings
    wipe(db)
    catalogue = Catalogue(CatalogueConfig(), db=db)
    rows: list[dict[str, Any]] = []
    written = {"rows": 0, "seconds": 0.0}

    def flush() -> None:
        started = time.perf_counter()
        db.write("model_create", rows=rows)
        written["seconds"] += time.perf_counter() - started
        written["rows"] += len(rows)
        rows.clear()

    def sink(fp: Any) -> None:
        model_id = uuid.uuid4().hex
        rows.append({"props": {"id": model_id, "name": fp.name, "sha256": uuid.uuid4().hex + uuid.uuid4().hex,
                               "status": "ok", "isAdapter": False, "structureHash": fp.structure_hash,
                               "backboneKey": fp.backbone_key, "layers": fp.block_count, "format": "safetensors", "kurtosis": fp.kurtosis, "placement": placement_vector(fp),
                               "path": None, "declaredBase": None},
                     "fingerprint": fp.to_bytes(), "fingerprintVersion": FINGERPRINT_VERSION})
        if len(rows) >= BULK_ROWS:
            flush()

    names, parents, family = generate(n, seed, sink)
    if rows:
        flush()
    rss_before = _rss_mb()
    started = time.perf_counter()
    stages: list[tuple[str, float]] = []  # (progress message, seconds since the start)
    with TransactionMemoryWatch(db) as watch:
        result = catalogue.recluster(
            progress=lambda _, message: stages.append((message, time.perf_counter() - started)))
    seconds = time.perf_counter() - started
    stored_families = [r["names"] for r in db.read(
        "MATCH (m:Model)-[:IN_FAMILY]->(f:Family) RETURN f.id AS id, collect(m.name) AS names")]
    stored_edges = [(r["parent"], r["child"], r["relation"]) for r in db.read(
        "MATCH (c:Model)-[r:DERIVED_FROM]->(p:Model) RETURN p.name AS parent, c.name AS child, r.relation AS relation")]
    label = {m: i for i, fam in enumerate(stored_families) for m in fam}
    from sklearn.metrics import adjusted_rand_score

    truth = {(p, c) for c, p in parents.items() if p}
    out = {"models": n, "bulk_rows_per_s": written["rows"] / written["seconds"], "bulk_s": written["seconds"],
           "recluster_s": seconds, "families": result["families"], "edges": result["edges"],
           "transactions": result["transactions"], "largest_transaction_mb": watch.peak_bytes / 1e6,
           "stages": _stage_seconds(stages, seconds),
           "peak_rss_mb": _rss_mb(), "peak_rss_before_recluster_mb": rss_before,
           "ari": float(adjusted_rand_score(family, [label[m] for m in names])),
           "directed": len(truth & {(p, c) for p, c, _ in stored_edges}) / max(1, len(truth)),
           "digest": _digest(stored_families, stored_edges)}
    catalogue.close()
    wipe(db)
    db.close()
    return out


def _stage_seconds(stages: list[tuple[str, float]], total: float) -> dict[str, float]:
    """Seconds per recluster stage from its progress messages: reading keys, recovering
    families and trees (streaming fingerprints), writing (all transactions)."""
    marks = [(m.split(" (")[0].split(" of ")[0].split(" ")[0], t) for m, t in stages] + [("end", total)]
    out: dict[str, float] = {}
    for (name, t), (_, t_next) in zip(marks, marks[1:]):
        out[name] = out.get(name, 0.0) + t_next - t
    return {k: round(v, 1) for k, v in out.items()}


def wipe(db: Any) -> None:
    """Empty the database in chunks (one huge transaction would need a huge heap)."""
    while db.write("MATCH (n) WITH n LIMIT 5000 DETACH DELETE n RETURN count(*) AS n")[0]["n"]:
        pass


def bench_dask_ingest(zoo: Path, repeat: int) -> None:
    """Fingerprinting the zoo's real model files: in process vs a LocalCluster of 1 and 2 workers."""
    from distributed import Client, LocalCluster

    from heritage.catalogue import collect_entries
    from heritage.catalogue.readers import LocalReader
    from heritage.distributed import DaskReader

    entries = collect_entries([zoo / "models"])
    size_mb = sum(f.stat().st_size for _, p in entries for f in ([p] if p.is_file() else p.rglob("*"))
                  if f.is_file()) / 1e6

    def run(reader: Any) -> float:
        best = float("inf")
        for _ in range(repeat):
            started = time.perf_counter()
            opened = reader.open_many(entries)
            prepared = reader.prepare_many([o for o in opened if not isinstance(o, str)], None)
            assert all(not isinstance(p, str) for p in prepared), prepared
            best = min(best, time.perf_counter() - started)
        return best

    print(f"\n== 3. ingest of the small zoo ({len(entries)} real models, {size_mb:.0f} MB on disk): "
          f"hash + profile + fingerprint, best of {repeat}")
    run(LocalReader())  # warm the page cache
    base = run(LocalReader())
    print(f"  in process                 {base:6.1f} s  {len(entries) / base:5.2f} models/s  {size_mb / base:6.0f} MB/s")
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, memory_limit="2GiB",
                          dashboard_address=None, silence_logs=40) as cluster, Client(cluster) as client:
            seconds = run(DaskReader(client))
        print(f"  Dask, {workers} worker process(es)  {seconds:6.1f} s  {len(entries) / seconds:5.2f} models/s  "
              f"{size_mb / seconds:6.0f} MB/s  (x{base / seconds:.2f} of in process)")


def _child(args: list[str]) -> dict[str, Any]:
    """Run one size in a fresh process (its own peak RSS); a failure ends the benchmark
    with the child's last words, not a bare exit status."""
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise SystemExit(f"benchmark step {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def report_in_process(results: list[dict[str, Any]]) -> None:
    print("\n== 1. recluster computation in process (sparse families + trees; fingerprints spooled)")
    print(f"{'models':>8} {'families':>9} {'edges':>7} {'recover s':>10} {'x per 10x':>10} {'peak RSS MB':>12} "
          f"{'ARI':>6} {'directed':>9} {'exact path':>24}")
    previous = None
    for r in results:
        growth = f"{r['recover_s'] / previous['recover_s']:.1f}" if previous else "-"
        exact = (f"{'identical' if r['exact_identical'] else 'DIFFERENT'} ({r['exact_s']:.1f} s, "
                 f"directed {r['exact_scores']['directed']:.3f})" if "exact_s" in r else "not run")
        print(f"{r['models']:>8} {r['families']:>9} {r['edges']:>7} {r['recover_s']:>10.1f} {growth:>10} "
              f"{r['peak_rss_mb']:>12.0f} {r['ari']:>6.3f} {r['directed']:>9.3f} {exact:>24}")
        previous = r
    print("(peak RSS is the whole process's, generation included; before recovery started it was "
          + ", ".join(f"{r['peak_rss_before_recover_mb']:.0f}" for r in results) + " MB)")
    print("genealogy digests (families and typed edges, to compare runs): "
          + ", ".join(f"{r['models']}: {r['digest']}" for r in results))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[1000, 10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-up-to", type=int, default=1000)
    parser.add_argument("--neo4j", action="store_true", help="also bulk-load and recluster through Neo4j")
    parser.add_argument("--neo4j-up-to", type=int, default=10_000)
    parser.add_argument("--wipe", action="store_true", help="allow emptying a non-empty database")
    parser.add_argument("--dask", action="store_true", help="also measure Dask ingest on the small zoo")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    parser.add_argument("--one-neo4j", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--big-family", type=int, nargs="*", default=[],
                        help="also recover one synthetic family of each of these sizes")
    parser.add_argument("--dense-up-to", type=int, default=2000,
                        help="largest big family also recovered with the dense tree")
    parser.add_argument("--one-big", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dense", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one_big:
        print(json.dumps(one_big_family(args.one_big, args.seed, args.dense)))
        return 0
    if args.one:
        print(json.dumps(one_size(args.one, args.seed, args.exact_up_to)))
        return 0
    if args.one_neo4j:
        print(json.dumps(one_size_neo4j(args.one_neo4j, args.seed)))
        return 0
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (shared machine)")
    if args.neo4j:
        from graph.database import Database

        with Database.connect() as db:
            existing = db.read("MATCH (n) RETURN count(n) AS n")[0]["n"]
        if existing and not args.wipe:
            print(f"the database holds {existing} nodes; rerun with --wipe to empty it", file=sys.stderr)
            return 2
    results = [_child(["--one", str(n), "--seed", str(args.seed), "--exact-up-to", str(args.exact_up_to)])
               for n in args.sizes]
    if results:
        report_in_process(results)
    if args.neo4j:
        print("\n== 2. through Neo4j: bulk load (UNWIND model_create, "
              f"{BULK_ROWS} models per write) and Catalogue.recluster()")
        print(f"{'models':>8} {'load models/s':>14} {'recluster s':>12} {'x per 10x':>10} {'peak RSS MB':>12} "
              f"{'ARI':>6} {'directed':>9} {'same as in process':>19} {'write txs':>10} {'largest tx MB':>14}")
        previous = None
        for r in results:
            if r["models"] > args.neo4j_up_to:
                continue
            g = _child(["--one-neo4j", str(r["models"]), "--seed", str(args.seed)])
            growth = f"{g['recluster_s'] / previous['recluster_s']:.1f}" if previous else "-"
            print(f"{g['models']:>8} {g['bulk_rows_per_s']:>14.0f} {g['recluster_s']:>12.1f} {growth:>10} "
                  f"{g['peak_rss_mb']:>12.0f} {g['ari']:>6.3f} {g['directed']:>9.3f} "
                  f"{'yes' if g['digest'] == r['digest'] else 'NO':>19} {g['transactions']:>10} "
                  f"{g['largest_transaction_mb']:>14.0f}")
            print(f"{'':>8} recluster stages (s): {g['stages']}")
            previous = g
    if args.big_family:
        rows = []
        for n in args.big_family:
            sparse = _child(["--one-big", str(n), "--seed", str(args.seed)])
            dense = (_child(["--one-big", str(n), "--seed", str(args.seed), "--dense"])
                     if n <= args.dense_up_to else None)
            rows.append((sparse, dense))
        report_big_family(rows)
    if args.dask:
        from heritage.evaluation.zoo import ensure_zoo

        bench_dask_ingest(Path(ensure_zoo("small")), args.repeat)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
