"""``heritage recover``: offline recovery of a folder of models, and bad entries reported by name."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from heritage.cli import main
from heritage.evaluation.synthetic import family_zoo


@pytest.fixture()
def model_dir(tmp_path: Path) -> tuple[Path, dict[str, str | None]]:
    zoo = family_zoo(seed=7, prefix="x", children=2)
    directory = tmp_path / "models"
    zoo.write(directory)
    return directory, zoo.parents


def test_recover_prints_trees_and_writes_json(model_dir, tmp_path: Path, capsys) -> None:
    directory, parents = model_dir
    (directory / "broken.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    (directory / "notes.txt").write_text("hello")
    out = tmp_path / "result.json"
    assert main(["recover", str(directory), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Family 1" in captured.out and "x0" in captured.out
    assert "skipped broken:" in captured.err and "skipped notes.txt:" in captured.err
    document = json.loads(out.read_text())
    assert {m["name"] for m in document["models"]} == set(parents)
    assert all(set(m) == {"name", "format", "params", "family", "quantization", "revision"}
               for m in document["models"])
    assert len(document["families"]) == 1 and set(document["families"][0]) == set(parents)
    truth = {(p, c) for c, p in parents.items() if p}
    found = {(e["parent"], e["child"]) for e in document["edges"]}
    assert len(found & truth) / len(truth) >= 0.9
    assert all(0 <= e["confidence"] <= 1 for e in document["edges"])
    assert {s["name"] for s in document["skipped"]} == {"broken", "notes.txt"}


def test_recover_fails_when_nothing_is_readable(tmp_path: Path, capsys) -> None:
    (tmp_path / "a.bin").write_bytes(b"garbage garbage")
    assert main(["recover", str(tmp_path)]) == 1
    assert "no model" in capsys.readouterr().err
    assert main(["recover", str(tmp_path / "missing")]) == 2


def test_compute_core_does_not_import_the_database() -> None:
    code = (
        "import sys, heritage.lineage.recovery, heritage.reading.ingest, heritage.evaluation.scoring, heritage.lineage.exact, "
        "heritage.cli.recover; bad = [m for m in sys.modules if m.split('.')[0] in ('neo4j', 'graph')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_graph_layer_does_not_import_torch() -> None:
    code = (
        "import sys, graph, graph.driver, graph.schema, graph.queries; "
        "bad = [m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('heritage.')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
