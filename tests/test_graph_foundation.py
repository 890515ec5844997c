"""The graph foundation against a real Neo4j: schema, writes/reads, errors, Browser, CLI."""

from __future__ import annotations

import subprocess
import sys

import httpx
import neo4j
import pytest

from graph.database import Database
from graph.driver import GraphTransaction, translate_errors
from graph.errors import (
    ConstraintViolation,
    DatabaseUnavailable,
    DuplicateModelError,
    UnknownQueryError,
)
from graph.queries import load_query, split_statements
from graph.schema import apply_schema
from graph.settings import Neo4jSettings, password_file
from heritage.cli import main as cli_main
from neo4j_servers import free_port


# --------------------------------------------------------------------------- schema


def test_schema_applies_twice_and_creates_constraints_and_indexes(
    neo4j_db: Database,
) -> None:
    apply_schema(neo4j_db)  # the fixture applied it once already
    apply_schema(neo4j_db)

    constraints = neo4j_db.read("SHOW CONSTRAINTS YIELD labelsOrTypes, properties, type")
    unique = {(c["labelsOrTypes"][0], c["properties"][0]) for c in constraints if c["type"] == "UNIQUENESS"}
    assert {("Model", "id"), ("Family", "id")} <= unique

    # Each look-up property is covered by an ONLINE index (plain or constraint-backed).
    indexes = neo4j_db.read("SHOW INDEXES YIELD labelsOrTypes, properties, state")
    online = {
        (i["labelsOrTypes"][0], i["properties"][0])
        for i in indexes
        if i["labelsOrTypes"] and i["properties"] and i["state"] == "ONLINE"
    }
    assert {("Model", "id"), ("Family", "id"), ("Model", "sha256"), ("Model", "name")} <= online


def test_split_statements_ignores_comments_and_blank_statements() -> None:
    text = "// header\nCREATE INDEX a IF NOT EXISTS\nFOR (m:M) ON (m.x);\n\n// c\nRETURN 1;\n"
    assert split_statements(text) == ["CREATE INDEX a IF NOT EXISTS\nFOR (m:M) ON (m.x)", "RETURN 1"]
    schema = split_statements(load_query("schema"))
    assert schema and not any(statement.lstrip().startswith("//") for statement in schema)
    assert any("(m:Model) REQUIRE m.id IS UNIQUE" in statement for statement in schema)


# --------------------------------------------------------------------------- models


def _rows(*models: dict) -> list[dict]:
    """Rows for ``model_create``: each model with an (empty) fingerprint payload."""
    return [{"props": props, "fingerprint": b"", "fingerprintVersion": 1} for props in models]


def test_model_written_and_read_back(neo4j_db: Database) -> None:
    props = {"id": "m-1", "name": "tiny-mlp", "sha256": "ab" * 32, "params": 1234, "format": "safetensors"}
    created = neo4j_db.write("model_create", rows=_rows(props))
    assert created == [{"id": "m-1", "name": "tiny-mlp"}]

    [row] = neo4j_db.read("model_get", id="m-1")
    assert {k: row["model"][k] for k in props} == props
    assert row["model"]["createdAt"] is not None and row["familyId"] is None
    assert neo4j_db.read("model_get", id="missing") == []


def test_duplicate_model_id_raises_project_error(neo4j_db: Database) -> None:
    neo4j_db.write("model_create", rows=_rows({"id": "dup", "name": "first"}))
    with pytest.raises(DuplicateModelError) as excinfo:
        neo4j_db.write("model_create", rows=_rows({"id": "dup", "name": "second"}))
    assert isinstance(excinfo.value, ConstraintViolation)
    assert "dup" in str(excinfo.value) and "Model" in str(excinfo.value)
    assert neo4j_db.read("MATCH (m:Model {id: $id}) RETURN m.name AS name", id="dup") == [{"name": "first"}]


