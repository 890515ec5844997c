"""Apply ``cypher/schema.cypher`` (constraints and indexes) to a database.

Schema statements cannot share a transaction with data writes, and Neo4j runs one
statement per call, so the file is split and each statement runs in a transaction of its
own.  All statements are ``IF NOT EXISTS`` / ``IF EXISTS``: applying the schema is
idempotent and cheap, which lets every process (API start-up, CLI, tests) call it
unconditionally.

Several processes may do so at the same moment on a fresh database (``heritage serve``
and ``heritage import`` started together).  ``IF NOT EXISTS`` is checked when a statement
starts, so of two processes creating the same index one gets
``EquivalentSchemaRuleAlreadyExists``: the rule it asked for exists, made by the other
one, and that is success.  Lock conflicts between such statements (deadlocks) are
transient errors, retried by the driver because each statement runs as a managed write.
"""

from __future__ import annotations

import logging

from neo4j import exceptions as neo4j_errors

from graph.database import Database
from graph.queries import load_query, split_statements

__all__ = ["apply_schema", "schema_statements"]

log = logging.getLogger(__name__)

# How long to wait for freshly created indexes to come online.
_INDEX_WAIT_SECONDS = 60
# Another process created the same rule between our IF NOT EXISTS check and our write.
_MADE_BY_ANOTHER_PROCESS = frozenset({"Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists"})


def schema_statements() -> list[str]:
    """The individual statements of ``cypher/schema.cypher``."""
    return split_statements(load_query("schema"))


def _apply(db: Database, statement: str) -> None:
    try:
        db.write_transaction(lambda tx: tx.run(statement))
    except neo4j_errors.ClientError as exc:
        if exc.code not in _MADE_BY_ANOTHER_PROCESS:
            raise
        log.debug("schema rule made meanwhile by another process: %s", statement.splitlines()[0])


def apply_schema(db: Database) -> None:
    """Create the constraints and indexes (if missing) and wait until they are online.

    Each statement runs in a write transaction of its own (schema changes cannot share
    one with data): routed to the leader of a cluster, and retried on a leader switch;
    the wait for indexes runs in a read transaction.
    """
    for statement in schema_statements():
        log.debug("schema: %s", statement.splitlines()[0])
        _apply(db, statement)
    db.read_transaction(lambda tx: tx.run("CALL db.awaitIndexes($seconds)", seconds=_INDEX_WAIT_SECONDS))
    log.info("Neo4j schema applied to database %s", db.database)
