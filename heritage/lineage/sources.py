"""Where recovery gets fingerprints from, so that a hub's fingerprints never all sit in memory.

Recovery of a large set (:meth:`GenealogyRecovery.recover_source`) needs three things of
the models: a small entry each (name, backbone key, block count, adapter or not), the
placement vectors of one backbone at a time (256 floats per model) for the candidate
search, and full fingerprints of a batch of models at a time (candidate edges, one
family's tree).  A :class:`FingerprintSource` provides exactly that:

* :class:`InMemorySource` wraps fingerprints already in memory (tests, small sets);
* :class:`SpooledSource` keeps each fingerprint's bytes in a temporary file and parses
  them on demand through a bounded cache (``heritage recover DIR`` of a large folder);
* the catalogue's source reads them from Neo4j through its fingerprint cache
  (:mod:`heritage.catalogue.recluster_source`).
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

from heritage.reading.fingerprint import PLACEMENT_DIM, Fingerprint

__all__ = ["FingerprintSource", "InMemorySource", "ModelEntry", "SpooledSource"]


@dataclass(frozen=True)
class ModelEntry:
    """What recovery knows of a model before reading its fingerprint.

    ``backbone_key``: :attr:`Fingerprint.backbone_key` (models are compared within a
    key); ``blocks``: :attr:`Fingerprint.block_count` (placement vectors are comparable
    only between models with as many blocks).
    """

    name: str
    backbone_key: str
    is_adapter: bool
    blocks: int

    @classmethod
    def of(cls, fp: Fingerprint) -> "ModelEntry":
        return cls(fp.name, fp.backbone_key, fp.is_adapter, fp.block_count)


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
        self.entries = [ModelEntry.of(fp) for fp in self._fps]
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
            self.entries.append(ModelEntry.of(fingerprint))
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
