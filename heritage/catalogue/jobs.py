"""Long work (recluster, batch import) as ``(:Job)`` nodes, run on a background thread.

Why in the database: a client that started a recluster through the API polls the job,
possibly through another worker process, and a job must not stay ``running`` forever when
its process died.  Each job records its owner as ``host:pid:token`` (``token`` is random
per process, so a restarted server that got the same pid is still a different owner); at
start-up :func:`fail_orphaned_jobs` marks failed the queued/running jobs of this host
whose process is gone.

One worker thread per process runs jobs in submission order: genealogy rewrites are
serialised anyway, and the machine's cores go to the compute inside each job.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypedDict
from collections.abc import Callable

from graph.database import Database
from graph.processes import process_alive
from heritage.catalogue.errors import JobNotFound
from heritage.catalogue.records import native

__all__ = [
    "JobRecord",
    "JobContext",
    "JobRunner",
    "owner_token",
    "create_job",
    "update_job",
    "get_job",
    "list_jobs",
    "fail_orphaned_jobs",
    "JOB_STATES",
]

log = logging.getLogger(__name__)

JOB_STATES = ("queued", "running", "succeeded", "failed")
_PROCESS_TOKEN = uuid.uuid4().hex[:12]


class JobRecord(TypedDict, total=False):
    """A job: ``state`` in queued|running|succeeded|failed, ``progress`` in [0, 1],
    ``result`` the JSON-decoded value the work returned (``None`` until it succeeds)."""

    id: str
    kind: str
    state: str
    progress: float
    message: str | None
    result: Any
    owner: str | None
    created_at: Any
    updated_at: Any


def owner_token() -> str:
    """``host:pid:token`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TOKEN}"


def _job_record(row: dict[str, Any]) -> JobRecord:
    job = native(row["job"])
    result = job.get("result")
    if isinstance(result, str):
        try:
            result = json.loads(result)
        except ValueError:
            pass
    return {
        "id": job["id"], "kind": job.get("kind"), "state": job.get("state"),
        "progress": float(job.get("progress") or 0.0), "message": job.get("message"),
        "result": result, "owner": job.get("owner"),
        "created_at": job.get("createdAt"), "updated_at": job.get("updatedAt"),
    }  # type: ignore[return-value]


def create_job(db: Database, kind: str, message: str | None = None) -> JobRecord:
    rows = db.write("job_create", id=uuid.uuid4().hex, kind=kind, message=message, owner=owner_token())
    return _job_record(rows[0])


def update_job(db: Database, job_id: str, *, state: str | None = None, progress: float | None = None,
               message: str | None = None, result: Any = None) -> JobRecord:
    if state is not None and state not in JOB_STATES:
        raise ValueError(f"unknown job state {state!r}")
    encoded = None if result is None else json.dumps(result, default=str)
    rows = db.write("job_update", id=job_id, state=state, progress=progress, message=message, result=encoded)
    if not rows:
        raise JobNotFound(job_id)
    return _job_record(rows[0])


def get_job(db: Database, job_id: str) -> JobRecord:
    rows = db.read("job_get", id=job_id)
    if not rows:
        raise JobNotFound(job_id)
    return _job_record(rows[0])


def list_jobs(db: Database, state: str | None = None, limit: int = 50) -> list[JobRecord]:
    if state is not None and state not in JOB_STATES:
        raise ValueError(f"unknown job state {state!r}")
    return [_job_record(r) for r in db.read("job_list", state=state, limit=max(1, int(limit)))]


def _owner_gone(owner: str | None) -> bool:
    """True when ``owner`` is a process of this host that no longer runs."""
    if not owner:
        return True
    try:
        host, pid_text, token = owner.rsplit(":", 2)
        pid = int(pid_text)
    except ValueError:
        return True
    if host != socket.gethostname():
        return False  # another machine's job: we cannot tell
    if pid == os.getpid():
        return token != _PROCESS_TOKEN
    return not process_alive(pid)


def fail_orphaned_jobs(db: Database) -> list[str]:
    """Mark failed the queued/running jobs whose process is gone; returns their ids."""
    stale = [r["id"] for r in db.read("job_active") if _owner_gone(r["owner"])]
    if stale:
        db.write("job_fail", ids=stale, message="interrupted: the process running this job is gone")
        log.warning("marked %d orphaned job(s) failed", len(stale))
    return stale


class JobContext:
    """Handed to a job's work function: report progress, read the job id."""

    def __init__(self, db: Database, job_id: str) -> None:
        self.db = db
        self.job_id = job_id

    def progress(self, fraction: float, message: str | None = None) -> None:
        try:
            update_job(self.db, self.job_id, progress=max(0.0, min(1.0, float(fraction))), message=message)
        except Exception:  # progress is best effort; the work goes on
            log.exception("could not record progress of job %s", self.job_id)


class JobRunner:
    """Runs submitted work on one background thread, recording state in the Job node of ``db``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, kind: str, work: Callable[[JobContext], Any], message: str | None = None) -> JobRecord:
        """Create a queued job and run ``work(context)`` in the background; its return value
        (JSON-serialisable) becomes the job's ``result``, an exception its failure message."""
        job = create_job(self.db, kind, message)
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heritage-job")
            self._executor.submit(self._run, job["id"], work)
        return job

    def _run(self, job_id: str, work: Callable[[JobContext], Any]) -> None:
        try:
            update_job(self.db, job_id, state="running", message="running")
            result = work(JobContext(self.db, job_id))
            update_job(self.db, job_id, state="succeeded", progress=1.0, message="done", result=result)
        except Exception as exc:  # recorded in the job, never lost silently
            log.exception("job %s failed", job_id)
            try:
                update_job(self.db, job_id, state="failed", message=f"{exc.__class__.__name__}: {exc}")
            except Exception:
                log.exception("could not record the failure of job %s", job_id)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=wait)
                self._executor = None
