"""Shared pytest fixtures.

Fixtures are grouped by area; add new groups below their own banner.  The Neo4j fixtures
(``neo4j_server``, ``neo4j_settings``, ``neo4j_database``, ``neo4j_db``) live in
``neo4j_fixtures.py``, a plugin the root ``conftest.py`` loads for the doctests too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from graph.database import Database

log = logging.getLogger(__name__)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``environment(**variables)``: exactly these ``HERITAGE_*`` variables for this test
    (every other one unset), for code that reads its settings from the environment."""
    def set_only(**variables: str) -> None:
        for name in [n for n in os.environ if n.startswith("HERITAGE_")]:
            monkeypatch.delenv(name)
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_only


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
        config = CatalogueConfig(import_roots=tuple(_ApiPath(r).resolve() for r in import_roots),
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


@pytest.fixture(scope="session")
def wild_truth(wild_zoo) -> dict:
    """The wild zoo's ``truth.json``."""
    import json
    from pathlib import Path

    return json.loads((Path(wild_zoo) / "truth.json").read_text())


@pytest.fixture(scope="session")
def wild_records(wild_truth: dict) -> dict[str, dict]:
    """The wild zoo's truth records by model name."""
    return {record["name"]: record for record in wild_truth["models"]}


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
