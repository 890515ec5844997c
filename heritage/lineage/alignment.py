"""Which matrices of two models are compared with each other: tensor alignment.

Real checkpoints of one lineage rarely have the same tensors: a child saved as a
sequence classifier adds a head, a re-saved model loses the ``position_ids`` buffer, a
resized vocabulary changes the embeddings, a layer-subset student keeps some blocks.
Names are canonical already (wrapper prefixes removed by the readers), and fingerprints
keep only the backbone's compared matrices, so alignment is about those:

* models with the same blocks compare each matrix with the one of the same name and
  shape;
* a model with fewer blocks of the same width (a layer-subset student) compares each
  of its blocks with one of the other's, by the monotone mapping (block ``i`` before
  block ``i + 1`` on both sides) of least total sketch distance, found by dynamic
  programming;
* matrices outside the blocks compare by name.

The *aligned share* of a model is the part of its compared parameters that found a
partner; it is evidence (stored on every edge as ``aligned``) and two models are only
candidate relatives when most of their parameters align.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from heritage.reading.fingerprint import Fingerprint, LayerFingerprint
from heritage.reading.layers import LayerRole, block_index, block_pattern

__all__ = ["Alignment", "align", "MIN_ALIGNED_SHARE"]

# Two models are candidate relatives only when at least this share of the smaller
# one's compared parameters aligns with the other's.
MIN_ALIGNED_SHARE = 0.5


@dataclass(frozen=True)
class Alignment:
    """Matched matrices of models ``a`` and ``b``.

    ``pairs``: (name in a, name in b); ``share_a`` / ``share_b``: part of each model's
    compared parameters that is matched; ``block_map``: for a mapped (different block
    count) alignment, a's block index -> b's, else None.
    """

    pairs: tuple[tuple[str, str], ...]
    share_a: float
    share_b: float
    block_map: tuple[tuple[int, int], ...] | None = None

    @property
    def mapped(self) -> bool:
        return self.block_map is not None

    def swapped(self) -> "Alignment":
        return Alignment(tuple((y, x) for x, y in self.pairs), self.share_b, self.share_a,
                         None if self.block_map is None else tuple((y, x) for x, y in self.block_map))


def _blocks(fp: Fingerprint, roles: frozenset[LayerRole]) -> tuple[dict[int, dict[str, str]], dict[str, str]]:
    """(block index -> {pattern: name}, {name: name} of matrices outside the blocks)."""
    blocks: dict[int, dict[str, str]] = {}
    loose: dict[str, str] = {}
    for name, layer in fp.layers.items():
        if layer.role not in roles:
            continue
        index = block_index(name)
        if index is None:
            loose[name] = name
        else:
            blocks.setdefault(index, {})[block_pattern(name)] = name
    return blocks, loose


def _relative(la: LayerFingerprint, lb: LayerFingerprint) -> float:
    scale = math.sqrt((la.norm**2 + lb.norm**2) / 2) or 1.0
    return float(np.linalg.norm(la.sketch - lb.sketch)) / scale


def _matching(a: Fingerprint, b: Fingerprint, names_a: dict[str, str], names_b: dict[str, str]) -> list[tuple[str, str]]:
    """Pairs of same key and shape between two {key: name} maps."""
    return [(na, names_b[key]) for key, na in names_a.items()
            if key in names_b and a.layers[na].shape == b.layers[names_b[key]].shape]


def _monotone_map(cost: np.ndarray) -> list[int]:
    """For each row i (fewer rows than columns), the column f(i), strictly increasing,
    minimising the sum of ``cost[i, f(i)]``."""
    m, n = cost.shape
    best = np.full((m, n), np.inf)
    back = np.zeros((m, n), dtype=int)
    best[0] = cost[0]
    for i in range(1, m):
        running, arg = np.inf, -1
        for j in range(i, n):
            if best[i - 1, j - 1] < running:
                running, arg = best[i - 1, j - 1], j - 1
            best[i, j] = cost[i, j] + running
            back[i, j] = arg
    j = int(np.argmin(best[m - 1]))
    out = [j]
    for i in range(m - 1, 0, -1):
        j = int(back[i, j])
        out.append(j)
    return out[::-1]


def _params(fp: Fingerprint, names: list[str]) -> int:
    return sum(fp.layers[n].shape[0] * fp.layers[n].shape[1] for n in names)


def _align(a: Fingerprint, b: Fingerprint, roles: frozenset[LayerRole]) -> Alignment:
    names = [n for n, l in a.layers.items() if l.role in roles]
    if (len(names) == sum(1 for l in b.layers.values() if l.role in roles)
            and all(n in b.layers and b.layers[n].shape == a.layers[n].shape for n in names)):
        return Alignment(tuple((n, n) for n in names), 1.0, 1.0)  # the common case: same matrices
    blocks_a, loose_a = _blocks(a, roles)
    blocks_b, loose_b = _blocks(b, roles)
    pairs = _matching(a, b, loose_a, loose_b)
    block_map: list[tuple[int, int]] | None = None
    if sorted(blocks_a) == sorted(blocks_b):
        for index in sorted(blocks_a):
            pairs += _matching(a, b, blocks_a[index], blocks_b[index])
    elif blocks_a and blocks_b:
        swap = len(blocks_a) > len(blocks_b)
        small, large = (b, a) if swap else (a, b)
        bs, bl = (blocks_b, blocks_a) if swap else (blocks_a, blocks_b)
        ks, kl = sorted(bs), sorted(bl)
        cost = np.full((len(ks), len(kl)), np.inf)
        for i, si in enumerate(ks):
            for j, lj in enumerate(kl):
                matched = _matching(small, large, bs[si], bl[lj])
                if matched:
                    cost[i, j] = float(np.mean([_relative(small.layers[x], large.layers[y]) for x, y in matched]))
        if np.isfinite(cost).any():
            cost = np.where(np.isfinite(cost), cost, 1e6)
            mapping = _monotone_map(cost)
            block_map = []
            for i, j in enumerate(mapping):
                matched = _matching(small, large, bs[ks[i]], bl[kl[j]])
                pairs += [(y, x) for x, y in matched] if swap else matched
                block_map.append((kl[j], ks[i]) if swap else (ks[i], kl[j]))
    compared_a = [n for n, l in a.layers.items() if l.role in roles]
    compared_b = [n for n, l in b.layers.items() if l.role in roles]
    share_a = _params(a, [x for x, _ in pairs]) / (_params(a, compared_a) or 1)
    share_b = _params(b, [y for _, y in pairs]) / (_params(b, compared_b) or 1)
    return Alignment(tuple(pairs), share_a, share_b, None if block_map is None else tuple(block_map))


def align(a: Fingerprint, b: Fingerprint, roles: frozenset[LayerRole]) -> Alignment:
    """The matched matrices of ``a`` and ``b`` among those with a role in ``roles``.

    Examples
    --------
    >>> import numpy as np
    >>> from heritage.reading.fingerprint import Fingerprint, LayerFingerprint
    >>> from heritage.reading.layers import LayerRole
    >>> def fp(name, blocks):
    ...     layers = {f"layer.{i}.attention.self.query.weight": LayerFingerprint(
    ...         f"layer.{i}.attention.self.query.weight", LayerRole.ATTENTION_Q, (4, 4), 1.0, 0.0, 1.0,
    ...         0.0, np.full((4, 4), float(v))) for i, v in blocks.items()}
    ...     return Fingerprint(name, "", False, None, 48, layers)
    >>> teacher, student = fp("t", {0: 1, 1: 2, 2: 3, 3: 4}), fp("s", {0: 1, 1: 3})
    >>> found = align(student, teacher, frozenset({LayerRole.ATTENTION_Q}))
    >>> found.block_map, found.share_a, found.share_b
    (((0, 0), (1, 2)), 1.0, 0.5)
    """
    return _align(a, b, roles)
