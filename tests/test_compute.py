"""The compute core on synthetic genealogies: distances, direction, families, trees."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from heritage.lineage.clustering import ClusteringMethod, cluster
from heritage.lineage.distances import DistanceMetric, distance_matrix, distances_to, pair_distance
from heritage.errors import IncompatibleModelsError
from heritage.lineage.exact import exact_distances
from heritage.reading.fingerprint import Fingerprint, fingerprint_model
from heritage.lineage.arborescence import minimum_arborescence
from heritage.lineage.direction import Regime, decide_direction
from heritage.reading.layers import ATTENTION_ROLES
from heritage.reading.loader import load_model
from heritage.lineage.recovery import GenealogyRecovery
from heritage.evaluation.synthetic import SyntheticZoo, family_zoo, lora_child, random_root
from heritage.lineage.trees import TreeBuildingMethod, build_tree, tree_statistics, validate_tree


def _fingerprints(zoo: SyntheticZoo, directory: Path) -> dict[str, Fingerprint]:
    return {n: fingerprint_model(load_model(p)) for n, p in zoo.write(directory).items()}


def _accuracy(zoo: SyntheticZoo, edges) -> float:
    truth = {(p, c) for c, p in zoo.parents.items() if p}
    return sum(1 for e in edges if (e.parent, e.child) in truth) / len(truth)


@pytest.fixture(scope="module")
def two_families(tmp_path_factory) -> tuple[SyntheticZoo, dict[str, Fingerprint]]:
    zoo = family_zoo(seed=1, prefix="a")
    other = family_zoo(seed=2, prefix="b", children=2)
    for name, weights in other.models.items():
        zoo.add(name, weights, other.parents[name])
    return zoo, _fingerprints(zoo, tmp_path_factory.mktemp("two"))


@pytest.fixture(scope="module")
def family_a(two_families) -> tuple[list[str], np.ndarray, list[float]]:
    """Names, l2 distances and kurtosis of the members of family ``a``."""
    _zoo, fps = two_families
    members = [fps[n] for n in sorted(fps) if n.startswith("a")]
    return [fp.name for fp in members], distance_matrix(members, "l2"), [fp.kurtosis for fp in members]


def test_fingerprint_round_trip(two_families) -> None:
    _zoo, fps = two_families
    fp = fps["a0"]
    back = Fingerprint.from_bytes(fp.to_bytes())
    assert back.name == fp.name and back.structure_hash == fp.structure_hash
    assert back.kurtosis == pytest.approx(fp.kurtosis)
    for name, layer in fp.layers.items():
        np.testing.assert_array_equal(back.layers[name].sketch, layer.sketch)


def test_sketch_l2_tracks_exact_distance_and_ranks_parents_alike(tmp_path: Path) -> None:
    zoo = family_zoo(seed=5, hidden=128, layers=2)
    paths = zoo.write(tmp_path)
    names = sorted(paths)
    models = [load_model(paths[n]) for n in names]
    fps = [fingerprint_model(m) for m in models]
    sketch = distance_matrix(fps, DistanceMetric.L2, roles=frozenset(fps[0].layers[n].role for n in fps[0].layers))
    exact = exact_distances(models, roles=frozenset(l.role for l in fps[0].layers.values())).relative_l2
    off = ~np.eye(len(names), dtype=bool)
    rel_err = np.abs(sketch[off] - exact[off]) / exact[off]
    assert rel_err.max() < 0.1
    # A leaf's nearest model (its parent) is the same under the sketch and the exact
    # distance. Inner models have their parent and children equally near in truth, so
    # there the sketch's pick only has to be as near as the exact nearest, within its error.
    parents = set(zoo.parents.values())
    for i, name in enumerate(names):
        by_sketch = int(np.argmin(np.where(off[i], sketch[i], np.inf)))
        by_exact = int(np.argmin(np.where(off[i], exact[i], np.inf)))
        if name not in parents:
            assert by_sketch == by_exact == names.index(zoo.parents[name])
        else:
            assert exact[i, by_sketch] <= 1.1 * exact[i, by_exact]


def test_distances_are_scale_free(two_families) -> None:
    _zoo, fps = two_families
    a, b = fps["a0"], fps["a1"]
    scaled = dataclasses.replace(b, layers={
        n: dataclasses.replace(l, norm=l.norm * 100, sketch=l.sketch * 100) for n, l in b.layers.items()})
    a_scaled = dataclasses.replace(a, layers={
        n: dataclasses.replace(l, norm=l.norm * 100, sketch=l.sketch * 100) for n, l in a.layers.items()})
    assert pair_distance(a_scaled, scaled, "l2") == pytest.approx(pair_distance(a, b, "l2"), rel=1e-5)
    assert pair_distance(a, b, "l2") < 0.3 < pair_distance(a, fps["b0"], "l2")
    assert pair_distance(a, b, "cosine") < pair_distance(a, fps["b0"], "cosine")


def test_rank_distance_counts_lora_rank(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    root = random_root(rng, hidden=96)
    zoo = SyntheticZoo()
    zoo.add("root", root, None)
    zoo.add("c1", lora_child(root, rng, rank=4), "root")
    zoo.add("c2", lora_child(root, rng, rank=4), "root")
    fps = _fingerprints(zoo, tmp_path)
    k = fps["root"].sketch_dim
    assert pair_distance(fps["root"], fps["c1"], "rank") == pytest.approx(4 / k)
    assert pair_distance(fps["c1"], fps["c2"], "rank") == pytest.approx(8 / k)
    recovery = GenealogyRecovery()
    family = recovery.build_family([fps[n] for n in ("c1", "root", "c2")])
    assert family.metric == "rank"
    assert {(e.parent, e.child) for e in family.edges} == {("root", "c1"), ("root", "c2")}


def test_mismatched_architectures_never_share_a_family(tmp_path: Path) -> None:
    zoo = SyntheticZoo()
    rng = np.random.default_rng(0)
    small = random_root(rng, hidden=32)
    zoo.add("small", small, None)
    zoo.add("big", random_root(rng, hidden=48), None)
    fps = _fingerprints(zoo, tmp_path)
    with pytest.raises(IncompatibleModelsError):
        pair_distance(fps["small"], fps["big"], "l2")
    genealogy = GenealogyRecovery(threshold=100.0).recover(list(fps.values()))
    assert sorted(len(f.members) for f in genealogy.families) == [1, 1]


@pytest.mark.parametrize("method", list(ClusteringMethod))
def test_families_found_without_knowing_k(two_families, method) -> None:
    zoo, fps = two_families
    names = sorted(fps)
    labels = cluster(distance_matrix([fps[n] for n in names], "l2"), method)
    groups = {}
    for n, l in zip(names, labels):
        groups.setdefault(int(l), set()).add(n[0])
    assert sorted(map(sorted, groups.values())) == [["a"], ["b"]]


def test_recovery_accuracy_on_synthetic_families(two_families) -> None:
    zoo, fps = two_families
    genealogy = GenealogyRecovery().recover(list(fps.values()))
    assert len(genealogy.families) == 2
    assert _accuracy(zoo, genealogy.edges) >= 0.9
    for family in genealogy.families:
        valid, issues = family.validation()
        assert valid, issues
        assert family.regime == Regime.FINE_TUNING.value


def test_regime_is_decided_from_data(two_families, family_a) -> None:
    """Reverse every model's kurtosis: the regime flips and the tree stays correct."""
    zoo, _fps = two_families
    names, d, ku = family_a
    assert decide_direction(d, ku).regime is Regime.FINE_TUNING
    flipped = [-k for k in ku]
    decision = decide_direction(d, flipped)
    assert decision.regime is Regime.PRETRAINING
    edges = build_tree(d, flipped, "mother", 0.3, decision.regime)
    truth = {(p, c) for c, p in zoo.parents.items() if p}
    assert sum((names[e.parent], names[e.child]) in truth for e in edges) / len(edges) >= 0.9


