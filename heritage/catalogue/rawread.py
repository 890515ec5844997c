"""Reading rows that carry bulk values (byte arrays, vectors) without per-element copying.

Why: :func:`graph.driver.read` returns ``Record.data()``, which rebuilds every list and
byte array element by element in Python (one call per byte or float: seconds for a few
fingerprints, tens of milliseconds for a page of 256-float vectors).  The values the
driver decodes are plain Python objects already, so ``dict(record)`` is enough for rows
of scalars, lists and bytes (not for nodes or relationships, which no query here returns).
"""

from __future__ import annotations

from typing import Any

from graph.driver import GraphTransaction, run_in_read_transaction
from graph.queries import load_query

__all__ = ["read_rows"]


def read_rows(name: str, /, **params: Any) -> list[dict[str, Any]]:
    """Rows of the named query ``cypher/<name>.cypher``, in one read transaction."""
    query = load_query(name)

    def work(tx: GraphTransaction) -> list[dict[str, Any]]:
        return [dict(record) for record in tx.raw.run(query, params)]

    return run_in_read_transaction(work)
