"""One Neo4j driver per process, and helpers that run queries in managed transactions.

The official driver is thread-safe and pools connections, so the process shares a
single instance (:func:`get_driver`).  Queries go through ``execute_read`` /
``execute_write`` so transient failures (leader switch, deadlock) are retried by the
driver; that also means a transaction function may run more than once and must not
have side effects outside the database.

Driver exceptions are translated into :mod:`graph.errors` so callers deal with a
handful of meaningful cases instead of the driver's hierarchy.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import neo4j
from neo4j import exceptions as neo4j_errors

from graph.errors import (
    AuthenticationFailed,
    ConstraintViolation,
    DatabaseUnavailable,
    DuplicateModelError,
    GraphError,
)
from graph.queries import is_query_name, load_query
from graph.settings import Neo4jSettings

__all__ = [
    "GraphTransaction",
    "check_connectivity",
    "close_driver",
    "current_settings",
    "get_driver",
    "read",
    "resolve_query",
    "run_in_read_transaction",
    "run_in_write_transaction",
    "translate_errors",
    "write",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# Short connect timeout: a stopped local server should fail fast, not hang a CLI call.
_DRIVER_OPTIONS: dict[str, Any] = {
    "connection_timeout": 5.0,
    "max_transaction_retry_time": 10.0,
    # "property/label does not exist" hints fire on every query against an empty or
    # young catalogue (optional properties are normal here); they drown real warnings.
    "notifications_disabled_classifications": ["UNRECOGNIZED"],
}

# What the driver raises when the server cannot be reached or is not ready yet.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    neo4j_errors.ServiceUnavailable,
    neo4j_errors.SessionExpired,
    neo4j_errors.DatabaseUnavailable,
    OSError,
)

_lock = threading.Lock()
_driver: neo4j.Driver | None = None
_settings: Neo4jSettings | None = None
_owner_pid: int | None = None


def resolve_query(query: str) -> str:
    """Cypher text for ``query``: a query name (``"model_get"``) or Cypher text itself."""
    return load_query(query) if is_query_name(query) else query


@contextmanager
def translate_errors(settings: Neo4jSettings | None = None) -> Iterator[None]:
    """Turn driver exceptions raised inside the block into :mod:`graph.errors`."""
    try:
        yield
    except GraphError:
        raise
    except neo4j_errors.ConstraintError as exc:
        message = exc.message or str(exc)
        cls = DuplicateModelError if "`Model`" in message else ConstraintViolation
        raise cls(f"constraint violation: {message}", message) from exc
    except neo4j_errors.AuthError as exc:
        settings = settings or current_settings()
        hint = (
            "no password is configured: set NEO4J_PASSWORD or run `heritage neo4j start`"
            if settings.password is None
            else "check NEO4J_USER/NEO4J_PASSWORD (a local server keeps the password it was first "
            f"started with; see {settings.home_dir}/conf/.password)"
        )
        raise AuthenticationFailed(
            f"Neo4j at {settings.uri} rejected user {settings.user!r}: {hint}"
        ) from exc
    except UNAVAILABLE_ERRORS as exc:
        settings = settings or current_settings()
        raise DatabaseUnavailable(
            f"Neo4j is not reachable at {settings.uri} ({exc.__class__.__name__}: {exc}); "
            "start it with `heritage neo4j start` or set NEO4J_URI"
        ) from exc


def get_driver(settings: Neo4jSettings | None = None) -> neo4j.Driver:
    """The process-wide driver; built on first use from ``settings`` or the environment.

    Passing settings that differ from the current ones closes the old driver and
    builds a new one (tests and the CLI use this to point at a specific server).
    A forked child never reuses its parent's driver (sockets are not fork-safe).
    """
    global _driver, _settings, _owner_pid
    with _lock:
        if _driver is not None and _owner_pid != os.getpid():
            _driver, _settings = None, None  # inherited across fork: drop, do not close
        if _driver is not None and (settings is None or settings == _settings):
            return _driver
        if _driver is not None:
            _driver.close()
        _settings = settings or Neo4jSettings.from_env()
        log.debug("creating Neo4j driver for %s (database %s)", _settings.uri, _settings.database)
        with translate_errors(_settings):
            _driver = neo4j.GraphDatabase.driver(_settings.uri, auth=_settings.auth, **_DRIVER_OPTIONS)
        _owner_pid = os.getpid()
        return _driver


def current_settings() -> Neo4jSettings:
    """Settings of the process-wide driver, or from the environment when none is built yet."""
    return _settings or Neo4jSettings.from_env()


def close_driver() -> None:
    """Close the process-wide driver; the next :func:`get_driver` builds a new one."""
    global _driver, _settings
    with _lock:
        if _driver is not None and _owner_pid == os.getpid():
            _driver.close()
        _driver, _settings = None, None


def check_connectivity(settings: Neo4jSettings | None = None) -> None:
    """Raise :class:`DatabaseUnavailable` / :class:`AuthenticationFailed` unless Neo4j answers."""
    driver = get_driver(settings)
    with translate_errors(settings):
        driver.verify_connectivity()


class GraphTransaction:
    """A managed transaction that also accepts query names; see :func:`run_in_write_transaction`."""

    def __init__(self, tx: neo4j.ManagedTransaction) -> None:
        self.raw = tx

    def run(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run a named query or Cypher text with parameters; all rows as dicts."""
        return self.raw.run(resolve_query(query), params).data()  # type: ignore[arg-type]


def _run_managed(mode: str, work: Callable[[GraphTransaction], T], settings: Neo4jSettings | None) -> T:
    driver = get_driver(settings)
    database = (settings or current_settings()).database
    with translate_errors(settings), driver.session(database=database) as session:
        execute = session.execute_write if mode == "write" else session.execute_read
        return execute(lambda tx: work(GraphTransaction(tx)))


def run_in_write_transaction(
    work: Callable[[GraphTransaction], T], *, settings: Neo4jSettings | None = None
) -> T:
    """Run ``work(tx)`` inside ONE write transaction: all its queries commit or none do.

    This is how a whole family tree is replaced atomically.  ``work`` may be
    retried on transient errors, so it must only touch the database.
    """
    return _run_managed("write", work, settings)


def run_in_read_transaction(
    work: Callable[[GraphTransaction], T], *, settings: Neo4jSettings | None = None
) -> T:
    """Run ``work(tx)`` inside one read transaction (a consistent snapshot)."""
    return _run_managed("read", work, settings)


def write(query: str, /, **params: Any) -> list[dict[str, Any]]:
    """Run one named query or Cypher text in its own write transaction; rows as dicts."""
    return run_in_write_transaction(lambda tx: tx.run(query, **params))


def read(query: str, /, **params: Any) -> list[dict[str, Any]]:
    """Run one named query or Cypher text in its own read transaction; rows as dicts."""
    return run_in_read_transaction(lambda tx: tx.run(query, **params))
