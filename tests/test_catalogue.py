"""The catalogue service against a real Neo4j: import, placement, trees, maintenance, jobs.

Models are small synthetic families (heritage.evaluation.synthetic) unless a test says otherwise;
the real fine-tuned zoo is used by the accuracy test at the end.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from graph.database import Database
from heritage.catalogue import (
    Catalogue,
    CatalogueConfig,
    FamilyNotFound,
    ModelNotFound,
    NameTakenError,
    PathNotAllowedError,
    collect_entries,
)
from heritage.catalogue import commit, importer, jobs
from heritage.catalogue.paths import check_import_path
from heritage.catalogue.reads import validate_depth
from heritage.evaluation.synthetic import family_zoo, finetune, random_root

# --------------------------------------------------------------------------- helpers


def stored_edges(db: Database) -> set[tuple[str, str]]:
    """(parent name, child name) of every stored DERIVED_FROM edge, read through Cypher."""
    rows = db.read("MATCH (c:Model)-[:DERIVED_FROM]->(p:Model) RETURN p.name AS parent, c.name AS child")
    return {(r["parent"], r["child"]) for r in rows}


def stored_families(db: Database) -> list[set[str]]:
    rows = db.read("MATCH (m:Model)-[:IN_FAMILY]->(f:Family) RETURN f.id AS f, collect(m.name) AS names")
    return sorted((set(r["names"]) for r in rows), key=lambda s: sorted(s))


def snapshot(db: Database) -> dict:
    """Everything an idempotent operation must leave unchanged."""
    return {
        "models": db.read("MATCH (m:Model) RETURN m.id AS id, m.name AS name, m.sha256 AS sha ORDER BY id"),
        "fingerprints": db.read("MATCH (f:Fingerprint) RETURN count(f) AS n")[0]["n"],
        "edges": db.read("MATCH (c:Model)-[r:DERIVED_FROM]->(p:Model) "
                         "RETURN c.id AS c, p.id AS p, r.runId AS run, r.confidence AS conf ORDER BY c"),
        "families": db.read("MATCH (f:Family) RETURN f.id AS id, f.version AS version, "
                            "f.memberCount AS members ORDER BY id"),
    }


def assert_consistent(catalogue: Catalogue) -> None:
    """No unplaced models, no stale or empty families, every tree valid."""
    stats = catalogue.statistics()
    assert stats.unplaced_models == 0
    assert stats.stale_families == 0
    assert stats.empty_families == 0
    for family in catalogue.list_families():
        genealogy = catalogue.genealogy(family["id"])
        assert genealogy.validation.valid, genealogy.validation.issues
        assert family["member_count"] == len(genealogy.nodes)


def write_model(path: Path, weights: dict[str, np.ndarray]) -> Path:
    from safetensors.numpy import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(weights, str(path))
    return path


@pytest.fixture
def imported(catalogue: Catalogue, synthetic_models):
    summary = catalogue.import_many(collect_entries([synthetic_models.directory]))
    assert summary.failed == 0, [r.error for r in summary.results if r.error]
    return summary


def model_id(db: Database, name: str) -> str:
    return db.read("MATCH (m:Model {name: $name}) RETURN m.id AS id", name=name)[0]["id"]


# --------------------------------------------------------------------------- import


def test_import_two_families_matches_truth(neo4j_db: Database,
                                           catalogue: Catalogue, synthetic_models, imported) -> None:
    assert imported.created == len(synthetic_models.parents)
    assert stored_families(neo4j_db) == sorted((set(f) for f in synthetic_models.families), key=lambda s: sorted(s))
    correct = len(stored_edges(neo4j_db) & synthetic_models.edges)
    assert correct >= 0.9 * len(synthetic_models.edges), stored_edges(neo4j_db) ^ synthetic_models.edges
    assert all(r.family_id for r in imported.results)
    assert set(imported.timings) >= {"hash", "fingerprint", "neo4j"}
    assert_consistent(catalogue)


def test_import_again_changes_nothing(neo4j_db: Database,
                                      catalogue: Catalogue, synthetic_models, imported) -> None:
    before = snapshot(neo4j_db)
    again = catalogue.import_many(collect_entries([synthetic_models.directory]))
    assert again.created == 0 and again.failed == 0
    assert again.duplicates == len(synthetic_models.parents)
    assert {r.model_id for r in again.results} == {r.model_id for r in imported.results}
    assert snapshot(neo4j_db) == before
    # and one at a time: a duplicate is reported with the existing id, nothing written
    first = next(r for r in imported.results)
    result = catalogue.import_model(first.path, name="another-name")
    assert result.status == "duplicate" and result.model_id == first.model_id
    assert result.family_id == first.family_id
    assert snapshot(neo4j_db) == before


def test_bad_files_are_reported_and_nothing_of_them_is_written(neo4j_db: Database,
                                                               catalogue: Catalogue, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    family_zoo(3, prefix="g", children=2, grandchildren=0).write(folder)
    (folder / "truncated.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    (folder / "notes.txt").write_text("not a model")
    weights = random_root(np.random.default_rng(5))
    weights[next(iter(weights))][0, 0] = np.nan
    write_model(folder / "has-nan.safetensors", weights)
    (folder / "pickle.pt").write_bytes(b"\x80\x04\x95" + b"\x00" * 64)

    summary = catalogue.import_many(collect_entries([folder]))
    by_name = {r.name: r for r in summary.results}
    bad = {"truncated", "notes.txt", "has-nan", "pickle"}
    assert {n for n, r in by_name.items() if r.status == "failed"} == bad
    assert all(by_name[n].error for n in bad)
    assert summary.created == 3
    names = {r["name"] for r in neo4j_db.read("MATCH (m:Model) RETURN m.name AS name")}
    assert names == {"g0", "g1", "g2"}
    assert neo4j_db.read("MATCH (f:Fingerprint) RETURN count(f) AS n")[0]["n"] == 3
    assert_consistent(catalogue)


def test_import_model_of_a_bad_file_writes_nothing(neo4j_db: Database,
                                                   catalogue: Catalogue, tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"garbage" * 10)
    result = catalogue.import_model(bad)
    assert result.status == "failed" and result.error and result.model_id is None
    assert neo4j_db.read("MATCH (n) WHERE NOT n:Job RETURN count(n) AS n")[0]["n"] == 0


def test_duplicate_name_is_a_clear_error(neo4j_db: Database, catalogue: Catalogue, tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    first = write_model(tmp_path / "one" / "shared.safetensors", random_root(rng))
    other = write_model(tmp_path / "two" / "shared.safetensors", random_root(rng))
    created = catalogue.import_model(first)
    assert created.status == "created"
    before = snapshot(neo4j_db)
    with pytest.raises(NameTakenError, match="'shared' is already used") as excinfo:
        catalogue.import_model(other)
    assert excinfo.value.existing_id == created.model_id
    assert snapshot(neo4j_db) == before
    # in a batch the same conflict is a failed entry, not an exception
    summary = catalogue.import_many([("shared", other)])
    assert summary.results[0].status == "failed" and "already used" in summary.results[0].error
    assert snapshot(neo4j_db) == before


def test_single_imports_build_the_tree_incrementally(neo4j_db: Database,
                                                     catalogue: Catalogue, synthetic_models) -> None:
    entries = collect_entries([synthetic_models.directory])
    results = [catalogue.import_model(path) for _, path in entries]
    assert {r.status for r in results} == {"created"}
    assert len({r.family_id for r in results}) == 2
    correct = len(stored_edges(neo4j_db) & synthetic_models.edges)
    assert correct >= 0.9 * len(synthetic_models.edges)
    assert_consistent(catalogue)


def test_placement_through_the_vector_index(neo4j_db: Database, synthetic_models) -> None:
    """With a tiny exact-comparison limit every placement goes through the vector index."""
    config = CatalogueConfig(exact_placement_limit=1, placement_candidates=3)
    catalogue = Catalogue(config, db=neo4j_db)
    for _, path in collect_entries([synthetic_models.directory]):
        assert catalogue.import_model(path).status == "created"
    assert len(stored_families(neo4j_db)) == 2
    assert len(stored_edges(neo4j_db) & synthetic_models.edges) >= 0.9 * len(synthetic_models.edges)
    assert_consistent(catalogue)


def test_import_resumes_after_an_interruption(neo4j_db: Database,
                                              catalogue: Catalogue, synthetic_models, monkeypatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    entries = collect_entries([synthetic_models.directory])
    with monkeypatch.context() as patch:
        patch.setattr(importer, "place_unplaced", interrupted)
        with pytest.raises(KeyboardInterrupt):
            catalogue.import_many(entries)
    assert catalogue.statistics().unplaced_models == len(entries)  # stored, not yet placed
    resumed = catalogue.import_many(entries)
    assert resumed.duplicates == len(entries) and resumed.created == 0
    assert len(stored_edges(neo4j_db) & synthetic_models.edges) >= 0.9 * len(synthetic_models.edges)
    assert_consistent(catalogue)


def test_concurrent_imports_from_threads(neo4j_db: Database, catalogue: Catalogue, synthetic_models) -> None:
    entries = collect_entries([synthetic_models.directory])
    results, errors = [], []

    def work(chunk):
        try:
            results.extend(catalogue.import_model(path) for _, path in chunk)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(entries[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == len(entries) and {r.status for r in results} == {"created"}
    assert len(stored_edges(neo4j_db) & synthetic_models.edges) >= 0.9 * len(synthetic_models.edges)
    assert_consistent(catalogue)


def test_adapter_without_stored_base_stands_alone_then_recluster_keeps_it(catalogue, tmp_path) -> None:
    folder = tmp_path / "lonely-adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text(json.dumps({
        "peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["query"],
        "base_model_name_or_path": "somebody/unknown-base"}))
    rng = np.random.default_rng(3)
    prefix = "base_model.model.encoder.layer.0.attention.self.query"
    write_model(folder / "adapter_model.safetensors", {
        f"{prefix}.lora_A.weight": rng.standard_normal((2, 64)).astype(np.float32),
        f"{prefix}.lora_B.weight": rng.standard_normal((64, 2)).astype(np.float32),
    })
    result = catalogue.import_model(folder)
    assert result.status == "created", result.error
    model = catalogue.get_model(result.model_id)
    assert model["is_adapter"] and model["declared_base"] == "somebody/unknown-base"
    assert model["declared_base_id"] is None
    mismatches = catalogue.declared_mismatches()
    assert [m["declared_external"] for m in mismatches] == [True]
    catalogue.recluster()
    assert_consistent(catalogue)


# --------------------------------------------------------------------------- atomic tree writes


def test_tree_rebuild_is_atomic(neo4j_db: Database, catalogue: Catalogue, imported, monkeypatch) -> None:
    family_id = imported.results[0].family_id
    before = snapshot(neo4j_db)
    seen_mid_write = {}

    def fail_half_way(tx, plans):
        # By now the old edges were deleted and the new ones written in this transaction.
        seen_mid_write["edges"] = tx.run(
            "MATCH (:Model)-[r:DERIVED_FROM]->(:Model) RETURN collect(r.runId) AS runs")[0]["runs"]
        raise RuntimeError("simulated failure in the middle of a tree rewrite")

    monkeypatch.setattr(commit, "update_stats", fail_half_way)
    with pytest.raises(RuntimeError, match="simulated failure"):
        catalogue.rebuild_family(family_id)
    old_runs = {e["run"] for e in before["edges"]}
    assert set(seen_mid_write["edges"]) - old_runs  # the failure really happened half-way
    assert snapshot(neo4j_db) == before  # ... and the old tree is intact
    monkeypatch.undo()
    catalogue.rebuild_family(family_id)
    after = snapshot(neo4j_db)
    assert {(e["c"], e["p"]) for e in after["edges"]} == {(e["c"], e["p"]) for e in before["edges"]}
    assert {e["run"] for e in after["edges"]} != old_runs  # rewritten this time


def test_rebuild_of_unknown_family(catalogue: Catalogue) -> None:
    with pytest.raises(FamilyNotFound):
        catalogue.rebuild_family("no-such-family")


# --------------------------------------------------------------------------- maintenance


def test_delete_reattaches_children(neo4j_db: Database,
                                    catalogue: Catalogue, synthetic_models, imported) -> None:
    middle = model_id(neo4j_db, "a1")  # a child of a0 with two children of its own
    family = catalogue.get_model(middle)["family_id"]
    deleted = catalogue.delete_model(middle)
    assert deleted["name"] == "a1" and not deleted["family_deleted"]
    assert sorted(catalogue.get_model(c)["name"] for c in deleted["children"]) == ["a1_1", "a1_2"]
    with pytest.raises(ModelNotFound):
        catalogue.get_model(middle)
    for child in deleted["children"]:
        record = catalogue.get_model(child)
        assert record["family_id"] == family and record["parent_id"] is not None
    assert catalogue.get_family(family)["member_count"] == 9
    assert neo4j_db.read("MATCH (f:Fingerprint {modelId: $id}) RETURN f", id=middle) == []
    assert_consistent(catalogue)


def test_deleting_every_member_removes_the_family(catalogue: Catalogue, tmp_path: Path) -> None:
    family_zoo(7, prefix="d", children=1, grandchildren=0).write(tmp_path)
    summary = catalogue.import_many(collect_entries([tmp_path]))
    family = summary.results[0].family_id
    results = [catalogue.delete_model(r.model_id) for r in summary.results]
    assert [r["family_deleted"] for r in results] == [False, True]
    with pytest.raises(FamilyNotFound):
        catalogue.get_family(family)
    assert catalogue.statistics().families == 0
    with pytest.raises(ModelNotFound):
        catalogue.delete_model(summary.results[0].model_id)


def test_recluster_leaves_no_orphaned_or_stale_families(neo4j_db: Database,
                                                        catalogue: Catalogue, synthetic_models, imported) -> None:
    old_ids = {f["id"] for f in catalogue.list_families()}
    # Damage: a stale member count and an orphaned family, as the seed system left behind.
    neo4j_db.write("MATCH (f:Family) SET f.memberCount = 99")
    neo4j_db.write("CREATE (:Family {id: 'orphan', memberCount: 3, version: 0})")
    assert catalogue.statistics().stale_families == 3
    result = catalogue.recluster()
    assert result["families"] == 2 and result["deleted_families"] == 1 and result["reused_families"] == 2
    assert {f["id"] for f in catalogue.list_families()} == old_ids  # ids survive a recluster
    counts = neo4j_db.read("MATCH (f:Family) RETURN f.memberCount AS stored, "
                           "COUNT { (:Model)-[:IN_FAMILY]->(f) } AS real")
    assert all(r["stored"] == r["real"] for r in counts)
    assert len(stored_edges(neo4j_db) & synthetic_models.edges) >= 0.9 * len(synthetic_models.edges)
    assert_consistent(catalogue)


def _genealogy(db: Database) -> tuple[dict[str, frozenset[str]], set[tuple[str, str, str]]]:
    """Family id -> member names, and (parent, child, relation) of every edge."""
    rows = db.read("MATCH (m:Model)-[:IN_FAMILY]->(f:Family) RETURN f.id AS f, collect(m.name) AS names")
    edges = db.read("MATCH (c:Model)-[r:DERIVED_FROM]->(p:Model) "
                    "RETURN p.name AS parent, c.name AS child, r.relation AS relation")
    return ({r["f"]: frozenset(r["names"]) for r in rows},
            {(r["parent"], r["child"], r["relation"]) for r in edges})


@pytest.fixture
def four_families(catalogue: Catalogue, synthetic_models, tmp_path: Path) -> Path:
    family_zoo(3, prefix="c", children=2, grandchildren=1).write(tmp_path)
    family_zoo(4, prefix="d", children=2, grandchildren=1).write(tmp_path)
    summary = catalogue.import_many(collect_entries([synthetic_models.directory, tmp_path]))
    assert summary.failed == 0 and catalogue.statistics().families == 4
    return tmp_path


def test_recluster_in_several_transactions_writes_what_one_transaction_writes(
        neo4j_db: Database, catalogue: Catalogue, four_families: Path) -> None:
    """A hub-sized genealogy is written group by group: each group of overlapping old and
    new families whole, in its own transaction; the result equals one transaction's."""
    assert catalogue.recluster()["transactions"] == 1
    families, edges = _genealogy(neo4j_db)
    # Damage that ties two families together: a model of one sits in the other's family,
    # plus an orphaned family; the recluster must regroup them in one transaction.
    neo4j_db.write("MATCH (m:Model {name: 'a1'})-[r:IN_FAMILY]->() DELETE r WITH m "
                   "MATCH (:Model {name: 'b1'})-[:IN_FAMILY]->(f:Family) CREATE (m)-[:IN_FAMILY]->(f)")
    neo4j_db.write("CREATE (:Family {id: 'orphan', memberCount: 3, version: 0})")
    one_by_one = Catalogue(CatalogueConfig(recluster_batch=1), db=neo4j_db)
    try:
        result = one_by_one.recluster()
    finally:
        one_by_one.close()
    # a+b together (they overlap), c, d, and the orphan's own deletion.
    assert result["transactions"] == 4 and result["deleted_families"] == 1, result
    assert _genealogy(neo4j_db) == (families, edges)
    assert_consistent(catalogue)


