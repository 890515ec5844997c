"""API overhead on lineage reads: REST vs the Neo4j driver directly, on 10,000 models.

Prints figures; asserts nothing.  Builds (or reuses) a synthetic catalogue of
``--models`` models in families whose trees are up to ``--max-depth`` generations deep,
then measures median and p95 latency of

* ``driver``: the catalogue's own Cypher (``lineage_ancestors`` / ``lineage_descendants``)
  run through the driver directly, one read transaction each;
* ``service``: :meth:`heritage.catalogue.Catalogue.lineage` in-process (what the route calls);
* ``api``: ``GET /api/models/{id}/lineage?depth=...`` over HTTP against ``heritage serve``
  running in a separate process (uvicorn, keep-alive connection).

The API answers ancestors AND descendants (plus the model and its root) in one
request, so its overhead ratio is taken against the driver's ancestors+descendants
(the sum of both queries for the same model).  Same models, same order, interleaved.

    python benchmarks/bench_api.py [--models 10000] [--family-size 100] [--samples 300] [--keep]

The catalogue comes from ``benchmarks/bench_graph.py``'s ``store_catalogue`` when present
(real fingerprints and placement vectors, trees up to 10 deep: both benchmarks measure
the same graph), else from a bare generator here.  Exactly the nodes the benchmark
created are deleted at the end unless ``--keep``; other data is not touched, but the
catalogue it adds is visible to anyone using that database meanwhile: point it at a
scratch server (NEO4J_URI / NEO4J_PASSWORD).  Sampled models: random ones (as
bench_graph) and the roots of all trees (the largest descendant sets).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("bench_api")

PREFIX = "bench-"
_BATCH = 2000


# --------------------------------------------------------------------------- catalogue


def _tree(rng: random.Random, size: int, max_depth: int) -> list[int | None]:
    """Parent index of each node of a random tree (node 0 the root), at most ``max_depth``
    deep, with one spine reaching the full depth."""
    parents: list[int | None] = [None]
    depth = [0]
    for i in range(1, size):
        if i <= max_depth:
            j = i - 1
        else:
            j = rng.choice([k for k in range(max(0, i - 64), i) if depth[k] < max_depth] or [0])
        parents.append(j)
        depth.append(depth[j] + 1)
    return parents


def build_catalogue(db: Any, families: int, size: int, seed: int = 0, max_depth: int = 10) -> dict[str, Any]:
    """Fallback generator (bench_graph.store_catalogue is preferred): bare Model rows.

    Returns ``{"members": {family_id: [model ids, root first]}}`` like bench_graph.
    """
    rng = random.Random(seed)
    members: dict[str, list[str]] = {}
    for f in range(families):
        fid = f"{PREFIX}f{f}"
        ids = [f"{PREFIX}{f}-{i}" for i in range(size)]
        members[fid] = ids
        parents = _tree(rng, size, max_depth)
        db.write("CREATE (:Family {id: $id, memberCount: $n, version: 1, createdAt: datetime(), "
              "updatedAt: datetime()})", id=fid, n=size)
        db.write("UNWIND $ids AS id MATCH (f:Family {id: $family}) "
              "CREATE (m:Model {id: id, name: id, status: 'ok', format: 'safetensors', isAdapter: false, "
              "createdAt: datetime()})-[:IN_FAMILY]->(f)", ids=ids, family=fid)
        db.write("UNWIND $edges AS e MATCH (c:Model {id: e.child}), (p:Model {id: e.parent}) "
              "CREATE (c)-[:DERIVED_FROM {confidence: e.confidence, distance: 0.1, method: 'mother'}]->(p)",
              edges=[{"child": ids[i], "parent": ids[p], "confidence": rng.random()}
                     for i, p in enumerate(parents) if p is not None])
    return {"members": members}


def shared_generator() -> Callable[..., dict[str, Any]] | None:
    """``bench_graph.store_catalogue`` (real fingerprints and placement vectors) if present."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    try:
        from bench_graph import store_catalogue  # type: ignore[import-not-found]
    except ImportError:
        return None
    return store_catalogue


def drop_catalogue(db: Any, members: dict[str, list[str]]) -> None:
    """Delete exactly the benchmark's families, models and their fingerprints."""
    ids = [m for family in members.values() for m in family]
    for i in range(0, len(ids), _BATCH):
        db.write("UNWIND $ids AS id MATCH (m:Model {id: id}) OPTIONAL MATCH (fp:Fingerprint)-[:OF]->(m) "
              "DETACH DELETE fp, m", ids=ids[i:i + _BATCH])
    db.write("UNWIND $ids AS id MATCH (f:Family {id: id}) DETACH DELETE f", ids=list(members))


