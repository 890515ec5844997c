"""Families of a whole hub without the N x N distance matrix.

The exact path (:meth:`GenealogyRecovery.cluster` with ``search="exact"``) computes every
pairwise fingerprint distance of an architecture and cuts its single-linkage dendrogram:
quadratic in time, and it needs every fingerprint at once.  Families of a hub are many
and mostly small, so here:

1. **Candidates.**  Each model's ``neighbours`` nearest models by placement vector
   (:meth:`Fingerprint.placement_vector`: 256 floats whose Euclidean distances estimate
   relative ``l2`` within about 20%), from a faiss index (exact brute force up to
   ``FLAT_LIMIT`` vectors, HNSW above).  Pairs whose approximate distance exceeds
   ``margin`` times the search radius ``R`` are dropped: an unrelated model (~1.41) costs
   no fingerprint read at all.  Placement vectors are comparable only between models
   with as many blocks (a layer-subset student's vector is made of fewer matrices than
   its teacher's), so a group is searched per *stratum* (block count), and every pair of
   models of different strata is a candidate, compared exactly (as placement in the
   catalogue compares them: :func:`heritage.catalogue.placement._approximate`).  That
   costs the product of the strata's sizes, which is small while students are few.
2. **Exact distances on those edges only**, through a ``pair_distances`` callable that
   loads fingerprints in bounded batches (the aligned ``l2`` of
   :func:`heritage.lineage.distances.aligned_l2`, the exact path's distance).
3. **Component links.**  Single linkage at a cut is the connected components of the
   edges below it, *if* the candidates contain a spanning forest of every component.
   A k-nearest-neighbour graph can miss the one edge that joins two large groups (a base
   and its chat variant, each with hundreds of fine-tunes closer to them than to each
   other), so a Boruvka-style pass links components (within each stratum): each
   component's centroid asks the index of centroids for its nearest components, and the
   members of each side nearest to the other side's centroid are compared exactly;
   repeated until no component merges.
   After it, the components at ``R`` are the exact ones unless the placement vectors
   misjudge a distance by more than ``margin`` (measured recall: see the README).
4. **The cut.**  ``threshold``/``dbscan``: components of the exact edges ``<= threshold``
   (DBSCAN with ``min_samples=1`` is the same thing).  ``auto`` moves the cut into the
   widest gap of single-linkage merge heights near the threshold
   (:func:`heritage.lineage.clustering.auto_cut`); here the heights are those of the
   minimum spanning forest of the candidate graph.  Heights below ``lo = threshold / 3``
   only connect, so a component whose candidate forest has no height in ``(lo, R)`` is
   one family whatever its exact heights.  A component that has such heights (a family
   with a long fine-tune, two related families) gets its dense exact matrix, so its
   heights are the exact path's.  Heights at or above ``R`` may be missing or too large,
   so the chosen gap is *certified*: it must be wider than any gap that unknown heights
   in ``[R, 3 * threshold)`` could open (``log(3 threshold / R)``).  An uncertified cut
   raises ``R`` and repeats; at ``R = 3 * threshold`` the architecture falls back to the
   exact path (logged).  A certified cut gives the exact path's families.

Cost: ``O(N * neighbours)`` exact distances plus the dense matrices of the components
that need them (size ``m`` costs ``m^2 / 2``; above ``dense_limit`` members the candidate
heights are used instead, with a warning) plus the cross-stratum pairs, memory
``O(N * (256 + neighbours))``.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.cluster.hierarchy import linkage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from scipy.spatial.distance import squareform

from heritage.lineage.clustering import _WINDOW, ClusteringMethod, auto_cut

__all__ = [
    "AUTO_RADIUS",
    "FamilySearch",
    "DEFAULT_NEIGHBOURS",
    "DENSE_LIMIT",
    "FLAT_LIMIT",
    "NeighbourIndex",
    "SparseFamilies",
    "SparseReport",
]

log = logging.getLogger(__name__)

DEFAULT_NEIGHBOURS = 16
# Up to this many vectors the index is exact (brute force); above it, HNSW.
FLAT_LIMIT = 4096
# ``auto`` starts with the search radius R = AUTO_RADIUS * threshold (it must exceed the
# threshold for a cut near the threshold to be certifiable) and raises it by
# _RADIUS_STEP while the cut is not certified.
AUTO_RADIUS = 1.25
_RADIUS_STEP = 1.5
# Components that need their dense exact matrix are computed densely up to this size.
DENSE_LIMIT = 2000
# Component-link pass: nearest components asked per component, members compared per side.
_LINK_COMPONENTS = 4
_LINK_MEMBERS = 2
_LINK_ROUNDS = 20
# Exact distances computed per batch (bounded fingerprint reads).
_PAIR_BATCH = 4096
# scipy's sparse graphs treat a stored 0 as "no edge": identical weights get this instead.
_TINY = 1e-300



class FamilySearch(str, enum.Enum):
    """How families are searched: ``sparse`` (this module) or ``exact`` (every pair)."""

    SPARSE = "sparse"
    EXACT = "exact"


PairDistances = Callable[[np.ndarray, np.ndarray], np.ndarray]
DenseDistances = Callable[[np.ndarray], np.ndarray]


class NeighbourIndex:
    """Euclidean k-nearest-neighbour search over placement vectors (faiss).

    Exact (``IndexFlatL2``) up to ``flat_limit`` vectors, HNSW above (``m`` links per
    node, ``ef_search`` at least twice the neighbours asked for).
    """

    def __init__(self, vectors: np.ndarray, *, flat_limit: int = FLAT_LIMIT, m: int = 32,
                 ef_construction: int = 64, ef_search: int = 64) -> None:
        import faiss

        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, dim = self.vectors.shape
        self.exact = n <= flat_limit
        if self.exact:
            self._index = faiss.IndexFlatL2(dim)
        else:
            self._index = faiss.IndexHNSWFlat(dim, m)
            self._index.hnsw.efConstruction = ef_construction
        self._ef_search = ef_search
        if n:
            self._index.add(self.vectors)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(distances, indices)`` of the ``k`` nearest stored vectors of each query
        (Euclidean, nearest first; index -1 where fewer exist)."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = max(1, min(k, self._index.ntotal))
        if not self.exact:
            self._index.hnsw.efSearch = max(self._ef_search, 2 * k)
        squared, idx = self._index.search(queries, k)
        return np.sqrt(np.maximum(squared, 0.0)), idx


@dataclass
class SparseReport:
    """What :meth:`SparseFamilies.fit` did (logged, and returned for benchmarks and tests)."""

    models: int = 0
    candidate_pairs: int = 0
    link_pairs: int = 0
    radius: float = 0.0
    cut: float = 0.0
    certified: bool = True
    dense_components: list[int] = field(default_factory=list)
    fell_back_to_exact: bool = False
    # Pairs of models of different strata (block counts), all compared exactly.
    cross_pairs: int = 0


class _Edges:
    """Exact distances of pairs ``i < j`` (sorted by key ``i * n + j``), computed once."""

    def __init__(self, n: int, distances: PairDistances) -> None:
        self.n = n
        self._distances = distances
        self.keys = np.zeros(0, dtype=np.int64)
        self.weights = np.zeros(0, dtype=np.float64)

    def add(self, i: np.ndarray, j: np.ndarray) -> int:
        """Compute the distances of the new pairs among ``(i, j)``; returns how many."""
        a, b = np.minimum(i, j).astype(np.int64), np.maximum(i, j).astype(np.int64)
        keep = a != b
        keys = np.unique(a[keep] * self.n + b[keep])
        keys = keys[~np.isin(keys, self.keys, assume_unique=True)]
        if keys.size == 0:
            return 0
        weights = np.empty(keys.size, dtype=np.float64)
        for start in range(0, keys.size, _PAIR_BATCH):
            chunk = keys[start : start + _PAIR_BATCH]
            weights[start : start + chunk.size] = self._distances(chunk // self.n, chunk % self.n)
        merged = np.concatenate([self.keys, keys])
        order = np.argsort(merged, kind="stable")
        self.keys = merged[order]
        self.weights = np.concatenate([self.weights, weights])[order]
        return int(keys.size)

    def pairs(self, below: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        mask = slice(None) if below is None else self.weights <= below
        keys = self.keys[mask]
        return keys // self.n, keys % self.n, self.weights[mask]


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    graph = coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _forest(n: int, i: np.ndarray, j: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Edges of the minimum spanning forest of the weighted graph ``(i, j, w)``."""
    if i.size == 0:
        return i, j, w
    graph = coo_matrix((np.maximum(w, _TINY), (i, j)), shape=(n, n)).tocsr()
    tree = minimum_spanning_tree(graph).tocoo()
    return tree.row.astype(np.int64), tree.col.astype(np.int64), np.where(tree.data <= _TINY, 0.0, tree.data)