@pytest.mark.parametrize("order", [("a0", "a1"), ("a1", "a0")])
def test_two_model_family_direction_does_not_depend_on_order(two_families, order) -> None:
    _zoo, fps = two_families
    family = GenealogyRecovery().build_family([fps[n] for n in order])
    assert [(e.parent, e.child) for e in family.edges] == [("a0", "a1")]
    assert 0 < family.edges[0].confidence <= 1


def test_tree_methods_validation_and_statistics(family_a) -> None:
    names, d, ku = family_a
    for method in TreeBuildingMethod:
        edges = build_tree(d, ku, method)
        pairs = [(names[e.parent], names[e.child]) for e in edges]
        valid, issues = validate_tree(pairs, names)
        assert valid, (method, issues)
        assert all(0 <= e.confidence <= 1 for e in edges)
    stats = tree_statistics([(names[e.parent], names[e.child]) for e in build_tree(d, ku)], names)
    assert stats.roots == ["a0"] and stats.depth == 2 and stats.max_branching == 3
    assert len(stats.leaves) == 6 and stats.nodes == 10 and stats.edges == 9
    bad, issues = validate_tree([("x", "y"), ("y", "x")], ["x", "y"])
    assert not bad and any("cycle" in i for i in issues)
    bad, issues = validate_tree([("x", "y"), ("z", "y")], ["x", "y", "z"])
    assert not bad and any("more than one parent" in i for i in issues)


