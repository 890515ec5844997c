"""Who reads the weights during a batch import: this process, or the workers of a cluster.

Why an interface: reading is the heavy part of an import (hashing streams every byte,
fingerprinting reads every attention matrix), and when weights live on many disks or in
object storage it should happen where they are.  :func:`import_batch` asks a reader for
two things per batch and writes the results itself, in batches:

* ``open_many``: open and hash each entry (headers and SHA-256: enough to skip models
  that are already stored, so a re-run does not fingerprint them again);
* ``prepare_many``: profile and fingerprint the new ones.

Failures are per model (a one-line reason), never exceptions.  :class:`LocalReader`
reads in this process; :class:`heritage.distributed.DaskReader` on Dask workers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from heritage.catalogue.prepare import Opened, Prepared, open_model, prepare_model
from heritage.errors import HeritageError, ModelLoadError

__all__ = ["LocalReader", "ModelReader", "ReadFailure"]


class ReadFailure(str):
    """Why one model could not be read (the message shown to the user)."""


class ModelReader(Protocol):
    def open_many(self, entries: Sequence[tuple[str, Path]]) -> list[Opened | ReadFailure]:
        """Each ``(name, path)`` opened and hashed, in order."""

    def prepare_many(self, opened: Sequence[Opened], description: str | None) -> list[Prepared | ReadFailure]:
        """Each opened model profiled and fingerprinted, in order."""


class LocalReader:
    """Reads in this process (the default)."""

    def open_many(self, entries: Sequence[tuple[str, Path]]) -> list[Opened | ReadFailure]:
        out: list[Opened | ReadFailure] = []
        for name, path in entries:
            try:
                out.append(open_model(path, name))
            except (ModelLoadError, OSError) as exc:
                out.append(ReadFailure(str(exc)))
        return out

    def prepare_many(self, opened: Sequence[Opened], description: str | None) -> list[Prepared | ReadFailure]:
        out: list[Prepared | ReadFailure] = []
        for o in opened:
            try:
                out.append(prepare_model(o, description))
            except (HeritageError, OSError) as exc:
                out.append(ReadFailure(str(exc)))
        return out
