"""``heritage import|lineage|tree|recluster|stats|demo`` against the real test database."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from heritage.cli import main
from heritage.evaluation.synthetic import family_zoo


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def imported_cli(neo4j_db, synthetic_models, capsys) -> Path:
    code, out, err = run(capsys, "import", str(synthetic_models.directory))
    assert code == 0, err
    return synthetic_models.directory


def test_import_prints_a_summary_and_is_idempotent(neo4j_db, synthetic_models, capsys) -> None:
    code, out, err = run(capsys, "import", str(synthetic_models.directory), "--batch-size", "7")
    assert code == 0, err
    assert "created           20" in out and "failed            0" in out
    code, out, err = run(capsys, "import", str(synthetic_models.directory))
    assert code == 0
    assert "created           0" in out and "already stored    20" in out
    assert neo4j_db.read("MATCH (m:Model) RETURN count(m) AS n")[0]["n"] == 20


def test_import_exit_codes_for_failures(neo4j_db, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.safetensors").write_bytes(b"nope")
    code, out, err = run(capsys, "import", str(bad))
    assert code == 1
    assert "broken" in out and "failed" in out
    code, out, err = run(capsys, "import", str(tmp_path / "missing"))
    assert code == 2 and err.startswith("heritage: ") and len(err.strip().splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run(capsys, "import", str(empty))
    assert code == 1 and "no models found" in err
    code, out, err = run(capsys, "import", str(bad), "--batch-size", "0")
    assert code == 2


def test_lineage_by_name(imported_cli, capsys) -> None:
    code, out, err = run(capsys, "lineage", "a1_2")
    assert code == 0, err
    assert out.startswith("a1_2 (id ")
    assert "1. a1  (parent of a1_2, finetune, confidence" in out and "2. a0" in out
    assert "Descendants: none (a leaf)" in out
    code, out, err = run(capsys, "lineage", "a0", "--depth", "1")
    assert code == 0 and "Ancestors: none (a root)" in out
    assert "├── a1" in out and "a1_1" not in out
    code, out, err = run(capsys, "lineage", "a0", "--depth", "0")
    assert code == 2 and "depth" in err
    code, out, err = run(capsys, "lineage", "no-such-model")
    assert code == 1 and err.strip() == "heritage: no model 'no-such-model' in the catalogue"


def test_tree_by_member_name_and_by_family_id(imported_cli, capsys) -> None:
    code, out, err = run(capsys, "tree", "b2_1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("Family ") and "10 model(s)" in lines[0]
    assert lines[1].strip() == "b0"
    assert sum(1 for line in lines if "(finetune, confidence" in line) == 9
    family_id = lines[0].split()[1].rstrip(":")
    code, again, err = run(capsys, "tree", family_id)
    assert code == 0 and again == out
    code, out, err = run(capsys, "tree", "nothing-here")
    assert code == 1 and "no family or model" in err


def test_stats_and_recluster(imported_cli, capsys) -> None:
    code, out, err = run(capsys, "stats")
    assert code == 0, err
    assert "models                          20" in out and "families                        2" in out
    assert "stale / empty families          0 / 0" in out
    assert "10           2" in out  # family size distribution
    code, out, err = run(capsys, "recluster")
    assert code == 0, err
    table = {line.rsplit(None, 1)[0].strip(): line.rsplit(None, 1)[1] for line in out.splitlines()[2:]}
    assert table["families"] == "2" and table["reused families"] == "2" and table["deleted families"] == "0"


def test_unreachable_neo4j_is_one_line(neo4j_db, monkeypatch, capsys) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("NEO4J_URI", f"bolt://127.0.0.1:{port}")
    code, out, err = run(capsys, "stats")
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert f"Neo4j is not reachable at bolt://127.0.0.1:{port}" in err and "heritage neo4j start" in err


def test_demo_on_a_prepared_zoo(neo4j_db, tmp_path: Path, capsys) -> None:
    zoo = family_zoo(4, prefix="z", children=2, grandchildren=1)
    zoo.write(tmp_path / "models")
    truth = {"models": [{"name": n} for n in zoo.models],
             "edges": [{"parent": p, "child": c} for c, p in zoo.parents.items() if p]}
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    code, out, err = run(capsys, "demo", "--zoo", str(tmp_path))
    assert code == 0, err
    assert "Directed-edge accuracy against truth.json: 4/4 = 100%" in out
    assert "http://127.0.0.1:8000/docs" in out and "/browser/" in out
    assert "z0" in out and "└── " in out
    code, out, err = run(capsys, "demo", "--zoo", str(tmp_path))  # again: nothing new stored
    assert code == 0 and "already stored    5" in out
