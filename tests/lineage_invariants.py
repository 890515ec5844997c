"""Checks shared by the hardening, fault and concurrency tests (not a test module).

* :func:`graph_counts` / :func:`snapshot`: what is stored, to compare before and after an
  operation that must change nothing (a refused upload, a killed job);
* :func:`integrity_problems`: the invariants of ``cypher/README.md`` checked by Cypher
  (one parent per model, no cycles, edges inside one family, one root per family,
  ``memberCount`` equal to the real membership, one fingerprint per model);
* :func:`genealogy_problems` / :func:`lineage_problems`: a REST answer is one whole tree.

Every function returns data or a list of human-readable problems (empty when healthy), so
a failing assertion says what is wrong.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from graph.database import Database

__all__ = ["INTEGRITY_QUERIES", "genealogy_problems", "graph_counts", "integrity_problems", "lineage_problems",
           "snapshot", "wait_for_job"]


def graph_counts(db: Database) -> dict[str, int]:
    """Nodes per label and relationships per type, e.g. ``{"Model": 3, "DERIVED_FROM": 2}``."""
    counts: dict[str, int] = {}
    for row in db.read("MATCH (n) UNWIND labels(n) AS label RETURN label, count(*) AS n"):
        counts[row["label"]] = row["n"]
    for row in db.read("MATCH ()-[r]->() RETURN type(r) AS type, count(*) AS n"):
        counts[row["type"]] = row["n"]
    return counts


def snapshot(db: Database) -> dict[str, Any]:
    """Models, DERIVED_FROM edges (with their run ids), families and memberships, sorted."""
    return {
        "models": db.read("MATCH (m:Model) RETURN m.id AS id, m.name AS name, m.sha256 AS sha, "
                          "m.status AS status ORDER BY id"),
        "edges": db.read("MATCH (c:Model)-[r:DERIVED_FROM]->(p:Model) RETURN c.id AS child, p.id AS parent, "
                         "r.runId AS run, r.confidence AS confidence ORDER BY child"),
        "families": db.read("MATCH (f:Family) RETURN f.id AS id, f.version AS version, "
                            "f.memberCount AS members ORDER BY id"),
        "memberships": db.read("MATCH (m:Model)-[:IN_FAMILY]->(f:Family) RETURN m.id AS model, f.id AS family "
                               "ORDER BY model"),
    }


# name -> Cypher returning one row per violation (a column ``what`` describes it).
INTEGRITY_QUERIES: dict[str, str] = {
    "more than one parent":
        "MATCH (m:Model)-[r:DERIVED_FROM]->() WITH m, count(r) AS n WHERE n > 1 "
        "RETURN m.name + ' has ' + toString(n) + ' parents' AS what",
    "cycle":
        "MATCH p = (m:Model)-[:DERIVED_FROM*1..60]->(m) RETURN DISTINCT 'cycle through ' + m.name AS what",
    "self edge":
        "MATCH (m:Model)-[:DERIVED_FROM]->(m) RETURN m.name + ' derives from itself' AS what",
    "edge across families":
        "MATCH (c:Model)-[:DERIVED_FROM]->(p:Model) "
        "WHERE NOT EXISTS { MATCH (c)-[:IN_FAMILY]->(f:Family)<-[:IN_FAMILY]-(p) } "
        "RETURN c.name + ' -> ' + p.name + ' crosses families' AS what",
    "membership count":
        "MATCH (m:Model) WITH m, COUNT { (m)-[:IN_FAMILY]->(:Family) } AS n "
        "WHERE (m.status = 'ok' AND n <> 1) OR (m.status <> 'ok' AND n <> 0) "
        "RETURN m.name + ' (' + m.status + ') is in ' + toString(n) + ' families' AS what",
    "stale or empty family":
        "MATCH (f:Family) WITH f, COUNT { (:Model)-[:IN_FAMILY]->(f) } AS real "
        "WHERE real = 0 OR f.memberCount IS NULL OR f.memberCount <> real "
        "RETURN 'family ' + f.id + ' memberCount ' + coalesce(toString(f.memberCount), 'null') "
        "+ ' but ' + toString(real) + ' members' AS what",
    "roots per family":
        "MATCH (f:Family) WITH f, COUNT { MATCH (m:Model)-[:IN_FAMILY]->(f) WHERE NOT (m)-[:DERIVED_FROM]->() } "
        "AS roots WHERE roots <> 1 RETURN 'family ' + f.id + ' has ' + toString(roots) + ' roots' AS what",
    "edges of one family from several writes":
        "MATCH (c:Model)-[r:DERIVED_FROM]->(:Model), (c)-[:IN_FAMILY]->(f:Family) "
        "WITH f, count(DISTINCT r.runId) AS runs WHERE runs > 1 "
        "RETURN 'family ' + f.id + ' has edges of ' + toString(runs) + ' runs' AS what",
    "fingerprints":
        "MATCH (m:Model) WITH m, COUNT { (:Fingerprint)-[:OF]->(m) } AS n WHERE n <> 1 "
        "RETURN m.name + ' has ' + toString(n) + ' fingerprints' AS what "
        "UNION ALL MATCH (fp:Fingerprint) WHERE NOT (fp)-[:OF]->(:Model) "
        "RETURN 'orphaned fingerprint ' + fp.modelId AS what",
    "duplicate weights or names":
        "MATCH (m:Model) WITH m.sha256 AS sha, count(*) AS n WHERE n > 1 "
        "RETURN 'sha256 ' + sha + ' stored ' + toString(n) + ' times' AS what "
        "UNION ALL MATCH (m:Model) WITH m.name AS name, count(*) AS n WHERE n > 1 "
        "RETURN 'name ' + name + ' stored ' + toString(n) + ' times' AS what",
}


def integrity_problems(db: Database) -> list[str]:
    """Every violated invariant of the stored genealogy (empty when all hold)."""
    problems: list[str] = []
    for check, query in INTEGRITY_QUERIES.items():
        problems += [f"{check}: {row['what']}" for row in db.read(query)]
    return problems


def genealogy_problems(body: dict[str, Any]) -> list[str]:
    """Problems of one ``GET /api/families/{id}/genealogy`` answer as a whole tree: one root,
    one parent per other member, edges inside the member set, every member reaches the root,
    and the family's member count equal to its nodes."""
    problems: list[str] = []
    nodes = {n["id"]: n for n in body["nodes"]}
    if len(nodes) != len(body["nodes"]):
        problems.append("a node is listed twice")
    if not nodes:
        return problems + ["a family without members"]
    parent: dict[str, str] = {}
    for edge in body["edges"]:
        if edge["child"] in parent:
            problems.append(f"{edge['child']} has two parents")
        parent[edge["child"]] = edge["parent"]
        if edge["child"] not in nodes or edge["parent"] not in nodes:
            problems.append(f"edge {edge['parent']} -> {edge['child']} leaves the family")
    roots = [i for i in nodes if i not in parent]
    if len(roots) != 1:
        problems.append(f"{len(roots)} roots")
    if len(body["edges"]) != len(nodes) - 1:
        problems.append(f"{len(body['edges'])} edges for {len(nodes)} members")
    if sorted(body["roots"]) != sorted(roots):
        problems.append("the roots listed differ from the edges")
    for node_id, node in nodes.items():
        if node["parent_id"] != parent.get(node_id) or node["is_root"] != (node_id not in parent):
            problems.append(f"node {node_id} disagrees with the edges")
        seen, current = {node_id}, node_id
        while current in parent:
            current = parent[current]
            if current in seen:
                problems.append(f"cycle through {node_id}")
                break
            seen.add(current)
    if len({e["run_id"] for e in body["edges"]}) > 1:  # every rewrite replaces the whole tree
        problems.append("edges of several writes: " + ", ".join(sorted({str(e["run_id"]) for e in body["edges"]})))
    if body["family"]["member_count"] != len(nodes):
        problems.append(f"member_count {body['family']['member_count']} for {len(nodes)} nodes")
    if not body["validation"]["valid"]:
        problems.append(f"the server says invalid: {body['validation']['issues']}")
    return problems


