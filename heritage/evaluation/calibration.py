"""Fitting and measuring the calibration of edge confidences on ground truth.

The zoos alone have too few wrong edges to fit or judge a calibration, so synthetic
families join them (:func:`heritage.evaluation.synthetic.hard_family`: random tree
shapes, merges and float16 conversions; half of them hard — fine-tune steps from 0.3 %
to 30 %, updates that raise or lower kurtosis — and half as clear as the real zoo),
written to disk and ingested like any model. Families
are split by seed: the logistic calibration
(:class:`heritage.lineage.calibration.EdgeCalibrator`) is fitted on one part and its
expected calibration error (ECE, 10 equal-width bins) and AUROC (right vs wrong edges)
are reported on the other, never on the data it was fitted on; the report ships with the
fitted parameters. Zoo edges join the fit with a weight (they are few, and the real
models the confidence is for); each zoo is also judged on a refit without it
(leave-one-zoo-out), the only honest figure for a zoo that was fitted on.
``heritage calibrate`` reruns all of it, deterministically (seeded families, lbfgs).
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from heritage.lineage.calibration import FEATURES, EdgeCalibrator

__all__ = ["expected_calibration_error", "auroc", "EdgeSample", "collect_samples", "write_synthetic_zoo",
           "fit_calibration", "CalibrationFit",
           "DEFAULT_SYNTHETIC_FAMILIES", "DEFAULT_ZOO_WEIGHT"]

log = logging.getLogger(__name__)

# Synthetic families per split: 200 give about 1,450 edges (about 280 wrong) each, enough
# that the held-out figures move by a few thousandths between seeds.
DEFAULT_SYNTHETIC_FAMILIES = 200
# One zoo edge weighs this many synthetic ones in the fit (chosen by leave-one-zoo-out
# ECE against held-out synthetic ECE; README, "Confidence").
DEFAULT_ZOO_WEIGHT = 10.0


def expected_calibration_error(probabilities: Sequence[float], right: Sequence[bool], bins: int = 10) -> float:
    """ECE: the bin-size-weighted mean |accuracy - mean confidence| over equal-width bins.

    Examples
    --------
    >>> round(expected_calibration_error([0.9, 0.9, 0.2, 0.2], [True, False, False, False]), 3)
    0.3
    """
    p = np.clip(np.asarray(probabilities, dtype=float), 0.0, 1.0)
    y = np.asarray(right, dtype=float)
    if p.size == 0:
        return float("nan")
    index = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = index == b
        if mask.any():
            total += mask.sum() / p.size * abs(float(y[mask].mean()) - float(p[mask].mean()))
    return float(total)


def auroc(probabilities: Sequence[float], right: Sequence[bool]) -> float:
    """Area under the ROC curve of right vs wrong edges (NaN when one class is missing).

    Examples
    --------
    >>> auroc([0.9, 0.8, 0.3], [True, True, False])
    1.0
    """
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(right, dtype=bool)
    pos, neg = p[y], p[~y]
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(greater / (pos.size * neg.size))


@dataclass(frozen=True)
class EdgeSample:
    """One recovered edge: its evidence features, whether it is a true edge, its source."""

    features: dict[str, float]
    right: bool
    source: str


def write_synthetic_zoo(directory: Path, seeds: Sequence[int], size: int = 8) -> Path:
    """A zoo folder (``models/`` + ``truth.json``) of synthetic families, one per seed:
    hard ones for odd seeds, ones as clear as the real zoo's for even seeds."""
    from heritage.evaluation.synthetic import hard_family

    models = directory / "models"
    truth = {"size": "synthetic", "models": [], "families": [], "edges": []}
    for seed in seeds:
        zoo, edges = hard_family(seed, prefix=f"s{seed}-", size=size, easy=seed % 2 == 0)
        zoo.write(models)
        truth["models"] += [{"name": n, "kind": "synthetic"} for n in zoo.models]
        truth["families"].append(list(zoo.models))
        truth["edges"] += edges
    (directory / "truth.json").write_text(json.dumps(truth))
    return directory


def collect_samples(zoo: Path, recovery=None) -> list[EdgeSample]:
    """Recover ``zoo`` and label every recovered edge with its evidence (adapter edges,
    whose confidence is not calibrated, are left out)."""
    from heritage.evaluation.scoring import Truth, recover_zoo

    truth = Truth.load(zoo)
    _, genealogy = recover_zoo(zoo, recovery)
    return [EdgeSample(e.evidence.features(), (e.parent, e.child) in truth.edges, zoo.name)
            for e in genealogy.edges if e.evidence is not None]


@dataclass
class CalibrationFit:
    calibrator: EdgeCalibrator
    report: dict = field(default_factory=dict)


