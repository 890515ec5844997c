"""Sparse families (nearest-neighbour candidates) give exactly the exact path's genealogy.

The models are real safetensors files (written by ``safetensors.numpy``) of synthetic
genealogies with known parents: many small families, several architectures, deep trees,
unrelated singletons, a family with one long fine-tune (its merge height falls near the
threshold, so the auto cut needs the exact heights), two large groups joined by one
edge that no model's nearest neighbours contain (the component-link pass must find it),
and layer-subset students (fewer blocks: placement vectors not comparable with their
teachers'); and the zoos: the small zoo and the storage-conventions zoo (transformers,
peft, safetensors and mergekit's writers), typed relations included.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from heritage.evaluation.synthetic import SyntheticZoo, finetune, lora_child, random_root
from heritage.lineage.candidates import FamilySearch, SparseFamilies
from heritage.lineage.clustering import ClusteringMethod, cluster
from heritage.lineage.distances import (
    UNALIGNED_DISTANCE,
    DistanceMetric,
    aligned_l2,
    aligned_l2_matrix,
    distance_matrix,
    pair_distance,
)
from heritage.lineage.recovery import Genealogy, GenealogyRecovery
from heritage.lineage.sources import InMemorySource, SpooledSource
from heritage.reading.fingerprint import Fingerprint, fingerprint_model
from heritage.reading.loader import load_model


def _fingerprints(zoo: SyntheticZoo, directory: Path) -> list[Fingerprint]:
    paths = zoo.write(directory)
    return [fingerprint_model(load_model(paths[name])) for name in zoo.models]


def _hub(seed: int) -> SyntheticZoo:
    """Families of sizes 1..40 and depths up to 6 over two architectures (hidden 16, 24)."""
    rng = np.random.default_rng(seed)
    zoo = SyntheticZoo()
    sizes = [1, 1, 1, 2, 3, 5, 8, 12, 20, 40, 1, 2, 6, 15]
    for f, size in enumerate(sizes):
        hidden = 16 if f % 2 else 24
        root = random_root(rng, hidden=hidden, layers=1)
        weights, depth = [root], [0]
        zoo.add(f"f{f}-m0", root, None)
        for m in range(1, size):
            parent = int(rng.integers(0, m)) if rng.random() < 0.5 else m - 1
            if depth[parent] >= 6:
                parent = 0
            weights.append(finetune(weights[parent], rng, step=0.08))
            depth.append(depth[parent] + 1)
            zoo.add(f"f{f}-m{m}", weights[-1], f"f{f}-m{parent}")
    return zoo


def _joined_groups(seed: int, group: int = 30) -> SyntheticZoo:
    """A base B with ``group`` close fine-tunes, and its far child C (relative change
    0.3) with ``group`` close fine-tunes of its own: every model's nearest neighbours lie
    inside its own group, so the kNN graph alone splits the family in two."""
    rng = np.random.default_rng(seed)
    zoo = SyntheticZoo()
    base = random_root(rng, hidden=16, layers=1)
    far = finetune(base, rng, step=0.3)
    zoo.add("B", base, None)
    zoo.add("C", far, "B")
    for g in range(group):
        zoo.add(f"B-{g}", finetune(base, rng, step=0.01), "B")
        zoo.add(f"C-{g}", finetune(far, rng, step=0.01), "C")
    zoo.add("U", random_root(rng, hidden=16, layers=1), None)  # unrelated
    return zoo


def _same(sparse: Genealogy, exact: Genealogy) -> None:
    """The same families and the same typed edges, to the last bit (distances, weights, confidences)."""
    assert [f.members for f in sparse.families] == [f.members for f in exact.families]
    assert [(e.parent, e.child, e.relation, e.weight) for e in sparse.edges] == \
        [(e.parent, e.child, e.relation, e.weight) for e in exact.edges]
    assert sparse.edges == exact.edges
    assert sparse.kurtosis == exact.kurtosis


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> tuple[SyntheticZoo, list[Fingerprint]]:
    zoo = _hub(11)
    return zoo, _fingerprints(zoo, tmp_path_factory.mktemp("hub"))


@pytest.mark.parametrize("method", [ClusteringMethod.AUTO, ClusteringMethod.THRESHOLD, ClusteringMethod.DBSCAN])
def test_sparse_equals_exact_and_truth_on_a_synthetic_hub(hub, method) -> None:
    zoo, fps = hub
    exact = GenealogyRecovery(clustering=method, search=FamilySearch.EXACT).recover(fps)
    sparse = GenealogyRecovery(clustering=method, neighbours=4).recover(fps)
    _same(sparse, exact)
    truth = {}
    for name, parent in zoo.parents.items():
        truth.setdefault(name.split("-")[0], set()).add(name)
    assert sorted(map(sorted, truth.values())) == sorted(sorted(f.members) for f in sparse.families)
    true_edges = {(p, c) for c, p in zoo.parents.items() if p}
    assert len(true_edges & {(e.parent, e.child) for e in sparse.edges}) >= 0.9 * len(true_edges)


def test_component_links_join_what_nearest_neighbours_miss(tmp_path: Path) -> None:
    zoo = _joined_groups(3)
    fps = _fingerprints(zoo, tmp_path)
    group = [fp for fp in fps]
    vectors = InMemorySource(group).placement_vectors(np.arange(len(group)))
    exact_d = distance_matrix(group, DistanceMetric.L2)

    def pairs(i, j):
        return exact_d[i, j]

    def dense(idx):
        return exact_d[np.ix_(idx, idx)]

    for method in (ClusteringMethod.THRESHOLD, ClusteringMethod.AUTO):
        searcher = SparseFamilies(method, 0.5, neighbours=4)
        near_d, near_i = searcher.nearest(vectors)
        b, c = zoo_index(zoo, "B"), zoo_index(zoo, "C")
        assert c not in near_i[b] and b not in near_i[c]  # the kNN graph misses B-C
        labels, report = searcher.fit(vectors, pairs, dense)
        assert report.link_pairs > 0
        assert labels.tolist() == cluster(exact_d, method, 0.5).tolist()
        assert labels[b] == labels[c] and labels[zoo_index(zoo, "U")] != labels[b]
    # B-C (0.3) lies between lo = threshold / 3 and R: that component was computed densely.
    assert report.dense_components == [len(fps) - 1] and report.certified
    exact = GenealogyRecovery(search="exact").recover(fps)
    _same(GenealogyRecovery(neighbours=4).recover(fps), exact)
    assert {"B", "C", "B-0", "C-0"} <= set(exact.family_of("B").members)


def zoo_index(zoo: SyntheticZoo, name: str) -> int:
    return list(zoo.models).index(name)


def test_an_uncertifiable_auto_cut_raises_the_radius_and_still_equals_exact(tmp_path: Path) -> None:
    """Merge heights spread over the whole window: the cut cannot be certified at the
    first radius, the search widens, and the answer is the exact path's."""
    rng = np.random.default_rng(5)
    zoo = SyntheticZoo()
    base = random_root(rng, hidden=16, layers=1)
    zoo.add("r", base, None)
    current = base
    for step, name in ((0.35, "a"), (0.5, "b"), (0.7, "c")):
        current = finetune(current, rng, step=step)
        zoo.add(name, current, None)
    fps = _fingerprints(zoo, tmp_path)
    exact_d = distance_matrix(fps, DistanceMetric.L2)
    vectors = InMemorySource(fps).placement_vectors(np.arange(len(fps)))
    labels, report = SparseFamilies("auto", 0.5, neighbours=2).fit(
        vectors, lambda i, j: exact_d[i, j], lambda idx: exact_d[np.ix_(idx, idx)])
    assert labels.tolist() == cluster(exact_d, "auto", 0.5).tolist()
    assert report.radius > 0.625 or report.fell_back_to_exact


