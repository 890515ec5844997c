"""Named Cypher queries, kept as files under ``<repo>/cypher/<name>.cypher``.

Keeping Cypher out of Python strings makes the queries reviewable, testable in the
Neo4j Browser as they are, and stops anyone from building Cypher by string
formatting: every value reaches Neo4j as a query parameter.
"""

from __future__ import annotations

import re
import sys
from functools import cache
from pathlib import Path

from graph.errors import UnknownQueryError

__all__ = ["CYPHER_DIR", "available_queries", "is_query_name", "load_query", "split_statements"]

def _cypher_dir() -> Path:
    """``<repo>/cypher`` in a checkout or editable install; the copy that a regular
    installation puts under ``<prefix>/share/model-heritage/cypher`` otherwise."""
    in_repo = Path(__file__).resolve().parents[1] / "cypher"
    if in_repo.is_dir():
        return in_repo
    return Path(sys.prefix) / "share" / "model-heritage" / "cypher"


CYPHER_DIR = _cypher_dir()

# A query name is a file stem: lower-case identifier, no path separators.
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def is_query_name(text: str) -> bool:
    """True when ``text`` looks like a query name rather than Cypher text."""
    return bool(_NAME_RE.match(text))


def available_queries() -> list[str]:
    """Names of all queries under :data:`CYPHER_DIR`, sorted."""
    return sorted(p.stem for p in CYPHER_DIR.glob("*.cypher"))


@cache
def load_query(name: str) -> str:
    """The text of ``cypher/<name>.cypher``; cached because queries never change at run time.

    Raises :class:`UnknownQueryError` for a name that is malformed or has no file.
    """
    if not is_query_name(name):
        raise UnknownQueryError(f"invalid Cypher query name {name!r} (expected e.g. 'model_get')")
    path = CYPHER_DIR / f"{name}.cypher"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        known = ", ".join(available_queries()) or "none"
        raise UnknownQueryError(f"no Cypher query named {name!r} in {CYPHER_DIR} (known: {known})") from None


def split_statements(text: str) -> list[str]:
    """Split a multi-statement Cypher file on ``;`` at line ends; drop ``//`` comment lines.

    Good enough for schema files (no semicolons inside strings); the driver runs
    one statement per call.
    """
    lines = [line for line in text.splitlines() if not line.strip().startswith("//")]
    statements, current = [], []
    for line in lines:
        stripped = line.rstrip()
        if stripped.endswith(";"):
            current.append(stripped[:-1])
            statements.append("\n".join(current).strip())
            current = []
        else:
            current.append(line)
    statements.append("\n".join(current).strip())
    return [s for s in statements if s]
