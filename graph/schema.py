"""Apply ``cypher/schema.cypher`` (constraints and indexes) to a database.

Schema statements cannot share a transaction with data writes, and Neo4j runs
one statement per call, so the file is split and each statement runs on its own.
All statements are ``IF NOT EXISTS``: applying the schema is idempotent and cheap,
which lets every process (API start-up, CLI, tests) call it unconditionally.
"""

from __future__ import annotations

import logging

import neo4j

from graph.driver import current_settings, get_driver, translate_errors
from graph.queries import load_query, split_statements
from graph.settings import Neo4jSettings

__all__ = ["apply_schema", "schema_statements"]

log = logging.getLogger(__name__)

# How long to wait for freshly created indexes to come online.
_INDEX_WAIT_SECONDS = 60


def schema_statements() -> list[str]:
    """The individual statements of ``cypher/schema.cypher``."""
    return split_statements(load_query("schema"))


def apply_schema(driver: neo4j.Driver | None = None, *, settings: Neo4jSettings | None = None) -> None:
    """Create the constraints and indexes (if missing) and wait until they are online.

    ``driver`` defaults to the process-wide driver; ``settings`` picks the database
    (default: the process-wide settings).
    """
    if driver is None:
        driver = get_driver(settings)
    if settings is None:
        settings = current_settings()
    with translate_errors(settings), driver.session(database=settings.database) as session:
        for statement in schema_statements():
            log.debug("schema: %s", statement.splitlines()[0])
            # One write transaction per statement (schema changes cannot share one with
            # data): routed to the leader of a cluster, retried on a leader switch.
            session.execute_write(lambda tx, statement=statement: tx.run(statement).consume())
        session.execute_read(lambda tx: tx.run("CALL db.awaitIndexes($seconds)",
                                               seconds=_INDEX_WAIT_SECONDS).consume())
    log.info("Neo4j schema applied to database %s", settings.database)
