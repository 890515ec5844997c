"""Each named Cypher query (cypher/*.cypher) against a real Neo4j, on a small known graph.

The graph is written directly (plain parameterised Cypher in this file), so every query
is checked on its own, independently of the service that composes them:

    family f1 (architecture h1)            family f2 (h2)      no family
    r ─┬─ a ─┬─ a1                          s ── t              e (status error)
       │     └─ a2
       └─ b ── b1 ── b11

DERIVED_FROM edges point child -> parent; confidences: a .9, b .8, a1 .7, a2 .6, b1 .5,
b11 .4, t .3.  Declared bases: a -> r (agrees), a1 -> b (disagrees), t -> external
"hf/origin".  Model ids are "id-<name>" so that ids and names are never confused.
"""

from __future__ import annotations

import re

import pytest

from graph.database import Database
from graph.driver import GraphTransaction
from graph.errors import ConstraintViolation
from graph.queries import CYPHER_DIR, available_queries, load_query

ORDER = ["r", "a", "b", "a1", "a2", "b1", "b11", "s", "t", "e"]
PARENT = {"a": "r", "b": "r", "a1": "a", "a2": "a", "b1": "b", "b11": "b1", "t": "s"}
CONFIDENCE = {"a": 0.9, "b": 0.8, "a1": 0.7, "a2": 0.6, "b1": 0.5, "b11": 0.4, "t": 0.3}
FAMILY = {**{n: "f1" for n in ["r", "a", "b", "a1", "a2", "b1", "b11"]}, "s": "f2", "t": "f2"}
# Files of the graph layer (graph/), not of the catalogue.
NOT_CATALOGUE = {"schema"}


def mid(name: str) -> str:
    return f"id-{name}"


def vector(seed: int) -> list[float]:
    import numpy as np

    return [float(x) for x in np.random.default_rng(seed).standard_normal(256)]


@pytest.fixture
def known_graph(neo4j_db: Database) -> None:
    rows = [
        {"id": mid(n), "name": n, "i": i, "sha": f"{i:064x}", "format": "pytorch" if n == "b" else "safetensors",
         "status": "error" if n == "e" else "ok", "hash": "h2" if n in ("s", "t") else "h1",
         "description": "the root" if n == "r" else None,
         "placement": vector(i) if n != "e" else None}
        for i, n in enumerate(ORDER)
    ]
    neo4j_db.write(
        "UNWIND $rows AS row "
        "CREATE (m:Model {id: row.id, name: row.name, sha256: row.sha, format: row.format, status: row.status, "
        "  structureHash: row.hash, backboneKey: row.hash, isAdapter: false, params: 100 + row.i, description: row.description, "
        "  placement: row.placement, createdAt: datetime('2025-01-01T00:00:00Z') + duration({minutes: row.i})}) "
        "CREATE (:Fingerprint {modelId: row.id, sha256: row.sha, data: row.sha, version: 1})-[:OF]->(m)",
        rows=rows,
    )
    neo4j_db.write(
        "UNWIND $fams AS fam CREATE (f:Family {id: fam.id, memberCount: fam.n, version: 1, "
        "  structureHash: fam.hash, createdAt: datetime()})",
        fams=[{"id": "f1", "n": 7, "hash": "h1"}, {"id": "f2", "n": 2, "hash": "h2"}],
    )
    neo4j_db.write(
        "UNWIND $rows AS row MATCH (m:Model {id: row.id}), (f:Family {id: row.family}) CREATE (m)-[:IN_FAMILY]->(f)",
        rows=[{"id": mid(n), "family": f} for n, f in FAMILY.items()],
    )
    neo4j_db.write(
        "UNWIND $rows AS row MATCH (c:Model {id: row.child}), (p:Model {id: row.parent}) "
        "CREATE (c)-[:DERIVED_FROM {confidence: row.conf, distance: row.conf / 10, method: 'mother', "
        "  runId: 'run-0'}]->(p)",
        rows=[{"child": mid(c), "parent": mid(p), "conf": CONFIDENCE[c]} for c, p in PARENT.items()],
    )
    neo4j_db.write(
        "MATCH (a:Model {name: 'a'}), (r:Model {name: 'r'}), (a1:Model {name: 'a1'}), (b:Model {name: 'b'}), "
        "      (t:Model {name: 't'}) "
        "CREATE (a)-[:DECLARED_BASE {relation: 'finetune'}]->(r), (a1)-[:DECLARED_BASE {relation: 'finetune'}]->(b), "
        "       (t)-[:DECLARED_BASE {relation: 'adapter'}]->(:ExternalModel {name: 'hf/origin'})"
    )


