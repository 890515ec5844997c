"""Merges: a model that is a weighted combination of two or three of its relatives.

Sketches are linear, so a merge ``M = sum_i w_i P_i`` (``sum_i w_i = 1``, as mergekit's
linear merge with normalised weights, and SLERP of close fine-tunes, which mergekit
computes as a linear interpolation, per tensor) satisfies
``sketch(M) = sum_i w_i sketch(P_i)``. With ``D_i = sketch(P_i) - sketch(M)`` per
matrix, scaled by that matrix's norm, the best affine combination leaves the residual
``r^2 = min_{sum w = 1} ||sum_i w_i D_i||^2 = 1 / (1^T G^-1 1)`` with ``G_ij = <D_i, D_j>``,
solved per block (SLERP and layer-wise merge weights vary from block to block; the
matrices of one block share their weights, which keeps a fit from explaining each
matrix by a different parent) and summed.

A real merge leaves a residual at the level of the rounding of its storage dtype; a
fine-tune leaves its own update: for independent updates the ratio of the residual to
the nearest single parent's distance is at least ``1/sqrt(k)`` for ``k`` parents (0.71
for two), also for a model that sits between its parent and its child or at the centre
of its children. So a model is a merge when its best fit over its nearest relatives
stays below :data:`MERGE_RATIO` with positive weights. The expected rounding energy of
the child's storage precision is taken off the residual first.

Merges are detected before the tree is built: a merge of two fine-tunes sits between
them and would otherwise look like their parent to the direction rule.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from heritage.reading.fingerprint import Fingerprint
from heritage.reading.layers import FINGERPRINT_ROLES, block_index

__all__ = ["MergeFit", "MergeDetector", "MERGE_RATIO"]

# Largest residual / nearest-parent distance ratio accepted as a merge (independent
# fine-tunes cannot go below 0.71 with two parents, 0.58 with three).
MERGE_RATIO = 0.35
# Smallest weight a merge parent may have.
MIN_WEIGHT = 0.1
# Relative rms rounding error of a value stored at a precision (uniform error within half
# an ulp, values spread evenly over a binade): 2^-mantissa * sqrt(0.541 / 12).
_ROUNDING = {"f16": 2.0**-10 * 0.2123, "bf16": 2.0**-7 * 0.2123}


@dataclass(frozen=True)
class MergeFit:
    """A model explained as a combination of ``parents`` (indices) with ``weights``.

    ``residual`` and ``single`` are root-mean-square relative distances per matrix: what
    the combination leaves unexplained, and the distance to the nearest single parent.
    """

    child: int
    parents: tuple[int, ...]  # largest weight first
    weights: tuple[float, ...]
    residual: float
    single: float

    @property
    def ratio(self) -> float:
        return self.residual / self.single if self.single > 0 else float("inf")


def _affine_residuals(grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min ||sum w_i D_i||^2 over sum w = 1, the weights) for each Gram matrix of the D_i
    in a stack ``(..., k, k)`` (one batched solve for every subset and block of a model)."""
    k = grams.shape[-1]
    trace = np.trace(grams, axis1=-2, axis2=-1)
    ridge = 1e-12 * (trace / k + 1e-30)
    inv_one = np.linalg.solve(grams + ridge[..., None, None] * np.eye(k), np.ones(grams.shape[:-1] + (1,)))[..., 0]
    total = inv_one.sum(axis=-1)
    fitted = total > 0
    safe = np.where(fitted, total, 1.0)
    residual = np.where(fitted, 1.0 / safe, trace)
    weights = np.where(fitted[..., None], inv_one / safe[..., None], 1.0 / k)
    return residual, weights