class SparseFamilies:
    """Family labels of one architecture from placement vectors and exact distances on
    candidate edges only; see the module docstring.

    Parameters
    ----------
    method : ClusteringMethod
        ``threshold``, ``dbscan`` or ``auto`` (``kmeans`` needs every distance: use the
        exact path).
    threshold : float
        The family threshold (relative l2), as in :func:`heritage.lineage.clustering.cluster`.
    neighbours : int
        Candidate neighbours per model.
    margin : float
        Pairs farther apart than ``margin * R`` by placement vector are never compared
        exactly (the vectors' error is about 20%; the catalogue's ``placement_margin``).
    dense_limit : int
        Largest component whose dense exact matrix is computed when its cut needs it.
    flat_limit : int
        Largest group searched exactly (brute force) rather than with HNSW.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> roots = rng.standard_normal((3, 256)) / 16
    >>> vectors = np.repeat(roots, 4, axis=0) + rng.standard_normal((12, 256)) / 16 * 0.05
    >>> exact = lambda i, j: np.linalg.norm(vectors[i] - vectors[j], axis=1)
    >>> dense = lambda idx: np.linalg.norm(vectors[idx][:, None] - vectors[idx][None], axis=2)
    >>> labels, report = SparseFamilies("auto", 0.5, neighbours=3).fit(vectors, exact, dense)
    >>> labels.tolist(), report.certified
    ([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], True)
    """

    def __init__(self, method: ClusteringMethod | str = ClusteringMethod.AUTO, threshold: float = 0.5, *,
                 neighbours: int = DEFAULT_NEIGHBOURS, margin: float = 2.0, dense_limit: int = DENSE_LIMIT,
                 flat_limit: int = FLAT_LIMIT) -> None:
        self.method = ClusteringMethod(method)
        if self.method is ClusteringMethod.KMEANS:
            raise ValueError("k-means needs every pairwise distance: use the exact path")
        if not threshold > 0:
            raise ValueError("threshold must be positive")
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        if margin < 1:
            raise ValueError("margin must be at least 1")
        self.threshold = float(threshold)
        self.neighbours = int(neighbours)
        self.margin = float(margin)
        self.dense_limit = int(dense_limit)
        self.flat_limit = int(flat_limit)

    # -- public ---------------------------------------------------------------------
    def nearest(self, vectors: np.ndarray, strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The candidate search alone: each vector's ``neighbours + 1`` nearest of its own
        stratum (itself included) as ``(distances, indices)``, indices into ``vectors``
        (-1 where the stratum has fewer).  Needs only the vectors, so it can run on another
        machine (a Dask task) while :meth:`fit` reads fingerprints where they are."""
        vectors = np.asarray(vectors, dtype=np.float32)
        n = vectors.shape[0]
        strata = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)
        width = min(self.neighbours, max(n - 1, 1)) + 1
        distances = np.full((n, width), np.inf, dtype=np.float32)
        indices = np.full((n, width), -1, dtype=np.int64)
        for stratum in np.unique(strata):
            members = np.flatnonzero(strata == stratum)
            k = min(self.neighbours, max(members.size - 1, 1)) + 1
            d, i = NeighbourIndex(vectors[members], flat_limit=self.flat_limit).search(vectors[members], k)
            distances[members, : d.shape[1]] = d
            indices[members, : i.shape[1]] = np.where(i >= 0, members[np.maximum(i, 0)], -1)
        return distances, indices

    def fit(self, vectors: np.ndarray, pair_distances: PairDistances, dense_distances: DenseDistances,
            neighbours: tuple[np.ndarray, np.ndarray] | None = None,
            strata: np.ndarray | None = None) -> tuple[np.ndarray, SparseReport]:
        """Labels ``0..K-1`` (in order of first appearance) and a report.

        ``pair_distances(i, j)`` returns the exact distances of the pairs ``(i[p], j[p])``;
        ``dense_distances(indices)`` the exact square matrix of a subset (the exact path's
        :func:`heritage.lineage.distances.aligned_l2_matrix`); ``neighbours`` the result of
        :meth:`nearest` when it was computed elsewhere; ``strata`` (e.g. block counts)
        which vectors are comparable (default: all of them).
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        n = vectors.shape[0]
        report = SparseReport(models=n)
        if n <= 1:
            return np.zeros(n, dtype=int), report
        strata = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)
        near_d, near_i = neighbours if neighbours is not None else self.nearest(vectors, strata)
        rows = np.repeat(np.arange(n), near_i.shape[1])
        cols, approx = near_i.reshape(-1), near_d.reshape(-1)
        valid = (cols >= 0) & (cols != rows)
        rows, cols, approx = rows[valid], cols[valid], approx[valid]
        edges = _Edges(n, pair_distances)
        report.cross_pairs = edges.add(*_cross_pairs(strata))
        lo, hi = self.threshold / _WINDOW, self.threshold * _WINDOW
        if self.method is ClusteringMethod.AUTO:
            radius = min(hi, AUTO_RADIUS * self.threshold)
        else:
            radius = self.threshold
        while True:
            report.radius = radius
            near = approx <= self.margin * radius
            report.candidate_pairs += edges.add(rows[near], cols[near])
            report.link_pairs += sum(self._link_components(vectors, edges, radius, np.flatnonzero(strata == s))
                                     for s in np.unique(strata))
            if self.method is not ClusteringMethod.AUTO:
                i, j, _ = edges.pairs(below=self.threshold)
                report.cut = self.threshold
                return _relabel(_components(n, i, j)), report
            labels = self._auto_labels(n, edges, radius, lo, hi, dense_distances, report)
            if labels is not None:
                return labels, report
            if radius >= hi:
                log.warning("the auto cut of %d models could not be certified from candidate edges; "
                            "computing their exact distance matrix", n)
                report.fell_back_to_exact = True
                from heritage.lineage.clustering import cluster

                return cluster(dense_distances(np.arange(n)), ClusteringMethod.AUTO, self.threshold), report
            radius = min(hi, radius * _RADIUS_STEP)

    def candidate_graph(self, vectors: np.ndarray, pair_distances: PairDistances,
                        strata: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Connected candidate edges of one family, for its tree: ``(i, j, distance)`` with
        ``i < j``, sorted.

        Each model's ``neighbours`` nearest of its stratum (:meth:`nearest`), every pair
        across strata, and component links at an unlimited radius (each side's members
        nearest the other side and its own centre) until the edges connect the family;
        the distances are ``pair_distances``' (exact).  A family of ``n``
        models costs about ``n * neighbours`` exact distances instead of ``n^2 / 2``.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        n = vectors.shape[0]
        strata = np.zeros(n, dtype=np.int64) if strata is None else np.asarray(strata)
        edges = _Edges(n, pair_distances)
        if n < 2:
            return edges.pairs()
        edges.add(*_cross_pairs(strata))
        _, near_i = self.nearest(vectors, strata)
        rows = np.repeat(np.arange(n), near_i.shape[1])
        cols = near_i.reshape(-1)
        valid = cols >= 0
        edges.add(rows[valid], cols[valid])
        for s in np.unique(strata):
            self._link_components(vectors, edges, math.inf, np.flatnonzero(strata == s), central=True)
        i, j, _ = edges.pairs()
        labels = _components(n, i, j)
        if labels.max() > 0:  # the link rounds ran out: chain what is left
            firsts = np.unique(labels, return_index=True)[1]
            edges.add(firsts[:-1], firsts[1:])
        return edges.pairs()

    # -- steps ------------------------------------------------------------------------
    def _link_components(self, vectors: np.ndarray, edges: _Edges, radius: float, members: np.ndarray,
                         central: bool = False) -> int:
        """Boruvka-style rounds that join components at ``radius`` the kNN graph left apart,
        among ``members`` (one stratum: indices into ``vectors``) and their edges.
        ``central``: each side's member nearest its own centroid is compared too (a tree's
        edge between two groups is likelier between their centres, e.g. two bases)."""
        n = vectors.shape[0]
        local = np.full(n, -1, dtype=np.int64)
        local[members] = np.arange(members.size)
        sub = vectors[members]
        added = 0
        for _ in range(_LINK_ROUNDS):
            labels = self._stratum_components(edges, radius, local, members.size)
            count = int(labels.max()) + 1 if labels.size else 0
            if count < 2:
                return added
            sums = np.zeros((count, sub.shape[1]), dtype=np.float64)
            np.add.at(sums, labels, sub)
            sizes = np.bincount(labels, minlength=count)
            centroids = (sums / sizes[:, None]).astype(np.float32)
            spread = np.linalg.norm(sub - centroids[labels], axis=1)
            radii = np.zeros(count)
            np.maximum.at(radii, labels, spread)
            order = np.argsort(labels, kind="stable")
            starts = np.concatenate([[0], np.cumsum(sizes)])
            near_d, near_c = NeighbourIndex(centroids, flat_limit=self.flat_limit).search(
                centroids, min(_LINK_COMPONENTS, count - 1) + 1)
            a_list, b_list = [], []
            for a in range(count):
                for d_ab, b in zip(near_d[a], near_c[a]):
                    if b < 0 or b == a or d_ab > radii[a] + radii[b] + self.margin * radius:
                        continue
                    side_a = self._nearest_members(sub, order[starts[a]:starts[a + 1]], centroids[b])
                    side_b = self._nearest_members(sub, order[starts[b]:starts[b + 1]], centroids[a])
                    if central:
                        side_a = np.union1d(side_a, self._nearest_members(
                            sub, order[starts[a]:starts[a + 1]], centroids[a], 1))
                        side_b = np.union1d(side_b, self._nearest_members(
                            sub, order[starts[b]:starts[b + 1]], centroids[b], 1))
                    pa, pb = np.repeat(side_a, side_b.size), np.tile(side_b, side_a.size)
                    close = np.linalg.norm(sub[pa] - sub[pb], axis=1) <= self.margin * radius
                    a_list.append(members[pa[close]])
                    b_list.append(members[pb[close]])
            new = edges.add(np.concatenate(a_list), np.concatenate(b_list)) if a_list else 0
            added += new
            if new == 0:
                return added
            if int(self._stratum_components(edges, radius, local, members.size).max()) + 1 == count:
                return added
        return added

    @staticmethod
    def _stratum_components(edges: _Edges, radius: float, local: np.ndarray, size: int) -> np.ndarray:
        """Components at ``radius`` of one stratum's own edges (``local``: index in the
        stratum, -1 outside it)."""
        i, j, _w = edges.pairs(below=radius)
        li, lj = local[i], local[j]
        inside = (li >= 0) & (lj >= 0)
        return _components(size, li[inside], lj[inside])

    @staticmethod
    def _nearest_members(vectors: np.ndarray, members: np.ndarray, target: np.ndarray,
                         count: int = _LINK_MEMBERS) -> np.ndarray:
        if members.size <= count:
            return members
        d = np.linalg.norm(vectors[members] - target[None, :], axis=1)
        return members[np.argpartition(d, count - 1)[:count]]

    def _auto_labels(self, n: int, edges: _Edges, radius: float, lo: float, hi: float,
                     dense_distances: DenseDistances, report: SparseReport) -> np.ndarray | None:
        """Labels at the certified ``auto`` cut, or None when the cut is not certified."""
        i, j, w = edges.pairs()
        fi, fj, fw = _forest(n, i, j, w)
        inner = fw < radius
        comp = _components(n, fi[inner], fj[inner])
        # Components whose candidate forest has heights in (lo, R): their exact heights matter.
        needs = np.unique(comp[fi[inner & (fw > lo)]])
        heights = [fw[(fw >= radius) | ~np.isin(comp[fi], needs)]]
        dense: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        report.dense_components = []
        for c in needs:
            idx = np.flatnonzero(comp == c)
            if idx.size > self.dense_limit:
                log.warning("a component of %d models has merge heights near the threshold; its cut "
                            "uses candidate edges only (above dense_limit=%d)", idx.size, self.dense_limit)
                heights.append(fw[inner & (comp[fi] == c)])
                continue
            matrix = dense_distances(idx)
            dense[int(c)] = (idx, matrix)
            report.dense_components.append(int(idx.size))
            heights.append(linkage(squareform(matrix, checks=False), method="single")[:, 2])
        pooled = np.sort(np.concatenate(heights))
        cut, (a, b), below = auto_cut(pooled, self.threshold)
        report.cut = cut
        unknown = math.log(hi / radius)  # widest gap unknown heights in [R, hi) could open
        width = math.log(min(b, radius) / a) if a < radius else -math.inf
        report.certified = width > unknown and width > below
        if not report.certified:
            log.info("auto cut %.4g not certified at radius %.4g (gap %.3g, unknown %.3g, below %.3g)",
                     cut, radius, width, unknown, below)
            return None
        keep = w <= cut
        ci, cj = [i[keep]], [j[keep]]
        for idx, matrix in dense.values():
            a_idx, b_idx = np.nonzero(np.triu(matrix <= cut, k=1))
            ci.append(idx[a_idx])
            cj.append(idx[b_idx])
        return _relabel(_components(n, np.concatenate(ci), np.concatenate(cj)))


def _cross_pairs(strata: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair ``(i, j)`` of models in different strata."""
    values = np.unique(strata)
    if values.size < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    count = sum(int((strata == a).sum()) * int((strata > a).sum()) for a in values)
    log.info("%d pairs of models with different block counts are compared exactly (their placement vectors "
             "are not comparable)", count)
    i_list, j_list = [], []
    for a in values:
        lower, higher = np.flatnonzero(strata == a), np.flatnonzero(strata > a)
        i_list.append(np.repeat(lower, higher.size))
        j_list.append(np.tile(higher, lower.size))
    return np.concatenate(i_list), np.concatenate(j_list)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..K-1 in order of first appearance (as the exact path numbers them)."""
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    mapping = np.empty(order.size, dtype=int)
    mapping[order] = np.arange(order.size)
    return mapping[np.searchsorted(np.unique(labels), labels)]


def group_pairs(labels: Sequence[int]) -> list[np.ndarray]:
    """Member indices of each label, in label order."""
    labels = np.asarray(labels)
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    return np.split(order, bounds) if labels.size else []
