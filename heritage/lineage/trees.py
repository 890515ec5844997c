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
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import networkx as nx
import numpy as np

from heritage.lineage.arborescence import minimum_arborescence, sparse_minimum_arborescence
from heritage.lineage.direction import Regime, against, against_edges, undirected_mst

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
    costs = mother_edge_costs(distances, against(regime, kurtosis, distances), mean_d, lam, against_structure)
    np.fill_diagonal(costs, np.inf)
    return costs


def _margin(costs: np.ndarray, parent: int, child: int) -> float:
    chosen = costs[parent, child]
    alternatives = [costs[q, child] for q in range(costs.shape[0]) if q not in (parent, child)]
    alternatives.append(costs[child, parent])
    return _relative_margin(chosen, min(alternatives))


def _relative_margin(chosen: float, best_alt: float) -> float:
    """``1 - chosen / best alternative``, clipped to [0, 1]."""
    if not np.isfinite(best_alt) or best_alt <= 0:
        return 0.0 if best_alt <= chosen else 1.0
    return float(max(0.0, min(1.0, 1.0 - chosen / best_alt)))


def build_tree(distances: np.ndarray, kurtosis: Sequence[float],
               method: TreeBuildingMethod | str = TreeBuildingMethod.MOTHER,
               lam: float = DEFAULT_LAMBDA,
               regime: Regime = Regime.FINE_TUNING,
               forbidden: np.ndarray | None = None,
               against_structure: np.ndarray | None = None,
               not_root: np.ndarray | None = None) -> list[TreeEdge]:
    """Return the genealogy tree of one family of models.

    Parameters
    ----------
    distances : ndarray of shape (n, n)
        Symmetric distances between the family's models (see
        :mod:`heritage.lineage.distances`).
    kurtosis : sequence of float
        Excess kurtosis of each model's weights, the direction signal of fine-tuning.
    method : TreeBuildingMethod or str, default "mother"
        ``mother``: minimum arborescence of the MoTHer costs (module docstring);
        ``distance_only``: undirected minimum spanning tree rooted at the medoid;
        ``kurtosis_only``: a chain ordered by kurtosis.
    lam : float, default 0.3
        Weight of the direction penalty, as a share of the mean distance.
    regime : Regime, default Regime.FINE_TUNING
        Which way edges should point: from higher to lower kurtosis (fine-tuning), from
        lower to higher (pretraining), or from the family's centre outwards
        (centrality); see :func:`heritage.lineage.direction.decide_direction`.
    forbidden : ndarray of bool, shape (n, n), optional
        ``forbidden[i, j]`` rules the edge ``i -> j`` out (``mother`` only): structural
        facts such as "a model with fewer blocks is not the parent of one with more", or
        a merge's fitted parents.
    against_structure : ndarray of bool, shape (n, n), optional
        ``against_structure[i, j]`` (``mother`` only) makes the edge ``i -> j`` dearer
        without ruling it out (:func:`mother_costs`): e.g. a model carrying a trained task
        head as the parent of a headless one.

    Returns
    -------
    list of TreeEdge
        ``n - 1`` edges by model index, each with its distance and a confidence in
        [0, 1]: the relative margin of the chosen parent over the best alternative (0 is
        a coin toss).

    See Also
    --------
    heritage.lineage.arborescence.minimum_arborescence
    heritage.lineage.direction.decide_direction
    validate_tree, tree_statistics

    Examples
    --------
    Three models in a row, kurtosis falling along the row as fine-tuning makes it:

    >>> import numpy as np
    >>> distances = np.array([[0.0, 0.1, 0.2],
    ...                       [0.1, 0.0, 0.15],
    ...                       [0.2, 0.15, 0.0]])
    >>> [(e.parent, e.child) for e in build_tree(distances, kurtosis=[3.0, 2.0, 1.0])]
    [(0, 1), (1, 2)]

    Under the pretraining regime the same data point the other way:

    >>> [(e.parent, e.child) for e in build_tree(distances, [3.0, 2.0, 1.0], regime=Regime.PRETRAINING)]
    [(1, 0), (2, 1)]
    """
    method = TreeBuildingMethod(method)
    n = distances.shape[0]
    if n < 2:
        return []
    if method is TreeBuildingMethod.MOTHER:
        costs = mother_costs(distances, kurtosis, lam, regime, against_structure)
        if forbidden is not None:
            costs[forbidden] = np.inf
        pairs = minimum_arborescence(costs, not_root)
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


def mother_edge_costs(distances: np.ndarray, wrong: np.ndarray, mean_distance: float, lam: float,
                      against_structure: np.ndarray | None = None) -> np.ndarray:
    """The MoTHer cost of each candidate edge of a large family: :func:`mother_costs`'
    formula on edges (``wrong``: the edge goes against the direction signal,
    ``mean_distance``: the family's mean distance, estimated)."""
    costs = distances + lam * mean_distance * wrong
    if against_structure is not None:
        costs = costs + STRUCTURE_PENALTY * lam * mean_distance * against_structure
    return costs


