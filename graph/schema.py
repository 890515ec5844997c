"""Apply ``cypher/schema.cypher`` (constraints and indexes) to a database.

Schema statements cannot share a transaction with data writes, and Neo4j runs
one statement per call, so the file is split and each statement runs on its own.
All statements are ``IF NOT EXISTS``: applying the schema is idempotent and cheap,
which lets every process (API start-up, CLI, tests) call it unconditionally.
"""

from __future__ import annotations

import logging

from graph.database import Database
from graph.queries import load_query, split_statements

__all__ = ["apply_schema", "schema_statements"]

log = logging.getLogger(__name__)

# How long to wait for freshly created indexes to come online.
_INDEX_WAIT_SECONDS = 60


def schema_statements() -> list[str]:
    """The individual statements of ``cypher/schema.cypher``."""
    return split_statements(load_query("schema"))


def apply_schema(db: Database) -> None:
    """Create the constraints and indexes (if missing) and wait until they are online."""
    for statement in schema_statements():
        log.debug("schema: %s", statement.splitlines()[0])
        db.run_autocommit(statement)
    db.run_autocommit("CALL db.awaitIndexes($seconds)", seconds=_INDEX_WAIT_SECONDS)
    log.info("Neo4j schema applied to database %s", db.database)
