"""Edge confidence as a probability: a calibration fitted on some families is judged on
others, the shipped fit loads and behaves, and calibration never changes the genealogy.

The families are written to disk by the synthetic zoo writer and recovered like any
model; every label comes from their truth, never from the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from heritage.evaluation.calibration import (
    EdgeSample,
    calibrate,
    collect_samples,
    fit_calibration,
    write_synthetic_zoo,
)
from heritage.evaluation.scoring import Truth, recover_zoo
from heritage.lineage.calibration import FEATURES, EdgeCalibrator, EdgeEvidence
from heritage.lineage.recovery import GenealogyRecovery


def test_a_fit_on_some_families_is_calibrated_and_ranks_on_others(tmp_path: Path) -> None:
    """Fitted on 60 synthetic families (seeds 1-60), judged on 60 others (1001-1060):
    measured ECE 0.034 and AUROC 0.87 on these seeds; other windows of 60 families read
    ECE 0.03-0.08 and AUROC 0.78-0.87."""
    fit = calibrate([], [], synthetic_families=60, work=tmp_path)
    held = fit.report["held_out"]
    assert fit.report["fitted_on"] == ["synthetic-fit"]
    assert list(fit.report["held_out_by_source"]) == ["synthetic-held-out"]
    assert held["edges"] > 300 and held["wrong"] > 40
    assert held["ece"] < 0.07
    assert held["auroc"] > 0.8
    # Far better than the raw margin it replaces.
    assert held["ece"] < held["raw_margin_ece"] / 3 and held["auroc"] > held["raw_margin_auroc"] + 0.1


def test_zoo_edges_are_weighed_and_each_zoo_is_judged_on_a_fit_without_it(tmp_path: Path) -> None:
    train = collect_samples(write_synthetic_zoo(tmp_path / "synthetic-fit", range(1, 31)))
    zoo_a = collect_samples(write_synthetic_zoo(tmp_path / "zoo-a", range(101, 111)))
    zoo_b = collect_samples(write_synthetic_zoo(tmp_path / "zoo-b", range(201, 211)))
    assert {s.source for s in zoo_a} == {"zoo-a"}
    fit = fit_calibration(train + zoo_a + zoo_b, [], zoo_weight=5.0)
    assert fit.report["zoo_weight"] == 5.0
    assert sorted(fit.report["leave_one_zoo_out"]) == ["zoo-a", "zoo-b"]
    alone = fit_calibration(train + zoo_b, zoo_a, zoo_weight=5.0)
    assert fit.report["leave_one_zoo_out"]["zoo-a"]["ece"] == pytest.approx(alone.report["held_out"]["ece"])
    # Weighing the zoo edges changes the fit (the zoos count for more than their size).
    unweighted = fit_calibration(train + zoo_a + zoo_b, [], zoo_weight=1.0)
    assert fit.calibrator.coef != unweighted.calibrator.coef


def test_the_shipped_calibration_gives_probabilities_monotone_in_the_margin() -> None:
    shipped = EdgeCalibrator.load()
    assert shipped.coef and set(shipped.coef) == set(FEATURES)
    report = shipped.report
    assert not set(report["fitted_on"]) & set(report["held_out_by_source"])
    assert report["held_out"]["edges"] > 1000 and report["held_out"]["wrong"] > 100
    assert report["held_out_by_source"]["synthetic-held-out"]["ece"] <= 0.1
    assert set(report["leave_one_zoo_out"]) == {z for z in report["fitted_on"] if not z.startswith("synthetic")}
    for relation in ("finetune", "merge", "distillation", "quantization", "conversion"):
        for shape in ({}, {"leaf": False, "root_edge": True, "root_children": 1},
                      {"parent_children": 6, "kurtosis_step": 1.0, "depth": 2, "subtree": 0.1}):
            p = [shipped.probability(EdgeEvidence(m, 1.5, True, 1.0, 8, relation, **shape))
                 for m in (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)]
            assert all(0.0 < v < 1.0 for v in p)
            assert p == sorted(p) and p[-1] > p[0]
    # A copy attached to another copy is less sure than one attached to the original.
    sure = EdgeEvidence(1.0, float("inf"), True, 1.0, 8, "conversion")
    twin = EdgeEvidence(1.0, float("inf"), True, 1.0, 8, "conversion", parent_copy=True)
    assert shipped.probability(sure) > 0.9 > shipped.probability(twin)


def test_calibration_changes_confidences_never_the_genealogy(tmp_path: Path) -> None:
    zoo = write_synthetic_zoo(tmp_path / "zoo", range(1001, 1011))
    _, raw = recover_zoo(zoo, GenealogyRecovery(calibrator=EdgeCalibrator()))
    _, calibrated = recover_zoo(zoo, GenealogyRecovery())
    key = lambda g: sorted((e.parent, e.child, e.relation, e.weight) for e in g.edges)  # noqa: E731
    assert key(raw) == key(calibrated)
    assert [f.members for f in raw.families] == [f.members for f in calibrated.families]
    raw_conf = {(e.parent, e.child): e.confidence for e in raw.edges}
    changed = [e for e in calibrated.edges if e.evidence is not None and e.confidence != raw_conf[(e.parent, e.child)]]
    assert len(changed) > len(calibrated.edges) // 2
    assert all(0.0 <= e.confidence <= 1.0 for e in calibrated.edges)


def test_the_conventions_truth_reads_as_a_zoo_truth(tmp_path: Path) -> None:
    (tmp_path / "truth.json").write_text(json.dumps({
        "cls-a": ["finetune", {"root": None}], "cls-b": ["finetune", {"root": None}],
        "merge": ["merge", {"cls-a": 0.3, "cls-b": 0.7}], "adapter": ["adapter", {"root": None}],
        "tuned": ["finetune", {"other-root": None}]}))
    truth = Truth.load(tmp_path)
    assert ("cls-b", "merge") in truth.edges and truth.weight[("cls-b", "merge")] == 0.7
    assert truth.relation[("root", "adapter")] == "adapter"
    assert truth.family_of["merge"] == truth.family_of["root"] != truth.family_of["tuned"]
    assert truth.family_of["tuned"] == truth.family_of["other-root"]


def test_samples_carry_their_features_and_labels(tmp_path: Path) -> None:
    samples = collect_samples(write_synthetic_zoo(tmp_path / "synthetic-x", [3, 4]))
    truth = Truth.load(tmp_path / "synthetic-x")
    assert samples and all(isinstance(s, EdgeSample) and set(s.features) == set(FEATURES) for s in samples)
    assert sum(s.right for s in samples) <= len(truth.edges)