def _figures(calibrator: EdgeCalibrator, samples: Sequence[EdgeSample]) -> dict[str, float]:
    from heritage.lineage.calibration import EdgeEvidence  # noqa: F401 (documents the input)

    z = [calibrator.intercept + sum((calibrator.coef or {}).get(k, 0.0) * s.features[k] for k in FEATURES)
         for s in samples]
    p = [1.0 / (1.0 + math.exp(-max(min(v, 50.0), -50.0))) for v in z]
    right = [s.right for s in samples]
    return {"edges": len(samples), "wrong": int(sum(1 for r in right if not r)),
            "ece": expected_calibration_error(p, right), "auroc": auroc(p, right),
            "raw_margin_ece": expected_calibration_error([s.features["margin"] for s in samples], right),
            "raw_margin_auroc": auroc([s.features["margin"] for s in samples], right)}


def _is_synthetic(sample: EdgeSample) -> bool:
    return sample.source.startswith("synthetic")


def _logistic(train: Sequence[EdgeSample], regularisation: float, zoo_weight: float) -> EdgeCalibrator:
    """The L2-regularised logistic fit (lbfgs: deterministic for given data), each zoo
    edge weighing ``zoo_weight`` synthetic ones."""
    from sklearn.linear_model import LogisticRegression

    if len({s.right for s in train}) < 2:
        raise ValueError("calibration needs right and wrong edges in its training data")
    x = np.array([[s.features[k] for k in FEATURES] for s in train])
    y = np.array([s.right for s in train], dtype=int)
    weight = np.array([1.0 if _is_synthetic(s) else zoo_weight for s in train])
    model = LogisticRegression(C=regularisation, max_iter=5000).fit(x, y, sample_weight=weight)
    return EdgeCalibrator({k: float(c) for k, c in zip(FEATURES, model.coef_[0])}, float(model.intercept_[0]))


def fit_calibration(train: Sequence[EdgeSample], held_out: Sequence[EdgeSample],
                    regularisation: float = 1.0, zoo_weight: float = DEFAULT_ZOO_WEIGHT) -> CalibrationFit:
    """Logistic calibration fitted on ``train``, judged on ``held_out``.

    Zoo edges (sources not named ``synthetic*``) weigh ``zoo_weight`` synthetic edges
    each: the zoos are few edges, but they are the real models the confidence is for.
    Each zoo in ``train`` is also judged on a refit without it (``leave_one_zoo_out``),
    so that every zoo has figures from a fit that never saw it.

    Examples
    --------
    >>> right = EdgeSample({k: 0.0 for k in FEATURES} | {"margin": 0.9}, True, "synthetic-a")
    >>> wrong = EdgeSample({k: 0.0 for k in FEATURES} | {"margin": 0.1}, False, "synthetic-a")
    >>> fit = fit_calibration([right, wrong] * 20, [right, wrong])
    >>> fit.report["held_out"]["auroc"]
    1.0
    """
    calibrator = _logistic(train, regularisation, zoo_weight)
    by_source: dict[str, list[EdgeSample]] = {}
    for s in held_out:
        by_source.setdefault(s.source, []).append(s)
    zoos = sorted({s.source for s in train if not _is_synthetic(s)})
    report = {
        "fitted_on": sorted({s.source for s in train}),
        "regularisation": regularisation,
        "zoo_weight": zoo_weight,
        "train": _figures(calibrator, train),
        "held_out": _figures(calibrator, held_out),
        "held_out_by_source": {k: _figures(calibrator, v) for k, v in sorted(by_source.items())},
        "leave_one_zoo_out": {},
    }
    for zoo in zoos:
        rest = [s for s in train if s.source != zoo]
        if len({s.right for s in rest}) == 2:  # else nothing is left to fit without it
            report["leave_one_zoo_out"][zoo] = _figures(_logistic(rest, regularisation, zoo_weight),
                                                        [s for s in train if s.source == zoo])
    return CalibrationFit(EdgeCalibrator(calibrator.coef, calibrator.intercept, report), report)


def calibrate(train_zoos: Sequence[Path], held_out_zoos: Sequence[Path],
              synthetic_families: int = DEFAULT_SYNTHETIC_FAMILIES, work: Path | None = None,
              regularisation: float = 1.0, zoo_weight: float = DEFAULT_ZOO_WEIGHT) -> CalibrationFit:
    """The whole refit: synthetic families (seeds 1..N for fitting, 1001..1000+N held
    out) beside the given zoos, recovered with the uncalibrated margin as confidence.
    Everything is seeded, so the same zoos give the same fit."""
    from heritage.lineage.calibration import EdgeCalibrator as Calibrator
    from heritage.lineage.recovery import GenealogyRecovery

    recovery = GenealogyRecovery(calibrator=Calibrator())  # raw evidence, no calibration applied
    with tempfile.TemporaryDirectory(dir=work) as tmp:
        root = Path(tmp)
        train_dirs = list(train_zoos)
        held_dirs = list(held_out_zoos)
        if synthetic_families:
            train_dirs.append(write_synthetic_zoo(root / "synthetic-fit", range(1, synthetic_families + 1)))
            held_dirs.append(write_synthetic_zoo(root / "synthetic-held-out",
                                                 range(1001, 1001 + synthetic_families)))
        train = [s for z in train_dirs for s in collect_samples(Path(z), recovery)]
        held = [s for z in held_dirs for s in collect_samples(Path(z), recovery)]
    return fit_calibration(train, held, regularisation, zoo_weight)
