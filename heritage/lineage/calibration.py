"""Edge confidence that reads as a probability: a logistic calibration of edge evidence.

The raw evidence of an edge (the relative margin of its cost over the best
alternative, how much nearer the chosen parent is than the next candidate, whether
kurtosis and centrality agree on its direction, how well the family's direction signal
explains its tree, the shape of the tree around it, the family size and the kind of
relation found) is turned into
``P(edge right)`` by a logistic model fitted on ground truth — zoos and harder
synthetic families, with a held-out split (:mod:`heritage.evaluation.calibration`,
``heritage calibrate``). The fitted parameters ship with the package
(``heritage/lineage/data/calibration.json``) together with the figures measured on the
held-out part; without them the confidence is the raw margin.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

__all__ = ["FEATURES", "EdgeEvidence", "EdgeCalibrator", "CALIBRATION_FILE"]

log = logging.getLogger(__name__)

FEATURES = ("margin", "log_gap", "signals_agree", "agreement", "inv_size", "hub", "leaf", "root_edge",
            "centre_step", "exact", "quantization", "merge", "distillation", "kurtosis_step", "lone_root",
            "depth", "subtree", "root_central", "root_kurtosis", "heads", "parent_copy")
CALIBRATION_FILE = "calibration.json"
_EXACT = {"conversion", "head_only"}


@dataclass(frozen=True)
class EdgeEvidence:
    """What an edge rests on (the inputs of the calibration).

    ``margin``: relative cost margin over the best alternative parent or the reversed
    edge (0..1); ``gap``: distance to the next-nearest candidate parent divided by the
    distance to the chosen one (>= 1); ``signals_agree``: kurtosis and centrality point
    the same way on this edge; ``agreement``: share of the family's tree edges its
    direction signal explains; ``size``: models in the tree; ``relation``;
    ``parent_children``: children of the parent in the tree (a base with many children is
    a parent for sure; the direction of a chain's end edge is the weak spot of
    centrality); ``leaf``: the child has no children; ``root_edge``: the parent is the
    tree's root; ``centre_step``: how much more central the parent is than the child,
    relative to the family's mean distance; ``kurtosis_step``: how much more parent-like
    the parent's kurtosis is, in units of the family's kurtosis spread;
    ``root_children``: children of the tree's root (one: the root is a chain's end, right
    about one time in four in the synthetic families); ``depth``/``subtree``: the child's depth
    and its subtree's share of the family (a wrongly rooted tree reverses the edges
    carrying large subtrees); ``root_central``/``root_kurtosis``: the tree's root is the
    family's most central model / has its most parent-like kurtosis; ``heads``: the
    reversed edge would take a task head away; ``parent_copy``: an exact copy attached
    to another copy (two conversions of one model are equal, so which is the parent is
    not in the weights). All of it comes from one pass over the family's tree
    (:func:`heritage.lineage.trees.tree_shape`).
    """

    margin: float
    gap: float
    signals_agree: bool
    agreement: float
    size: int
    relation: str
    parent_children: int = 1
    leaf: bool = True
    root_edge: bool = False
    centre_step: float = 0.0
    kurtosis_step: float = 0.0
    root_children: int = 2
    depth: int = 1
    subtree: float = 0.0
    root_central: bool = True
    root_kurtosis: bool = True
    heads: bool = False
    parent_copy: bool = False

    def features(self) -> dict[str, float]:
        gap = self.gap if math.isfinite(self.gap) and self.gap > 0 else 100.0
        return {
            "margin": float(min(max(self.margin, 0.0), 1.0)),
            "log_gap": float(min(max(math.log(max(gap, 1.0)), 0.0), 5.0)),
            "signals_agree": 1.0 if self.signals_agree else 0.0,
            "agreement": float(self.agreement),
            "inv_size": 1.0 / max(self.size, 1),
            "hub": float(math.log1p(max(self.parent_children - 1, 0))),
            "leaf": 1.0 if self.leaf else 0.0,
            "root_edge": 1.0 if self.root_edge else 0.0,
            "centre_step": float(min(max(self.centre_step, -1.0), 1.0)),
            "exact": 1.0 if self.relation in _EXACT else 0.0,
            "quantization": 1.0 if self.relation == "quantization" else 0.0,
            "merge": 1.0 if self.relation == "merge" else 0.0,
            "distillation": 1.0 if self.relation == "distillation" else 0.0,
            "kurtosis_step": float(min(max(self.kurtosis_step, -3.0), 3.0)),
            "lone_root": 1.0 if self.root_children <= 1 else 0.0,
            "depth": float(min(max(self.depth, 1), 5)),
            "subtree": float(min(max(self.subtree, 0.0), 1.0)),
            "root_central": 1.0 if self.root_central else 0.0,
            "root_kurtosis": 1.0 if self.root_kurtosis else 0.0,
            "heads": 1.0 if self.heads else 0.0,
            "parent_copy": 1.0 if self.parent_copy else 0.0,
        }


def _finite(value: Any) -> Any:
    """NaN and infinities (undefined figures in a report) as JSON null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


@dataclass(frozen=True)
class EdgeCalibrator:
    """``P(edge right) = sigmoid(intercept + sum coef_f * feature_f)``.

    Without coefficients it returns the raw margin (the confidence before calibration).

    Examples
    --------
    >>> calibrator = EdgeCalibrator({"margin": 4.0}, intercept=-1.0)
    >>> round(calibrator.probability(EdgeEvidence(0.5, 2.0, True, 1.0, 5, "finetune")), 3)
    0.731
    >>> EdgeCalibrator().probability(EdgeEvidence(0.5, 2.0, True, 1.0, 5, "finetune"))
    0.5
    """

    coef: Mapping[str, float] | None = None
    intercept: float = 0.0
    report: Mapping[str, Any] = field(default_factory=dict)

    def probability(self, evidence: EdgeEvidence) -> float:
        features = evidence.features()
        if not self.coef:
            return features["margin"]
        z = self.intercept + sum(self.coef.get(name, 0.0) * value for name, value in features.items())
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "coef": dict(self.coef or {}), "intercept": self.intercept,
                "report": dict(self.report)}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(_finite(self.to_dict()), indent=2) + "\n")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "EdgeCalibrator":
        unknown = set(data.get("coef", {})) - set(FEATURES)
        if unknown:
            raise ValueError(f"calibration names unknown features: {', '.join(sorted(unknown))}")
        return cls(dict(data.get("coef", {})), float(data.get("intercept", 0.0)), dict(data.get("report", {})))

    @classmethod
    def load(cls, path: str | Path | None = None) -> "EdgeCalibrator":
        """The calibration at ``path``, else the one shipped with the package, else none."""
        try:
            if path is not None:
                text = Path(path).read_text()
            else:
                text = resources.files("heritage.lineage").joinpath("data", CALIBRATION_FILE).read_text()
        except FileNotFoundError:
            log.warning("no edge calibration found; confidences are raw margins")
            return cls()
        return cls.from_dict(json.loads(text))