def names(rows: list[dict], key: str = "id") -> list[str]:
    return [r[key].removeprefix("id-") for r in rows]


# --------------------------------------------------------------------------- the files themselves


def test_every_query_file_documents_itself_and_its_parameters() -> None:
    for name in available_queries():
        text = (CYPHER_DIR / f"{name}.cypher").read_text()
        assert text.startswith("//"), f"{name}.cypher must start with a // comment"
        if name in NOT_CATALOGUE:
            continue
        header = "\n".join(line for line in text.splitlines() if line.startswith("//"))
        body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("//"))
        assert "Parameters:" in header, f"{name}.cypher: no 'Parameters:' line"
        for param in set(re.findall(r"\$(\w+)", body)):
            assert f"${param}" in header, f"{name}.cypher: ${param} is not documented"
        assert ";" not in body, f"{name}.cypher: one query per file"


def test_every_catalogue_query_is_used_by_the_code() -> None:
    import pathlib

    package = pathlib.Path(__file__).resolve().parents[1] / "heritage"
    source = "\n".join(p.read_text() for p in package.rglob("*.py"))
    for name in set(available_queries()) - NOT_CATALOGUE:
        assert f'"{name}"' in source, f"{name}.cypher is used by no module"


# --------------------------------------------------------------------------- lineage


def test_lineage_ancestors(neo4j_db: Database, known_graph) -> None:
    rows = neo4j_db.read("lineage_ancestors", id=mid("b11"), depth=50)
    assert names(rows) == ["b1", "b", "r"]
    assert [r["generation"] for r in rows] == [1, 2, 3]
    assert [r["confidence"] for r in rows] == [0.4, 0.5, 0.8]  # edge from the generation below
    assert [r["relation"] for r in rows] == ["finetune"] * 3 and [r["weight"] for r in rows] == [None] * 3
    assert names(rows, "childId") == ["b11", "b1", "b"]
    assert names(neo4j_db.read("lineage_ancestors", id=mid("b11"), depth=2)) == ["b1", "b"]
    assert neo4j_db.read("lineage_ancestors", id=mid("r"), depth=5) == []


def test_lineage_descendants(neo4j_db: Database, known_graph) -> None:
    rows = neo4j_db.read("lineage_descendants", id=mid("r"), depth=50)
    assert names(rows) == ["a", "b", "a1", "a2", "b1", "b11"]
    assert {r["id"]: r["parentId"] for r in rows} == {mid(c): mid(PARENT[c]) for c in names(rows)}
    assert [r["generation"] for r in rows] == [1, 1, 2, 2, 2, 3]
    assert {r["relation"] for r in rows} == {"finetune"}  # stored without a relation
    assert names(neo4j_db.read("lineage_descendants", id=mid("r"), depth=1)) == ["a", "b"]
    assert neo4j_db.read("lineage_descendants", id=mid("a1"), depth=3) == []


def test_lineage_root(neo4j_db: Database, known_graph) -> None:
    assert neo4j_db.read("lineage_root", id=mid("b11")) == [{"id": mid("r"), "name": "r", "generations": 3}]
    assert neo4j_db.read("lineage_root", id=mid("r")) == [{"id": mid("r"), "name": "r", "generations": 0}]
    assert neo4j_db.read("lineage_root", id="missing") == []


def test_lineage_path(neo4j_db: Database, known_graph) -> None:
    [row] = neo4j_db.read("lineage_path", a=mid("a2"), b=mid("b11"))
    assert names(row["nodes"]) == ["a2", "a", "r", "b", "b1", "b11"]
    assert row["length"] == 5
    assert [(e["child"], e["parent"]) for e in row["edges"]][:2] == [(mid("a2"), mid("a")), (mid("a"), mid("r"))]
    assert neo4j_db.read("lineage_path", a=mid("a2"), b=mid("t")) == []
    [same] = neo4j_db.read("lineage_path", a=mid("a"), b=mid("a"))
    assert same["length"] == 0


