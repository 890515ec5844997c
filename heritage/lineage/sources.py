"""Where recovery gets fingerprints from, so that a hub's fingerprints never all sit in memory.

Recovery of a large set (:meth:`GenealogyRecovery.recover_source`) needs three things of
the models: a small entry each (name, architecture, adapter or not), the placement vectors
of one architecture at a time (256 floats per model) for the candidate search, and full
fingerprints of a batch of models at a time (candidate edges, one family's tree).  A
:class:`FingerprintSource` provides exactly that:

* :class:`InMemorySource` wraps fingerprints already in memory (tests, small sets);
* :class:`SpooledSource` keeps each fingerprint's bytes in a temporary file and parses
  them on demand through a bounded cache (``heritage recover DIR`` of a large folder);
* the catalogue's source reads them from Neo4j through its fingerprint cache
  (:mod:`heritage.catalogue.recluster_source`).

Also here: the exact ``l2`` of many pairs at once (:func:`pair_l2`), which the candidate
edges use.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from heritage.lineage.distances import compared_layers
from heritage.reading.fingerprint import PLACEMENT_DIM, Fingerprint
from heritage.reading.layers import DEFAULT_ROLES, LayerRole

__all__ = ["FingerprintSource", "InMemorySource", "ModelEntry", "SpooledSource", "pair_l2"]


@dataclass(frozen=True)
class ModelEntry:
    """What recovery knows of a model before reading its fingerprint."""

    name: str
    structure_hash: str
    is_adapter: bool


class FingerprintSource(Protocol):
    """Entries, placement vectors and fingerprints by position in ``entries``."""

    entries: Sequence[ModelEntry]

    def placement_vectors(self, indices: np.ndarray) -> np.ndarray:
        """``len(indices) x PLACEMENT_DIM`` float32 placement vectors."""

    def fingerprints(self, indices: Sequence[int]) -> list[Fingerprint]:
        """The fingerprints at ``indices``, in that order."""


class InMemorySource:
    """A source over fingerprints held in memory."""

    def __init__(self, fingerprints: Sequence[Fingerprint]) -> None:
        self._fps = list(fingerprints)
        self.entries = [ModelEntry(fp.name, fp.structure_hash, fp.is_adapter) for fp in self._fps]
        self._vectors: dict[int, np.ndarray] = {}

    def placement_vectors(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), PLACEMENT_DIM), dtype=np.float32)
        for row, i in enumerate(indices):
            vector = self._vectors.get(int(i))
            if vector is None:
                vector = self._vectors[int(i)] = self._fps[int(i)].placement_vector()
            out[row] = vector
        return out

    def fingerprints(self, indices: Sequence[int]) -> list[Fingerprint]:
        return [self._fps[int(i)] for i in indices]


class SpooledSource:
    """Fingerprints kept as bytes in a temporary file, parsed on demand.

    Memory holds the entries, the placement vectors (1 KB per model) and at most
    ``cache_bytes`` of parsed fingerprints (least recently used first out).
    """

    def __init__(self, cache_bytes: int = 256 * 1024**2, directory: str | None = None) -> None:
        self.entries: list[ModelEntry] = []
        self.cache_bytes = cache_bytes
        self._file = tempfile.TemporaryFile(dir=directory)
        self._offsets: list[tuple[int, int]] = []
        self._vectors: list[np.ndarray] = []
        self._cache: OrderedDict[int, tuple[Fingerprint, int]] = OrderedDict()
        self._cached = 0
        self._lock = threading.Lock()

    def add(self, fingerprint: Fingerprint) -> int:
        """Spool ``fingerprint``; returns its index."""
        data = fingerprint.to_bytes()
        with self._lock:
            self._file.seek(0, os.SEEK_END)
            self._offsets.append((self._file.tell(), len(data)))
            self._file.write(data)
            self.entries.append(ModelEntry(fingerprint.name, fingerprint.structure_hash, fingerprint.is_adapter))
            self._vectors.append(fingerprint.placement_vector())
            return len(self.entries) - 1

    def close(self) -> None:
        self._file.close()

    def placement_vectors(self, indices: np.ndarray) -> np.ndarray:
        return np.stack([self._vectors[int(i)] for i in indices]) if len(indices) else np.zeros((0, PLACEMENT_DIM), np.float32)

    def fingerprints(self, indices: Sequence[int]) -> list[Fingerprint]:
        out = []
        with self._lock:
            for i in map(int, indices):
                hit = self._cache.get(i)
                if hit is None:
                    offset, size = self._offsets[i]
                    self._file.seek(offset)
                    hit = (Fingerprint.from_bytes(self._file.read(size)), size)
                    self._cache[i] = hit
                    self._cached += size
                    while self._cached > self.cache_bytes and len(self._cache) > 1:
                        _, (_, evicted) = self._cache.popitem(last=False)
                        self._cached -= evicted
                else:
                    self._cache.move_to_end(i)
                out.append(hit[0])
        return out


def pair_l2(a: Sequence[Fingerprint], b: Sequence[Fingerprint],
            roles: frozenset[LayerRole] | None = None) -> np.ndarray:
    """Relative ``l2`` of each pair ``(a[p], b[p])`` of one architecture, vectorised.

    The same quantity as :func:`heritage.lineage.distances.pair_distance` (mean over the
    compared layers of ``||S_a - S_b|| / rms(norms)``), summed in float64: it agrees with
    the pairwise function to float32 rounding (~1e-7 relative), far below any gap a
    family cut is placed in.
    """
    if not a:
        return np.zeros(0)
    roles = roles or DEFAULT_ROLES["l2"]
    names = compared_layers(a[0], b[0], roles)
    total = np.zeros(len(a), dtype=np.float64)
    for name in names:
        sa = np.stack([fp.layers[name].sketch for fp in a])
        sb = np.stack([fp.layers[name].sketch for fp in b])
        diff = (sa - sb).reshape(len(a), -1).astype(np.float64)
        norm = np.sqrt(np.einsum("ij,ij->i", diff, diff))
        na = np.array([fp.layers[name].norm for fp in a])
        nb = np.array([fp.layers[name].norm for fp in b])
        scale = np.sqrt((na**2 + nb**2) / 2)
        total += norm / np.where(scale > 0, scale, 1.0)
    return total / len(names)
