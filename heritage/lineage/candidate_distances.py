"""Distances of a family known on its candidate edges only (the tree of a large family).

A family of thousands of models gets exact distances on its candidate edges
(:meth:`heritage.lineage.candidates.SparseFamilies.candidate_graph`), not on every pair.
:class:`CandidateDistances` holds them and answers the lookups the dense matrix answers
elsewhere in recovery (a row, ``d[i, j]``, ``d[i, columns]``), with ``inf`` for a pair
that is not a candidate (a model's distance to itself is 0), so the code that asks
"which relatives are nearest" works on either.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["CandidateDistances"]


class CandidateDistances:
    """Symmetric distances on candidate edges ``(i[e], j[e]) -> w[e]`` among ``n`` models.

    Examples
    --------
    >>> d = CandidateDistances(3, [0, 1], [1, 2], [0.1, 0.2])
    >>> float(d[1, 0]), float(d[0, 2]), d[1, [0, 1, 2]].tolist()
    (0.1, inf, [0.1, 0.0, 0.2])
    """

    def __init__(self, n: int, i: Any, j: Any, w: Any) -> None:
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        w = np.asarray(w, dtype=np.float64)
        keep = i != j
        i, j, w = i[keep], j[keep], w[keep]
        rows, cols, values = np.r_[i, j], np.r_[j, i], np.r_[w, w]
        order = np.lexsort((cols, rows))
        self.shape = (n, n)
        self.indices = cols[order]
        self.values = values[order]
        self.indptr = np.searchsorted(rows[order], np.arange(n + 1))

    @property
    def edges(self) -> int:
        """Number of candidate pairs."""
        return int(self.indices.size // 2)

    def neighbours(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(models, distances)`` of the candidates of model ``i``, by index."""
        lo, hi = self.indptr[i], self.indptr[i + 1]
        return self.indices[lo:hi], self.values[lo:hi]

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every candidate pair once: ``(i, j, distance)`` with ``i < j``, by ``(i, j)``."""
        rows = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        upper = rows < self.indices
        return rows[upper], self.indices[upper], self.values[upper]

    def pairs_below(self, bound: float, among: np.ndarray) -> list[tuple[int, int]]:
        """Pairs ``i < j`` of ``among`` closer than ``bound``, by ``(i, j)`` (the order of
        a loop over the upper triangle of a dense matrix)."""
        i, j, w = self.pairs()
        inside = np.zeros(self.shape[0], dtype=bool)
        inside[np.asarray(among, dtype=np.int64)] = True
        keep = (w < bound) & inside[i] & inside[j]
        return list(zip(i[keep].tolist(), j[keep].tolist()))

    def row(self, i: int) -> np.ndarray:
        """Model ``i``'s distances to every model (``inf`` off the candidates)."""
        out = np.full(self.shape[0], np.inf)
        cols, values = self.neighbours(i)
        out[cols] = values
        out[i] = 0.0
        return out

    def subset(self, index: Any) -> "CandidateDistances":
        """The candidate distances among ``index`` (positions in it become the new indices)."""
        index = np.asarray(index, dtype=np.int64)
        position = np.full(self.shape[0], -1, dtype=np.int64)
        position[index] = np.arange(index.size)
        i, j, w = self.pairs()
        keep = (position[i] >= 0) & (position[j] >= 0)
        return CandidateDistances(index.size, position[i[keep]], position[j[keep]], w[keep])

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            return self.row(int(key))
        i, j = key
        cols, values = self.neighbours(int(i))
        wanted = np.asarray(j, dtype=np.int64)
        at = np.minimum(np.searchsorted(cols, wanted), max(cols.size - 1, 0))
        found = cols[at] == wanted if cols.size else np.zeros(wanted.shape, dtype=bool)
        out = np.where(found, values[at] if cols.size else 0.0, np.inf)
        out = np.where(wanted == int(i), 0.0, out)
        return float(out) if out.ndim == 0 else out