def test_recluster_stopped_between_transactions_leaves_every_family_whole(
        neo4j_db: Database, catalogue: Catalogue, four_families: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from heritage.catalogue import maintenance

    before_families, _ = _genealogy(neo4j_db)
    runs_before = {r["run"] for r in neo4j_db.read("MATCH ()-[r:DERIVED_FROM]->() RETURN DISTINCT r.runId AS run")}
    real, calls = maintenance.commit_plans, []

    def fails_second(tx, plans, **kwargs):
        calls.append([p.family_id for p in plans])
        if len(calls) == 2:
            raise RuntimeError("the process stops here")
        return real(tx, plans, **kwargs)

    monkeypatch.setattr(maintenance, "commit_plans", fails_second)
    one_by_one = Catalogue(CatalogueConfig(recluster_batch=1), db=neo4j_db)
    try:
        with pytest.raises(RuntimeError, match="stops here"):
            one_by_one.recluster()
    finally:
        one_by_one.close()
    # The first group is new, the others still old: every model in one family, every tree whole.
    assert _genealogy(neo4j_db)[0] == before_families
    runs = {r["f"]: r["runs"] for r in neo4j_db.read(
        "MATCH (c:Model)-[r:DERIVED_FROM]->(:Model)-[:IN_FAMILY]->(f:Family) "
        "RETURN f.id AS f, collect(DISTINCT r.runId) AS runs")}
    assert all(len(r) == 1 for r in runs.values())
    assert [f for f, r in runs.items() if r[0] not in runs_before] == calls[0]
    assert_consistent(catalogue)


def test_reprocess_error_then_recovery(neo4j_db: Database, catalogue: Catalogue, tmp_path: Path) -> None:
    family_zoo(9, prefix="r", children=2, grandchildren=1).write(tmp_path)
    catalogue.import_many(collect_entries([tmp_path]))
    target = model_id(neo4j_db, "r1")  # has one child, r1_1
    path = tmp_path / "r1.safetensors"
    saved = path.read_bytes()
    path.write_bytes(b"overwritten by mistake")
    model = catalogue.reprocess_model(target)
    assert model["status"] == "error" and "reprocessing failed" in model["error"]
    assert model["family_id"] is None and model["parent_id"] is None
    assert catalogue.get_model(model_id(neo4j_db, "r1_1"))["parent_id"] is not None  # re-attached
    assert_consistent(catalogue)
    path.write_bytes(saved)
    model = catalogue.reprocess_model(target)
    assert model["status"] == "ok" and model["error"] is None and model["family_id"] is not None
    assert catalogue.get_model(model_id(neo4j_db, "r1_1"))["parent_name"] == "r1"
    assert_consistent(catalogue)


def test_place_into_existing_family_and_new_family(catalogue: Catalogue, tmp_path: Path) -> None:
    rng = np.random.default_rng(21)
    root = random_root(rng)
    child = finetune(root, rng)
    stranger = random_root(rng)
    a = catalogue.import_model(write_model(tmp_path / "base.safetensors", root))
    b = catalogue.import_model(write_model(tmp_path / "tuned.safetensors", child), description="a fine-tune")
    c = catalogue.import_model(write_model(tmp_path / "stranger.safetensors", stranger))
    assert a.family_id == b.family_id != c.family_id
    tuned = catalogue.get_model(b.model_id)
    assert tuned["parent_name"] == "base" and tuned["description"] == "a fine-tune"
    assert 0.0 <= tuned["confidence"] <= 1.0
    assert tuned["params"] == sum(w.size for w in child.values()) and tuned["layers"] == 2


# --------------------------------------------------------------------------- reads through the service


def test_reads_return_the_stored_genealogy(neo4j_db: Database,
                                           catalogue: Catalogue, synthetic_models, imported) -> None:
    root = model_id(neo4j_db, "a0")
    lineage = catalogue.lineage(root, depth=2)
    assert lineage.ancestors == [] and lineage.root.name == "a0"
    assert sorted(n.name for n in lineage.descendants) == ["a1", "a2", "a3"]
    assert lineage.descendant_count == 9
    a1 = next(n for n in lineage.descendants if n.name == "a1")
    assert sorted(c.name for c in a1.children) == ["a1_1", "a1_2"]
    leaf = catalogue.lineage(model_id(neo4j_db, "a2_1"), depth=1)
    assert [a.name for a in leaf.ancestors] == ["a2"] and leaf.confidence is not None
    assert catalogue.lowest_common_ancestor(model_id(neo4j_db, "a1_1"), model_id(neo4j_db, "a2_2"))["name"] == "a0"
    assert catalogue.lowest_common_ancestor(model_id(neo4j_db, "a1_1"), model_id(neo4j_db, "b0")) is None
    path = catalogue.path(model_id(neo4j_db, "a1_1"), model_id(neo4j_db, "a2_2"))
    assert [n["name"] for n in path["nodes"]] == ["a1_1", "a1", "a0", "a2", "a2_2"]
    assert [s["name"] for s in catalogue.siblings(model_id(neo4j_db, "a1"))] == ["a2", "a3"]
    genealogy = catalogue.genealogy(catalogue.get_model(root)["family_id"])
    assert genealogy.validation.valid and genealogy.roots == [root]
    assert genealogy.statistics.depth == 2 and len(genealogy.edges) == 9
    assert genealogy.parent_of("a1_1") == "a1" and genealogy.parent_of("a0") is None
    items, total = catalogue.list_models(q="A1", limit=2)
    assert total == 3 and len(items) == 2
    items, total = catalogue.list_models(family_id=genealogy.family["id"], skip=8, limit=5)
    assert total == 10 and len(items) == 2
    stats = catalogue.clustering_statistics()
    assert stats.family_size_distribution == {10: 2} and stats.configuration["threshold"] == 0.5
    with pytest.raises(ValueError):
        catalogue.lineage(root, depth=0)


def test_validate_depth() -> None:
    assert validate_depth(1) == 1 and validate_depth(50) == 50
    for bad in (0, 51, -3, "3", 2.0, True):
        with pytest.raises(ValueError):
            validate_depth(bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- register, config


def test_register_only_inside_import_roots(neo4j_db: Database, tmp_path: Path) -> None:
    root = tmp_path / "allowed"
    outside = tmp_path / "secret"
    family_zoo(13, prefix="p", children=1, grandchildren=0).write(root)
    family_zoo(14, prefix="s", children=0, grandchildren=0).write(outside)
    (root / "link.safetensors").symlink_to(outside / "s0.safetensors")
    catalogue = Catalogue(CatalogueConfig(import_roots=(root.resolve(),)), db=neo4j_db)
    assert catalogue.register(root / "p0.safetensors").status == "created"
    assert catalogue.register("p1.safetensors", name="relative").status == "created"
    for bad in (outside / "s0.safetensors", root / ".." / "secret" / "s0.safetensors", root / "link.safetensors"):
        with pytest.raises(PathNotAllowedError):
            catalogue.register(bad)
    folder = root / "folder-model"
    folder.mkdir()
    (folder / "model.safetensors").symlink_to(outside / "s0.safetensors")
    with pytest.raises(PathNotAllowedError, match="links outside"):
        check_import_path(folder, (root.resolve(),))
    with pytest.raises(PathNotAllowedError, match="HERITAGE_IMPORT_ROOTS"):
        Catalogue(CatalogueConfig(), db=neo4j_db, ensure_schema=False).register(root / "p0.safetensors")


def test_config_from_env(environment) -> None:
    environment(HERITAGE_METRIC="L2", HERITAGE_THRESHOLD="0.3", HERITAGE_IMPORT_ROOTS="/tmp:/var/tmp",
                HERITAGE_LAMBDA="0", HERITAGE_UPLOAD_DIR="")
    config = CatalogueConfig.from_env()
    assert config.metric.value == "l2" and config.threshold == 0.3 and config.lam == 0.0
    assert config.import_roots == (Path("/tmp").resolve(), Path("/var/tmp").resolve())
    assert config.upload_dir == CatalogueConfig().upload_dir  # empty means unset
    for name, value in (("HERITAGE_METRIC", "nope"), ("HERITAGE_THRESHOLD", "-1"), ("HERITAGE_LAMBDA", "-0.1"),
                        ("HERITAGE_MAX_UPLOAD_BYTES", "x"), ("HERITAGE_METRIC", "mother")):
        environment(**{name: value})
        with pytest.raises(ValueError, match=f"^{name}") as excinfo:
            CatalogueConfig.from_env()
        assert "\n" not in str(excinfo.value)


# --------------------------------------------------------------------------- jobs


def _wait(catalogue: Catalogue, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = catalogue.get_job(job_id)
        if job["state"] in ("succeeded", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def test_jobs_run_in_background_and_record_results(catalogue: Catalogue, imported) -> None:
    job = catalogue.submit_recluster()
    assert job["state"] == "queued" and job["kind"] == "recluster"
    done = _wait(catalogue, job["id"])
    assert done["state"] == "succeeded" and done["progress"] == 1.0
    assert done["result"]["families"] == 2

    def boom(_job):
        raise RuntimeError("broken on purpose")

    failed = _wait(catalogue, catalogue.submit_job("test", boom)["id"])
    assert failed["state"] == "failed" and "broken on purpose" in failed["message"]
    assert [j["id"] for j in catalogue.list_jobs(state="failed")] == [failed["id"]]


def test_orphaned_running_jobs_are_marked_failed(neo4j_db: Database, catalogue: Catalogue) -> None:
    import socket

    neo4j_db.write("CREATE (:Job {id: 'dead', kind: 'recluster', state: 'running', progress: 0.5, "
                   "owner: $owner, createdAt: datetime(), updatedAt: datetime()})",
                   owner=f"{socket.gethostname()}:999999:gone")
    neo4j_db.write("CREATE (:Job {id: 'mine', kind: 'recluster', state: 'running', progress: 0.5, "
                   "owner: $owner, createdAt: datetime(), updatedAt: datetime()})", owner=jobs.owner_token())
    assert catalogue.fail_orphaned_jobs() == ["dead"]
    assert catalogue.get_job("dead")["state"] == "failed"
    assert catalogue.get_job("mine")["state"] == "running"


# --------------------------------------------------------------------------- the real zoo


def test_small_real_zoo_stored_tree_matches_truth(neo4j_db: Database,
                                                  catalogue: Catalogue, small_zoo: Path) -> None:
    truth = json.loads((small_zoo / "truth.json").read_text())
    summary = catalogue.import_many(collect_entries([small_zoo / "models"]))
    assert summary.failed == 0, [(r.name, r.error) for r in summary.results if r.error]
    want = {(e["parent"], e["child"]) for e in truth["edges"]}
    assert len(stored_edges(neo4j_db) & want) >= 0.9 * len(want), stored_edges(neo4j_db) ^ want
    assert_consistent(catalogue)
    catalogue.recluster()  # the configured clustering over everything: still right
    assert len(stored_edges(neo4j_db) & want) >= 0.9 * len(want), stored_edges(neo4j_db) ^ want
    assert len(stored_families(neo4j_db)) == len(truth["families"])
    assert_consistent(catalogue)


def test_collect_entries_reads_folders_like_recover(tmp_path: Path) -> None:
    family_zoo(1, prefix="c", children=1, grandchildren=0).write(tmp_path / "top")
    nested = tmp_path / "top" / "more"
    family_zoo(2, prefix="n", children=0, grandchildren=0).write(nested)
    shutil.copy(tmp_path / "top" / "c0.safetensors", tmp_path / "single.safetensors")
    assert [n for n, _ in collect_entries([tmp_path / "top"])] == ["c0", "c1", "more"]
    assert [n for n, _ in collect_entries([tmp_path / "top"], recursive=True)] == ["c0", "c1", "n0"]
    assert [n for n, _ in collect_entries([tmp_path / "single.safetensors"])] == ["single"]