def test_lineage_lowest_common_ancestor(neo4j_db: Database, known_graph) -> None:
    lca = neo4j_db.read("lineage_lowest_common_ancestor", a=mid("a2"), b=mid("b11"))
    assert lca == [{"id": mid("r"), "name": "r", "fromA": 2, "fromB": 3}]
    assert neo4j_db.read("lineage_lowest_common_ancestor", a=mid("a1"), b=mid("a2"))[0]["name"] == "a"
    assert neo4j_db.read("lineage_lowest_common_ancestor", a=mid("a1"), b=mid("a"))[0]["name"] == "a"
    assert neo4j_db.read("lineage_lowest_common_ancestor", a=mid("a1"), b=mid("t")) == []


def test_lineage_siblings(neo4j_db: Database, known_graph) -> None:
    rows = neo4j_db.read("lineage_siblings", id=mid("a1"))
    assert names(rows) == ["a2"] and rows[0]["parentName"] == "a" and rows[0]["confidence"] == 0.6
    assert names(neo4j_db.read("lineage_siblings", id=mid("a"))) == ["b"]
    assert neo4j_db.read("lineage_siblings", id=mid("r")) == []
    assert neo4j_db.read("lineage_siblings", id=mid("b1")) == []


def test_lineage_declared_mismatches(neo4j_db: Database, known_graph) -> None:
    rows = neo4j_db.read("lineage_declared_mismatches", id=None, limit=100)
    assert [(r["name"], r["declaredName"], r["recoveredName"], r["declaredExternal"]) for r in rows] == [
        ("a1", "b", "a", False),
        ("t", "hf/origin", "s", True),
    ]
    assert names(neo4j_db.read("lineage_declared_mismatches", id=mid("t"), limit=100)) == ["t"]
    assert neo4j_db.read("lineage_declared_mismatches", id=mid("a"), limit=100) == []  # declared = recovered
    assert names(neo4j_db.read("lineage_declared_mismatches", id=None, limit=1)) == ["a1"]


def test_declared_bases_of_a_merge_agree_with_its_recovered_parents(neo4j_db: Database, known_graph) -> None:
    """A merge child declares two bases and has both as recovered merge parents: no
    mismatch, although each declared base differs from the other recovered parent; the
    same declarations against a recovered fine-tune edge are a relation mismatch."""
    neo4j_db.write(
        "MATCH (a:Model {name: 'a'}), (b:Model {name: 'b'}), (a2:Model {name: 'a2'})-[r:DERIVED_FROM]->(a) "
        "SET r.relation = 'merge', r.weight = 0.6 "
        "CREATE (a2)-[:DERIVED_FROM {confidence: 0.5, relation: 'merge', weight: 0.4}]->(b), "
        "       (a2)-[:DECLARED_BASE {relation: 'merge'}]->(a), (a2)-[:DECLARED_BASE {relation: 'merge'}]->(b)")
    assert neo4j_db.read("lineage_declared_mismatches", id=mid("a2"), limit=100) == []
    [row] = neo4j_db.read("family_genealogy", id="f1")
    merge = [e for e in row["edges"] if e["child"] == mid("a2")]
    assert sorted((e["parent"], e["relation"], e["weight"]) for e in merge) == [
        (mid("a"), "merge", 0.6), (mid("b"), "merge", 0.4)]
    neo4j_db.write("MATCH (:Model {name: 'a2'})-[r:DERIVED_FROM]->(:Model {name: 'a'}) "
                   "SET r.relation = 'finetune', r.weight = null")
    [row] = neo4j_db.read("lineage_declared_mismatches", id=mid("a2"), limit=100)
    assert (row["declaredName"], row["reason"], row["relationToDeclared"]) == ("a", "relation", "finetune")


