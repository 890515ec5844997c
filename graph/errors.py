"""Errors raised by the graph layer.

Callers (CLI, API, catalogue) should never have to catch raw ``neo4j`` driver
exceptions: the driver's hierarchy is large and version-dependent, while the cases
the application can act on are few.  Every error here carries a one-line message
that names the cause and, where possible, the fix.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationFailed",
    "ConstraintViolation",
    "DatabaseUnavailable",
    "DuplicateModelError",
    "GraphError",
    "Neo4jServerError",
    "UnknownQueryError",
]


class GraphError(Exception):
    """Base class of every error raised by the ``graph`` package."""


class Neo4jServerError(GraphError):
    """The local Neo4j server could not be fetched, configured, started or stopped."""


class DatabaseUnavailable(GraphError):
    """Neo4j cannot be reached (not running, wrong URI, network down).

    ``uri`` is the server that was tried, when known.
    """

    def __init__(self, message: str, uri: str | None = None) -> None:
        super().__init__(message)
        self.uri = uri


class AuthenticationFailed(GraphError):
    """Neo4j answered but rejected the configured user/password."""


class ConstraintViolation(GraphError):
    """A write broke a schema constraint (e.g. a duplicate unique key).

    ``neo4j_message`` keeps the server's own wording, which names the label,
    property and value involved.
    """

    def __init__(self, message: str, neo4j_message: str | None = None) -> None:
        super().__init__(message)
        self.neo4j_message = neo4j_message or message


class DuplicateModelError(ConstraintViolation):
    """A ``Model`` node with the same ``id`` already exists."""


class UnknownQueryError(GraphError, KeyError):
    """No ``cypher/<name>.cypher`` file exists for the requested query name."""

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0]) if self.args else ""
