"""Families above ``GenealogyRecovery.tree_limit``: trees on candidate edges.

The models are real safetensors files (``safetensors.numpy``, through
:class:`SyntheticZoo`) of synthetic genealogies with known parents, and the
storage-conventions zoo (transformers, peft, safetensors and mergekit's writers).  The
sparse tree must recover the truth about as well as the dense one, stay one valid tree
where nearest neighbours split the family, keep typed relations and merges, and read a
large family's fingerprints a batch at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest

from heritage.evaluation.synthetic import SyntheticZoo, finetune, random_root
from heritage.lineage.recovery import Genealogy, GenealogyRecovery
from heritage.lineage.sources import InMemorySource, SpooledSource
from heritage.reading.fingerprint import Fingerprint, fingerprint_model
from heritage.reading.loader import load_model


def _fingerprints(zoo: SyntheticZoo, directory: Path) -> list[Fingerprint]:
    paths = zoo.write(directory)
    return [fingerprint_model(load_model(paths[name])) for name in zoo.models]


def _large_family(seed: int, size: int) -> SyntheticZoo:
    """One family of ``size`` fine-tunes, up to 8 generations deep, parents biased to
    recent models (as the hub-scale benchmark generates them)."""
    rng = np.random.default_rng(seed)
    zoo = SyntheticZoo()
    weights, depth = [random_root(rng, hidden=16, layers=1)], [0]
    zoo.add("m0", weights[0], None)
    for i in range(1, size):
        parent = min(i - 1, int(i * rng.random() ** 0.3))
        while depth[parent] >= 8:
            parent = int(zoo.parents[f"m{parent}"][1:])
        weights.append(finetune(weights[parent], rng))
        depth.append(depth[parent] + 1)
        zoo.add(f"m{i}", weights[-1], f"m{parent}")
    return zoo


def _directed(zoo: SyntheticZoo, genealogy: Genealogy) -> float:
    truth = {(p, c) for c, p in zoo.parents.items() if p}
    return len(truth & {(e.parent, e.child) for e in genealogy.edges}) / len(truth)


@pytest.fixture(scope="module")
def family(tmp_path_factory) -> tuple[SyntheticZoo, list[Fingerprint]]:
    zoo = _large_family(5, 240)
    return zoo, _fingerprints(zoo, tmp_path_factory.mktemp("large"))


def test_a_family_above_the_limit_recovers_the_truth_about_as_well_as_dense(family) -> None:
    zoo, fps = family
    dense = GenealogyRecovery(tree_limit=None).recover(fps)
    sparse = GenealogyRecovery(tree_limit=100).recover(fps)
    assert [f.members for f in sparse.families] == [f.members for f in dense.families]
    assert len(sparse.families) == 1
    valid, issues = sparse.families[0].validation()
    assert valid, issues
    assert _directed(zoo, sparse) >= 0.9
    assert _directed(zoo, sparse) >= _directed(zoo, dense) - 0.02
    assert sparse.families[0].regime == dense.families[0].regime
    assert all(0.0 <= e.confidence <= 1.0 for e in sparse.edges)
    # Most edges are the dense tree's (the candidate edges hold nearly every true parent).
    same = {(e.parent, e.child) for e in sparse.edges} & {(e.parent, e.child) for e in dense.edges}
    assert len(same) >= 0.95 * len(dense.edges)


def test_build_family_of_fingerprints_in_memory_takes_the_sparse_path_above_the_limit(family) -> None:
    """The catalogue rebuilds a family from its members' fingerprints: the same tree."""
    _zoo, fps = family
    recovery = GenealogyRecovery(tree_limit=100)
    built = recovery.build_family(fps)
    recovered = recovery.recover(fps).families[0]
    assert built.edges == recovered.edges
    assert built.mean_distance == recovered.mean_distance


class _CountingSource(InMemorySource):
    """An in-memory source that remembers the largest read of fingerprints."""

    def __init__(self, fingerprints: Sequence[Fingerprint]) -> None:
        super().__init__(fingerprints)
        self.largest_read = 0

    def fingerprints(self, indices: Sequence[int]) -> list[Fingerprint]:
        self.largest_read = max(self.largest_read, len(indices))
        return super().fingerprints(indices)


def test_a_large_family_is_read_a_batch_at_a_time(family, tmp_path: Path, monkeypatch) -> None:
    """Its tree never asks the source for more than a read chunk of fingerprints at once
    (here 64, fewer than the family), and a spooled source with a tiny cache gives the
    same genealogy as fingerprints in memory."""
    import heritage.lineage.recovery as recovery_module

    zoo, fps = family
    monkeypatch.setattr(recovery_module, "_READ_CHUNK", 64)
    counting = _CountingSource(fps)
    recovery = GenealogyRecovery(tree_limit=100, neighbours=4)
    built = recovery.build_large_family(counting, np.arange(len(fps)))
    assert 0 < counting.largest_read <= 64
    genealogy = recovery.recover(fps)
    assert built.edges == genealogy.families[0].edges
    spooled = SpooledSource(cache_bytes=64 * 1024, directory=str(tmp_path))
    for fp in fps:
        spooled.add(fp)
    try:
        assert recovery.recover_source(spooled).edges == genealogy.edges
    finally:
        spooled.close()
    assert _directed(zoo, genealogy) >= 0.85