def test_lineage_declared_mismatches_compares_a_declared_merge_with_all_its_parents(neo4j_db: Database,
                                                                                     known_graph) -> None:
    """a2 becomes a merge of a (0.6) and b (0.4). A merge declaration agrees only when the
    declared bases are exactly the recovered parents; one row per model either way."""
    neo4j_db.write("MATCH (a2:Model {name: 'a2'})-[r:DERIVED_FROM]->(:Model {name: 'a'}) "
                   "SET r.relation = 'merge', r.weight = 0.6 "
                   "WITH a2 MATCH (b:Model {name: 'b'}) "
                   "CREATE (a2)-[:DERIVED_FROM {relation: 'merge', weight: 0.4, confidence: 0.6}]->(b)")

    def declare(bases: list[str], relation: str | None) -> list[tuple]:
        neo4j_db.write("MATCH (:Model {name: 'a2'})-[d:DECLARED_BASE]->() DELETE d")
        neo4j_db.write("MATCH (a2:Model {name: 'a2'}) UNWIND $bases AS base "
                       "OPTIONAL MATCH (m:Model {name: base}) "
                       "CALL (a2, m, base) { WITH a2, m WHERE m IS NOT NULL "
                       "  CREATE (a2)-[:DECLARED_BASE {relation: $relation}]->(m) } "
                       "CALL (a2, m, base) { WITH a2, m, base WHERE m IS NULL "
                       "  MERGE (x:ExternalModel {name: base}) CREATE (a2)-[:DECLARED_BASE {relation: $relation}]->(x) }",
                       bases=bases, relation=relation)
        return [(r["reason"], r["declaredName"], r["relationToDeclared"], [b["name"] for b in r["declaredBases"]],
                 [(p["name"], p["relation"]) for p in r["recoveredParents"]])
                for r in neo4j_db.read("lineage_declared_mismatches", id=None, limit=1000) if r["name"] == "a2"]

    both = [("a", "merge"), ("b", "merge")]
    assert declare(["a", "b"], "merge") == []
    assert declare(["b", "a"], None) == []  # several bases: a merge declaration, order aside
    assert declare(["a", "b1"], "merge") == [("parent", "b1", None, ["a", "b1"], both)]
    assert declare(["a"], "merge") == [("parent", "a", "merge", ["a"], both)]  # b was not declared
    assert declare(["a", "hf/elsewhere"], "merge") == [("parent", "hf/elsewhere", None, ["a", "hf/elsewhere"], both)]
    assert declare(["a"], "finetune") == [("relation", "a", "merge", ["a"], both)]  # a merge, declared a fine-tune
    assert declare(["a"], None) == []  # no relation declared: a is a parent
    neo4j_db.write("MATCH (:Model {name: 'a2'})-[r:DERIVED_FROM]->(:Model {name: 'b'}) DELETE r "
                   "WITH 1 AS x MATCH (:Model {name: 'a2'})-[r:DERIVED_FROM]->() SET r.relation = 'finetune', r.weight = null")
    assert declare(["a", "b"], "merge") == [("parent", "b", None, ["a", "b"], [("a", "finetune")])]
    rows = neo4j_db.read("lineage_declared_mismatches", id=None, limit=1000)
    assert len({r["id"] for r in rows}) == len(rows)  # one row per model


# --------------------------------------------------------------------------- models


def test_model_get_find_and_exists(neo4j_db: Database, known_graph) -> None:
    [row] = neo4j_db.read("model_get", id=mid("a1"))
    assert row["model"]["name"] == "a1" and row["familyId"] == "f1"
    assert row["parentId"] == mid("a") and row["confidence"] == 0.7
    assert row["declaredBaseId"] == mid("b") and "placement" not in row["model"]
    assert neo4j_db.read("model_get", id="a1") == []  # by id only
    assert neo4j_db.read("model_find", ref="a1")[0]["model"]["id"] == mid("a1")
    assert neo4j_db.read("model_find", ref=mid("a1"))[0]["model"]["name"] == "a1"
    assert neo4j_db.read("model_find", ref="nope") == []
    assert neo4j_db.read("model_exists", ids=[mid("r"), "nope"]) == [{"id": mid("r"), "exists": True},
                                                                  {"id": "nope", "exists": False}]


def test_model_list_filters_and_pages(neo4j_db: Database, known_graph) -> None:
    def page(**params):
        values = {"q": None, "familyId": None, "format": None, "status": None, "skip": 0, "limit": 100}
        values.update(params)
        [row] = neo4j_db.read("model_list", **values)
        return row["total"], [item["model"]["name"] for item in row["items"]]

    total, listed = page()
    assert total == 10 and listed == list(reversed(ORDER))  # newest first
    assert page(familyId="f2") == (2, ["t", "s"])
    assert page(format="pytorch") == (1, ["b"])
    assert page(status="error") == (1, ["e"])
    assert page(q="B1") == (2, ["b11", "b1"])
    assert page(q="ROOT") == (1, ["r"])  # description
    assert page(familyId="f1", skip=2, limit=3) == (7, ["a2", "a1", "b"])
    [row] = neo4j_db.read("model_list", q=None, familyId="f1", format=None, status=None, skip=0, limit=1)
    assert row["items"][0]["parentId"] == mid("b1") and row["items"][0]["familyId"] == "f1"