def test_spooled_source_with_a_tiny_cache_gives_the_same_genealogy(hub, tmp_path: Path) -> None:
    _zoo, fps = hub
    spooled = SpooledSource(cache_bytes=20_000, directory=str(tmp_path))
    try:
        for fp in fps:
            spooled.add(fp)
        recovery = GenealogyRecovery(neighbours=4)
        _same(recovery.recover_source(spooled), recovery.recover(fps))
        assert spooled._cached <= 20_000 + max(len(fp.to_bytes()) for fp in fps)
    finally:
        spooled.close()


def _students(seed: int) -> SyntheticZoo:
    """Families of 3-block models, each with layer-subset students (blocks 0 and 2 of a
    member, renumbered 0 and 1 as transformers saves them, then fine-tuned) and a
    fine-tune of a student: two block counts in one backbone."""
    rng = np.random.default_rng(seed)
    zoo = SyntheticZoo()

    def keep(weights: dict[str, np.ndarray], blocks: tuple[int, ...]) -> dict[str, np.ndarray]:
        return {n.replace(f"layer.{b}.", f"layer.{i}."): w for i, b in enumerate(blocks)
                for n, w in weights.items() if f"layer.{b}." in n}

    for f in range(5):
        root = random_root(rng, hidden=16, layers=3)
        zoo.add(f"t{f}-root", root, None)
        child = finetune(root, rng, step=0.08)
        zoo.add(f"t{f}-child", child, f"t{f}-root")
        for m in range(f + 1):
            zoo.add(f"t{f}-c{m}", finetune(child, rng, step=0.08), f"t{f}-child")
        student = finetune(keep(child, (0, 2)), rng, step=0.05)
        zoo.add(f"t{f}-student", student, f"t{f}-child")
        zoo.add(f"t{f}-student-ft", finetune(student, rng, step=0.08), f"t{f}-student")
    zoo.add("lone", random_root(rng, hidden=16, layers=3), None)
    return zoo


