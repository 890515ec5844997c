"""Neo4j beyond one server: routing URIs, and reads in read transactions, writes in write ones.

A ``neo4j://`` URI makes the driver ask the server for a routing table and send read
transactions to readers and write transactions to the leader.  Community edition answers
routing requests for its single instance, so the whole catalogue runs end to end through
a routing driver here, and a write sent through a read transaction is refused, which
shows that access modes are really applied.  A static check makes sure every named query
run through a read helper is free of write clauses (a read routed to a follower could
not write).
"""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import neo4j
import pytest

from graph.database import Database
from graph.queries import available_queries, load_query
from heritage.catalogue import Catalogue, CatalogueConfig, collect_entries

ROOT = Path(__file__).resolve().parents[1]
_WRITE_CLAUSE = re.compile(r"\b(CREATE|MERGE|SET|DELETE|REMOVE|DETACH)\b", re.IGNORECASE)
_READ_HELPERS = {"read", "read_raw"}
_WRITE_HELPERS = {"write"}


_STRING = re.compile(r"'[^']*'|\"[^\"]*\"")


def _cypher_without_comments(name: str) -> str:
    """The query's clauses: comments and string literals ('merge' is a relation) left out."""
    return _STRING.sub("''", "\n".join(line.split("//")[0] for line in load_query(name).splitlines()))


def _query_calls() -> dict[str, set[str]]:
    """Query names passed to Database.read/read_raw/write anywhere in the code: {helper kind: names}."""
    found: dict[str, set[str]] = {"read": set(), "write": set()}
    for path in [*ROOT.joinpath("heritage").rglob("*.py"), *ROOT.joinpath("graph").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            first = node.args[0]
            if name in _READ_HELPERS | _WRITE_HELPERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found["read" if name in _READ_HELPERS else "write"].add(first.value)
    return found


def test_every_query_run_for_reading_is_free_of_writes() -> None:
    calls = _query_calls()
    names = set(available_queries())
    assert calls["read"] and calls["read"] <= names, calls["read"] - names
    offenders = sorted(q for q in calls["read"] if _WRITE_CLAUSE.search(_cypher_without_comments(q)))
    assert not offenders, f"queries run in read transactions that write: {offenders}"
    assert calls["write"] <= names
    assert all(_WRITE_CLAUSE.search(_cypher_without_comments(q)) for q in calls["write"]), \
        "a query run through write() that writes nothing should go through read()"


@pytest.fixture
def routing(neo4j_db: Database, neo4j_settings) -> Iterator[Database]:
    """The (emptied) test database reached through a driver of its own with a ``neo4j://`` routing URI."""
    uri = neo4j_settings.uri.replace("bolt://", "neo4j://", 1)
    assert uri.startswith("neo4j://")
    with Database.connect(dataclasses.replace(neo4j_settings, uri=uri)) as db:
        yield db


def test_the_catalogue_works_end_to_end_through_a_routing_uri(routing: Database, synthetic_models) -> None:
    assert routing.driver.__class__.__name__ == "Neo4jDriver"  # the routing driver, not the direct one
    with Catalogue(CatalogueConfig(), db=routing) as catalogue:
        summary = catalogue.import_many(collect_entries([synthetic_models.directory]))
        assert summary.created == len(synthetic_models.parents) and summary.failed == 0
        result = catalogue.recluster()
        assert result["families"] == 2 and result["edges"] == len(synthetic_models.edges)
        stored = {(r["parent"], r["child"]) for r in routing.read(
            "MATCH (c:Model)-[:DERIVED_FROM]->(p:Model) RETURN p.name AS parent, c.name AS child")}
        assert len(stored & synthetic_models.edges) >= 0.9 * len(synthetic_models.edges)
        leaf = next(m for m in synthetic_models.parents if m not in set(synthetic_models.parents.values()))
        model = catalogue.find_model(leaf)
        lineage = catalogue.lineage(model["id"])
        assert lineage.ancestors, "a leaf has ancestors"
        genealogy = catalogue.genealogy(model["family_id"])
        assert genealogy.validation.valid
        assert catalogue.statistics().models == len(synthetic_models.parents)
    # Access modes are real: a write sent through a read transaction is refused.
    with pytest.raises(neo4j.exceptions.ClientError, match="(?i)read access mode"):
        routing.read("CREATE (:Probe) RETURN 1 AS one")
    assert routing.read("MATCH (p:Probe) RETURN count(p) AS n")[0]["n"] == 0