def test_model_lookups_by_sha_name_and_family(neo4j_db: Database, known_graph) -> None:
    sha = f"{ORDER.index('a'):064x}"
    assert neo4j_db.read("model_ids_by_sha256", sha256s=[sha, "0" * 63 + "f"]) == [
        {"sha256": sha, "id": mid("a"), "name": "a"}]
    assert names(neo4j_db.read("model_ids_by_name", names=["s", "zz"])) == ["s"]
    assert neo4j_db.read("model_families", ids=[mid("t"), mid("e")]) == [{"id": mid("t"), "familyId": "f2"}]
    fps = neo4j_db.read("model_fingerprints", ids=[mid("r")])
    assert fps[0]["id"] == mid("r") and fps[0]["version"] == 1


def test_model_lock_placement(neo4j_db: Database, known_graph) -> None:
    rows = neo4j_db.write("model_lock_placement", ids=sorted([mid("t"), mid("e"), "not-yet-created"]))
    assert sorted((r["id"], r["familyId"]) for r in rows) == [(mid("e"), None), (mid("t"), "f2")]
    assert neo4j_db.read("MATCH (m:Model {name: 't'}) RETURN m.placedAt IS NOT NULL AS locked") == [{"locked": True}]


def test_model_unplaced_and_keys_all(neo4j_db: Database, known_graph) -> None:
    assert neo4j_db.read("model_unplaced") == []
    neo4j_db.write("MATCH (m:Model {name: 'b11'})-[r:IN_FAMILY]->() DELETE r")
    assert names(neo4j_db.read("model_unplaced")) == ["b11"]
    assert len(neo4j_db.read("model_keys_all")) == 9  # status ok only


def test_model_create_with_fingerprint_and_declared_bases(neo4j_db: Database, known_graph) -> None:
    row = {"props": {"id": "id-new", "name": "new", "sha256": "f" * 64, "status": "ok", "isAdapter": False,
                     "placement": vector(99)},
           "fingerprint": b"\x00\x01", "fingerprintVersion": 1}
    assert neo4j_db.write("model_create", rows=[row]) == [{"id": "id-new", "name": "new"}]
    [fp] = neo4j_db.read("MATCH (fp:Fingerprint)-[:OF]->(:Model {id: 'id-new'}) RETURN fp.data AS data, fp.sha256 AS sha")
    assert bytes(fp["data"]) == b"\x00\x01" and fp["sha"] == "f" * 64
    with pytest.raises(ConstraintViolation):  # same content again
        neo4j_db.write("model_create", rows=[{**row, "props": {**row["props"], "id": "id-new2", "name": "new2"}}])
    with pytest.raises(ConstraintViolation):  # same name again
        neo4j_db.write("model_create", rows=[{**row, "props": {**row["props"], "id": "id-new3", "sha256": "e" * 64}}])

    linked = neo4j_db.write("model_link_declared_bases", rows=[
        {"id": "id-new", "relation": "finetune", "bases": [{"base": "owner/r", "candidates": ["owner/r", "r"]}]}])
    assert linked == [{"id": "id-new", "base": "owner/r", "baseId": mid("r")}]
    merge = neo4j_db.write("model_link_declared_bases", rows=[
        {"id": "id-new", "relation": "merge", "bases": [{"base": "owner/r", "candidates": ["owner/r", "r"]},
                                                      {"base": "org/other", "candidates": ["org/other", "other"]}]}])
    assert sorted(merge, key=lambda r: r["base"]) == [{"id": "id-new", "base": "org/other", "baseId": None},
                                                      {"id": "id-new", "base": "owner/r", "baseId": mid("r")}]
    assert neo4j_db.read("MATCH (:Model {id: 'id-new'})-[d:DECLARED_BASE]->(x) "
                      "RETURN x.name AS n, d.relation AS relation ORDER BY n") == [
        {"n": "org/other", "relation": "merge"}, {"n": "r", "relation": "merge"}]
    assert neo4j_db.read("model_get", id="id-new")[0]["declaredBaseId"] == mid("r")  # one row, the catalogue base
    linked = neo4j_db.write("model_link_declared_bases", rows=[
        {"id": "id-new", "relation": "adapter", "bases": [{"base": "owner/later", "candidates": ["owner/later", "later"]}]}])
    assert linked == [{"id": "id-new", "base": "owner/later", "baseId": None}]  # replaced: now a placeholder
    neo4j_db.write("catalogue_drop_orphan_placeholders")
    assert neo4j_db.read("MATCH (:Model {id: 'id-new'})-[d:DECLARED_BASE]->(x) RETURN x.name AS n, labels(x) AS l") == [
        {"n": "owner/later", "l": ["ExternalModel"]}]

    # The declared base arrives later: the placeholder's edges move onto it.
    neo4j_db.write("model_create", rows=[{"props": {"id": "id-later", "name": "later", "sha256": "d" * 64,
                                                 "status": "ok", "isAdapter": False},
                                       "fingerprint": b"", "fingerprintVersion": 1}])
    moved = neo4j_db.write("model_resolve_placeholders", ids=["id-later"])
    assert moved == [{"modelId": "id-new", "baseId": "id-later"}]
    assert neo4j_db.write("catalogue_drop_orphan_placeholders") == [{"deleted": 1}]
    assert neo4j_db.read("MATCH (x:ExternalModel) RETURN x.name AS n") == [{"n": "hf/origin"}]


