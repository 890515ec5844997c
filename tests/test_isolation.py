"""Running the test suite never touches a user's catalogue.

The scenario that once went wrong: a user runs Neo4j with a catalogue in it (and has
``NEO4J_*`` pointing at it, or uses the default local server), then runs the tests.  Here
a separate "user" server is started and filled through the CLI, a part of the suite that
empties its database before every test and drives the CLI is run in a child pytest with
the user's environment, and the user's graph must come out identical: the same nodes with
the same labels and properties (fingerprint bytes included) and the same relationships.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import neo4j
import pytest
from neo4j_servers import private_server

from graph.settings import Neo4jSettings

REPO = Path(__file__).resolve().parents[1]
# Files whose tests empty the database, apply the schema, and run CLI commands that read
# NEO4J_* from the environment: exactly what would reach a user's server if anything could.
CHILD_SUITE = ("tests/test_graph_foundation.py", "tests/test_cli_catalogue.py")


def graph_dump(settings: Neo4jSettings) -> str:
    """Every node and relationship with its properties, in a canonical text form."""
    def plain(value: Any) -> Any:
        if isinstance(value, (bytes, bytearray)):
            return value.hex()
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value if isinstance(value, (str, int, float, bool, type(None))) else str(value)

    with neo4j.GraphDatabase.driver(settings.uri, auth=settings.auth) as driver:
        nodes, _, _ = driver.execute_query(
            "MATCH (n) RETURN elementId(n) AS id, labels(n) AS labels, properties(n) AS props",
            database_=settings.database)
        rels, _, _ = driver.execute_query(
            "MATCH (a)-[r]->(b) RETURN elementId(a) AS a, type(r) AS type, elementId(b) AS b, "
            "properties(r) AS props", database_=settings.database)
    rows = sorted(json.dumps({k: plain(v) if k != "props" else {p: plain(x) for p, x in v.items()}
                              for k, v in record.data().items()}, sort_keys=True)
                  for record in [*nodes, *rels])
    return "\n".join(rows)


@pytest.fixture
def user_server(tmp_path_factory: pytest.TempPathFactory):
    with private_server(tmp_path_factory.mktemp("user-neo4j") / "home") as settings:
        yield settings


def test_the_suite_leaves_a_users_catalogue_byte_identical(user_server: Neo4jSettings, synthetic_models: Any,
                                                            tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEO4J_", "HERITAGE_"))}
    env.update(NEO4J_URI=user_server.uri, NEO4J_PASSWORD=user_server.password or "",
               NEO4J_HTTP_PORT=str(user_server.http_port), NEO4J_HOME_DIR=str(user_server.home_dir),
               HERITAGE_UPLOAD_DIR=str(tmp_path / "uploads"))
    imported = subprocess.run([sys.executable, "-m", "heritage", "import", str(synthetic_models.directory)],
                              env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert imported.returncode == 0, imported.stderr[-2000:]
    before = graph_dump(user_server)
    assert '"Model"' in before and "DERIVED_FROM" in before and "IN_FAMILY" in before

    child = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *CHILD_SUITE],
                           env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert child.returncode == 0, child.stdout[-3000:] + child.stderr[-2000:]
    assert " passed" in child.stdout.splitlines()[-1]

    assert graph_dump(user_server) == before