class MergeDetector:
    """Find merge children among the models of one family (see the module docstring).

    Parameters
    ----------
    neighbours : int
        Candidate parents per model: its nearest relatives (pairs are tried among them;
        triples among the nearest ``triple_neighbours``).
    max_parents : int
        Largest number of parents tried (2 or 3).
    ratio : float
        Largest residual / nearest-parent ratio accepted.

    Examples
    --------
    >>> import numpy as np
    >>> from heritage.reading.fingerprint import Fingerprint, LayerFingerprint
    >>> from heritage.reading.layers import LayerRole
    >>> rng = np.random.default_rng(0)
    >>> base = rng.standard_normal((8, 8))
    >>> a, b = base + 0.01 * rng.standard_normal((8, 8)), base + 0.01 * rng.standard_normal((8, 8))
    >>> c = base + 0.01 * rng.standard_normal((8, 8))
    >>> def fp(name, w):
    ...     layer = LayerFingerprint("layer.0.q.weight", LayerRole.ATTENTION_Q, (8, 8), float(np.linalg.norm(w)),
    ...                              0.0, 1.0, 0.0, w.astype(np.float32))
    ...     return Fingerprint(name, "", False, None, 48, {layer.name: layer}, dtype="F32")
    >>> fps = [fp("base", base), fp("a", a), fp("b", b), fp("c", c), fp("m", 0.3 * a + 0.7 * b)]
    >>> d = np.array([[np.linalg.norm(x.layers["layer.0.q.weight"].sketch - y.layers["layer.0.q.weight"].sketch)
    ...                for y in fps] for x in fps])
    >>> fits = MergeDetector().detect(fps, d, range(5))
    >>> [(fits[4].parents, tuple(round(w, 2) for w in fits[4].weights))] , sorted(fits)
    ([((2, 1), (0.7, 0.3))], [4])
    """

    def __init__(self, neighbours: int = 8, max_parents: int = 3, ratio: float = MERGE_RATIO,
                 triple_neighbours: int = 5) -> None:
        if max_parents < 2:
            raise ValueError("a merge has at least two parents")
        self.neighbours = neighbours
        self.triple_neighbours = triple_neighbours
        self.max_parents = max_parents
        self.ratio = ratio

    def _differences(self, child: Fingerprint, parents: Sequence[Fingerprint]) -> tuple[list[np.ndarray], int]:
        """Per block: rows D_i = (sketch(P_i) - sketch(M)) / ||M||, every matrix of the
        block concatenated (matrices outside the blocks are blocks of their own); and the
        number of matrices. Empty when a parent lacks one of the child's matrices."""
        blocks: dict[object, list[np.ndarray]] = {}
        count = 0
        for name, layer in child.layers.items():
            if layer.role not in FINGERPRINT_ROLES:
                continue
            if not all(name in p.layers and p.layers[name].shape == layer.shape for p in parents):
                return [], 0
            scale = layer.norm or 1.0
            rows = np.stack([(p.layers[name].sketch - layer.sketch).ravel() for p in parents]) / scale
            index = block_index(name)
            blocks.setdefault(name if index is None else index, []).append(rows)
            count += 1
        return [np.concatenate(parts, axis=1) for parts in blocks.values()], count

    def fit(self, child_index: int, fps: Sequence[Fingerprint], candidates: Sequence[int]) -> MergeFit | None:
        """The best merge fit of model ``child_index`` over subsets of ``candidates``."""
        child = fps[child_index]
        compared = {n: l.shape for n, l in child.layers.items() if l.role in FINGERPRINT_ROLES}
        candidates = [i for i in candidates  # only relatives with every matrix of the child
                      if all(n in fps[i].layers and fps[i].layers[n].shape == s for n, s in compared.items())]
        if len(candidates) < 2:
            return None
        diffs, layers = self._differences(child, [fps[i] for i in candidates])
        if not diffs:
            return None
        grams = np.stack([d.astype(np.float64) @ d.T.astype(np.float64) for d in diffs])  # (blocks, k, k)
        noise = layers * _ROUNDING.get(child.precision or "", 0.0) ** 2
        single_sq = np.maximum(np.einsum("lii->i", grams) - noise, 0.0)
        best: MergeFit | None = None
        for size in range(2, min(self.max_parents, len(candidates)) + 1):
            pool = len(candidates) if size == 2 else min(len(candidates), self.triple_neighbours)
            subsets = np.array(list(itertools.combinations(range(pool), size)), dtype=np.int64).reshape(-1, size)
            # Every subset and block at once: (blocks, subsets, size, size).
            subs = grams[:, subsets[:, :, None], subsets[:, None, :]]
            residuals, block_weights = _affine_residuals(subs)
            # How much the parents differ in each block weighs that block's weights.
            spread = np.trace(subs, axis1=-2, axis2=-1) - subs.sum(axis=(-2, -1)) / size
            residual_sq = residuals.sum(axis=0)
            info = spread.sum(axis=0)
            weighted = (spread[:, :, None] * block_weights).sum(axis=0)
            # The subset with the smallest ratio among those whose weights all count (the
            # first one on ties), without building a fit for every subset.
            with np.errstate(divide="ignore", invalid="ignore"):
                weights = weighted / info[:, None]
                residual = np.sqrt(np.maximum(residual_sq - noise, 0.0) / layers)
                single = np.sqrt(single_sq[subsets].min(axis=1) / layers)
                ratio = np.where(single > 0, residual / single, np.inf)
            valid = (info > 0) & (weights.min(axis=1) >= MIN_WEIGHT) & (ratio <= self.ratio)
            if valid.any():
                s = int(np.flatnonzero(valid)[np.argmin(ratio[valid])])
                order = np.argsort(-weights[s], kind="stable")  # the main parent first
                best = MergeFit(child_index, tuple(int(candidates[subsets[s][i]]) for i in order),
                                tuple(float(weights[s][i]) for i in order), float(residual[s]), float(single[s]))
            if best is not None:
                return best  # the fewest parents that explain the model
        return None

    def detect(self, fps: Sequence[Fingerprint], distances: np.ndarray,
               members: Sequence[int]) -> dict[int, MergeFit]:
        """Merge children among ``members`` (indices into ``fps``) -> their fits.

        Candidates are each model's nearest members (``distances``: a matrix, or a large
        family's :class:`~heritage.lineage.candidate_distances.CandidateDistances`, whose
        unknown pairs are no candidates); a merge is never a candidate parent
        of a model it was fitted from (so two models cannot explain each other).
        """
        members = [i for i in members if not fps[i].quantization and not fps[i].is_adapter]
        if len(members) < 3:
            return {}
        found: dict[int, MergeFit] = {}
        order = sorted(members, key=lambda i: (fps[i].name,))
        pool = np.asarray(members, dtype=np.int64)
        blocks = np.array([fps[i].block_count for i in members])
        name_rank = np.empty(len(fps), dtype=np.int64)  # ties in distance are broken by name
        name_rank[np.asarray(order)] = np.arange(len(order))
        for m in order:
            others = pool[(pool != m) & (blocks == fps[m].block_count)]
            near = distances[m, others]
            known = np.isfinite(near)  # a large family's distances are known on candidate edges only
            others, near = others[known], near[known]
            # The nearest relatives with as many blocks (by distance, then name).
            nearest = others[np.lexsort((name_rank[others], near))][: self.neighbours]
            fit = self.fit(m, fps, [int(j) for j in nearest])
            if fit is not None:
                found[m] = fit
        # A model cannot be both a merge and a parent of a merge that explains it.
        for m, fit in sorted(found.items(), key=lambda kv: kv[1].ratio):
            if m not in found:
                continue
            for p in fit.parents:
                if p in found and m in found[p].parents:
                    del found[p]
        return found
