"""Pairwise distances between fingerprints.

All distances here are computed from the fingerprints' sketches (see
:mod:`heritage.reading.fingerprint`) and are scale-free, so one family threshold serves
models of any size:

* ``l2``: mean over compared layers of ``||W_u - W_v||_F / rms(||W_u||_F, ||W_v||_F)``
  (relative change; about 1.41 for unrelated weights of equal norm, ~1e-3..1e-1 for
  fine-tunes);
* ``cosine``: mean over layers of ``1 - cos(W_u, W_v)``;
* ``rank``: mean over layers of ``rank(W_u - W_v) / k`` where the rank counts singular
  values above ``rank_rel_cut * sigma_max`` and above ``rank_abs_cut * ||W||_F`` (so
  fp16/bf16 rounding noise does not count as rank), ``k`` the sketch size;
* ``auto``: ``rank`` for a family whose differences are all low-rank (merged LoRA
  fine-tunes), ``l2`` otherwise (see :func:`choose_metric`).

The reference ``mother`` distance is exact and lives in :mod:`heritage.lineage.exact`.
"""

from __future__ import annotations

import enum
import math
from typing import Sequence

import numpy as np

from heritage.errors import IncompatibleModelsError
from heritage.lineage.alignment import MIN_ALIGNED_SHARE, Alignment, align
from heritage.reading.fingerprint import Fingerprint
from heritage.reading.layers import DEFAULT_ROLES, LayerRole


class DistanceMetric(str, enum.Enum):
    L2 = "l2"
    COSINE = "cosine"
    RANK = "rank"
    MOTHER = "mother"
    AUTO = "auto"


# Distance given to two models whose compared matrices mostly do not align (beyond any
# family threshold: unrelated weights of equal norm sit near 1.41).
UNALIGNED_DISTANCE = 2.0
RANK_REL_CUT = 1e-2
RANK_ABS_CUT = 1e-3
# A family is "low-rank" (merged LoRA) when its neighbours differ by at most this share
# of the sketch dimension in every changed layer.
LOW_RANK_SHARE = 0.25


def compared_pairs(a: Fingerprint, b: Fingerprint, roles: frozenset[LayerRole],
                   alignment: Alignment | None = None) -> tuple[tuple[str, str], ...]:
    """Matrices of ``a`` and ``b`` compared with each other (name in a, name in b), by
    :func:`heritage.lineage.alignment.align` unless an alignment is given."""
    pairs = (alignment or align(a, b, roles)).pairs
    if not pairs:
        raise IncompatibleModelsError(
            f"{a.name} and {b.name} share no comparable weight matrices (different architectures?)"
        )
    return pairs


def sketch_rank(diff: np.ndarray, scale: float, rel_cut: float = RANK_REL_CUT,
                abs_cut: float = RANK_ABS_CUT) -> int:
    if not np.any(diff):
        return 0
    sigma = np.linalg.svd(diff.astype(np.float64), compute_uv=False)
    cut = max(rel_cut * float(sigma[0]), abs_cut * scale)
    return int(np.count_nonzero(sigma > cut))


def pair_distance(a: Fingerprint, b: Fingerprint, metric: DistanceMetric,
                  roles: frozenset[LayerRole] | None = None, alignment: Alignment | None = None) -> float:
    """Distance between two fingerprints under ``metric`` (not ``mother``/``auto``), over
    their aligned matrices; :data:`UNALIGNED_DISTANCE` when less than
    :data:`~heritage.lineage.alignment.MIN_ALIGNED_SHARE` of either side's parameters align."""
    metric = DistanceMetric(metric)
    if metric in (DistanceMetric.MOTHER, DistanceMetric.AUTO):
        raise ValueError(f"{metric.value} is not a sketch distance")
    roles = roles or DEFAULT_ROLES[metric.value]
    alignment = alignment or align(a, b, roles)
    pairs = compared_pairs(a, b, roles, alignment)
    if max(alignment.share_a, alignment.share_b) < MIN_ALIGNED_SHARE:
        return UNALIGNED_DISTANCE
    values = []
    for name_a, name_b in pairs:
        la, lb = a.layers[name_a], b.layers[name_b]
        if metric is DistanceMetric.L2:
            scale = math.sqrt((la.norm**2 + lb.norm**2) / 2) or 1.0
            values.append(float(np.linalg.norm(la.sketch - lb.sketch)) / scale)
        elif metric is DistanceMetric.COSINE:
            na, nb = float(np.linalg.norm(la.sketch)), float(np.linalg.norm(lb.sketch))
            cos = float(np.vdot(la.sketch, lb.sketch)) / (na * nb) if na and nb else 0.0
            values.append(1.0 - max(-1.0, min(1.0, cos)))
        else:
            scale = math.sqrt((la.norm**2 + lb.norm**2) / 2)
            k = min(la.sketch.shape)
            values.append(sketch_rank(la.sketch - lb.sketch, scale) / k)
    return float(np.mean(values))


def distance_matrix(fps: Sequence[Fingerprint], metric: DistanceMetric,
                    roles: frozenset[LayerRole] | None = None) -> np.ndarray:
    """Symmetric N x N matrix of :func:`pair_distance` (zero diagonal)."""
    n = len(fps)
    out = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = pair_distance(fps[i], fps[j], metric, roles)
    return out


def distances_to(new: Fingerprint, known: Sequence[Fingerprint], metric: DistanceMetric,
                 roles: frozenset[LayerRole] | None = None) -> np.ndarray:
    """Distances from one new fingerprint to N known ones: O(N x fingerprint size)."""
    return np.array([pair_distance(new, k, metric, roles) for k in known], dtype=np.float64)


def is_low_rank_family(fps: Sequence[Fingerprint], l2: np.ndarray) -> bool:
    """True when every model differs from its nearest relative by a low-rank update.

    That is the signature of merged-LoRA fine-tunes, where the ``rank`` distance
    (parent-child = adapter rank, siblings = twice that) separates generations better
    than the size of the change.
    """
    n = len(fps)
    if n < 2:
        return False
    for i in range(n):
        j = int(np.argmin(np.where(np.arange(n) == i, np.inf, l2[i])))
        changed = 0
        for name_a, name_b in compared_pairs(fps[i], fps[j], DEFAULT_ROLES["l2"]):
            la, lb = fps[i].layers[name_a], fps[j].layers[name_b]
            scale = math.sqrt((la.norm**2 + lb.norm**2) / 2)
            diff = la.sketch - lb.sketch
            if float(np.linalg.norm(diff)) <= 1e-6 * scale:
                continue
            changed += 1
            if sketch_rank(diff, scale) > LOW_RANK_SHARE * min(diff.shape):
                return False
        if changed == 0:
            return False
    return True


def choose_metric(fps: Sequence[Fingerprint], l2: np.ndarray) -> DistanceMetric:
    """The ``auto`` rule for one family."""
    return DistanceMetric.RANK if is_low_rank_family(fps, l2) else DistanceMetric.L2
