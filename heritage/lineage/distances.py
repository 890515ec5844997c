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
from heritage.lineage.alignment import MIN_ALIGNED_SHARE, Alignment, Layout, align, layout
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
    """Symmetric N x N matrix of :func:`pair_distance` (zero diagonal).

    ``l2`` is :func:`aligned_l2_matrix` (pairs of one layout vectorised); other metrics
    go pair by pair.
    """
    if DistanceMetric(metric) is DistanceMetric.L2:
        return aligned_l2_matrix(fps, roles)
    n = len(fps)
    out = np.zeros((n, n), dtype=np.float64)
    for i in range(n):
        for j in range(i + 1, n):
            out[i, j] = out[j, i] = pair_distance(fps[i], fps[j], metric, roles)
    return out


# Pairs whose sketches are stacked at once by aligned_l2 (bounded memory per matrix name).
_PAIR_CHUNK = 2048


def _relative_l2(sa: np.ndarray, sb: np.ndarray, na: np.ndarray, nb: np.ndarray) -> np.ndarray:
    """``||S_a - S_b|| / rms(||W_a||, ||W_b||)`` per row of stacked, flattened sketches.

    The difference is taken in float32 (as the sketches are stored) and its squares
    summed in float64 along each row on its own, so a pair gets the same value whether it
    is computed alone, in a batch of candidate edges or in a family's matrix.
    """
    diff = (sa - sb).astype(np.float64)
    dist = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    scale = np.sqrt((np.asarray(na, dtype=np.float64) ** 2 + np.asarray(nb, dtype=np.float64) ** 2) / 2)
    return dist / np.where(scale > 0, scale, 1.0)


def _aligned_l2_one(a: Fingerprint, b: Fingerprint, roles: frozenset[LayerRole],
                    alignment: Alignment | None = None) -> float:
    """The aligned ``l2`` of two models of different layouts (block mapping, missing matrices)."""
    alignment = alignment or align(a, b, roles)
    if not alignment.pairs or max(alignment.share_a, alignment.share_b) < MIN_ALIGNED_SHARE:
        return UNALIGNED_DISTANCE
    total = 0.0
    for x, y in alignment.pairs:
        la, lb = a.layers[x], b.layers[y]
        total += float(_relative_l2(la.sketch.reshape(1, -1), lb.sketch.reshape(1, -1), [la.norm], [lb.norm])[0])
    return total / len(alignment.pairs)


def _aligned_l2_same(a: Sequence[Fingerprint], b: Sequence[Fingerprint], names: Sequence[str]) -> np.ndarray:
    """The ``l2`` of pairs ``(a[p], b[p])`` that all share one layout with matrices ``names``."""
    total = np.zeros(len(a), dtype=np.float64)
    for name in names:
        sa = np.stack([fp.layers[name].sketch.reshape(-1) for fp in a])
        sb = np.stack([fp.layers[name].sketch.reshape(-1) for fp in b])
        total += _relative_l2(sa, sb, [fp.layers[name].norm for fp in a], [fp.layers[name].norm for fp in b])
    return total / max(len(names), 1)


def aligned_l2(a: Sequence[Fingerprint], b: Sequence[Fingerprint],
               roles: frozenset[LayerRole] | None = None) -> np.ndarray:
    """Relative ``l2`` over the aligned matrices of each pair ``(a[p], b[p])``.

    The quantity of :func:`pair_distance` with ``l2`` (:data:`UNALIGNED_DISTANCE` for
    models that do not align, layer-subset students compared block by block), computed
    so that every path that needs it gets the same number for a pair: a family's matrix
    (:func:`aligned_l2_matrix`) and the candidate edges of the sparse family search
    (:mod:`heritage.lineage.candidates`) both come from here.  Pairs of one layout
    (:func:`heritage.lineage.alignment.layout`) are computed together, a NumPy pass per
    matrix name instead of a Python call per pair.
    """
    roles = roles or DEFAULT_ROLES["l2"]
    out = np.empty(len(a), dtype=np.float64)
    layouts: dict[int, Layout] = {}

    def layout_of(fp: Fingerprint) -> Layout:
        key = id(fp)
        if key not in layouts:
            layouts[key] = layout(fp, roles)
        return layouts[key]

    same: dict[Layout, list[int]] = {}
    for p, (fa, fb) in enumerate(zip(a, b)):
        la = layout_of(fa)
        if la == layout_of(fb):
            same.setdefault(la, []).append(p)
        else:
            out[p] = _aligned_l2_one(fa, fb, roles)
    for shared, rows in same.items():
        names = [n for n, _, _ in shared]
        for start in range(0, len(rows), _PAIR_CHUNK):
            chunk = rows[start : start + _PAIR_CHUNK]
            out[chunk] = _aligned_l2_same([a[p] for p in chunk], [b[p] for p in chunk], names)
    return out


def aligned_l2_matrix(fps: Sequence[Fingerprint], roles: frozenset[LayerRole] | None = None) -> np.ndarray:
    """Symmetric matrix of :func:`aligned_l2` (zero diagonal): the exact family search's
    distances and a family tree's.

    Models of one layout are compared a row at a time (each model against the later ones,
    one NumPy pass per matrix name), with the same per-pair arithmetic as
    :func:`aligned_l2`, so each entry equals what :func:`aligned_l2` gives for that pair.
    """
    roles = roles or DEFAULT_ROLES["l2"]
    n = len(fps)
    out = np.zeros((n, n), dtype=np.float64)
    if n < 2:
        return out
    layouts = [layout(fp, roles) for fp in fps]
    groups: dict[Layout, list[int]] = {}
    for i, shape in enumerate(layouts):
        groups.setdefault(shape, []).append(i)
    for shared, members in groups.items():
        names = [name for name, _, _ in shared]
        idx = np.asarray(members)
        m = idx.size
        if m < 2:
            continue
        total = np.zeros((m, m), dtype=np.float64)
        for name in names:
            sketches = np.stack([fps[i].layers[name].sketch.reshape(-1) for i in members])
            norms = np.array([fps[i].layers[name].norm for i in members], dtype=np.float64)
            for r in range(m - 1):
                rows = _relative_l2(np.broadcast_to(sketches[r], sketches[r + 1 :].shape), sketches[r + 1 :],
                                    np.full(m - r - 1, norms[r]), norms[r + 1 :])
                total[r, r + 1 :] += rows
        total /= max(len(names), 1)
        out[np.ix_(idx, idx)] = total + total.T
    if len(groups) > 1:
        for i in range(n):
            for j in range(i + 1, n):
                if layouts[i] != layouts[j]:
                    out[i, j] = out[j, i] = _aligned_l2_one(fps[i], fps[j], roles)
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
