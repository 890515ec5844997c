"""Shared pytest fixtures.

Fixtures are grouped by area; add new groups below their own banner.
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


# =========================================================================== API (heritage.api)
#
# `api_factory` builds FastAPI TestClients on the real test database (`neo4j_db`), with
# explicit settings: a random API key, uploads under tmp_path, nothing read from the
# HERITAGE_* environment.  `api_client` is the default one; `api_headers` authenticates.

import secrets as _api_secrets  # noqa: E402
from pathlib import Path as _ApiPath  # noqa: E402
from typing import Any as _ApiAny, Callable as _ApiCallable  # noqa: E402


@pytest.fixture
def api_key() -> str:
    """A fresh API key accepted by the apps `api_factory` builds."""
    return _api_secrets.token_urlsafe(24)


@pytest.fixture
def api_headers(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


@pytest.fixture
def api_factory(neo4j_db: Database, tmp_path: _ApiPath, api_key: str) -> Iterator[_ApiCallable[..., _ApiAny]]:
    """``make(keys=..., import_roots=..., max_upload_bytes=..., db=..., **settings)`` -> started
    TestClient (``db``: another database than the test one, e.g. an unreachable server)."""
    from fastapi.testclient import TestClient

    from heritage.api.app import create_app
    from heritage.api.settings import ApiSettings
    from heritage.catalogue import Catalogue, CatalogueConfig

    clients: list[TestClient] = []

    def make(*, keys: tuple[str, ...] | None = None, import_roots: tuple[_ApiPath, ...] = (),
             max_upload_bytes: int = 64 * 1024**2, raise_server_exceptions: bool = True,
             db: Database | None = None, **settings: _ApiAny) -> TestClient:
        upload_dir = tmp_path / "uploads"
        config = CatalogueConfig.from_env(
            {}, import_roots=tuple(_ApiPath(r).resolve() for r in import_roots),
            upload_dir=upload_dir, max_upload_bytes=max_upload_bytes)
        api_settings = ApiSettings(api_keys=(api_key,) if keys is None else keys, upload_dir=upload_dir,
                                   max_upload_bytes=max_upload_bytes, **settings)
        catalogue = Catalogue(config, db=db or neo4j_db, ensure_schema=False)
        app = create_app(api_settings, catalogue=catalogue)
        client = TestClient(app, raise_server_exceptions=raise_server_exceptions)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def api_client(api_factory: _ApiCallable[..., _ApiAny]) -> _ApiAny:
    """A started TestClient of an app that accepts `api_key` (send `api_headers` to write)."""
    return api_factory()


# =========================================================================== catalogue (heritage/catalogue)
#
# `catalogue` gives a Catalogue with the default configuration (not the environment's
# HERITAGE_* variables, so results do not depend on the shell) on the clean `neo4j_db`.
# `synthetic_models` writes two small synthetic families once per session (fast, known
# parents); `small_zoo` is the real fine-tuned zoo of heritage.evaluation.zoo (built once, ~3 min,
# cached under ~/.cache/model-heritage), skipped where PyTorch is not installed; `wild_zoo` the
# zoo written by the ecosystem's own writers (models/, hub/ and truth.json, also cached).

from pathlib import Path  # noqa: E402  (kept with the fixtures that use it)


@dataclass(frozen=True)
class SyntheticModels:
    """Model files of two synthetic families and their true parents (None for roots)."""

    directory: Path
    parents: dict[str, str | None]
    families: list[list[str]]

    @property
    def edges(self) -> set:
        return {(parent, child) for child, parent in self.parents.items() if parent}


@pytest.fixture(scope="session")
def synthetic_models(tmp_path_factory: pytest.TempPathFactory) -> SyntheticModels:
    from heritage.evaluation.synthetic import family_zoo

    directory = tmp_path_factory.mktemp("synthetic-models")
    parents: dict = {}
    families: list = []
    for seed, prefix in ((1, "a"), (2, "b")):
        zoo = family_zoo(seed, prefix=prefix)
        zoo.write(directory)
        parents.update(zoo.parents)
        families.append(sorted(zoo.models))
    return SyntheticModels(directory, parents, families)


@pytest.fixture
def catalogue(neo4j_db: Database):
    from heritage.catalogue import Catalogue, CatalogueConfig

    logging.getLogger("neo4j.notifications").setLevel(logging.ERROR)
    service = Catalogue(CatalogueConfig(), db=neo4j_db)
    yield service
    service.close()


@pytest.fixture(scope="session")
def small_zoo():
    from heritage.evaluation.zoo import ensure_zoo  # needs torch: part of the test installation

    return ensure_zoo("small")


@pytest.fixture(scope="session")
def wild_zoo():
    """The wild zoo (heritage.evaluation.zoo.wild): models as the ecosystem's writers publish
    them, plus a Hugging Face cache under hub/; built once (a few minutes) and cached."""
    from heritage.evaluation.zoo import ensure_zoo

    return ensure_zoo("wild")


# =========================================================================== storage conventions
#
# `conventions_zoo` (session): models stored the way the ecosystem stores them
# (tests/storage_conventions.py: transformers, peft, safetensors, mergekit's formulas), with
# their true parents and relations; built once per version of that file (about a minute)
# and cached beside the other zoos.


@pytest.fixture(scope="session")
def conventions_zoo():
    """``(models folder, {child: [relation, {parent: weight or None}]})``."""
    import hashlib
    import json
    import shutil

    import storage_conventions

    root = Path(os.environ.get("HERITAGE_ZOO_CACHE") or Path.home() / ".cache" / "model-heritage")
    source = Path(storage_conventions.__file__).read_bytes()
    target = root / f"conventions-{hashlib.sha256(source).hexdigest()[:12]}"
    if not (target / "truth.json").is_file():
        staging = target.with_name(target.name + f".building-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        truth = storage_conventions.build(staging / "models")
        (staging / "truth.json").write_text(json.dumps(truth))
        shutil.rmtree(staging / "models-work", ignore_errors=True)
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    return target / "models", json.loads((target / "truth.json").read_text())