def test_placing_a_new_model_compares_fingerprints_only(two_families) -> None:
    _zoo, fps = two_families
    known = [fps[n] for n in sorted(fps) if n != "a1_1"]
    d = distances_to(fps["a1_1"], known, "l2")
    assert known[int(np.argmin(d))].name == "a1"
    v = fps["a1_1"].placement_vector()
    nearest = min(known, key=lambda k: float(np.linalg.norm(k.placement_vector() - v)))
    assert nearest.name == "a1"


def test_adapter_attaches_to_declared_base(two_families) -> None:
    _zoo, fps = two_families
    base = fps["a1"]
    layer = "encoder.layer.0.attention.self.query.weight"
    adapter = dataclasses.replace(base, name="adapter", is_adapter=True, adapter_rank=2,
                                  structure_hash="adapter-hash",
                                  layers={layer: dataclasses.replace(base.layers[layer], sketch=base.layers[layer].sketch * 0.01)})
    genealogy = GenealogyRecovery().recover([*fps.values(), adapter], declared_bases={"adapter": "/ckpt/a1"})
    assert genealogy.parent_of("adapter") == "a1"
    genealogy = GenealogyRecovery().recover([*fps.values(), adapter], declared_bases={"adapter": "hub/unknown"})
    family = genealogy.family_of("adapter")
    assert genealogy.parent_of("adapter") == family.root


def test_regime_falls_back_to_centrality_when_kurtosis_is_noise(two_families, family_a) -> None:
    """Shuffled kurtosis explains no single root: the family's centre decides instead."""
    zoo, _fps = two_families
    names, d, ku = family_a
    rng = np.random.default_rng(0)
    noise = list(rng.permutation(ku))
    decision = decide_direction(d, noise)
    assert decision.regime is Regime.CENTRALITY
    assert decision.agreement["centrality"] == 1.0 > max(decision.agreement["fine_tuning"],
                                                         decision.agreement["pretraining"])
    edges = build_tree(d, noise, "mother", 0.3, decision.regime)
    truth = {(p, c) for c, p in zoo.parents.items() if p}
    assert {(names[e.parent], names[e.child]) for e in edges} == {e for e in truth if e[0].startswith("a")}


def test_arborescence_matches_networkx_on_random_costs() -> None:
    import networkx as nx

    rng = np.random.default_rng(1)
    for trial in range(60):
        n = int(rng.integers(2, 25))
        costs = rng.random((n, n))
        ours = minimum_arborescence(costs)
        graph = nx.DiGraph()
        graph.add_weighted_edges_from((i, j, costs[i, j]) for i in range(n) for j in range(n) if i != j)
        reference = nx.minimum_spanning_arborescence(graph)
        assert len(ours) == n - 1
        assert sum(costs[p, c] for p, c in ours) == pytest.approx(
            sum(costs[p, c] for p, c in reference.edges()), abs=1e-9)
        valid, issues = validate_tree(ours, list(range(n)))
        assert valid, issues


def test_kurtosis_monotone_along_a_path_defers_to_the_centre() -> None:
    """A root with two fine-tunes: kurtosis rising from one child through the root to the
    other fits both regimes, so the centre (the root) decides."""
    d = np.array([[0.0, 1.0, 1.0], [1.0, 0.0, 1.4], [1.0, 1.4, 0.0]])  # 0 is the centre
    ku = [5.0, 5.1, 4.9]
    decision = decide_direction(d, ku)
    assert decision.agreement["fine_tuning"] == decision.agreement["pretraining"] == 1.0
    assert decision.regime is Regime.CENTRALITY
    edges = build_tree(d, ku, "mother", 0.3, decision.regime)
    assert {(e.parent, e.child) for e in edges} == {(0, 1), (0, 2)}
    # Two models have no centre: kurtosis in the fine-tuning regime decides.
    two = decide_direction(np.array([[0.0, 1.0], [1.0, 0.0]]), [4.0, 5.0])
    assert two.regime is Regime.FINE_TUNING
    assert [(e.parent, e.child) for e in build_tree(np.array([[0.0, 1.0], [1.0, 0.0]]), [4.0, 5.0])] == [(1, 0)]