# ------------------------------------------------------------------------------ timing


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def _timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1e3


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, key: str) -> subprocess.Popen[bytes]:
    """``heritage serve`` in a separate process (its own GIL, as in production)."""
    env = {**os.environ, "HERITAGE_API_KEYS": key, "HERITAGE_ENV": "development"}
    proc = subprocess.Popen([sys.executable, "-m", "heritage", "serve", "--port", str(port),
                             "--log-level", "warning"], env=env)
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise SystemExit(f"heritage serve exited with {proc.returncode}")
        time.sleep(0.3)
    proc.terminate()
    raise SystemExit("heritage serve did not become healthy within 60 s")


def run(args: argparse.Namespace) -> None:
    from graph.database import Database

    with Database.connect() as db:
        _run(db, args)


def _run(db: Any, args: argparse.Namespace) -> None:
    import httpx

    from graph.schema import apply_schema
    from heritage.catalogue import Catalogue

    apply_schema(db)
    families = max(1, args.models // args.family_size)
    started = time.perf_counter()
    generator = shared_generator()
    if generator is not None:
        members = generator(db, families, args.family_size, args.seed, keep=0)["members"]
        source = "bench_graph.store_catalogue"
    else:
        members = build_catalogue(db, families, args.family_size, args.seed, args.max_depth)["members"]
        source = "bench_api.build_catalogue"
    print(f"catalogue: {families * args.family_size} models in {families} families written in "
          f"{time.perf_counter() - started:.1f} s ({source})")

    rng = random.Random(args.seed)
    everyone = [m for ids in members.values() for m in ids]
    sets = {
        "random models": rng.sample(everyone, min(args.samples, len(everyone))),
        "roots (whole trees)": [ids[0] for ids in members.values()][: args.samples],
    }
    depth = args.max_depth

    def ancestors(mid: str) -> Any:
        return db.read("lineage_ancestors", id=mid, depth=depth)

    def descendants(mid: str) -> Any:
        return db.read("lineage_descendants", id=mid, depth=depth)

    catalogue = Catalogue(db=db, ensure_schema=False)
    key = secrets.token_urlsafe(24)
    port = _free_port()
    server = start_server(port, key)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=30) as client:
            def api(mid: str) -> None:
                response = client.get(f"/api/models/{mid}/lineage", params={"depth": depth})
                response.raise_for_status()
                response.json()

            for mid in sets["random models"][: args.warmup]:  # warm caches, plans, connections
                ancestors(mid), descendants(mid), catalogue.lineage(mid, depth), api(mid)
            for label, sample in sets.items():
                times: dict[str, list[float]] = {k: [] for k in ("ancestors", "descendants", "driver_both",
                                                                 "service", "api")}
                for mid in sample:  # the four paths interleaved, same model each time
                    a = _timed(lambda m=mid: ancestors(m))
                    d = _timed(lambda m=mid: descendants(m))
                    times["ancestors"].append(a)
                    times["descendants"].append(d)
                    times["driver_both"].append(a + d)
                    times["service"].append(_timed(lambda m=mid: catalogue.lineage(m, depth)))
                    times["api"].append(_timed(lambda m=mid: api(m)))
                results[label] = times
    finally:
        server.terminate()
        server.wait(timeout=30)
        if not args.keep:
            drop_catalogue(db, members)

    labels = {
        "ancestors": "driver: ancestors query",
        "descendants": "driver: descendants query",
        "driver_both": "driver: ancestors + descendants",
        "service": "Catalogue.lineage (in-process)",
        "api": "API GET /lineage (HTTP)",
    }
    for set_label, times in results.items():
        n = len(times["api"])
        print(f"\nlineage reads at depth {depth}: {set_label}, n={n} ({args.warmup} warm-up requests first)")
        print(f"  {'path':<34}{'median ms':>12}{'p95 ms':>10}")
        for key_, label in labels.items():
            median, p95 = _percentiles(times[key_])
            print(f"  {label:<34}{median:>12.2f}{p95:>10.2f}")
        api_m, api_p = _percentiles(times["api"])
        drv_m, drv_p = _percentiles(times["driver_both"])
        svc_m, _ = _percentiles(times["service"])
        print(f"  API overhead ratio vs driver (ancestors+descendants): median {api_m / drv_m:.2f}x, "
              f"p95 {api_p / drv_p:.2f}x")
        print(f"  API vs in-process service: median {api_m / svc_m:.2f}x "
              f"(HTTP + validation + serialisation {api_m - svc_m:+.2f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--max-depth", type=int, default=10)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--family-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="leave the benchmark catalogue in the database")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    run(args)


if __name__ == "__main__":
    main()
