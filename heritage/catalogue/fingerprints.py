"""Stored fingerprints, parsed once and kept in a bounded in-process cache.

Why: rebuilding a family's tree needs every member's fingerprint, and imports into one
family rebuild it again and again; reading and parsing the same bytes each time would
make the database transfer dominate.  Entries are keyed by ``(model id, sha256)``, so a
model whose weights changed (reprocess) is never served a stale fingerprint, even when
another process changed it.  Fingerprints are renamed to their model id: that is the
name the recovery sees (names must be unique, ids are).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import OrderedDict
from typing import Any
from collections.abc import Iterable

from graph.database import Database
from heritage.reading.fingerprint import Fingerprint

__all__ = ["FingerprintCache", "FINGERPRINT_QUERY_CHUNK", "read_fingerprint_rows"]

log = logging.getLogger(__name__)

# Fingerprints fetched per round trip (a BERT-base fingerprint is a few hundred KB).
FINGERPRINT_QUERY_CHUNK = 64


def read_fingerprint_rows(db: Database, ids: list[str]) -> list[dict[str, Any]]:
    """Rows of ``model_fingerprints`` for ``ids`` (bytes kept as decoded: ``read_raw``)."""
    return db.read_raw("model_fingerprints", ids=ids)


class FingerprintCache:
    """A thread-safe LRU of parsed fingerprints of ``db``, bounded by serialised size in bytes."""

    def __init__(self, db: Database, max_bytes: int) -> None:
        self.db = db
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple[str, str], tuple[Fingerprint, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put(self, model_id: str, sha256: str, fingerprint: Fingerprint, size: int) -> Fingerprint:
        """Cache ``fingerprint`` (renamed to ``model_id``) and return the renamed one."""
        fp = fingerprint if fingerprint.name == model_id else dataclasses.replace(fingerprint, name=model_id)
        if size > self.max_bytes:
            return fp
        key = (model_id, sha256)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._entries[key] = (fp, size)
            self._bytes += size
            while self._bytes > self.max_bytes and self._entries:
                _, (_, evicted) = self._entries.popitem(last=False)
                self._bytes -= evicted
        return fp

    def forget(self, model_id: str) -> None:
        """Drop every cached fingerprint of ``model_id`` (deleted or reprocessed)."""
        with self._lock:
            for key in [k for k in self._entries if k[0] == model_id]:
                self._bytes -= self._entries.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _get(self, model_id: str, sha256: str) -> Fingerprint | None:
        with self._lock:
            entry = self._entries.get((model_id, sha256))
            if entry is None:
                return None
            self._entries.move_to_end((model_id, sha256))
            return entry[0]

    def get_many(self, keys: Iterable[tuple[str, str]]) -> dict[str, Fingerprint]:
        """Fingerprints of ``(model id, sha256)`` pairs by model id, reading misses from Neo4j.

        A model whose fingerprint is missing from the database is left out of the result
        (the caller decides whether that is an error).
        """
        keys = list(dict.fromkeys(keys))
        found: dict[str, Fingerprint] = {}
        missing: list[str] = []
        for model_id, sha256 in keys:
            fp = self._get(model_id, sha256)
            if fp is None:
                missing.append(model_id)
            else:
                found[model_id] = fp
        for start in range(0, len(missing), FINGERPRINT_QUERY_CHUNK):
            chunk = missing[start : start + FINGERPRINT_QUERY_CHUNK]
            for row in read_fingerprint_rows(self.db, chunk):
                data = bytes(row["data"])
                fp = Fingerprint.from_bytes(data)
                found[row["id"]] = self.put(row["id"], row["sha256"], fp, len(data))
        if len(found) < len(keys):
            lost = [k for k, _ in keys if k not in found]
            log.warning("no stored fingerprint for %d model(s): %s", len(lost), ", ".join(lost[:5]))
        return found
