"""Neo4j persistence of model lineage: settings, driver, named Cypher queries, schema.

Kept free of torch and of the compute modules of ``heritage`` so that the API, the
CLI and tools can talk to the graph without loading model code.  The local
server manager lives in :mod:`graph.local_server` (imported on demand).
"""

from graph.driver import (
    GraphTransaction,
    check_connectivity,
    close_driver,
    current_settings,
    get_driver,
    read,
    run_in_read_transaction,
    run_in_write_transaction,
    write,
)
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
    "DatabaseUnavailable",
    "DuplicateModelError",
    "GraphError",
    "GraphTransaction",
    "Neo4jServerError",
    "Neo4jSettings",
    "UnknownQueryError",
    "apply_schema",
    "available_queries",
    "check_connectivity",
    "close_driver",
    "current_settings",
    "get_driver",
    "load_query",
    "read",
    "run_in_read_transaction",
    "run_in_write_transaction",
    "write",
]