def test_layer_roles_really_filter(two_families) -> None:
    _zoo, fps = two_families
    a, b = fps["a0"], fps["a1"]
    from heritage.reading.layers import LayerRole

    only_q = pair_distance(a, b, "l2", frozenset({LayerRole.ATTENTION_Q}))
    only_o = pair_distance(a, b, "l2", frozenset({LayerRole.ATTENTION_O}))
    assert only_q != only_o
    assert {l.role for l in a.layers.values()} <= ATTENTION_ROLES  # MLP matrices are not read
    with pytest.raises(IncompatibleModelsError):
        pair_distance(a, b, "l2", frozenset({LayerRole.MLP}))
    recovery = GenealogyRecovery(roles=["attention_q"])
    assert recovery.roles == frozenset({LayerRole.ATTENTION_Q})
    d, _metric = recovery.family_distances([a, b])
    assert d[0, 1] == pytest.approx(only_q)
    with pytest.raises(ValueError, match="cannot compare embedding"):
        GenealogyRecovery(roles=["embedding"])


def test_failing_clustering_falls_back_to_threshold(two_families, monkeypatch, caplog) -> None:
    import heritage.lineage.clustering as clustering_module

    def broken(*args, **kwargs):
        raise ValueError("degenerate input")

    monkeypatch.setattr(clustering_module, "_kmeans", broken)
    _zoo, fps = two_families
    with caplog.at_level("WARNING", logger="heritage.lineage.recovery"):
        families = GenealogyRecovery(clustering="kmeans").cluster(list(fps.values()))
    assert sorted(len(f) for f in families) == [7, 10]
    assert "falling back to threshold clustering" in caplog.text


def test_models_without_attention_are_fingerprinted_by_their_mlp(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    from heritage.reading.layers import LayerRole

    rng = np.random.default_rng(0)
    weights = {"mlp.fc1.weight": rng.standard_normal((32, 16)).astype(np.float32),
               "mlp.fc2.weight": rng.standard_normal((16, 32)).astype(np.float32)}
    save_file(weights, str(tmp_path / "mlp.safetensors"))
    fp = fingerprint_model(load_model(tmp_path / "mlp.safetensors"))
    assert {l.role for l in fp.layers.values()} == {LayerRole.MLP}
    assert pair_distance(fp, fp, "l2") == 0.0


def test_threads_keep_the_jobs_order_and_raise_the_first_failure_in_it() -> None:
    """``fingerprint_model``'s threads: results in the jobs' order; of two failures the
    earlier job's is raised even when the later one fails first in time, and the jobs
    before it all complete; nothing far past the failure is started."""
    import threading
    import time

    from heritage.reading.fingerprint import _run_in_order

    ran: list[int] = []
    lock = threading.Lock()

    def job(i: int, fail_after: float | None = None, pause: float = 0.0):
        def run() -> int:
            if fail_after is not None:
                time.sleep(fail_after)
                raise ValueError(f"job {i}")
            time.sleep(pause)
            with lock:
                ran.append(i)
            return i * i
        return run

    plain = [(f"j{i}", job(i, pause=0.002)) for i in range(12)]
    assert _run_in_order(plain, threads=2) == {f"j{i}": i * i for i in range(12)}
    assert sorted(ran) == list(range(12))

    ran.clear()
    jobs = [(f"j{i}", job(i, fail_after=0.2 if i == 3 else 0.0 if i == 6 else None, pause=0.01))
            for i in range(40)]
    with pytest.raises(ValueError, match="job 3"):  # job 6 fails 0.2 s earlier
        _run_in_order(jobs, threads=2)
    assert {0, 1, 2, 4, 5} <= set(ran)
    assert max(ran) < 20  # once job 6 failed, no later job was started

    ran.clear()
    with pytest.raises(ValueError, match="job 3"):
        _run_in_order(jobs, threads=1)
    assert ran == [0, 1, 2]


def test_two_threads_name_the_first_bad_matrix_like_one() -> None:
    from heritage.errors import InvalidWeightsError
    from heritage.reading.arrays import model_from_arrays

    rng = np.random.default_rng(0)
    arrays = {f"encoder.layer.{i}.attention.self.query.weight": rng.standard_normal((16, 16)).astype(np.float32)
              for i in range(6)}
    arrays["encoder.layer.2.attention.self.query.weight"][3, 3] = np.nan
    arrays["encoder.layer.4.attention.self.query.weight"][0, 0] = np.inf
    for threads in (1, 2):
        with pytest.raises(InvalidWeightsError, match=r"layer\.2\."):
            fingerprint_model(model_from_arrays(arrays), threads=threads)
