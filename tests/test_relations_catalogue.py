"""Typed relations stored in Neo4j and shown everywhere: reads, lineage of a DAG with a
merge, declared-vs-recovered mismatches, the REST API and the CLI."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from graph import Database
from heritage.catalogue import Catalogue
from heritage.cli import main

SUBSET = ["root.safetensors", "cls-a", "cls-b", "merge-linear", "root-bf16", "head-only", "student", "adapter"]


@pytest.fixture
def stored(catalogue: Catalogue, conventions_zoo, tmp_path: Path) -> dict[str, str]:
    """The subset imported; head-only carries a model card that declares a plain fine-tune
    of the root (it is head-only training: a relation mismatch). Returns name -> id."""
    models, _ = conventions_zoo
    head_only = tmp_path / "head-only"
    shutil.copytree(models / "head-only", head_only)
    (head_only / "README.md").write_text("---\nbase_model: root\nbase_model_relation: finetune\n---\n# head only\n")
    entries = [(Path(e).name.removesuffix(".safetensors"), head_only if e == "head-only" else models / e)
               for e in SUBSET]
    summary = catalogue.import_many(entries)
    assert summary.failed == 0, [r.error for r in summary.results if r.error]
    return {r.name: r.model_id for r in summary.results}


def test_genealogy_stores_relations_weights_and_merge_parents(catalogue: Catalogue, stored) -> None:
    model = catalogue.get_model(stored["merge-linear"])
    genealogy = catalogue.genealogy(model["family_id"])
    assert genealogy.validation == (True, [])
    assert len(genealogy.family["roots"]) == 1 and genealogy.family["roots"][0]["name"] == "root"
    edges = {(e.parent_name, e.child_name): e for e in genealogy.edges}
    assert {k: e.relation for k, e in edges.items()} == {
        ("root", "cls-a"): "finetune", ("root", "cls-b"): "finetune",
        ("cls-a", "merge-linear"): "merge", ("cls-b", "merge-linear"): "merge",
        ("root", "root-bf16"): "conversion", ("root", "head-only"): "head_only",
        ("root", "student"): "distillation", ("root", "adapter"): "adapter"}
    assert edges[("cls-b", "merge-linear")].weight == pytest.approx(0.7, abs=0.03)
    assert all(e.weight is None for e in genealogy.edges if e.relation != "merge")
    assert all(0 < e.aligned <= 1 for e in genealogy.edges if e.relation != "adapter")
    assert model["parent_name"] == "cls-b" and model["relation"] == "merge"
    assert [(p["name"], p["relation"]) for p in model["parents"]] == [("cls-b", "merge"), ("cls-a", "merge")]
    node = genealogy.node("merge-linear")
    assert node.parent_ids == [stored["cls-b"], stored["cls-a"]] and genealogy.parent_of("merge-linear") == "cls-b"


def test_lineage_follows_every_relation_through_a_merge(catalogue: Catalogue, stored) -> None:
    lineage = catalogue.lineage(stored["merge-linear"], depth=5)
    assert [(a.name, a.generation, a.relation) for a in lineage.ancestors] == [
        ("cls-b", 1, "merge"), ("cls-a", 1, "merge"), ("root", 2, "finetune")]
    below = catalogue.lineage(stored["root"], depth=5)
    names = []

    def walk(nodes):
        for n in nodes:
            names.append((n.name, n.relation))
            walk(n.children)

    walk(below.descendants)
    assert sorted(names) == sorted([("adapter", "adapter"), ("cls-a", "finetune"), ("cls-b", "finetune"),
                                    ("head-only", "head_only"), ("merge-linear", "merge"),
                                    ("root-bf16", "conversion"), ("student", "distillation")])
    assert below.descendant_count == 7
    path = catalogue.path(stored["merge-linear"], stored["student"])
    assert [e["relation"] for e in path["edges"]] == ["merge", "finetune", "distillation"]


def test_declared_relation_mismatch_is_listed(catalogue: Catalogue, stored, neo4j_db: Database) -> None:
    found = {m["name"]: m for m in catalogue.declared_mismatches()}
    assert set(found) == {"head-only"}  # the adapter declares its base and relation rightly
    assert found["head-only"]["reason"] == "relation"
    assert found["head-only"]["relation"] == "finetune" and found["head-only"]["relation_to_declared"] == "head_only"
    rows = neo4j_db.read("lineage_declared_mismatches", id=None, limit=100)
    assert [r["name"] for r in rows] == ["head-only"]


def test_edges_stored_without_relation_read_as_finetune(catalogue: Catalogue, stored, neo4j_db: Database) -> None:
    neo4j_db.write("MATCH (:Model {name: 'cls-a'})-[r:DERIVED_FROM]->() REMOVE r.relation")
    model = catalogue.get_model(stored["cls-a"])
    assert model["relation"] == "finetune" and model["parents"][0]["relation"] == "finetune"
    edges = catalogue.genealogy(model["family_id"]).edges
    assert next(e for e in edges if e.child == stored["cls-a"]).relation == "finetune"


def test_api_and_cli_show_relations(api_client, catalogue: Catalogue, stored, capsys) -> None:
    family = catalogue.get_model(stored["root"])["family_id"]
    body = api_client.get(f"/api/families/{family}/genealogy").json()
    assert {e["relation"] for e in body["edges"]} >= {"merge", "conversion", "head_only", "distillation", "adapter"}
    merge = api_client.get(f"/api/models/{stored['merge-linear']}").json()
    assert [(p["name"], p["relation"]) for p in merge["parents"]] == [("cls-b", "merge"), ("cls-a", "merge")]
    assert merge["weight"] == pytest.approx(0.7, abs=0.03)
    lineage = api_client.get(f"/api/models/{stored['merge-linear']}/lineage").json()
    assert {a["relation"] for a in lineage["ancestors"]} == {"merge", "finetune"}
    mismatches = api_client.get("/api/lineage/declared-mismatches").json()
    assert [(m["name"], m["reason"]) for m in mismatches] == [("head-only", "relation")]
    assert main(["tree", "root"]) == 0
    out = capsys.readouterr().out
    assert "merge-linear  (merge, weight 0.70" in out and "head-only  (head_only" in out
    assert main(["mismatches"]) == 0
    assert "head-only" in capsys.readouterr().out
    assert main(["lineage", "merge-linear"]) == 0
    assert "(parent of merge-linear, merge, weight" in capsys.readouterr().out