def test_model_update_profile_and_set_status(neo4j_db: Database, known_graph) -> None:
    neo4j_db.write("model_update_profile", id=mid("a2"), props={"params": 7, "format": "hf_folder"},
                   fingerprint=b"\x09", fingerprintVersion=1)
    [row] = neo4j_db.read("model_get", id=mid("a2"))
    assert row["model"]["params"] == 7 and row["model"]["status"] == "ok"
    neo4j_db.write("model_set_status", id=mid("a2"), status="processing", error=None)
    assert neo4j_db.read("model_get", id=mid("a2"))[0]["familyId"] == "f1"  # still placed
    neo4j_db.write("model_set_status", id=mid("a2"), status="error", error="unreadable")
    [row] = neo4j_db.read("model_get", id=mid("a2"))
    assert row["model"]["status"] == "error" and row["model"]["error"] == "unreadable"
    assert row["familyId"] is None and row["parentId"] is None  # out of the genealogy


def test_model_delete(neo4j_db: Database, known_graph) -> None:
    assert neo4j_db.write("model_delete", id=mid("b")) == [{"id": mid("b"), "name": "b"}]
    assert neo4j_db.read("model_get", id=mid("b")) == []
    assert neo4j_db.read("MATCH (f:Fingerprint {modelId: $id}) RETURN f", id=mid("b")) == []
    # a1 declared b: the declaration survives, now pointing at a placeholder named b
    declared = neo4j_db.read("MATCH (:Model {name: 'a1'})-[:DECLARED_BASE]->(x:ExternalModel) RETURN x.name AS n")
    assert declared == [{"n": "b"}]
    assert neo4j_db.write("model_delete", id=mid("b")) == []


# --------------------------------------------------------------------------- placement


def test_placement_queries(neo4j_db: Database, known_graph) -> None:
    assert neo4j_db.read("placement_architecture_size", backboneKey="h1") == [{"models": 8}]  # e included
    assert neo4j_db.read("placement_architecture_size", backboneKey="none") == [{"models": 0}]
    rows = neo4j_db.read("placement_same_structure", backboneKey="h1", exclude=[mid("a")], limit=100)
    assert sorted(names(rows)) == ["a1", "a2", "b", "b1", "b11", "r"]
    assert {r["familyId"] for r in rows} == {"f1"}
    assert len(neo4j_db.read("placement_same_structure", backboneKey="h1", exclude=[], limit=3)) == 3
    neo4j_db.write("CALL db.awaitIndexes(60)")
    near = neo4j_db.read("placement_candidates", vector=vector(ORDER.index("a1")), backboneKey="h1",
                         exclude=[], k=20, limit=3)
    assert names(near)[0] == "a1" and len(near) == 3 and near[0]["score"] == pytest.approx(1.0)
    import numpy as np

    second = ORDER.index(names(near)[1])
    d = np.linalg.norm(np.array(vector(ORDER.index("a1"))) - np.array(vector(second)))
    # what placement.py assumes (approximately: the index quantizes vectors)
    assert near[1]["score"] == pytest.approx(1 / (1 + d**2), rel=2e-2)
    rows = neo4j_db.read("placement_same_structure", backboneKey="h2", exclude=[], limit=5)
    assert rows[0]["placement"] == pytest.approx(vector(ORDER.index("s")))
    far = neo4j_db.read("placement_candidates", vector=vector(ORDER.index("a1")), backboneKey="h2",
                        exclude=[mid("s")], k=20, limit=3)
    assert names(far) == ["t"]
    assert names(neo4j_db.read("placement_models_by_name", names=["b", "e", "x"])) == ["b"]  # e has no family
    roots = neo4j_db.read("placement_family_roots")
    assert [(r["familyId"], r["rootId"], r["size"]) for r in roots] == [("f1", mid("r"), 7), ("f2", mid("s"), 2)]


