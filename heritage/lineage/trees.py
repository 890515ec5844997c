"""Directed genealogy trees inside one family.

``mother`` (the default) follows the MoTHer recipe: the cost of the edge parent
``i`` -> child ``j`` is

    M[i, j] = D[i, j] + lambda * mean(D) * [the edge points against the kurtosis regime]

(for fine-tuning: a child with *higher* kurtosis than its parent pays the penalty; for
the ``centrality`` signal, a child more central than its parent, see
:mod:`heritage.lineage.direction`), and the tree is the minimum spanning arborescence of the
complete digraph (Chu-Liu/Edmonds, :mod:`heritage.lineage.arborescence`). The penalty is asymmetric, so the
direction of every edge, including the single edge of a two-model family, is decided by
kurtosis and not by input order — unless the files' structure says otherwise: an edge
that would take a task head away (a classifier as the base of a headless model) pays
twice that penalty (``against_structure``).

``distance_only`` is the undirected minimum spanning tree rooted at the medoid;
``kurtosis_only`` orders the family by kurtosis into a chain (its confidence is the
kurtosis step relative to the family's kurtosis spread).

Edge confidence is the relative margin of the chosen edge over the best alternative
for the same child (another parent, or the reversed edge):
``1 - cost(chosen) / cost(best alternative)``, in [0, 1]; 0 means a coin toss.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

import networkx as nx
import numpy as np

from heritage.lineage.arborescence import minimum_arborescence
from heritage.lineage.direction import Regime, against, undirected_mst

DEFAULT_LAMBDA = 0.3
# Weight of structural direction evidence (a task head taken away) relative to the
# direction signal's penalty.
STRUCTURE_PENALTY = 2.0


class TreeBuildingMethod(str, enum.Enum):
    MOTHER = "mother"
    DISTANCE_ONLY = "distance_only"
    KURTOSIS_ONLY = "kurtosis_only"


@dataclass(frozen=True)
class TreeEdge:
    parent: int
    child: int
    distance: float
    confidence: float


def mother_costs(distances: np.ndarray, kurtosis: Sequence[float], lam: float,
                 regime: Regime, against_structure: np.ndarray | None = None) -> np.ndarray:
    """The MoTHer edge-cost matrix (row = parent, column = child, diagonal = inf).

    ``against_structure[i, j]`` marks edges the files' structure argues against (a task
    head taken away, :func:`heritage.lineage.direction.against_heads`); each costs
    :data:`STRUCTURE_PENALTY` times the direction signal's penalty, so that structure
    outweighs the signal on a pair of models but not a much nearer parent."""
    n = distances.shape[0]
    off = distances[~np.eye(n, dtype=bool)]
    mean_d = float(off.mean()) if off.size else 0.0
    costs = distances + lam * mean_d * against(regime, kurtosis, distances)
    if against_structure is not None:
        costs = costs + STRUCTURE_PENALTY * lam * mean_d * against_structure
    np.fill_diagonal(costs, np.inf)
    return costs


def _margin(costs: np.ndarray, parent: int, child: int) -> float:
    chosen = costs[parent, child]
    alternatives = [costs[q, child] for q in range(costs.shape[0]) if q not in (parent, child)]
    alternatives.append(costs[child, parent])
    best_alt = min(alternatives)
    if not np.isfinite(best_alt) or best_alt <= 0:
        return 0.0 if best_alt <= chosen else 1.0
    return float(max(0.0, min(1.0, 1.0 - chosen / best_alt)))


def build_tree(distances: np.ndarray, kurtosis: Sequence[float],
               method: TreeBuildingMethod | str = TreeBuildingMethod.MOTHER,
               lam: float = DEFAULT_LAMBDA,
               regime: Regime = Regime.FINE_TUNING,
               forbidden: np.ndarray | None = None,
               against_structure: np.ndarray | None = None) -> list[TreeEdge]:
    """Edges (by index) of the genealogy of one family; N-1 edges for N models.

    ``forbidden[i, j]`` (``mother`` only) rules the edge i -> j out: structural facts
    such as "a model with fewer blocks is not the parent of one with more" or a merge's
    fitted parents; ``against_structure[i, j]`` (``mother`` only) makes it dearer
    (:func:`mother_costs`).
    """
    method = TreeBuildingMethod(method)
    n = distances.shape[0]
    if n < 2:
        return []
    if method is TreeBuildingMethod.MOTHER:
        costs = mother_costs(distances, kurtosis, lam, regime, against_structure)
        if forbidden is not None:
            costs[forbidden] = np.inf
        pairs = minimum_arborescence(costs)
    elif method is TreeBuildingMethod.DISTANCE_ONLY:
        costs = distances.astype(np.float64).copy()
        np.fill_diagonal(costs, np.inf)
        root = int(np.argmin(distances.sum(axis=1)))
        mst = undirected_mst(distances)
        pairs = sorted(nx.bfs_edges(mst, root))
    else:
        ku = np.asarray(kurtosis, dtype=np.float64)
        sign = -1.0 if regime is Regime.PRETRAINING else 1.0
        order = np.argsort(-sign * ku, kind="stable")
        pairs = [(int(order[i]), int(order[i + 1])) for i in range(n - 1)]
        spread = float(ku.std()) or 1.0
        # No distances are involved: confidence is the kurtosis step relative to the spread.
        return [
            TreeEdge(parent=p, child=c, distance=float(distances[p, c]),
                     confidence=float(min(1.0, abs(ku[p] - ku[c]) / spread)))
            for p, c in pairs
        ]
    return [
        TreeEdge(parent=p, child=c, distance=float(distances[p, c]), confidence=_margin(costs, p, c))
        for p, c in pairs
    ]


def validate_tree(edges: Sequence[tuple[object, ...]], nodes: Sequence[object]) -> tuple[bool, list[str]]:
    """Check that ``edges`` form one genealogy over ``nodes``.

    Each edge is ``(parent, child)`` or ``(parent, child, relation)``. Returns
    ``(valid, issues)``: every node has at most one parent, except a merge child (all
    of whose edges have the relation ``merge``), which has two or more; there is
    exactly one root, no cycle, and every node is reachable from the root. So a valid
    genealogy is a tree apart from its merge children.
    """
    issues: list[str] = []
    node_set = set(nodes)
    graph = nx.DiGraph()
    graph.add_nodes_from(node_set)
    relations: dict[object, list[object]] = {}
    for edge in edges:
        parent, child = edge[0], edge[1]
        if parent not in node_set or child not in node_set:
            issues.append(f"edge {parent!r} -> {child!r} names a model outside the family")
            continue
        relations.setdefault(child, []).append(edge[2] if len(edge) > 2 else None)
        graph.add_edge(parent, child)
    for child, kinds in relations.items():
        if len(kinds) > 1 and any(kind != "merge" for kind in kinds):
            issues.append(f"{child!r} has more than one parent")
    if not nx.is_directed_acyclic_graph(graph):
        issues.append("the tree contains a cycle")
    roots = [n for n in node_set if graph.in_degree(n) == 0]
    if len(roots) != 1:
        issues.append(f"expected one root, found {len(roots)}")
    elif len(nx.descendants(graph, roots[0])) != len(node_set) - 1:
        issues.append("not every model is connected to the root")
    return (not issues, issues)


def tree_statistics(edges: Sequence[tuple[object, ...]], nodes: Sequence[object]) -> dict[str, object]:
    """Roots, leaves, depth and branching of a forest given as (parent, child[, relation])
    edges; a merge child counts once under each of its parents."""
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    graph.add_edges_from((e[0], e[1]) for e in edges)
    roots = sorted((n for n in graph if graph.in_degree(n) == 0), key=str)
    leaves = sorted((n for n in graph if graph.out_degree(n) == 0), key=str)
    depth = 0
    if nx.is_directed_acyclic_graph(graph):
        for root in roots:
            lengths = nx.single_source_shortest_path_length(graph, root)
            depth = max(depth, max(lengths.values()))
    internal = [graph.out_degree(n) for n in graph if graph.out_degree(n) > 0]
    return {
        "nodes": graph.number_of_nodes(),
        "edges": graph.number_of_edges(),
        "roots": roots,
        "leaves": leaves,
        "depth": depth,
        "max_branching": max(internal, default=0),
        "mean_branching": float(np.mean(internal)) if internal else 0.0,
    }