def test_nearest_neighbours_that_split_a_family_still_give_one_tree(tmp_path: Path) -> None:
    """A base B with 30 close fine-tunes and its far child C with 30 of its own: each
    model's nearest neighbours lie in its own group; the candidate graph is linked."""
    rng = np.random.default_rng(3)
    zoo = SyntheticZoo()
    base = random_root(rng, hidden=16, layers=1)
    far = finetune(base, rng, step=0.3)
    zoo.add("B", base, None)
    zoo.add("C", far, "B")
    for g in range(30):
        zoo.add(f"B-{g}", finetune(base, rng, step=0.01), "B")
        zoo.add(f"C-{g}", finetune(far, rng, step=0.01), "C")
    fps = _fingerprints(zoo, tmp_path)
    genealogy = GenealogyRecovery(tree_limit=10, neighbours=4).recover(fps)
    assert len(genealogy.families) == 1
    valid, issues = genealogy.families[0].validation()
    assert valid, issues
    # The one edge between the groups joins their centres (the two bases), as densely.
    crossing = [{e.parent, e.child} for e in genealogy.edges if e.parent[0] != e.child[0]]
    assert crossing == [{"B", "C"}]
    dense = GenealogyRecovery(tree_limit=None).recover(fps)
    assert {(e.parent, e.child) for e in genealogy.edges} == {(e.parent, e.child) for e in dense.edges}
    assert _directed(zoo, genealogy) >= 0.9


def test_the_storage_conventions_zoo_through_sparse_trees_keeps_relations_and_merges(conventions_zoo) -> None:
    """Every family of more than two models built on candidate edges: conversions,
    quantised and head-only copies, merges (with their weights), a layer-subset student
    and an adapter are typed as the dense path types them, and right."""
    from heritage.reading.ingest import ingest_many, model_entries

    folder, truth = conventions_zoo
    models = list(ingest_many(model_entries(folder)))
    declared = {m.name: m.profile.declared_base for m in models}
    fps = [m.fingerprint for m in models]
    dense = GenealogyRecovery(tree_limit=None).recover(fps, declared_bases=declared)
    sparse = GenealogyRecovery(tree_limit=2).recover(fps, declared_bases=declared)
    assert any(len(f.members) > 2 for f in sparse.families)
    assert [f.members for f in sparse.families] == [f.members for f in dense.families]
    assert [(e.parent, e.child, e.relation) for e in sparse.edges] == \
        [(e.parent, e.child, e.relation) for e in dense.edges]
    for ours, theirs in zip(sparse.edges, dense.edges):
        assert ours.weight == pytest.approx(theirs.weight)
        assert ours.distance == pytest.approx(theirs.distance)
        assert ours.confidence == pytest.approx(theirs.confidence, abs=1e-9)
    for child, (relation, parents) in truth.items():
        found = {e.parent: e.relation for e in sparse.edges if e.child == child}
        assert set(found) == set(parents) and set(found.values()) == {relation}, (child, found)


def test_tree_limit_is_checked() -> None:
    with pytest.raises(ValueError, match="tree_limit"):
        GenealogyRecovery(tree_limit=1)


def test_the_cli_and_the_catalogue_set_the_limit(tmp_path: Path, capsys) -> None:
    """``heritage recover --tree-limit`` builds the same trees either way on a small
    family (a limit below it takes the sparse path); a limit of 1 is refused with exit
    code 2; ``HERITAGE_TREE_LIMIT=0`` means every tree dense."""
    import json

    from heritage.catalogue.config import CatalogueConfig
    from heritage.cli import main
    from heritage.evaluation.synthetic import family_zoo

    zoo = family_zoo(seed=7, prefix="x", children=3)
    directory = tmp_path / "models"
    zoo.write(directory)
    documents = []
    for limit in ("2", "0"):
        out = tmp_path / f"limit-{limit}.json"
        assert main(["recover", str(directory), "--tree-limit", limit, "--out", str(out)]) == 0
        documents.append({(e["parent"], e["child"]) for e in json.loads(out.read_text())["edges"]})
    assert documents[0] == documents[1] == {(p, c) for c, p in zoo.parents.items() if p}
    capsys.readouterr()
    assert main(["recover", str(directory), "--tree-limit", "1"]) == 2
    assert "tree_limit must be at least 2" in capsys.readouterr().err
    assert CatalogueConfig(tree_limit=0).recovery().tree_limit is None
    assert CatalogueConfig().recovery().tree_limit == 1000
    with pytest.raises(ValueError, match="tree_limit"):
        CatalogueConfig(tree_limit=1)


def test_large_and_small_families_keep_their_order_with_a_mapper(family, tmp_path: Path) -> None:
    """A mapper that takes every task before it returns anything (as a cluster does): the
    large family is built in process meanwhile, and families keep their order."""
    _zoo, fps = family
    rng = np.random.default_rng(9)
    small = SyntheticZoo()
    root = random_root(rng, hidden=24, layers=1)
    small.add("s0", root, None)
    for i in range(1, 4):
        small.add(f"s{i}", finetune(root, rng), "s0")
    mixed = _fingerprints(small, tmp_path)[:2] + list(fps) + _fingerprints(small, tmp_path)[2:]
    recovery = GenealogyRecovery(tree_limit=100)

    def eager(fn, tasks):
        return [fn(task) for task in list(tasks)]

    plain = recovery.recover(mixed)
    mapped = recovery.recover_source(InMemorySource(mixed), mapper=eager)
    assert [f.members for f in mapped.families] == [f.members for f in plain.families]
    assert [f.index for f in mapped.families] == list(range(len(plain.families)))
    assert mapped.edges == plain.edges
    assert sorted(len(f.members) for f in plain.families) == [4, len(fps)]
