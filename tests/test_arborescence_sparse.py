"""The sparse minimum arborescence (Tarjan, O(E log V)) against the dense Chu-Liu/Edmonds
and networkx: the same optimum on complete graphs, networkx's optimum on sparse ones
(also where leaving edges out changes the optimum), the same virtual-root convention."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest

from heritage.lineage.arborescence import minimum_arborescence, sparse_minimum_arborescence
from heritage.lineage.trees import validate_tree


def _cost(costs: np.ndarray, edges) -> float:
    return float(sum(costs[p, c] for p, c in edges))


def _networkx_cost(n: int, parents, children, weights) -> float:
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(zip(parents.tolist(), children.tolist(), weights.tolist()))
    reference = nx.minimum_spanning_arborescence(graph)
    return float(sum(graph[p][c]["weight"] for p, c in reference.edges()))


@pytest.mark.parametrize("seed", range(40))
def test_complete_graphs_give_the_dense_optimum(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    costs = rng.random((n, n)) * rng.choice([1.0, 100.0])
    if seed % 3 == 0:
        costs = costs.round(1)  # many ties
    i, j = np.nonzero(~np.eye(n, dtype=bool))
    ours = sparse_minimum_arborescence(n, i, j, costs[i, j])
    dense = minimum_arborescence(costs.copy())
    assert len(ours) == n - 1
    assert validate_tree(ours, list(range(n))).valid
    assert _cost(costs, ours) == pytest.approx(_cost(costs, dense), abs=1e-9)
    assert _cost(costs, ours) == pytest.approx(_networkx_cost(n, i, j, costs[i, j]), abs=1e-9)


def _sparse_graph(rng: np.random.Generator, n: int, density: float) -> tuple[np.ndarray, np.ndarray]:
    """A random spanning tree (so an arborescence exists) plus random extra edges."""
    order = rng.permutation(n)
    tree_p = [order[int(rng.integers(0, k))] for k in range(1, n)]
    extra = rng.random((n, n)) < density
    np.fill_diagonal(extra, False)
    p = np.r_[np.asarray(tree_p, dtype=np.int64), np.nonzero(extra)[0]]
    c = np.r_[order[1:], np.nonzero(extra)[1]]
    keys = np.unique(p * n + c)
    return keys // n, keys % n


@pytest.mark.parametrize("seed", range(60))
def test_sparse_graphs_give_networkx_optimum_even_where_it_differs_from_dense(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(2, 60))
    costs = rng.random((n, n))
    p, c = _sparse_graph(rng, n, density=float(rng.choice([0.02, 0.1, 0.3])))
    ours = sparse_minimum_arborescence(n, p, c, costs[p, c])
    assert len(ours) == n - 1
    assert validate_tree(ours, list(range(n))).valid
    allowed = set(zip(p.tolist(), c.tolist()))
    assert all(edge in allowed for edge in ours)
    assert _cost(costs, ours) == pytest.approx(_networkx_cost(n, p, c, costs[p, c]), abs=1e-9)
    assert _cost(costs, ours) >= _cost(costs, minimum_arborescence(costs.copy())) - 1e-9


def test_leaving_out_edges_changes_the_optimum_and_it_follows_the_sparse_graph() -> None:
    """Over many random graphs, the candidate set often excludes the dense optimum's edges:
    then the sparse optimum is dearer than the dense one and still networkx's."""
    differed = 0
    for seed in range(30):
        rng = np.random.default_rng(seed)
        n = 25
        costs = rng.random((n, n))
        p, c = _sparse_graph(rng, n, density=0.15)
        ours = _cost(costs, sparse_minimum_arborescence(n, p, c, costs[p, c]))
        dense = _cost(costs, minimum_arborescence(costs.copy()))
        assert ours == pytest.approx(_networkx_cost(n, p, c, costs[p, c]), abs=1e-9)
        differed += ours > dense + 1e-9
    assert differed >= 20


def test_the_virtual_root_picks_the_root_as_the_dense_one_does() -> None:
    # Node 2 is the only possible root: nothing enters it.
    p, c = np.array([2, 2, 0, 1]), np.array([0, 1, 1, 0])
    w = np.array([5.0, 5.0, 1.0, 1.0])
    assert sparse_minimum_arborescence(3, p, c, w) == [(0, 1), (2, 0)]
    dense = np.full((3, 3), np.inf)
    dense[p, c] = w
    assert minimum_arborescence(dense) == [(0, 1), (2, 0)]


def test_infinite_costs_self_loops_and_parallel_edges() -> None:
    p = np.array([0, 0, 0, 1, 1, 1])
    c = np.array([1, 1, 0, 0, 2, 2])
    w = np.array([3.0, 1.0, 0.0, np.inf, 2.0, 9.0])  # the cheaper parallel edge counts
    assert sparse_minimum_arborescence(3, p, c, w) == [(0, 1), (1, 2)]


def test_a_node_nothing_reaches_is_a_root_of_its_own() -> None:
    # Node 2 has no incoming edge and reaches nobody: two roots, n - 2 edges (as dense).
    assert sparse_minimum_arborescence(3, [0], [1], [1.0]) == [(0, 1)]
    dense = np.full((3, 3), np.inf)
    dense[0, 1] = 1.0
    assert minimum_arborescence(dense) == [(0, 1)]


def test_small_and_bad_input() -> None:
    assert sparse_minimum_arborescence(0, [], [], []) == []
    assert sparse_minimum_arborescence(1, [], [], []) == []
    with pytest.raises(ValueError, match="one entry per edge"):
        sparse_minimum_arborescence(3, [0, 1], [1], [1.0])
    with pytest.raises(ValueError, match="join nodes 0..2"):
        sparse_minimum_arborescence(3, [0], [3], [1.0])


def test_a_long_chain_of_cycles_contracts_without_recursion_limits() -> None:
    """Every node prefers its successor (one big cycle), reached from the virtual root:
    thousands of contractions, the optimum drops the cycle's dearest edge."""
    n = 3000
    p = np.arange(n)
    c = (p + 1) % n
    w = np.ones(n)
    w[n // 2] = 5.0  # the edge (n/2) -> (n/2 + 1) is dropped: n/2 + 1 is the root
    edges = sparse_minimum_arborescence(n, p, c, w)
    assert len(edges) == n - 1 and (n // 2, n // 2 + 1) not in edges
