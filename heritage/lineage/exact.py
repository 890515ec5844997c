"""Distances computed exactly from weights (for the reference recipes and for checks).

The product compares fingerprints (:mod:`heritage.lineage.distances`); these exact versions exist
because the published reference recipe (MoTHer's max-entry distance with per-layer
min-max normalisation, Ward clustering on mean-absolute differences) and the seed
system's recipe (mean per-tensor L2 over every tensor) cannot be computed from a sketch,
and because the sketch must be checked against the exact distance it estimates.
They read each compared layer of every model once, so they need all weights at hand
and cost O(N^2 x weights): fine for an evaluation, not for a catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from heritage.reading.layers import DEFAULT_ROLES, LayerRole, classify
from heritage.reading.loader import LoadedModel

_COLUMN_CHUNK = 1 << 20


@dataclass
class ExactDistances:
    """Pairwise exact statistics over the compared layers (N x N each)."""

    names: list[str]
    layers: list[str]
    max_abs: np.ndarray  # per layer: (L, N, N) max |W_u - W_v|
    mean_abs: np.ndarray  # (N, N) sum over layers of mean |W_u - W_v|
    relative_l2: np.ndarray  # (N, N) mean over layers of ||W_u - W_v|| / rms norm

    def subset(self, indices: Sequence[int]) -> "ExactDistances":
        """The same statistics restricted to the models at ``indices`` (no weights reread)."""
        idx = list(indices)
        grid = np.ix_(idx, idx)
        return ExactDistances([self.names[i] for i in idx], self.layers,
                              self.max_abs[(slice(None), *grid)], self.mean_abs[grid],
                              self.relative_l2[grid])

    def mother(self) -> np.ndarray:
        """The reference distance: per-layer max-entry, min-max normalised over pairs, max over layers."""
        n = len(self.names)
        off = ~np.eye(n, dtype=bool)
        normalised = np.zeros_like(self.max_abs)
        for l in range(self.max_abs.shape[0]):
            vals = self.max_abs[l][off]
            lo, hi = (float(vals.min()), float(vals.max())) if vals.size else (0.0, 0.0)
            normalised[l] = (self.max_abs[l] - lo) / (hi - lo) if hi > lo else 0.0
        d = normalised.max(axis=0) if len(self.layers) else np.zeros((n, n))
        np.fill_diagonal(d, 0.0)
        return d


def shared_layers(models: Sequence[LoadedModel], roles: frozenset[LayerRole]) -> list[str]:
    first = models[0]
    return [
        n for n, t in first.tensors.items()
        if len(t.shape) == 2 and classify(n) in roles
        and all(n in m.tensors and m.tensors[n].shape == t.shape for m in models[1:])
    ]


def exact_distances(models: Sequence[LoadedModel],
                    roles: frozenset[LayerRole] = DEFAULT_ROLES["mother"]) -> ExactDistances:
    n = len(models)
    layers = shared_layers(models, roles)
    max_abs = np.zeros((len(layers), n, n))
    mean_abs = np.zeros((n, n))
    rel = np.zeros((n, n))
    for li, name in enumerate(layers):
        stack = np.stack([np.asarray(m.tensors[name].load(), dtype=np.float32).reshape(-1) for m in models])
        norms = np.linalg.norm(stack.astype(np.float64), axis=1)
        for i in range(n - 1):
            diff = stack[i + 1 :] - stack[i]
            np.abs(diff, out=diff)
            mx = diff.max(axis=1)
            ma = diff.mean(axis=1, dtype=np.float64)
            l2 = np.linalg.norm(diff.astype(np.float64), axis=1)
            scale = np.sqrt((norms[i] ** 2 + norms[i + 1 :] ** 2) / 2)
            max_abs[li, i, i + 1 :] = max_abs[li, i + 1 :, i] = mx
            mean_abs[i, i + 1 :] += ma
            mean_abs[i + 1 :, i] += ma
            r = l2 / np.where(scale > 0, scale, 1.0)
            rel[i, i + 1 :] += r
            rel[i + 1 :, i] += r
    if layers:
        rel /= len(layers)
    return ExactDistances([m.name for m in models], layers, max_abs, mean_abs, rel)


def mean_tensor_l2(models: Sequence[LoadedModel]) -> np.ndarray:
    """The seed system's distance: mean over every shared tensor of ``||W_u - W_v||_2``.

    Unnormalised and unfiltered on purpose (that is the recipe being reproduced). Uses
    Gram matrices in float64 over column chunks, so each tensor is read once.
    """
    n = len(models)
    names = [
        k for k, t in models[0].tensors.items()
        if t.dtype in ("F32", "F16", "BF16", "F64")
        and all(k in m.tensors and m.tensors[k].shape == t.shape for m in models[1:])
    ]
    total = np.zeros((n, n))
    for name in names:
        arrays = [np.asarray(m.tensors[name].load(), dtype=np.float32).reshape(-1) for m in models]
        gram = np.zeros((n, n))
        for start in range(0, arrays[0].size, _COLUMN_CHUNK):
            block = np.stack([a[start : start + _COLUMN_CHUNK] for a in arrays]).astype(np.float64)
            gram += block @ block.T
        sq = np.diag(gram)
        total += np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * gram, 0.0))
    return total / max(len(names), 1)