# --------------------------------------------------------------------------- families


def test_family_reads(neo4j_db: Database, known_graph) -> None:
    listed = neo4j_db.read("family_list", skip=0, limit=10)
    assert [(r["family"]["id"], r["members"], names(r["roots"])) for r in listed] == [
        ("f1", 7, ["r"]), ("f2", 2, ["s"])]
    assert [r["edges"] for r in listed] == [6, 1]
    assert listed[0]["meanConfidence"] == pytest.approx(sum(CONFIDENCE[c] for c in ORDER[1:7]) / 6)
    assert listed[1]["meanConfidence"] == pytest.approx(0.3)
    assert [r["family"]["id"] for r in neo4j_db.read("family_list", skip=1, limit=10)] == ["f2"]
    [one] = neo4j_db.read("family_get", id="f2")
    assert one["members"] == 2 and one["family"]["structureHash"] == "h2"
    assert one["edges"] == 1 and one["meanConfidence"] == pytest.approx(0.3)
    assert neo4j_db.read("family_get", id="nope") == []
    models = neo4j_db.read("family_models", id="f1")
    assert [m["model"]["name"] for m in models] == ORDER[:7]
    assert {m["model"]["name"]: m["confidence"] for m in models if m["parentId"]} == {
        c: CONFIDENCE[c] for c in ORDER[1:7]}
    [keys] = neo4j_db.read("family_member_keys", id="f2")
    assert keys["version"] == 1 and [m["name"] for m in keys["members"]] == ["s", "t"]


def test_family_genealogy(neo4j_db: Database, known_graph) -> None:
    [row] = neo4j_db.read("family_genealogy", id="f1")
    assert row["family"]["id"] == "f1" and len(row["models"]) == 7
    assert {(e["child"], e["parent"], e["confidence"]) for e in row["edges"]} == {
        (mid(c), mid(PARENT[c]), CONFIDENCE[c]) for c in ORDER[1:7]}
    assert {(e["relation"], e["weight"]) for e in row["edges"]} == {("finetune", None)}
    assert neo4j_db.read("family_genealogy", id="nope") == []
    neo4j_db.write("CREATE (:Family {id: 'empty'})")
    [empty] = neo4j_db.read("family_genealogy", id="empty")
    assert empty["models"] == [] and empty["edges"] == []
    [counted] = neo4j_db.read("family_get", id="empty")
    assert counted["edges"] == 0 and counted["meanConfidence"] is None


def test_family_rewrite_steps_and_rollback(neo4j_db: Database, known_graph) -> None:
    def rewrite(tx: GraphTransaction, fail: bool = False) -> None:
        locked = tx.run("family_lock", ids=["f2", "f3"])
        assert {(r["id"], r["version"], tuple(sorted(r["members"]))) for r in locked} == {
            ("f2", 1, (mid("s"), mid("t"))), ("f3", 0, ())}
        # move t into a new family f3 with b11 as its child; s stays alone in f2
        tx.run("family_clear_trees", familyIds=["f2", "f3"], members=[mid("s"), mid("t"), mid("b11")])
        written = tx.run("family_write_trees", families=[
            {"id": "f2", "members": [mid("s")], "edges": []},
            {"id": "f3", "members": [mid("t"), mid("b11")],
             "edges": [{"parent": mid("t"), "child": mid("b11"), "confidence": 0.2, "distance": 0.1,
                        "method": "mother"}]},
        ], **{"lambda": 0.3}, runId="run-1")
        assert {(r["id"], r["memberships"], r["edges"]) for r in written} == {("f2", 1, 0), ("f3", 2, 1)}
        if fail:
            raise RuntimeError("stop before the statistics")
        stats = tx.run("family_update_stats", families=[{"id": "f2", "stats": {"metric": "l2"}},
                                                        {"id": "f3", "stats": {"metric": "l2"}}])
        assert {(r["id"], r["memberCount"], r["version"]) for r in stats} == {("f2", 1, 2), ("f3", 2, 1)}

    everything = "MATCH (c)-[r:DERIVED_FROM|IN_FAMILY]->(p) RETURN c.id AS c, type(r) AS t, p.id AS p ORDER BY c, t"
    before = neo4j_db.read(everything)
    with pytest.raises(RuntimeError):
        neo4j_db.write_transaction(lambda tx: rewrite(tx, fail=True))
    after = neo4j_db.read(everything)
    assert after == before and neo4j_db.read("MATCH (f:Family {id: 'f3'}) RETURN f") == []

    neo4j_db.write_transaction(rewrite)
    assert neo4j_db.read("lineage_ancestors", id=mid("b11"), depth=5)[0]["id"] == mid("t")
    assert neo4j_db.read("model_get", id=mid("b1"))[0]["familyId"] == "f1"
    assert neo4j_db.read("MATCH (f:Family {id: 'f1'}) RETURN f.memberCount AS n")[0]["n"] == 7  # not rewritten yet
    assert neo4j_db.write("family_delete_empty", ids=["f1", "f2"]) == [{"deleted": 0}]
    neo4j_db.write("MATCH (m:Model)-[r:IN_FAMILY]->(:Family {id: 'f2'}) DELETE r")
    assert neo4j_db.write("family_delete_empty", ids=None) == [{"deleted": 1}]


