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

TIES-style merges (mergekit's ``ties``: each task vector ``t_i = P_i - B`` from the
base ``B`` trimmed to its largest entries, a sign elected per entry, the agreeing
entries averaged) are not linear: per entry the child takes 0, ``w_i / sum w`` or all of
each ``t_i``, so the best combination leaves about 0.6-0.8 of the nearest parent's
distance unexplained, no better than a parent at the centre of its children. They are
told apart by what a tree of independent fine-tunes cannot produce: with ``u = M - B``
regressed on ``t_1 .. t_k`` (the base's weight free),

* the task vectors are nearly orthogonal (|cosine| <= :data:`TIES_COSINE`): sibling
  fine-tunes from their common parent measure |cosine| <= 0.07 on every zoo, while a
  wrong base (a child or grandparent of the others) shares an edge with all of them;
* every coefficient is substantial (:data:`TIES_MIN_SHARE` .. :data:`TIES_MAX_SHARE`):
  a model in a tree descends from at most one of two orthogonal task vectors, so it
  has coefficient ~1 on one and ~0 on the other (or 0 on both), never a share of both;
* the combination explains the model better than its nearest relative does (residual /
  nearest distance <= :data:`TIES_RATIO`; a fine-tune of any relative, a linear merge
  included, leaves its own update, a ratio of 1).

On real fine-tunes (MiniLM-L6, the small BERT of the storage-conventions zoo) mergekit
TIES merges of two or three independent fine-tunes at densities 0.2-1, weights 0.5/0.5
and 0.7/0.3, with and without ``normalize``, ``lambda`` 0.7, measure cosine -0.03..0.03,
coefficients 0.32..0.93 and ratios 0.35..0.84 (52 merges); no model of the small, full, wild or conventions zoos
passes all three (the nearest miss: cosine 0.29 with coefficients 0.68/0.32). The fit's
parents are the merged fine-tunes, the larger coefficient first, with their shares of
the merged task vector as weights; the base is an ancestor of every one of them and is
kept on the fit (``base``), not made a parent.

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

__all__ = ["MergeFit", "MergeDetector", "MERGE_RATIO", "TIES_RATIO"]

# Largest residual / nearest-parent distance ratio accepted as a merge (independent
# fine-tunes cannot go below 0.71 with two parents, 0.58 with three).
MERGE_RATIO = 0.35
# Smallest weight a merge parent may have.
MIN_WEIGHT = 0.1
# Task-vector (TIES-style) merges, see the module docstring: largest |cosine| between the
# parents' task vectors, range of each parent's coefficient, largest residual / nearest
# relative's distance.
TIES_COSINE = 0.2
TIES_MIN_SHARE = 0.25
TIES_MAX_SHARE = 1.5
TIES_RATIO = 0.9
# Relative rms rounding error of a value stored at a precision (uniform error within half
# an ulp, values spread evenly over a binade): 2^-mantissa * sqrt(0.541 / 12).
_ROUNDING = {"f16": 2.0**-10 * 0.2123, "bf16": 2.0**-7 * 0.2123}


def _rounding_noise(child: Fingerprint, layers: int) -> float:
    """The squared relative distance the child's own rounding adds over ``layers`` matrices
    (subtracted from every distance and residual the fits measure)."""
    return layers * _ROUNDING.get(child.precision or "", 0.0) ** 2


@dataclass(frozen=True)
class MergeFit:
    """A model explained as a combination of ``parents`` (indices) with ``weights``.

    ``residual`` and ``single`` are root-mean-square relative distances per matrix: what
    the combination leaves unexplained, and the distance to the nearest single parent
    (for a task-vector merge, to the nearest relative). ``base`` is None for a linear
    merge (the weights sum to one over the parents); for a task-vector (TIES-style)
    merge it is the model the task vectors are taken from, and ``weights`` are the
    parents' shares of the merged task vector.
    """

    child: int
    parents: tuple[int, ...]  # largest weight first
    weights: tuple[float, ...]
    residual: float
    single: float
    base: int | None = None

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
    ties_ratio : float or None
        Largest residual / nearest-relative ratio accepted for a task-vector (TIES-style)
        merge; None: look for linear merges only.

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
                 triple_neighbours: int = 5, ties_ratio: float | None = TIES_RATIO) -> None:
        if max_parents < 2:
            raise ValueError("a merge has at least two parents")
        self.neighbours = neighbours
        self.triple_neighbours = triple_neighbours
        self.max_parents = max_parents
        self.ratio = ratio
        self.ties_ratio = ties_ratio

    def margin(self, fit: MergeFit) -> float:
        """How far below its acceptance ratio a fit is: 0 at the bound, 1 for an exact fit."""
        bound = self.ratio if fit.base is None else (self.ties_ratio or self.ratio)
        return max(0.0, 1.0 - fit.ratio / bound)

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

    def _grams(self, child_index: int, fps: Sequence[Fingerprint],
               candidates: Sequence[int]) -> tuple[list[int], np.ndarray, int] | None:
        """(the candidates with every matrix of the child, the Gram matrices of their
        differences per block ``(blocks, k, k)``, the number of matrices); None when
        nothing is comparable. Shared by the linear and the task-vector fits."""
        child = fps[child_index]
        compared = {n: l.shape for n, l in child.layers.items() if l.role in FINGERPRINT_ROLES}
        candidates = [i for i in candidates  # only relatives with every matrix of the child
                      if all(n in fps[i].layers and fps[i].layers[n].shape == s for n, s in compared.items())]
        if not candidates:
            return None
        diffs, layers = self._differences(child, [fps[i] for i in candidates])
        if not diffs:
            return None
        return candidates, np.stack([d.astype(np.float64) @ d.T.astype(np.float64) for d in diffs]), layers

    def fit(self, child_index: int, fps: Sequence[Fingerprint], candidates: Sequence[int],
            grams: tuple[list[int], np.ndarray, int] | None = None) -> MergeFit | None:
        """The best merge fit of model ``child_index`` over subsets of ``candidates``
        (``grams``: their :meth:`_grams`, when already computed)."""
        child = fps[child_index]
        prepared = grams if grams is not None else self._grams(child_index, fps, candidates)
        if prepared is None or len(prepared[0]) < 2:
            return None
        candidates, grams, layers = prepared
        noise = _rounding_noise(child, layers)
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

    def _distance(self, child: Fingerprint, other: Fingerprint) -> float | None:
        """Root-mean-square relative sketch distance per matrix (the unit of
        :attr:`MergeFit.single`), less the child's rounding; None when not comparable."""
        diffs, layers = self._differences(child, [other])
        if not diffs:
            return None
        noise = _rounding_noise(child, layers)
        total = sum(float(np.sum(d.astype(np.float64) ** 2)) for d in diffs)
        return math.sqrt(max(total - noise, 0.0) / layers)

    def fit_task_vectors(self, child_index: int, fps: Sequence[Fingerprint], candidates: Sequence[int],
                         nearest: float | None = None,
                         grams: tuple[list[int], np.ndarray, int] | None = None) -> MergeFit | None:
        """The best task-vector (TIES-style) fit of model ``child_index``: a base and 2 to
        ``max_parents`` parents among ``candidates`` (see the module docstring).

        Parameters
        ----------
        child_index : int
            The model tested, an index into ``fps``.
        fps : sequence of Fingerprint
            The family's fingerprints.
        candidates : sequence of int
            Its nearest relatives, bases and parents alike (not linear merges).
        nearest : float, optional
            The child's distance to its nearest relative, merges included (root-mean-square
            relative distance per matrix, as :attr:`MergeFit.single`); default: the
            nearest candidate's.
        grams : tuple, optional
            The candidates' :meth:`_grams`, when already computed.

        Returns
        -------
        MergeFit or None
            The fit with the fewest parents, then the smallest ratio, that passes the
            three tests; ``base`` set.

        Examples
        --------
        Two orthogonal fine-tunes of a base, merged as TIES does at density 1 (agreeing
        entries averaged, opposed ones taken from the larger), and a fine-tune of one:

        >>> import numpy as np
        >>> from heritage.reading.fingerprint import Fingerprint, LayerFingerprint
        >>> from heritage.reading.layers import LayerRole
        >>> rng = np.random.default_rng(0)
        >>> base = rng.standard_normal((40, 40))
        >>> t1, t2, t3, t4 = (0.01 * rng.standard_normal((40, 40)) for _ in range(4))
        >>> ties = np.where(np.sign(t1) == np.sign(t2), (t1 + t2) / 2, np.where(np.abs(t1) >= np.abs(t2), t1, t2))
        >>> def fp(name, w):
        ...     layer = LayerFingerprint("layer.0.q.weight", LayerRole.ATTENTION_Q, w.shape,
        ...                              float(np.linalg.norm(w)), 0.0, 1.0, 0.0, w.astype(np.float32))
        ...     return Fingerprint(name, "", False, None, 48, {layer.name: layer}, dtype="F32")
        >>> fps = [fp("base", base), fp("a", base + t1), fp("b", base + t2), fp("c", base + t3),
        ...        fp("ties", base + ties), fp("a-tuned", base + t1 + t4)]
        >>> fit = MergeDetector().fit_task_vectors(4, fps, [0, 1, 2, 3])
        >>> fit.base, sorted(fit.parents), [round(w, 1) for w in fit.weights]
        (0, [1, 2], [0.5, 0.5])
        >>> MergeDetector().fit_task_vectors(5, fps, [0, 1, 2, 3]) is None
        True
        """
        child = fps[child_index]
        prepared = grams if grams is not None else self._grams(child_index, fps, candidates)
        if prepared is None or len(prepared[0]) < 3:
            return None
        candidates, block_grams, layers = prepared
        # One fit over every matrix: TIES applies the same weights and density everywhere.
        gram = block_grams.sum(axis=0)
        noise = _rounding_noise(child, layers)
        among = math.sqrt(max(float(np.diag(gram).min()) - noise, 0.0) / layers)
        nearest = among if nearest is None else min(nearest, among)
        if not (math.isfinite(nearest) and nearest > 0):
            return None
        bound = self.ties_ratio if self.ties_ratio is not None else TIES_RATIO
        n = len(candidates)
        for size in range(2, min(self.max_parents, n - 1) + 1):
            # Every (base, parents) choice at once; with D_i = P_i - M: t_i = D_i - D_b, u = -D_b.
            choices = [(b, s) for b in range(n) for s in itertools.combinations([i for i in range(n) if i != b], size)]
            bases = np.array([b for b, _ in choices], dtype=np.int64)
            subsets = np.array([s for _, s in choices], dtype=np.int64)
            gb = gram[bases[:, None], subsets]  # (choices, size): <D_b, D_i>
            gbb = gram[bases, bases]
            tt = gram[subsets[:, :, None], subsets[:, None, :]] - gb[:, :, None] - gb[:, None, :] + gbb[:, None, None]
            ut = gbb[:, None] - gb
            norms = np.sqrt(np.maximum(np.einsum("sii->si", tt), 1e-300))
            cosines = tt / (norms[:, :, None] * norms[:, None, :])
            max_cos = np.abs(cosines[:, ~np.eye(size, dtype=bool)]).max(axis=1)
            ridge = 1e-12 * (np.einsum("sii->s", tt) / size + 1e-30)
            shares = np.linalg.solve(tt + ridge[:, None, None] * np.eye(size), ut[..., None])[..., 0]
            residual = np.sqrt(np.maximum(gbb - (shares * ut).sum(axis=1) - noise, 0.0) / layers)
            ratio = residual / nearest
            valid = ((max_cos <= TIES_COSINE) & (shares.min(axis=1) >= TIES_MIN_SHARE)
                     & (shares.max(axis=1) <= TIES_MAX_SHARE) & (ratio <= bound))
            if valid.any():  # the fewest parents, then the smallest ratio (the first on ties)
                c = int(np.flatnonzero(valid)[np.argmin(ratio[valid])])
                order = np.argsort(-shares[c], kind="stable")
                total = float(shares[c].sum())
                return MergeFit(child_index, tuple(int(candidates[subsets[c][i]]) for i in order),
                                tuple(float(shares[c][i]) / total for i in order), float(residual[c]), nearest,
                                base=int(candidates[bases[c]]))
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
        prepared: dict[int, tuple[tuple[int, ...], tuple[list[int], np.ndarray, int] | None]] = {}
        for m in order:
            others = pool[(pool != m) & (blocks == fps[m].block_count)]
            near = distances[m, others]
            known = np.isfinite(near)  # a large family's distances are known on candidate edges only
            others, near = others[known], near[known]
            # The nearest relatives with as many blocks (by distance, then name).
            nearest = tuple(int(j) for j in others[np.lexsort((name_rank[others], near))][: self.neighbours])
            grams = self._grams(m, fps, nearest)
            prepared[m] = (nearest, grams)
            fit = self.fit(m, fps, nearest, grams=grams)
            if fit is not None:
                found[m] = fit
        # A model cannot be both a merge and a parent of a merge that explains it.
        for m, fit in sorted(found.items(), key=lambda kv: kv[1].ratio):
            if m not in found:
                continue
            for p in fit.parents:
                if p in found and m in found[p].parents:
                    del found[p]
        if self.ties_ratio is not None:
            found.update(self._detect_task_vectors(fps, distances, members, found, prepared))
        return found

    def _detect_task_vectors(self, fps: Sequence[Fingerprint], distances: np.ndarray, members: Sequence[int],
                             linear: dict[int, MergeFit],
                             prepared: dict[int, tuple[tuple[int, ...], tuple[list[int], np.ndarray, int] | None]],
                             ) -> dict[int, MergeFit]:
        """Task-vector merges among the members that are not linear merges; neither a
        linear merge nor a model found here is a candidate base or parent, and the
        nearest relative (the ratio's denominator) is searched among every member.
        ``prepared``: per model, the linear fit's candidates and their Gram matrices,
        reused where the candidates are the same (no linear merge among them)."""
        everyone = np.asarray(members, dtype=np.int64)
        pool = everyone[[i not in linear for i in members]]
        blocks = np.zeros(len(fps), dtype=np.int64)
        blocks[everyone] = [fps[i].block_count for i in members]
        name_rank = np.zeros(len(fps), dtype=np.int64)  # ties in distance are broken by name
        name_rank[np.asarray(sorted(members, key=lambda i: fps[i].name), dtype=np.int64)] = np.arange(len(members))
        found: dict[int, MergeFit] = {}
        for m in sorted(pool.tolist(), key=lambda i: fps[i].name):
            others = pool[(pool != m) & (blocks[pool] == blocks[m])]
            near = distances[m, others]
            # A large family's distances are known on candidate edges only.
            others, near = others[np.isfinite(near)], near[np.isfinite(near)]
            if others.size < 3:
                continue
            nearest = tuple(int(j) for j in others[np.lexsort((name_rank[others], near))][: self.neighbours])
            before, grams = prepared.get(m, ((), None))
            if nearest != before:
                grams = self._grams(m, fps, nearest)
            relatives = everyone[(everyone != m) & (blocks[everyone] == blocks[m])]
            closest = int(relatives[np.lexsort((name_rank[relatives], distances[m, relatives]))[0]])
            distance = None if closest in nearest else self._distance(fps[m], fps[closest])
            fit = self.fit_task_vectors(m, fps, nearest, nearest=distance, grams=grams)
            if fit is not None:
                found[m] = fit
        for m, fit in sorted(found.items(), key=lambda kv: kv[1].ratio):
            if m in found:
                for p in (*fit.parents, fit.base):
                    if p in found and (m in found[p].parents or m == found[p].base):
                        del found[p]
        return found
