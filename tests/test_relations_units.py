"""Typed genealogies in the small: trees with merge children, scoring of relations and
merges, truth defaults of older zoos, calibration figures and the shipped calibration."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from heritage.evaluation.calibration import auroc, expected_calibration_error, fit_calibration, EdgeSample
from heritage.evaluation.scoring import ScoredEdge, Truth, score
from heritage.lineage.calibration import FEATURES, EdgeCalibrator, EdgeEvidence
from heritage.lineage.relations import Relation, from_declared
from heritage.lineage.trees import tree_statistics, validate_tree


def test_merge_children_may_have_several_parents_and_nothing_else_may() -> None:
    nodes = ["r", "a", "b", "m"]
    merge = [("r", "a", "finetune"), ("r", "b", "finetune"), ("a", "m", "merge"), ("b", "m", "merge")]
    assert validate_tree(merge, nodes) == (True, [])
    stats = tree_statistics(merge, nodes)
    assert stats.roots == ["r"] and stats.depth == 2 and stats.edges == 4
    two_parents = [("r", "a", "finetune"), ("r", "b", "finetune"), ("a", "m", "finetune"), ("b", "m", "merge")]
    valid, issues = validate_tree(two_parents, nodes)
    assert not valid and "'m' has more than one parent" in issues
    untyped = [("r", "a"), ("r", "b"), ("a", "m"), ("b", "m")]  # plain pairs: one parent each
    assert not validate_tree(untyped, nodes)[0]


def _truth(tmp_path: Path, edges: list[dict], kinds: dict[str, str] | None = None) -> Truth:
    names = sorted({e["parent"] for e in edges} | {e["child"] for e in edges})
    (tmp_path / "truth.json").write_text(json.dumps({
        "models": [{"name": n, "kind": (kinds or {}).get(n, "x")} for n in names],
        "families": [names], "edges": edges}))
    return Truth.load(tmp_path)


def test_older_truth_files_mean_finetune_or_adapter(tmp_path: Path) -> None:
    truth = _truth(tmp_path, [{"parent": "r", "child": "a"}, {"parent": "r", "child": "ad"}],
                   kinds={"ad": "lora_adapter"})
    assert truth.relation == {("r", "a"): "finetune", ("r", "ad"): "adapter"}
    assert truth.merge_children == {}


def test_scores_count_relations_and_whole_merges(tmp_path: Path) -> None:
    truth = _truth(tmp_path, [
        {"parent": "r", "child": "a", "relation": "finetune"},
        {"parent": "r", "child": "b", "relation": "finetune"},
        {"parent": "a", "child": "m", "relation": "merge", "weight": 0.4},
        {"parent": "b", "child": "m", "relation": "merge", "weight": 0.6},
        {"parent": "r", "child": "c", "relation": "conversion"}])
    edges = [ScoredEdge("r", "a", "finetune", 0.9), ScoredEdge("r", "b", "finetune", 0.8),
             ScoredEdge("a", "m", "merge", 0.9), ScoredEdge("b", "m", "merge", 0.9),
             ScoredEdge("r", "c", "finetune", 0.6), ScoredEdge("c", "x", "finetune", 0.1)]
    s = score("ours", truth, edges, [["r", "a", "b", "m", "c"]])
    assert s.directed == 1.0 and s.relation == pytest.approx(4 / 5)
    assert (s.merges_found, s.merges) == (1, 1)
    assert (s.wrong_edges, s.scored_edges) == (1, 6) and s.auroc == 1.0
    half = score("ours", truth, [ScoredEdge("a", "m", "merge", 0.9), ScoredEdge("r", "m", "merge", 0.9)], [])
    assert half.merges_found == 0  # a merge counts only with all its parents
    plain = score("seed", truth, [("r", "a"), ("a", "m")], [])
    assert plain.relation == pytest.approx(1 / 5) and math.isnan(plain.ece)


def test_calibration_figures() -> None:
    assert expected_calibration_error([1.0, 1.0], [True, True]) == 0.0
    assert expected_calibration_error([0.75] * 4, [True, True, True, False]) == pytest.approx(0.0)
    assert auroc([0.2, 0.1], [True, True]) != auroc([0.2, 0.1], [True, True])  # NaN: one class only
    assert auroc([0.1, 0.9], [True, False]) == 0.0


def test_a_fitted_calibration_separates_evidence_and_is_judged_on_held_out_data() -> None:
    rng = np.random.default_rng(0)

    def samples(n: int, source: str) -> list[EdgeSample]:
        out = []
        for _ in range(n):
            margin = float(rng.uniform())
            right = bool(rng.uniform() < 0.2 + 0.75 * margin)
            evidence = EdgeEvidence(margin, 2.0, True, 1.0, 6, "finetune")
            out.append(EdgeSample(evidence.features(), right, source))
        return out

    fit = fit_calibration(samples(400, "fit"), samples(400, "held"))
    assert fit.report["fitted_on"] == ["fit"] and list(fit.report["held_out_by_source"]) == ["held"]
    assert fit.report["held_out"]["ece"] < 0.08 and fit.report["held_out"]["auroc"] > 0.7
    sure = EdgeEvidence(0.95, 2.0, True, 1.0, 6, "finetune")
    unsure = EdgeEvidence(0.05, 2.0, True, 1.0, 6, "finetune")
    assert fit.calibrator.probability(sure) > fit.calibrator.probability(unsure)


def test_the_shipped_calibration_loads_with_its_held_out_report() -> None:
    shipped = EdgeCalibrator.load()
    assert shipped.coef and set(shipped.coef) <= set(FEATURES)
    report = shipped.report
    assert report["held_out"]["edges"] > 100 and report["held_out"]["wrong"] > 10
    assert not set(report["fitted_on"]) & set(report["held_out_by_source"])  # never judged on its fit data
    p = shipped.probability(EdgeEvidence(0.5, 1.5, False, 0.8, 8, "finetune"))
    assert 0.0 < p < 1.0


def test_declared_relations_map_to_ours() -> None:
    assert from_declared("quantized") is Relation.QUANTIZATION
    assert from_declared("Merge") is Relation.MERGE
    assert from_declared(None) is None and from_declared("something") is None


def test_calibrate_command_refits_and_reports_held_out_figures(tmp_path: Path, capsys) -> None:
    from heritage.cli import main

    out = tmp_path / "calibration.json"
    assert main(["calibrate", "--synthetic", "6", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held_out" in printed and "ECE" in printed and "AUROC" in printed
    fitted = EdgeCalibrator.load(out)
    assert fitted.coef and fitted.report["fitted_on"] == ["synthetic-fit"]
    assert list(fitted.report["held_out_by_source"]) == ["synthetic-held-out"]
    assert main(["calibrate", "--zoo", str(tmp_path / "missing"), "--out", str(out)]) == 2


def test_a_task_head_taken_away_outweighs_kurtosis_in_a_pair() -> None:
    """Two models at one distance: kurtosis (fine-tuning regime) says the headless base is
    the child; the base carries no head and the other a classifier, so the base is the parent."""
    from heritage.lineage.direction import Regime, against_heads
    from heritage.lineage.trees import build_tree
    from heritage.reading.layers import is_task_head

    d = np.array([[0.0, 0.02], [0.02, 0.0]])
    kurtosis = [0.10, 0.11]  # the classifier looks like the parent by kurtosis alone
    assert [(e.parent, e.child) for e in build_tree(d, kurtosis, "mother", 0.3, Regime.FINE_TUNING)] == [(1, 0)]
    heads = [["pooler.dense.weight"], ["pooler.dense.weight", "classifier.weight"]]
    structure = against_heads([any(is_task_head(h) for h in hs) for hs in heads],
                              [all("pooler" in h for h in hs) for hs in heads])
    edges = build_tree(d, kurtosis, "mother", 0.3, Regime.FINE_TUNING, against_structure=structure)
    assert [(e.parent, e.child) for e in edges] == [(0, 1)] and 0 < edges[0].confidence < 1
    # Pretraining outputs (an MLM or LM head) are not task heads: a masked LM may be the
    # base of a headless sentence encoder.
    assert not any(is_task_head(n) for n in ("cls.predictions.bias", "lm_head.weight", "pooler.dense.weight",
                                             "vocab_projector.weight"))
    assert all(is_task_head(n) for n in ("classifier.weight", "score.weight", "qa_outputs.weight",
                                         "pre_classifier.weight"))
