"""Grouping models into families without being told how many there are.

Families are found within each architecture (structural hash) separately, so models of
different architectures never share one. Distances are scale-free (relative weight
change, see :mod:`heritage.lineage.distances`), so the same ``threshold`` means the same thing
for a 20M and a 7B model: two models are related when their weights differ by less than
``threshold`` of their norm (unrelated weights of equal norm differ by about 1.41).

Methods:

* ``threshold``: single linkage — connected components of "distance < threshold".
  Genealogies are chains of small steps, so linkage through relatives is what we want.
* ``dbscan``: DBSCAN with ``eps = threshold`` and ``min_samples = 1`` over the
  precomputed distances (the density formulation of the same idea).
* ``kmeans``: k-means on a classical-MDS embedding, K chosen by the best silhouette
  (K = 1 when no pair is farther apart than the threshold).
* ``auto``: single linkage, with the cut moved from ``threshold`` to the middle of the
  widest gap of merge heights near it (see :func:`auto_threshold`).
"""

from __future__ import annotations

import enum
import logging
import math

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

log = logging.getLogger(__name__)

DEFAULT_THRESHOLD = 0.5
_WINDOW = 3.0


class ClusteringMethod(str, enum.Enum):
    THRESHOLD = "threshold"
    DBSCAN = "dbscan"
    KMEANS = "kmeans"
    AUTO = "auto"


def _components(distances: np.ndarray, threshold: float) -> np.ndarray:
    n = distances.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int)
    z = linkage(squareform(distances, checks=False), method="single")
    return fcluster(z, t=threshold, criterion="distance") - 1


def auto_threshold(distances: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> float:
    """The cut used by ``auto``.

    ``threshold`` is treated as a prior: among the single-linkage merge heights that fall
    within a factor of ``_WINDOW`` of it, the cut moves to the middle (geometric) of the
    widest gap, so a boundary that sits near the prior is placed where the data has its
    clearest break. Heights far from the prior (fine-tune steps at 1e-3, unrelated
    models at 1.4) never move the cut.
    """
    n = distances.shape[0]
    if n < 2:
        return threshold
    heights = linkage(squareform(distances, checks=False), method="single")[:, 2]
    return auto_cut(heights, threshold)[0]


def auto_cut(heights: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> tuple[float, tuple[float, float], float]:
    """The ``auto`` rule on single-linkage merge heights (any order).

    Returns the cut, the gap ``(a, b)`` it sits in, and the widest log-gap below ``a``
    (``-inf`` if none): the sparse path (:mod:`heritage.lineage.candidates`) needs the
    last two to certify that heights it does not know could not have moved the cut.
    """
    heights = np.sort(np.asarray(heights, dtype=np.float64))
    lo, hi = threshold / _WINDOW, threshold * _WINDOW
    points = np.concatenate([[lo], heights[(heights > lo) & (heights < hi)], [hi]])
    gaps = np.log(points[1:]) - np.log(points[:-1])
    best = int(np.argmax(gaps))
    below = float(gaps[:best].max()) if best else -math.inf
    a, b = float(points[best]), float(points[best + 1])
    return float(math.sqrt(a * b)), (a, b), below


def _kmeans(distances: np.ndarray, threshold: float, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score

    n = distances.shape[0]
    if n < 3 or distances.max() < threshold:
        return _components(distances, threshold) if n < 3 else np.zeros(n, dtype=int)
    # Classical MDS: coordinates whose Euclidean distances approximate ``distances``.
    j = np.eye(n) - np.ones((n, n)) / n
    b = -0.5 * j @ (distances**2) @ j
    vals, vecs = np.linalg.eigh(b)
    keep = vals > 1e-12
    coords = vecs[:, keep] * np.sqrt(vals[keep])
    best_labels, best_score = np.zeros(n, dtype=int), -1.0
    for k in range(2, n):
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(coords)
        if len(set(labels)) < 2:
            continue
        score = silhouette_score(distances, labels, metric="precomputed")
        if score > best_score:
            best_labels, best_score = labels, score
    return best_labels


def cluster(distances: np.ndarray, method: ClusteringMethod | str = ClusteringMethod.AUTO,
            threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Family labels (0..K-1) for an N x N distance matrix of one architecture."""
    method = ClusteringMethod(method)
    n = distances.shape[0]
    if n == 0:
        return np.zeros(0, dtype=int)
    if method is ClusteringMethod.THRESHOLD:
        labels = _components(distances, threshold)
    elif method is ClusteringMethod.DBSCAN:
        from sklearn.cluster import DBSCAN

        labels = DBSCAN(eps=threshold, min_samples=1, metric="precomputed").fit_predict(distances)
    elif method is ClusteringMethod.KMEANS:
        labels = _kmeans(distances, threshold)
    else:
        labels = _components(distances, auto_threshold(distances, threshold))
    return _relabel(np.asarray(labels))


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Labels renumbered 0..K-1 in order of first appearance (stable output)."""
    mapping: dict[int, int] = {}
    return np.array([mapping.setdefault(int(l), len(mapping)) for l in labels], dtype=int)
