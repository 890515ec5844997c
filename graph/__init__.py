"""Neo4j persistence of model lineage: settings, the database object, named Cypher queries, schema.

Kept free of torch and of the compute modules of ``heritage`` so that the API, the
CLI and tools can talk to the graph without loading model code.  Nothing here is
process-wide: a :class:`Database` wraps a driver its caller owns
(:meth:`Database.connect` builds one from :class:`Neo4jSettings`).  The local server
manager lives in :mod:`graph.local_server` (imported on demand).
"""

from graph.database import Database
from graph.driver import GraphTransaction, open_driver
from graph.errors import (
    AuthenticationFailed,
    ConstraintViolation,
    DatabaseUnavailable,
    DuplicateModelError,
    GraphError,
    Neo4jServerError,
    UnknownQueryError,
)
from graph.queries import available_queries, load_query
from graph.schema import apply_schema
from graph.settings import Neo4jSettings

__all__ = [
    "AuthenticationFailed",
    "ConstraintViolation",
    "Database",
    "DatabaseUnavailable",
    "DuplicateModelError",
    "GraphError",
    "GraphTransaction",
    "Neo4jServerError",
    "Neo4jSettings",
    "UnknownQueryError",
    "apply_schema",
    "available_queries",
    "load_query",
    "open_driver",
]