def test_catalogue_memberships(neo4j_db: Database, known_graph) -> None:
    rows = neo4j_db.read("catalogue_family_memberships")
    memberships = {r["id"]: sorted(names([{"id": m} for m in r["members"]])) for r in rows}
    assert memberships == {"f1": sorted(ORDER[:7]), "f2": ["s", "t"]}
    assert all(isinstance(r["version"], int) for r in rows)


# --------------------------------------------------------------------------- statistics


def test_catalogue_statistics(neo4j_db: Database, known_graph) -> None:
    [stats] = neo4j_db.read("catalogue_statistics")
    assert stats["models"] == 10 and stats["adapters"] == 0
    assert {x["status"]: x["count"] for x in stats["modelsByStatus"]} == {"ok": 9, "error": 1}
    assert stats["families"] == 2 and stats["staleFamilies"] == 0 and stats["emptyFamilies"] == 0
    assert stats["derivedEdges"] == 7 and stats["declaredEdges"] == 3 and stats["externalModels"] == 1
    assert stats["fingerprints"] == 10 and stats["unplacedModels"] == 0 and stats["jobsByState"] == []
    neo4j_db.write("MATCH (f:Family {id: 'f2'}) SET f.memberCount = 5")
    assert neo4j_db.read("catalogue_statistics")[0]["staleFamilies"] == 1
    assert neo4j_db.read("catalogue_family_sizes") == [{"size": 2, "families": 1}, {"size": 7, "families": 1}]


# --------------------------------------------------------------------------- jobs


def test_job_queries(neo4j_db) -> None:
    [created] = neo4j_db.write("job_create", id="j1", kind="recluster", message="waiting", owner="host:1:x")
    assert created["job"]["state"] == "queued" and created["job"]["progress"] == 0.0
    neo4j_db.write("job_create", id="j2", kind="import", message=None, owner="host:2:y")
    [updated] = neo4j_db.write("job_update", id="j1", state="running", progress=0.5, message=None, result=None)
    assert updated["job"]["state"] == "running" and updated["job"]["message"] == "waiting"
    assert neo4j_db.write("job_update", id="none", state=None, progress=None, message=None, result=None) == []
    assert neo4j_db.read("job_get", id="j2")[0]["job"]["kind"] == "import"
    assert [r["job"]["id"] for r in neo4j_db.read("job_list", state=None, limit=10)] == ["j2", "j1"]
    assert [r["job"]["id"] for r in neo4j_db.read("job_list", state="running", limit=10)] == ["j1"]
    assert sorted(r["id"] for r in neo4j_db.read("job_active")) == ["j1", "j2"]
    assert neo4j_db.write("job_fail", ids=["j1"], message="gone") == [{"id": "j1"}]
    assert neo4j_db.read("job_get", id="j1")[0]["job"]["state"] == "failed"
    assert neo4j_db.write("job_fail", ids=["j1"], message="again") == []  # only active jobs


def test_queries_load_by_name() -> None:
    assert load_query("lineage_ancestors").startswith("//")
