"""One Neo4j database, reached through a driver: the object every query goes through.

Why explicit: a process may talk to several servers (the tests talk to their own and
start a "user" server beside it; a tool may copy one catalogue into another), so nothing
here is process-wide.  As in the Neo4j driver's own examples, the caller owns the
driver: build it, hand it to :class:`Database`, close it when done — or let
:meth:`Database.connect` build one that :meth:`Database.close` closes.

Queries run in managed transactions (``execute_read`` / ``execute_write``): every read in
a read transaction, every write in a write transaction, so transient failures (leader
switch, deadlock) are retried by the driver.  A transaction function may therefore run
more than once and must not have side effects outside the database.  Driver errors come
out as :mod:`graph.errors`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import neo4j

from graph.driver import GraphTransaction, open_driver, resolve_query, translate_errors
from graph.settings import DEFAULT_DATABASE, Neo4jSettings

__all__ = ["Database"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class Database:
    """A Neo4j database reached through ``driver``.

    Parameters
    ----------
    driver : neo4j.Driver
        Owned by the caller, who closes it (thread-safe, pools connections: share one
        per server).
    database : str, optional
        Name of the database the queries run in; default ``settings.database``, else
        ``"neo4j"``.
    settings : Neo4jSettings, optional
        Used only to make error messages precise (the URI, where the password is).

    Examples
    --------
    The caller owns the driver::

        driver = neo4j.GraphDatabase.driver("bolt://127.0.0.1:7687", auth=("neo4j", password))
        db = Database(driver)
        rows = db.read("model_get", id="...")   # a query name (cypher/model_get.cypher) or Cypher text
        driver.close()

    or the database owns one built from settings::

        with Database.connect(Neo4jSettings.from_env()) as db:
            db.ping()
    """

    def __init__(self, driver: neo4j.Driver, database: str | None = None, *,
                 settings: Neo4jSettings | None = None) -> None:
        self.driver = driver
        self.settings = settings
        self.database = database or (settings.database if settings is not None else DEFAULT_DATABASE)
        self._owns_driver = False

    @classmethod
    def connect(cls, settings: Neo4jSettings | None = None) -> Database:
        """A database with a driver of its own, built from ``settings`` (default: the
        environment, see :mod:`graph.settings`); :meth:`close` closes that driver."""
        settings = settings if settings is not None else Neo4jSettings.from_env()
        db = cls(open_driver(settings), settings.database, settings=settings)
        db._owns_driver = True
        return db

    @property
    def uri(self) -> str | None:
        """The server's URI when the settings are known (for messages)."""
        return self.settings.uri if self.settings is not None else None

    def close(self) -> None:
        """Close the driver if this object built it (:meth:`connect`); else do nothing."""
        if self._owns_driver:
            self.driver.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({self.uri or 'driver'!s}, database={self.database!r})"

    # ------------------------------------------------------------------ queries
    def ping(self) -> None:
        """Raise :class:`~graph.errors.DatabaseUnavailable` (or
        :class:`~graph.errors.AuthenticationFailed`) unless Neo4j answers."""
        with translate_errors(self.settings):
            self.driver.verify_connectivity()

    def _managed(self, mode: str, work: Callable[[GraphTransaction], T]) -> T:
        with translate_errors(self.settings), self.driver.session(database=self.database) as session:
            execute = session.execute_write if mode == "write" else session.execute_read
            return execute(lambda tx: work(GraphTransaction(tx)))

    def write_transaction(self, work: Callable[[GraphTransaction], T]) -> T:
        """Run ``work(tx)`` inside ONE write transaction: all its queries commit or none do.

        This is how a whole family tree is replaced atomically.  ``work`` may be
        retried on transient errors, so it must only touch the database.
        """
        return self._managed("write", work)

    def read_transaction(self, work: Callable[[GraphTransaction], T]) -> T:
        """Run ``work(tx)`` inside one read transaction."""
        return self._managed("read", work)

    def write(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run one named query or Cypher text in its own write transaction; rows as dicts."""
        return self.write_transaction(lambda tx: tx.run(query, **params))

    def read(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """Run one named query or Cypher text in its own read transaction; rows as dicts."""
        return self.read_transaction(lambda tx: tx.run(query, **params))

    def read_raw(self, query: str, /, **params: Any) -> list[dict[str, Any]]:
        """:meth:`read` for rows that carry bulk values (byte arrays, vectors): see
        :meth:`GraphTransaction.run_raw`."""
        return self.read_transaction(lambda tx: tx.run_raw(query, **params))

    def run_autocommit(self, query: str, /, **params: Any) -> None:
        """Run one statement in an auto-commit transaction: schema changes and procedures
        such as ``db.awaitIndexes`` cannot run inside a managed transaction (nor share one
        with data writes), and they are not retried."""
        with translate_errors(self.settings), self.driver.session(database=self.database) as session:
            session.run(resolve_query(query), params).consume()  # type: ignore[arg-type]
