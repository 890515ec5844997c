"""Which way each edge points: kurtosis with its regime decided from the data, or centrality.

Excess kurtosis of weight matrices moves monotonically with long training: large-scale
(pre)training makes weights heavier-tailed (kurtosis rises), fine-tuning with dense
optimiser updates makes them less so (kurtosis falls). The MoTHer reference needs a
per-family flag for that regime; we decide it from the data, and we also check that
kurtosis carries a signal at all: a short fine-tune moves kurtosis by less than the
differences between siblings, and then edge directions from kurtosis are a coin toss.

The rule, per family (:func:`decide_direction`):

1. connect the family by its undirected minimum spanning tree over the distance
   (parent-child pairs are the closest pairs);
2. for each candidate *direction signal* and each choice of root, orient the tree away
   from the root and count the edges the signal agrees with. The signals are
   ``fine_tuning`` (the parent has the higher kurtosis), ``pretraining`` (the lower),
   and ``centrality`` (the parent is closer, on average, to the rest of the family:
   fine-tunes of one base move in independent directions, so a base sits at the
   centre of its descendants). A signal's *agreement* is its best count over roots,
   as a share of the edges;
3. the kurtosis regime is whichever of ``fine_tuning``/``pretraining`` agrees more
   (ties: ``fine_tuning``, by far the common case in model hubs);
4. kurtosis is used when its regime is decided (one of the two agrees more than the
   other) and it agrees at least as well as centrality; otherwise ``centrality``
   decides. Because mean distance is convex along the paths of a tree, centrality
   agrees fully with trees rooted at their centre, so kurtosis must be fully
   consistent to win that comparison. Kurtosis that is monotone along a path fits both
   regimes equally (the root could be either end): such a family, a star of two
   fine-tunes for instance, carries no regime evidence, and its centre is its root.
   A two-model family has no centre and always uses kurtosis, in the fine-tuning regime.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Sequence

import networkx as nx
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import minimum_spanning_tree


class Regime(str, enum.Enum):
    FINE_TUNING = "fine_tuning"  # parents have higher kurtosis than children
    PRETRAINING = "pretraining"  # parents have lower kurtosis than children
    CENTRALITY = "centrality"  # parents are more central in the family than children


@dataclass(frozen=True)
class RegimeDecision:
    regime: Regime
    kurtosis_regime: Regime
    agreement: dict[str, float] = field(default_factory=dict)

    @property
    def evidence(self) -> str:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in self.agreement.items())
        return f"{self.regime.value} (edges explained: {shares})" if shares else self.regime.value


def undirected_mst(distances: np.ndarray) -> nx.Graph:
    """Minimum spanning tree of the complete graph on ``distances`` (Prim's algorithm in
    NumPy: O(n^2) vector steps rather than n^2 / 2 Python graph edges)."""
    n = distances.shape[0]
    tree = nx.Graph()
    tree.add_nodes_from(range(n))
    if n < 2:
        return tree
    inside = np.zeros(n, dtype=bool)
    inside[0] = True
    best = distances[0].astype(np.float64).copy()
    link = np.zeros(n, dtype=int)
    for _ in range(n - 1):
        j = int(np.argmin(np.where(inside, np.inf, best)))
        tree.add_edge(int(link[j]), j, weight=float(best[j]))
        inside[j] = True
        closer = distances[j] < best
        best = np.where(closer, distances[j], best)
        link = np.where(closer, j, link)
    return tree


def centrality(distances: np.ndarray) -> np.ndarray:
    """Mean distance of each model to the others (lower = more central)."""
    n = distances.shape[0]
    return distances.sum(axis=1) / max(n - 1, 1)


def against(regime: Regime, kurtosis: Sequence[float], distances: np.ndarray) -> np.ndarray:
    """Boolean matrix: ``[i, j]`` is True when the edge i -> j goes against ``regime``."""
    if regime is Regime.CENTRALITY:
        score = centrality(distances)
        return score[None, :] < score[:, None]  # the child would be more central
    ku = np.asarray(kurtosis, dtype=np.float64)
    if regime is Regime.FINE_TUNING:
        return ku[None, :] > ku[:, None]
    return ku[None, :] < ku[:, None]


def against_heads(task_head: Sequence[bool], headless: Sequence[bool]) -> np.ndarray:
    """Boolean matrix: ``[i, j]`` is True when the edge i -> j would take a task head away.

    Fine-tuning for a task adds a head (``classifier``, ``score``, ``qa_outputs`` ...) to
    a base that is published without one; a model carrying a trained task head is not the
    base of a model with no head at all. ``task_head[i]``: model i carries a task head;
    ``headless[j]``: model j carries no head (poolers aside). Unlike kurtosis, this holds
    however short the fine-tune, so it decides a two-model family's direction where the
    file structure says it.

    Examples
    --------
    >>> against_heads([False, True], [True, False]).tolist()
    [[False, False], [True, False]]
    """
    carries = np.asarray(task_head, dtype=bool)
    bare = np.asarray(headless, dtype=bool)
    return carries[:, None] & bare[None, :]


def best_root_agreement(tree: nx.Graph, wrong: Any) -> float:
    """Largest share of tree edges oriented with the signal, over all roots (O(n) rerooting).

    ``wrong[p, c]``: the edge p -> c goes against the signal (a matrix, or a mapping of
    the tree's edges in both directions).  A forest counts each tree from its own best
    root."""
    edges = tree.number_of_edges()
    if edges == 0:
        return 1.0
    best = 0
    for component in nx.connected_components(tree):
        root = next(iter(component))
        agree = {root: sum(1 for p, c in nx.bfs_edges(tree, root) if not wrong[p, c])}
        for p, c in nx.bfs_edges(tree, root):  # move the root from p to c: edge (p, c) flips
            agree[c] = agree[p] - (not wrong[p, c]) + (not wrong[c, p])
        best += max(agree.values())
    return best / edges


def against_edges(regime: Regime, kurtosis: Sequence[float], centre: np.ndarray,
                  parents: np.ndarray, children: np.ndarray) -> np.ndarray:
    """:func:`against` on edges ``parents[e] -> children[e]`` only (``centre``: each
    model's mean distance to the others, :func:`centrality` or an estimate of it)."""
    if regime is Regime.CENTRALITY:
        score = np.asarray(centre, dtype=np.float64)
        return score[children] < score[parents]
    ku = np.asarray(kurtosis, dtype=np.float64)
    if regime is Regime.FINE_TUNING:
        return ku[children] > ku[parents]
    return ku[children] < ku[parents]


def _decision(n: int, agreement_of: Any) -> RegimeDecision:
    """The rule of :func:`decide_direction` from each signal's agreement."""
    agreement = {regime.value: agreement_of(regime)
                 for regime in (Regime.FINE_TUNING, Regime.PRETRAINING, Regime.CENTRALITY)}
    ft, pt = agreement[Regime.FINE_TUNING.value], agreement[Regime.PRETRAINING.value]
    kurtosis_regime = Regime.FINE_TUNING if ft >= pt else Regime.PRETRAINING
    if n == 2:
        agreement.pop(Regime.CENTRALITY.value)
        return RegimeDecision(Regime.FINE_TUNING, Regime.FINE_TUNING, agreement)
    decisive = ft != pt and max(ft, pt) >= agreement[Regime.CENTRALITY.value]
    chosen = kurtosis_regime if decisive else Regime.CENTRALITY
    return RegimeDecision(chosen, kurtosis_regime, agreement)


def decide_direction_sparse(n: int, i: np.ndarray, j: np.ndarray, distances: np.ndarray,
                            kurtosis: Sequence[float], centre: np.ndarray) -> RegimeDecision:
    """:func:`decide_direction` for a large family known on candidate edges ``(i, j)``
    only: the minimum spanning tree is that of the candidate graph (a forest where it is
    not connected) and ``centre`` is each model's mean distance to the others, estimated.

    Examples
    --------
    The star of :func:`decide_direction` on its three tree edges alone:

    >>> decision = decide_direction_sparse(4, np.array([0, 0, 0]), np.array([1, 2, 3]),
    ...                                    np.array([0.1, 0.1, 0.1]), [3.0, 2.0, 2.5, 1.0],
    ...                                    centre=np.array([0.1, 0.17, 0.17, 0.17]))
    >>> decision.regime.value, decision.agreement["fine_tuning"]
    ('fine_tuning', 1.0)
    """
    if n < 2:
        return RegimeDecision(Regime.FINE_TUNING, Regime.FINE_TUNING)
    # scipy's sparse graphs read a stored 0 as no edge: equal models get a tiny distance.
    graph = coo_matrix((np.maximum(distances, 1e-300), (i, j)), shape=(n, n)).tocsr()
    forest = minimum_spanning_tree(graph).tocoo()
    tree = nx.Graph()
    tree.add_nodes_from(range(n))
    tree.add_edges_from(zip(forest.row.tolist(), forest.col.tolist()))
    p = np.r_[forest.row, forest.col].astype(np.int64)
    c = np.r_[forest.col, forest.row].astype(np.int64)
    keys = list(zip(p.tolist(), c.tolist()))

    def agreement_of(regime: Regime) -> float:
        return best_root_agreement(tree, dict(zip(keys, against_edges(regime, kurtosis, centre, p, c).tolist())))

    return _decision(n, agreement_of)


def decide_direction(distances: np.ndarray, kurtosis: Sequence[float]) -> RegimeDecision:
    """Decide which way the edges of one family point.

    Parameters
    ----------
    distances : ndarray of shape (n, n)
        Symmetric distances between the family's models.
    kurtosis : sequence of float
        Excess kurtosis of each model's weights.

    Returns
    -------
    RegimeDecision
        ``regime``: the signal to build the tree with (``fine_tuning``, ``pretraining``
        or ``centrality``); ``kurtosis_regime``: the kurtosis direction that fits best,
        for methods that need one; ``agreement``: each signal's share of the minimum
        spanning tree's edges it explains from its best root; ``evidence``: all of it in
        one line.

    See Also
    --------
    heritage.lineage.trees.build_tree

    Notes
    -----
    The rule is in the module docstring: kurtosis decides when its regime is
    determined (one direction explains more edges than the other) and it explains the
    tree at least as well as centrality; otherwise the family's centre is its root.  A
    two-model family always uses kurtosis in the fine-tuning regime.

    Examples
    --------
    A base at the centre of three fine-tunes, kurtosis falling from it to each:

    >>> import numpy as np
    >>> distances = np.array([[0.0, 0.1, 0.1, 0.1],
    ...                       [0.1, 0.0, 0.2, 0.2],
    ...                       [0.1, 0.2, 0.0, 0.2],
    ...                       [0.1, 0.2, 0.2, 0.0]])
    >>> decision = decide_direction(distances, kurtosis=[3.0, 2.0, 2.5, 1.0])
    >>> decision.regime.value, decision.agreement["fine_tuning"], round(decision.agreement["pretraining"], 2)
    ('fine_tuning', 1.0, 0.33)

    Kurtosis that merely falls along a path fits both directions (either end could be
    the root): no evidence, and centrality decides:

    >>> path = np.array([[0.0, 0.1, 0.2], [0.1, 0.0, 0.15], [0.2, 0.15, 0.0]])
    >>> decide_direction(path, [3.0, 2.0, 1.0]).regime.value
    'centrality'
    """
    n = len(kurtosis)
    if n < 2:
        return RegimeDecision(Regime.FINE_TUNING, Regime.FINE_TUNING)
    tree = undirected_mst(distances)
    return _decision(n, lambda regime: best_root_agreement(tree, against(regime, kurtosis, distances)))