def lineage_problems(body: dict[str, Any]) -> list[str]:
    """Problems of one ``GET /api/models/{id}/lineage`` answer: ancestors form one chain that
    starts at the model's parent and ends at the root; descendants are a tree below the
    model with each model once and ``descendant_count`` of them."""
    problems: list[str] = []
    model_id = body["model"]["id"]
    ancestors = body["ancestors"]
    if ancestors:
        if body["parent_id"] != ancestors[0]["id"]:
            problems.append(f"parent {body['parent_id']} but nearest ancestor {ancestors[0]['id']}")
        if ancestors[0]["child_id"] != model_id:
            problems.append("the nearest ancestor is not the model's parent")
        for lower, upper in pairwise(ancestors):
            if upper["child_id"] != lower["id"]:
                problems.append(f"ancestor chain broken between {lower['id']} and {upper['id']}")
        if len(ancestors) < body["depth"] and body["root"] and body["root"]["id"] != ancestors[-1]["id"]:
            problems.append(f"root {body['root']['id']} is not the last ancestor {ancestors[-1]['id']}")
    else:
        if body["parent_id"] is not None:
            problems.append("a parent but no ancestors")
        if body["root"] and body["root"]["id"] != model_id:
            problems.append("no ancestors but the root is another model")
    if len({a["id"] for a in ancestors}) != len(ancestors) or model_id in {a["id"] for a in ancestors}:
        problems.append("an ancestor repeats")
    seen: list[str] = []

    def walk(children: list[dict[str, Any]]) -> None:
        for child in children:
            seen.append(child["id"])
            walk(child["children"])

    walk(body["descendants"])
    if len(seen) != len(set(seen)) or model_id in seen:
        problems.append("a descendant repeats")
    if len(seen) != body["descendant_count"]:
        problems.append(f"{len(seen)} nested descendants but descendant_count {body['descendant_count']}")
    if set(seen) & {a["id"] for a in ancestors}:
        problems.append("a model is both ancestor and descendant")
    return problems


def wait_for_job(client: Any, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    """Poll ``GET /api/jobs/{id}`` (a TestClient or an httpx client) until the job ends."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200, response.text
        job = response.json()
        if job["state"] in ("succeeded", "failed"):
            return job
        assert time.monotonic() < deadline, f"job {job_id} still {job['state']} after {timeout} s"
        time.sleep(0.1)
