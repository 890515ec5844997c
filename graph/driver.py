"""Driver-level helpers: building a driver, translating its errors, named-query transactions.

The caller owns every driver (as in the Neo4j driver's own examples): :func:`open_driver`
builds one from :class:`~graph.settings.Neo4jSettings`, :class:`graph.database.Database`
runs queries through one, and whoever built it closes it.  There is no process-wide
driver.

Driver exceptions are translated into :mod:`graph.errors` so callers deal with a
handful of meaningful cases instead of the driver's hierarchy.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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
    "DRIVER_OPTIONS",
    "GraphTransaction",
    "UNAVAILABLE_ERRORS",
    "open_driver",
    "resolve_query",
    "translate_errors",
]

log = logging.getLogger(__name__)

# Short connect timeout: a stopped local server should fail fast, not hang a CLI call.
DRIVER_OPTIONS: dict[str, Any] = {
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


def resolve_query(query: str) -> str:
    """Cypher text for ``query``: a query name (``"model_get"``) or Cypher text itself."""
    return load_query(query) if is_query_name(query) else query


@contextmanager
def translate_errors(settings: Neo4jSettings | None = None) -> Iterator[None]:
    """Turn driver exceptions raised inside the block into :mod:`graph.errors`.

    ``settings`` only make the messages precise (the URI, where a generated password is).
    """
    try:
        yield
    except GraphError:
        raise
    except neo4j_errors.ConstraintError as exc:
        message = exc.message or str(exc)
        cls = DuplicateModelError if "`Model`" in message else ConstraintViolation
        raise cls(f"constraint violation: {message}", message) from exc
    except neo4j_errors.AuthError as exc:
        if settings is None:
            raise AuthenticationFailed("Neo4j rejected the credentials: check NEO4J_USER/NEO4J_PASSWORD") from exc
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
        where = f" at {settings.uri}" if settings is not None else ""
        raise DatabaseUnavailable(
            f"Neo4j is not reachable{where} ({exc.__class__.__name__}: {exc}); "
            "start it with `heritage neo4j start` or set NEO4J_URI",
            uri=settings.uri if settings is not None else None,
        ) from exc


def open_driver(settings: Neo4jSettings) -> neo4j.Driver:
    """A new driver for ``settings`` (connects lazily); the caller closes it."""
    log.debug("creating a Neo4j driver for %s", settings.uri)
    with translate_errors(settings):
        return neo4j.GraphDatabase.driver(settings.uri, auth=settings.auth, **DRIVER_OPTIONS)


class GraphTransaction:
    """A managed transaction that also accepts query names; see
    :meth:`graph.database.Database.write_transaction`."""

    def __init__(self, tx: neo4j.ManagedTransaction) -> None:
        self.raw = tx

    def run(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run a named query or Cypher text with parameters; all rows as dicts."""
        return self.raw.run(resolve_query(query), params).data()  # type: ignore[arg-type]

    def run_raw(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Like :meth:`run`, but each row is ``dict(record)``: values as the driver decoded
        them.  ``Record.data()`` rebuilds every list and byte array element by element in
        Python (seconds for a few fingerprints); rows of scalars, lists and bytes need no
        such copy (nodes and relationships would)."""
        return [dict(record) for record in self.raw.run(resolve_query(query), params)]  # type: ignore[arg-type]