def test_write_transaction_is_all_or_nothing(neo4j_db: Database) -> None:
    neo4j_db.write("model_create", rows=_rows({"id": "existing", "name": "existing"}))

    def work(tx: GraphTransaction) -> None:
        tx.run("model_create", rows=_rows({"id": "new-in-tx", "name": "new-in-tx"}))
        tx.run("model_create", rows=_rows({"id": "existing", "name": "another"}))  # violates the constraint

    with pytest.raises(DuplicateModelError):
        neo4j_db.write_transaction(work)
    assert neo4j_db.read("model_get", id="new-in-tx") == []  # rolled back with the failure


# --------------------------------------------------------------------------- errors without a server


def test_unknown_query_name_is_a_clear_error() -> None:
    with pytest.raises(UnknownQueryError, match="no Cypher query named 'no_such_query'"):
        load_query("no_such_query")
    with pytest.raises(UnknownQueryError, match="invalid Cypher query name"):
        load_query("../schema")


def test_unreachable_database_raises_database_unavailable() -> None:
    settings = Neo4jSettings(uri=f"bolt://127.0.0.1:{free_port()}", password="irrelevant")
    with pytest.raises(DatabaseUnavailable, match="not reachable"):
        with (
            translate_errors(settings),
            neo4j.GraphDatabase.driver(settings.uri, auth=settings.auth) as driver,
        ):
            driver.verify_connectivity()


def test_settings_read_generated_password_when_env_has_none(tmp_path, monkeypatch) -> None:
    path = password_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text("s3cret-from-file\n")
    monkeypatch.setenv("NEO4J_HOME_DIR", str(tmp_path))
    monkeypatch.delenv("NEO4J_PASSWORD", raising=False)
    settings = Neo4jSettings.from_env()
    assert settings.password == "s3cret-from-file"
    assert "s3cret" not in repr(settings)
    monkeypatch.setenv("NEO4J_PASSWORD", "from-env")
    assert Neo4jSettings.from_env().password == "from-env"
    monkeypatch.delenv("NEO4J_PASSWORD")
    monkeypatch.setenv("NEO4J_HOME_DIR", str(tmp_path / "none"))
    assert Neo4jSettings.from_env().password is None


@pytest.mark.parametrize("name,value,why", [("NEO4J_HTTP_PORT", "http", "valid integer"),
                                            ("NEO4J_HTTP_PORT", "70000", "less than or equal to 65535")])
def test_invalid_neo4j_setting_is_one_line_naming_the_variable(monkeypatch, name: str, value: str, why: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as excinfo:
        Neo4jSettings.from_env()
    assert str(excinfo.value).startswith(f"{name}={value!r}: ") and why in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_graph_layer_does_not_import_torch_or_compute_modules() -> None:
    code = (
        "import sys, graph, graph.local_server, heritage.cli.neo4j_cmd; "
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'heritage.')) "
        "and not m.startswith('heritage.cli')]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------- Browser and CLI


def test_browser_answers_http_200(neo4j_server) -> None:
    response = httpx.get(neo4j_server.browser_url, timeout=30, follow_redirects=True)
    assert response.status_code == 200
    assert "<html" in response.text.lower()


def test_cli_status_exit_code_0_when_running(neo4j_server, capsys: pytest.CaptureFixture[str]) -> None:
    if neo4j_server.backend != "local":
        pytest.skip("`heritage neo4j status` reports the local server; the tests use another one")
    assert cli_main(["neo4j", "status"]) == 0
    out = capsys.readouterr().out
    assert "is running" in out and neo4j_server.settings.uri.rsplit(":", 1)[1] in out
    # The installed console entry point agrees.
    proc = subprocess.run(
        [sys.executable, "-m", "heritage", "neo4j", "status"], check=False, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_status_exit_code_3_when_not_running(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("NEO4J_HOME_DIR", str(tmp_path))
    assert cli_main(["neo4j", "status"]) == 3
    assert "not running" in capsys.readouterr().out


def test_local_server_takes_a_password_that_starts_with_a_dash(tmp_path) -> None:
    """neo4j-admin parses its arguments with picocli: a password like ``-x...`` (one random
    password in 64) must not be read as an option when the initial password is set."""
    from neo4j_servers import private_server

    with private_server(tmp_path / "home", password="-starts-with-a-dash") as settings:
        with Database.connect(settings) as db:
            assert db.read("RETURN 1 AS one") == [{"one": 1}]