def build_tree_sparse(n: int, parents: np.ndarray, children: np.ndarray, distances: np.ndarray,
                      kurtosis: Sequence[float], centre: np.ndarray, mean_distance: float,
                      lam: float = DEFAULT_LAMBDA, regime: Regime = Regime.FINE_TUNING,
                      forbidden: np.ndarray | None = None,
                      against_structure: np.ndarray | None = None,
                      not_root: np.ndarray | None = None) -> list[TreeEdge]:
    """The ``mother`` tree of :func:`build_tree` on candidate edges only (a large family).

    Parameters
    ----------
    n : int
        Number of models.
    parents, children, distances : ndarray of shape (E,)
        Candidate edges ``parents[e] -> children[e]`` (both directions of each candidate
        pair) and their distances.
    kurtosis : sequence of float
        Each model's kurtosis.
    centre : ndarray of shape (n,)
        Each model's mean distance to the others (estimated): the ``centrality`` signal.
    mean_distance : float
        The family's mean distance (estimated), the scale of the direction penalty.
    lam, regime
        As in :func:`build_tree`.
    forbidden, against_structure : ndarray of bool, shape (E,), optional
        Per edge, as the matrices of :func:`build_tree`.
    not_root : ndarray of bool, shape (n,), optional
        As in :func:`build_tree`.

    Returns
    -------
    list of TreeEdge
        As :func:`build_tree`; a confidence's best alternative is taken among the
        candidate edges.

    Examples
    --------
    The three models of :func:`build_tree`'s example, on the two near pairs only:

    >>> import numpy as np
    >>> tree = build_tree_sparse(3, np.array([0, 1, 1, 2]), np.array([1, 0, 2, 1]),
    ...                          np.array([0.1, 0.1, 0.15, 0.15]), [3.0, 2.0, 1.0],
    ...                          centre=np.array([0.15, 0.125, 0.175]), mean_distance=0.15)
    >>> [(e.parent, e.child) for e in tree]
    [(0, 1), (1, 2)]
    """
    parents = np.asarray(parents, dtype=np.int64)
    children = np.asarray(children, dtype=np.int64)
    distances = np.asarray(distances, dtype=np.float64)
    if n < 2:
        return []
    wrong = against_edges(regime, kurtosis, centre, parents, children)
    costs = mother_edge_costs(distances, wrong, mean_distance, lam, against_structure)
    if forbidden is not None:
        costs = np.where(forbidden, np.inf, costs)
    pairs = sparse_minimum_arborescence(n, parents, children, costs, not_root)
    # Per child, its incoming candidate edges (for the margins); per pair, its edge.
    order = np.lexsort((costs, children))
    starts = np.searchsorted(children[order], np.arange(n + 1))
    edge_of = {(int(p), int(c)): e for e, (p, c) in enumerate(zip(parents.tolist(), children.tolist()))}
    tree = []
    for p, c in pairs:
        chosen = float(costs[edge_of[p, c]])
        incoming = order[starts[c]:starts[c + 1]]
        others = incoming[parents[incoming] != p]
        best_alt = float(costs[others[0]]) if others.size else np.inf
        back = edge_of.get((c, p))
        if back is not None:
            best_alt = min(best_alt, float(costs[back]))
        tree.append(TreeEdge(parent=p, child=c, distance=float(distances[edge_of[p, c]]),
                             confidence=_relative_margin(chosen, best_alt)))
    return tree


@dataclass(frozen=True)
class TreeShape:
    """Where each node sits in a recovered tree, and how well the root is supported:
    evidence for edge calibration (:mod:`heritage.lineage.calibration`), computed in one
    pass over the edges.

    ``depth``/``subtree``: per node, edges from the root and nodes in its subtree
    (itself included); ``root_children``: children of the root (a root with one child is
    the end of a chain, whose direction only kurtosis decides); ``root_central``: the
    root is the family's most central model; ``root_kurtosis``: it has the most
    parent-like kurtosis of the family; ``kurtosis_sign``/``kurtosis_spread``: turn a
    kurtosis difference into a parent-like step in units of the family's spread.
    """

    depth: list[int]
    subtree: list[int]
    root_children: int
    root_central: bool
    root_kurtosis: bool
    kurtosis_sign: float
    kurtosis_spread: float