def test_students_with_fewer_blocks_join_their_teachers_family_by_either_search(tmp_path: Path) -> None:
    zoo = _students(4)
    fps = _fingerprints(zoo, tmp_path)
    assert len({fp.backbone_key for fp in fps}) == 1 and {fp.block_count for fp in fps} == {2, 3}
    exact = GenealogyRecovery(search="exact").recover(fps)
    sparse = GenealogyRecovery(neighbours=2).recover(fps)
    _same(sparse, exact)
    truth: dict[str, set[str]] = {}
    for name in zoo.models:
        truth.setdefault(name.split("-")[0], set()).add(name)
    assert sorted(map(sorted, truth.values())) == sorted(sorted(f.members) for f in sparse.families)
    relation = {(e.parent, e.child): e.relation for e in sparse.edges}
    for f in range(5):
        assert relation.get((f"t{f}-child", f"t{f}-student")) == "distillation"
        assert relation.get((f"t{f}-student", f"t{f}-student-ft")) == "finetune"


def test_one_aligned_l2_for_candidate_edges_and_family_matrices(tmp_path: Path) -> None:
    """The sparse search's edges and the exact path's matrix are the same numbers (not
    merely close): both come from aligned_l2; and they are pair_distance's l2."""
    zoo = _students(2)
    zoo.add("other", random_root(np.random.default_rng(1), hidden=24, layers=1), None)  # aligns with nothing
    fps = _fingerprints(zoo, tmp_path)
    matrix = aligned_l2_matrix(fps)
    i, j = np.triu_indices(len(fps), k=1)
    order = np.random.default_rng(0).permutation(i.size)  # any batch composition, any order
    pairs = aligned_l2([fps[k] for k in i[order]], [fps[k] for k in j[order]])
    assert np.array_equal(pairs, matrix[i[order], j[order]])
    assert np.array_equal(aligned_l2([fps[k] for k in j], [fps[k] for k in i]), matrix[i, j])  # symmetric
    other = list(zoo.models).index("other")
    assert (matrix[other, np.arange(len(fps)) != other] == UNALIGNED_DISTANCE).all()
    for a, b in zip(i, j):
        if other not in (a, b):
            assert matrix[a, b] == pytest.approx(pair_distance(fps[a], fps[b], DistanceMetric.L2), rel=1e-6)
    assert np.array_equal(distance_matrix(fps, DistanceMetric.L2), matrix)


@pytest.fixture(scope="module")
def small_zoo_fingerprints(small_zoo):
    from heritage.reading.ingest import ingest_many, model_entries

    models = [m for m in ingest_many(model_entries(Path(small_zoo) / "models"))]
    return models


def test_the_small_zoo_gives_identical_results_through_both_paths(small_zoo_fingerprints) -> None:
    models = small_zoo_fingerprints
    declared = {m.name: m.profile.declared_base for m in models}
    fps = [m.fingerprint for m in models]
    assert any(fp.is_adapter for fp in fps)
    exact = GenealogyRecovery(search="exact").recover(fps, declared_bases=declared)
    sparse = GenealogyRecovery().recover(fps, declared_bases=declared)
    _same(sparse, exact)


def test_the_storage_conventions_zoo_gives_identical_results_through_both_paths(conventions_zoo) -> None:
    """Heads, prefixes, buffers, resized vocabularies, dtype conversions, quantised and
    head-only copies, merges, a layer-subset student and an adapter: typed relations,
    merge weights and confidences are the same by either search, and right."""
    from heritage.reading.ingest import ingest_many, model_entries

    folder, truth = conventions_zoo
    models = list(ingest_many(model_entries(folder)))
    declared = {m.name: m.profile.declared_base for m in models}
    fps = [m.fingerprint for m in models]
    assert len({fp.block_count for fp in fps if not fp.is_adapter}) > 1  # the student has fewer blocks
    exact = GenealogyRecovery(search="exact").recover(fps, declared_bases=declared)
    sparse = GenealogyRecovery().recover(fps, declared_bases=declared)
    _same(sparse, exact)
    for child, (relation, parents) in truth.items():
        found = {e.parent: e.relation for e in sparse.edges if e.child == child}
        assert set(found) == set(parents) and set(found.values()) == {relation}, (child, found)


def test_lora_families_keep_their_rank_metric(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    zoo = SyntheticZoo()
    root = random_root(rng, hidden=48, layers=1)
    zoo.add("root", root, None)
    for i in range(4):
        zoo.add(f"lora{i}", lora_child(root, rng, rank=2), "root")
    fps = _fingerprints(zoo, tmp_path)
    sparse = GenealogyRecovery(neighbours=2).recover(fps)
    _same(sparse, GenealogyRecovery(search="exact").recover(fps))
    assert sparse.families[0].metric == "rank"
    assert {(e.parent, e.child) for e in sparse.edges} == {("root", f"lora{i}") for i in range(4)}
