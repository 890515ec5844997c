"""The compute core on the real fine-tuned small zoo: recover, evaluate, sketch vs exact."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from heritage.cli import main
from heritage.lineage.distances import distance_matrix
from heritage.evaluation.scoring import Truth, evaluate_zoo
from heritage.lineage.exact import exact_distances
from heritage.reading.ingest import ingest_many, model_entries
from heritage.reading.loader import load_model


@pytest.fixture(scope="module")
def zoo(small_zoo) -> Path:
    return Path(small_zoo)


def test_recover_command_on_the_small_zoo(zoo: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "recovered.json"
    assert main(["recover", str(zoo / "models"), "--out", str(out)]) == 0
    document = json.loads(out.read_text())
    truth = Truth.load(zoo)
    found = {(e["parent"], e["child"]) for e in document["edges"]}
    directed = len(found & truth.edges) / len(truth.edges)
    assert directed >= 0.9, (sorted(found - truth.edges), sorted(truth.edges - found))
    assert len(document["models"]) == len(truth.names)
    assert "Family 1" in capsys.readouterr().out


def test_evaluate_reports_ours_beside_the_baselines(zoo: Path, capsys) -> None:
    scores = {s.recipe: s for s in evaluate_zoo(zoo)}
    assert set(scores) == {"ours", "reference", "seed"}
    assert scores["ours"].directed >= 0.9
    assert scores["ours"].ari == pytest.approx(1.0)
    assert scores["ours"].directed >= scores["reference"].directed
    assert main(["evaluate", str(zoo), "--no-baselines"]) == 0
    assert "ours" in capsys.readouterr().out


def test_sketch_ranks_parents_like_the_exact_distance(zoo: Path) -> None:
    """For every full model that has relatives, its nearest relative under the sketch is
    its nearest under the exact relative L2 over the same matrices."""
    models = [m for m in ingest_many(model_entries(zoo / "models")) if not m.profile.is_adapter]
    by_arch: dict[str, list] = {}
    for m in models:
        by_arch.setdefault(m.fingerprint.structure_hash, []).append(m)
    compared = 0
    for group in by_arch.values():
        if len(group) < 3:
            continue
        sketch = distance_matrix([m.fingerprint for m in group], "l2")
        roles = frozenset(layer.role for layer in group[0].fingerprint.layers.values())
        exact = exact_distances([load_model(m.path, m.name) for m in group], roles).relative_l2
        off = ~np.eye(len(group), dtype=bool)
        assert np.max(np.abs(sketch[off] - exact[off]) / exact[off]) < 0.15
        for i in range(len(group)):
            if np.min(np.where(off[i], exact[i], np.inf)) > 0.5:
                continue  # an unrelated model: no relative to rank
            assert int(np.argmin(np.where(off[i], sketch[i], np.inf))) == int(np.argmin(np.where(off[i], exact[i], np.inf)))
            compared += 1
    assert compared >= 6
