"""The tests' own Neo4j, as pytest fixtures (a plugin, see the root ``conftest.py``).

A plugin rather than part of ``tests/conftest.py`` so that the README's examples, run as
doctests from the repository root, use the same private server as the tests.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from graph.database import Database
from graph.schema import apply_schema
from graph.settings import Neo4jSettings
from neo4j_servers import TEST_ROOT, private_server

log = logging.getLogger(__name__)


# =========================================================================== Neo4j (graph layer)
#
# `neo4j_server` (session) gives a real Neo4j that belongs to the tests alone, picked in
# this order:
#   1. HERITAGE_TEST_NEO4J_URI set (with HERITAGE_TEST_NEO4J_PASSWORD): that server, which
#      the tests EMPTY: name one only for this purpose;
#   2. a Docker engine answers: a throwaway testcontainers `neo4j:5`;
#   3. otherwise a private local server (tests/neo4j_servers.py): own home under
#      .neo4j-test/, free ports, random password, deleted at the end.
# NEO4J_URI and the other NEO4J_* variables are never used to choose it: they name the
# user's catalogue.  The chosen server is exported as NEO4J_* variables for the session
# (and NEO4J_HOME_DIR to its own home), so code under test that calls
# Neo4jSettings.from_env() reaches the test server and nothing else.
#
# `neo4j_database` (session) is a graph.Database on a driver of the tests' own, built from
# the test server's settings; `neo4j_db` (function) yields it on an EMPTY database with
# the schema applied.


@dataclass(frozen=True)
class Neo4jTestServer:
    """The server the tests talk to."""

    settings: Neo4jSettings
    backend: str  # "env", "testcontainers" or "local"
    browser_url: str


def _docker_available() -> bool:
    """True when a Docker engine answers (quickly; no engine is the common case here)."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no client library, no socket, engine down...
        return False


def _export(monkeypatch: pytest.MonkeyPatch, settings: Neo4jSettings) -> None:
    monkeypatch.setenv("NEO4J_URI", settings.uri)
    monkeypatch.setenv("NEO4J_USER", settings.user)
    monkeypatch.setenv("NEO4J_DATABASE", settings.database)
    monkeypatch.setenv("NEO4J_HTTP_PORT", str(settings.http_port))
    monkeypatch.setenv("NEO4J_HOME_DIR", str(settings.home_dir))
    if settings.password is not None:
        monkeypatch.setenv("NEO4J_PASSWORD", settings.password)
    else:
        monkeypatch.delenv("NEO4J_PASSWORD", raising=False)


@contextmanager
def _named_server() -> Iterator[Neo4jTestServer]:
    env = os.environ
    settings = Neo4jSettings(
        uri=env["HERITAGE_TEST_NEO4J_URI"],
        user=env.get("HERITAGE_TEST_NEO4J_USER") or "neo4j",
        password=env.get("HERITAGE_TEST_NEO4J_PASSWORD") or None,
        database=env.get("HERITAGE_TEST_NEO4J_DATABASE") or "neo4j",
        http_port=int(env.get("HERITAGE_TEST_NEO4J_HTTP_PORT") or 7474),
        home_dir=TEST_ROOT / "named",
    )
    yield Neo4jTestServer(settings, "env", settings.browser_url)


@contextmanager
def _testcontainers_server() -> Iterator[Neo4jTestServer]:
    try:
        from testcontainers.community.neo4j import Neo4jContainer
    except ImportError:  # older testcontainers
        from testcontainers.neo4j import Neo4jContainer

    password = secrets.token_urlsafe(16)
    container = Neo4jContainer("neo4j:5", password=password).with_exposed_ports(7474)
    with container:
        http_port = int(container.get_exposed_port(7474))
        host = container.get_container_host_ip()
        settings = Neo4jSettings(uri=container.get_connection_url(), password=password, http_port=http_port,
                                 home_dir=TEST_ROOT / "testcontainers")
        yield Neo4jTestServer(settings, "testcontainers", f"http://{host}:{http_port}/browser/")


@contextmanager
def _private_local_server() -> Iterator[Neo4jTestServer]:
    from graph import local_server

    log.info("starting a private Neo4j server for the tests")
    with private_server() as settings:
        yield Neo4jTestServer(settings, "local", local_server.status(settings).browser_url)


@pytest.fixture(scope="session")
def neo4j_server() -> Iterator[Neo4jTestServer]:
    """A running Neo4j of the tests' own for the whole session (see the banner above)."""
    if os.environ.get("HERITAGE_TEST_NEO4J_URI"):
        provide = _named_server
    elif _docker_available():
        provide = _testcontainers_server
    else:
        provide = _private_local_server
    with provide() as server, pytest.MonkeyPatch.context() as monkeypatch:
        _export(monkeypatch, server.settings)
        yield server


@pytest.fixture(scope="session")
def neo4j_settings(neo4j_server: Neo4jTestServer) -> Neo4jSettings:
    """Connection settings of the test server (password included)."""
    return neo4j_server.settings


@pytest.fixture(scope="session")
def neo4j_database(neo4j_server: Neo4jTestServer) -> Iterator[Database]:
    """The test server's database, on a driver of the session's own (closed at the end)."""
    with Database.connect(neo4j_server.settings) as db:
        yield db


@pytest.fixture
def neo4j_db(neo4j_database: Database) -> Database:
    """The test database, emptied and given the schema for this test."""
    neo4j_database.write("MATCH (n) DETACH DELETE n")
    apply_schema(neo4j_database)
    return neo4j_database
