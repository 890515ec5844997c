"""Past one machine: the heavy work of imports and reclusters on a Dask cluster.

``heritage import ... --scheduler tcp://HOST:8786`` (or ``HERITAGE_DASK_SCHEDULER``):

* **ingest** — :class:`DaskReader` sends each model's hashing and fingerprinting to a
  ``dask.distributed`` worker, which reads the weights where they are (the path must be
  readable by the workers: a shared file system or object-storage mount) and returns the
  SHA-256, the profile and the fingerprint's bytes (a few hundred KB).  The catalogue
  writes the results in batches (:func:`heritage.catalogue.importer.import_batch`), so a
  worker killed mid-import costs nothing: Dask reruns its tasks on another worker, and a
  result that arrives twice is one model (writes are idempotent by SHA-256);
* **recluster** — :func:`dask_mapper` runs the candidate searches (placement vectors
  only) and the family trees (a batch of families' fingerprints each) as tasks; the
  catalogue reads the fingerprints from Neo4j and writes the genealogy as in process.

Workers never talk to Neo4j.  Without a scheduler everything runs in process.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heritage.catalogue.prepare import Opened, Prepared
from heritage.catalogue.readers import ReadFailure
from heritage.reading.fingerprint import Fingerprint
from heritage.reading.profile import ModelProfile

__all__ = ["DaskReader", "connect", "dask_mapper"]

log = logging.getLogger(__name__)

# Tasks kept in flight by dask_mapper per worker thread (bounded memory on both sides).
_IN_FLIGHT_PER_THREAD = 4


def connect(address: str) -> Any:
    """A ``distributed.Client`` of the scheduler at ``address``; a clear error without Dask."""
    from heritage.catalogue.errors import SchedulerUnavailable

    try:
        from distributed import Client
    except ImportError:
        raise SchedulerUnavailable("a Dask scheduler was given but dask.distributed is not installed: "
                                   "pip install 'model-heritage[distributed]'") from None
    try:
        return Client(address, timeout="20s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise SchedulerUnavailable(f"the Dask scheduler at {address} cannot be reached ({exc})") from None


def _threads(client: Any) -> int:
    return max(1, sum(client.nthreads().values()))


def dask_mapper(client: Any) -> Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]:
    """A ``map``-like callable that runs ``fn(item)`` as Dask tasks, results in order.

    At most a few tasks per worker thread are in flight, so neither side holds the whole
    input; each item is scattered to the cluster first (no large task graphs).
    """
    def mapper(fn: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        window = _IN_FLIGHT_PER_THREAD * _threads(client)
        pending: deque[Any] = deque()
        for item in items:
            [data] = client.scatter([item], hash=False)
            pending.append(client.submit(fn, data, pure=False))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    return mapper


# --------------------------------------------------------------------------- ingest tasks


@dataclass(frozen=True)
class _Hashed:
    name: str
    path: str
    sha256: str
    # A hub snapshot's revision, known from the path the model was opened by (its files
    # resolve into the cache's blobs/, which name no revision).
    revision: str | None = None


@dataclass(frozen=True)
class _Read:
    id: str
    name: str
    path: str
    profile: ModelProfile
    data: bytes


def _hash_task(entry: tuple[str, str]) -> _Hashed | ReadFailure:
    """On a worker: open and hash one model."""
    from heritage.catalogue.readers import LocalReader

    name, path = entry
    [opened] = LocalReader().open_many([(name, Path(path))])
    if isinstance(opened, ReadFailure):
        return opened
    return _Hashed(opened.name, str(opened.path), opened.sha256, opened.model.revision)


def _prepare_task(task: tuple[_Hashed, str | None]) -> _Read | ReadFailure:
    """On a worker: open, profile and fingerprint one model (by the path it was hashed at)."""
    from heritage.catalogue.readers import LocalReader
    from heritage.errors import ModelLoadError
    from heritage.reading.loader import load_model

    hashed, description = task
    try:
        model = load_model(Path(hashed.path), hashed.name)
    except (ModelLoadError, OSError) as exc:
        return ReadFailure(str(exc))
    if model.revision is None:
        model.revision = hashed.revision
    # The hash is known from the first task: the files are not read again to hash them.
    opened = Opened(name=hashed.name, path=Path(hashed.path), model=model, sha256=hashed.sha256)
    [prepared] = LocalReader().prepare_many([opened], description)
    if isinstance(prepared, ReadFailure):
        return prepared
    return _Read(prepared.id, prepared.name, str(prepared.path), prepared.profile, prepared.data)


class DaskReader:
    """A :class:`~heritage.catalogue.readers.ModelReader` whose reads run on Dask workers."""

    def __init__(self, client: Any) -> None:
        self.client = client
        # Hub snapshot revisions found while hashing, by (name, resolved path), for the
        # fingerprinting tasks (an Opened from a worker carries no model to hold them).
        self._revisions: dict[tuple[str, str], str | None] = {}

    def _run(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        futures = self.client.map(fn, list(items), pure=False)
        return self.client.gather(futures)

    def open_many(self, entries: Sequence[tuple[str, Path]]) -> list[Opened | ReadFailure]:
        results = self._run(_hash_task, [(name, str(path)) for name, path in entries])
        out: list[Opened | ReadFailure] = []
        for r in results:
            if isinstance(r, ReadFailure):
                out.append(r)
                continue
            self._revisions[(r.name, r.path)] = r.revision
            out.append(Opened(name=r.name, path=Path(r.path), model=None, sha256=r.sha256))  # type: ignore[arg-type]
        return out

    def prepare_many(self, opened: Sequence[Opened], description: str | None) -> list[Prepared | ReadFailure]:
        tasks = [(_Hashed(o.name, str(o.path), o.sha256, self._revisions.pop((o.name, str(o.path)), None)), description)
                 for o in opened]
        out: list[Prepared | ReadFailure] = []
        for r in self._run(_prepare_task, tasks):
            if isinstance(r, ReadFailure):
                out.append(r)
            else:
                out.append(Prepared(id=r.id, name=r.name, path=Path(r.path), description=description,
                                    profile=r.profile, fingerprint=Fingerprint.from_bytes(r.data), data=r.data))
        return out
