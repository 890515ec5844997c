"""Benchmark of the web front end: how long a large family takes to open in Chromium.

Prints figures; it is not a test.  It starts a throwaway Neo4j of its own (never the
user's catalogue) and ``heritage serve`` on a free port, writes one family of each size in
``--sizes`` (default 100, 300, 1000) the way ``bench_graph.py`` writes large catalogues
(real fingerprints, random trees up to 10 generations, UNWIND batches), and for each family
measures, side by side in one run:

* ``api``:  ``GET /api/families/{id}/genealogy`` over HTTP (what the page fetches);
* ``cold``: a fresh page load of ``/ui/#/families/{id}`` until the SVG is rendered
  (scripts, fetch, layout, drawing, the next frame);
* ``warm``: the same view opened from the catalogue page (scripts already loaded),
  split into the page's own phases: fetch, layout + SVG, next frame.

Each figure is the median of ``--repeat`` runs.  The machine's load average is printed:
on a shared machine absolute times vary; the ratios (front end vs API alone, 1,000 vs
100 models) are the comparable part.

Run:  python benchmarks/bench_ui.py [--sizes 100 300 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(Path(__file__).resolve().parent)]

import httpx  # noqa: E402

import bench_graph  # noqa: E402
from live_server import heritage_serve  # noqa: E402
from neo4j_servers import private_server  # noqa: E402
from ui_browser import launch_chromium, wait_until_ready  # noqa: E402

PHASES = """() => {
    const last = (name) => performance.getEntriesByName(name).at(-1).startTime;
    return {fetch: last("family:fetched") - last("family:start"), draw: last("family:laid-out") - last("family:fetched"),
            paint: last("family:rendered") - last("family:laid-out")};
}"""


def median(values: list[float]) -> float:
    return statistics.median(values)


def warm_up(url: str, family_ids) -> None:
    """First queries plan their Cypher and fill caches (seconds on a busy machine): not measured."""
    with httpx.Client(base_url=url, timeout=300) as client:
        for path in ("/api/families", "/api/clustering/statistics", "/api/lineage/declared-mismatches?limit=50",
                     "/api/jobs?limit=8", *(f"/api/families/{f}/genealogy" for f in family_ids)):
            client.get(path)


def measure(page, url: str, family_id: str, size: int, repeat: int) -> dict[str, float]:
    view = f"{url}/ui/#/families/{family_id}"
    api, cold, warm, phases = [], [], [], []
    with httpx.Client(base_url=url, timeout=120) as client:
        for _ in range(repeat):
            started = time.perf_counter()
            response = client.get(f"/api/families/{family_id}/genealogy")
            assert response.status_code == 200, response.text[:300]
            api.append(time.perf_counter() - started)
    for _ in range(repeat):
        page.goto("about:blank")
        started = time.perf_counter()
        page.goto(view)
        wait_until_ready(page, "family", timeout_ms=120_000)
        cold.append(time.perf_counter() - started)
        assert page.locator("svg.tree g.node").count() == size
        page.goto(f"{url}/ui/#/")
        wait_until_ready(page, "catalogue", timeout_ms=120_000)
        started = time.perf_counter()
        page.evaluate(f"location.hash = '#/families/{family_id}'")
        wait_until_ready(page, "family", timeout_ms=120_000)
        warm.append(time.perf_counter() - started)
        phases.append(page.evaluate(PHASES))
    return {"api": median(api), "cold": median(cold), "warm": median(warm),
            **{k: median([p[k] for p in phases]) / 1000 for k in ("fetch", "draw", "paint")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000], help="family sizes")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (median)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, private_server() as neo4j:
        os.environ.update(NEO4J_URI=neo4j.uri, NEO4J_USER=neo4j.user, NEO4J_PASSWORD=neo4j.password or "",
                          NEO4J_DATABASE=neo4j.database)
        from graph.database import Database
        from graph.schema import apply_schema

        families = {}
        with Database.connect(neo4j) as db:
            apply_schema(db)
            for size in args.sizes:
                stored = bench_graph.store_catalogue(db, families=1, size=size, seed=args.seed + size, keep=0,
                                                     prefix=f"ui{size}")
                [families[size]] = stored["members"]
                print(f"family of {size} models written in {stored['seconds']:.1f} s")
        with heritage_serve(Path(tmp) / "serve.log", api_keys=secrets.token_urlsafe(24), db_timeout_s="120",
                            upload_dir=str(Path(tmp) / "uploads")) as url, sync_playwright() as playwright:
            warm_up(url, families.values())
            browser = launch_chromium(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            rows = {size: measure(page, url, family_id, size, args.repeat) for size, family_id in families.items()}
            browser.close()
    load = os.getloadavg()[0]
    print(f"\nmedians of {args.repeat} runs, seconds; shared machine, {os.cpu_count()} CPUs, load average {load:.1f}")
    print(f"{'models':>7} {'api':>7} {'cold':>7} {'warm':>7} {'fetch':>7} {'draw':>7} {'paint':>7} {'warm/api':>9}")
    for size, r in rows.items():
        print(f"{size:>7} {r['api']:>7.2f} {r['cold']:>7.2f} {r['warm']:>7.2f} {r['fetch']:>7.2f} {r['draw']:>7.2f} "
              f"{r['paint']:>7.2f} {r['warm'] / r['api']:>9.2f}")
    small, large = min(rows), max(rows)
    if small != large:
        print(f"{large} vs {small} models: api x{rows[large]['api'] / rows[small]['api']:.1f}, "
              f"cold open x{rows[large]['cold'] / rows[small]['cold']:.1f}, "
              f"layout + SVG x{rows[large]['draw'] / max(rows[small]['draw'], 1e-3):.1f}")


if __name__ == "__main__":
    main()