def tree_shape(n: int, tree: Sequence[TreeEdge], centre: np.ndarray, kurtosis: np.ndarray,
               kurtosis_regime: Regime) -> TreeShape:
    """The :class:`TreeShape` of a tree over ``n`` nodes (O(n); ``centre``: each node's
    mean distance to the others, ``kurtosis_regime``: the family's kurtosis direction).

    Examples
    --------
    >>> shape = tree_shape(3, [TreeEdge(0, 1, 1.0, 0.5), TreeEdge(1, 2, 1.0, 0.5)],
    ...                    np.array([1.5, 1.0, 1.5]), np.array([3.0, 2.0, 1.0]), Regime.FINE_TUNING)
    >>> shape.depth, shape.subtree, shape.root_children, shape.root_central, shape.root_kurtosis
    ([0, 1, 2], [3, 2, 1], 1, False, True)
    """
    children: list[list[int]] = [[] for _ in range(n)]
    has_parent = np.zeros(n, dtype=bool)
    for e in tree:
        children[e.parent].append(e.child)
        has_parent[e.child] = True
    roots = [int(k) for k in np.flatnonzero(~has_parent)]
    depth, subtree, order = [0] * n, [1] * n, []
    stack = list(roots)
    while stack:
        k = stack.pop()
        order.append(k)
        for c in children[k]:
            depth[c] = depth[k] + 1
            stack.append(c)
    for k in reversed(order):  # children before their parents
        for c in children[k]:
            subtree[k] += subtree[c]
    sign = -1.0 if kurtosis_regime is Regime.PRETRAINING else 1.0
    root = roots[0] if roots else 0
    return TreeShape(
        depth=depth, subtree=subtree,
        root_children=len(children[root]) if n else 0,
        root_central=bool(n and int(np.argmin(centre)) == root),
        root_kurtosis=bool(n and int(np.argmax(sign * kurtosis)) == root),
        kurtosis_sign=sign,
        kurtosis_spread=float(np.std(kurtosis)) or 1.0,
    )


class TreeValidation(NamedTuple):
    """Whether edges form one genealogy, and every reason they do not (empty when valid).

    A named tuple, so ``valid, issues = validate_tree(...)`` works as well as
    ``validate_tree(...).valid``.
    """

    valid: bool
    issues: list[str]


@dataclass(frozen=True)
class TreeStatistics:
    """Shape of a forest: sizes, roots and leaves (sorted by ``str``), longest root-to-leaf
    path in edges, and branching over the nodes that have children (a merge child counts
    once under each of its parents)."""

    nodes: int
    edges: int
    roots: list[Hashable]
    leaves: list[Hashable]
    depth: int
    max_branching: int
    mean_branching: float


def validate_tree(edges: Sequence[tuple[Hashable, ...]], nodes: Sequence[Hashable]) -> TreeValidation:
    """Check that edges form one genealogy over the given nodes.

    Parameters
    ----------
    edges : sequence of (parent, child) or (parent, child, relation)
        Directed edges, parent first (names, ids, indexes: any hashable); a third item
        is the edge's relation (``"merge"`` for the parents of a merged model).
    nodes : sequence
        Every node the genealogy must span.

    Returns
    -------
    TreeValidation
        ``(valid, issues)``: valid when every node has at most one parent, except a
        merge child (all of whose edges have the relation ``merge``), which has two or
        more; no edge leaves ``nodes``; there is no cycle, exactly one root, and every
        node is reached from it.  So a valid genealogy is a tree apart from its merge
        children.  ``issues`` says what fails, one line each.

    See Also
    --------
    tree_statistics

    Examples
    --------
    >>> validate_tree([("base", "chat"), ("base", "code")], ["base", "chat", "code"])
    TreeValidation(valid=True, issues=[])
    >>> valid, issues = validate_tree([("a", "b"), ("c", "b")], ["a", "b", "c"])
    >>> valid, issues
    (False, ["'b' has more than one parent", 'expected one root, found 2'])
    >>> validate_tree([("r", "a"), ("r", "b"), ("a", "m", "merge"), ("b", "m", "merge")], ["r", "a", "b", "m"])
    TreeValidation(valid=True, issues=[])
    """
    issues: list[str] = []
    node_set = set(nodes)
    graph = nx.DiGraph()
    graph.add_nodes_from(node_set)
    relations: dict[Hashable, list[Hashable | None]] = {}
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
    return TreeValidation(not issues, issues)


def tree_statistics(edges: Sequence[tuple[Hashable, ...]], nodes: Sequence[Hashable]) -> TreeStatistics:
    """Describe the shape of a forest.

    Parameters
    ----------
    edges : sequence of (parent, child) or (parent, child, relation)
        Directed edges, parent first.
    nodes : sequence
        Every node (one without edges is a root and a leaf).

    Returns
    -------
    TreeStatistics
        Node and edge counts, roots and leaves (sorted by ``str``), the depth (longest
        root-to-leaf path, in edges; 0 when the edges hold a cycle) and the branching
        (children per node that has any: maximum and mean).

    See Also
    --------
    validate_tree

    Examples
    --------
    >>> stats = tree_statistics([("base", "chat"), ("base", "code"), ("chat", "chat-v2")],
    ...                         ["base", "chat", "code", "chat-v2"])
    >>> stats.roots, stats.leaves, stats.depth, stats.max_branching
    (['base'], ['chat-v2', 'code'], 2, 2)
    """
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
    return TreeStatistics(
        nodes=graph.number_of_nodes(),
        edges=graph.number_of_edges(),
        roots=roots,
        leaves=leaves,
        depth=depth,
        max_branching=max(internal, default=0),
        mean_branching=float(np.mean(internal)) if internal else 0.0,
    )
