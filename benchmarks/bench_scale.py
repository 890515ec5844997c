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
   genealogy in one transaction), compared with the in-process result.  It EMPTIES the
   database it is pointed at (NEO4J_URI etc.): refused on a non-empty one without ``--wipe``.
3. **Dask ingest** (``--dask``): fingerprinting the small zoo's real model files on a
   ``LocalCluster`` of 1 and of 2 worker processes (one thread each), models/s and MB/s.

Run:  python benchmarks/bench_scale.py --sizes 1000 10000 100000 [--neo4j --wipe] [--dask]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
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
ATTENTION = ("query", "key", "value")


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
    }
    if n <= exact_up_to:
        started = time.perf_counter()
        exact = GenealogyRecovery(search="exact").recover_source(source)
        out["exact_s"] = time.perf_counter() - started
        out["exact_identical"] = ([f.members for f in exact.families] == [f.members for f in genealogy.families]
                                  and [(e.parent, e.child) for e in exact.edges]
                                  == [(e.parent, e.child) for e in genealogy.edges])
        out["exact_scores"] = _scores(exact, names, parents, family)
    source.close()
    return out


def _child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exact-up-to", type=int, default=1000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child process: one size
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_size(args.one, args.seed, args.exact_up_to)))
        return 0
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start (shared machine)")
    results = [_child(["--one", str(n), "--seed", str(args.seed), "--exact-up-to", str(args.exact_up_to)])
               for n in args.sizes]
    report_in_process(results)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
