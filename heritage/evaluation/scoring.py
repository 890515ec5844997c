"""Scoring recovered genealogies against a ground-truth zoo, side by side with baselines.

Three recipes run on the same models in the same process: ``ours``
(:class:`heritage.lineage.recovery.GenealogyRecovery` with its defaults: K not given,
sketch distances, regime decided from the data, near-duplicates and merges typed,
adapters attached to their base), and the ``reference`` and ``seed`` recipes of
:mod:`heritage.evaluation.baselines` (single-parent trees without relations: their edges
count as ``finetune``).

Scores: directed-edge accuracy (share of true parent->child edges recovered with the
right direction; a merge child has one true edge per parent), undirected accuracy, the
adjusted Rand index of the families, relation accuracy (share of true edges recovered
with the right direction AND relation), merges found with all their parents, and, for
recipes with confidences, the calibration of those confidences over the recovered edges
(expected calibration error with 10 bins, AUROC of right vs wrong edges; see
:mod:`heritage.evaluation.calibration`).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from sklearn.metrics import adjusted_rand_score

from heritage.evaluation.baselines import reference_recipe, seed_recipe
from heritage.evaluation.calibration import auroc, expected_calibration_error
from heritage.lineage.recovery import Genealogy, GenealogyRecovery
from heritage.reading.ingest import IngestedModel, IngestFailure, ingest_many, model_entries
from heritage.reading.loader import load_model

log = logging.getLogger(__name__)

__all__ = ["Truth", "Score", "ScoredEdge", "score", "genealogy_edges", "evaluate_zoo", "format_scores",
           "recover_zoo"]


@dataclass(frozen=True)
class ScoredEdge:
    """A recovered edge as scoring sees it (``relation`` None: the recipe has none)."""

    parent: str
    child: str
    relation: str | None = None
    confidence: float | None = None


def _from_child_map(data: dict) -> dict:
    """A truth written as ``{child: [relation, {parent: weight or None}]}`` (the storage
    conventions zoo) in the zoo format: models, families (the connected parts), edges."""
    edges = [{"parent": p, "child": c, "relation": rel, "weight": w}
             for c, (rel, parents) in data.items() for p, w in parents.items()]
    names = sorted({e["parent"] for e in edges} | {e["child"] for e in edges})
    first_parent = {e["child"]: e["parent"] for e in reversed(edges)}

    def root(name: str) -> str:
        while name in first_parent:
            name = first_parent[name]
        return name

    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(root(name), []).append(name)
    adapters = {e["child"] for e in edges if e["relation"] == "adapter"}
    return {"models": [{"name": n, "kind": "lora_adapter" if n in adapters else "model"} for n in names],
            "families": list(families.values()), "edges": edges}


@dataclass(frozen=True)
class Truth:
    """A zoo's ``truth.json``: names, true edges, relations, merge weights, families
    (also read from the storage conventions zoo's ``{child: [relation, {parent: weight}]}``).

    Truth files without a ``relation`` on their edges (older zoos) mean ``finetune``,
    or ``adapter`` for an edge whose child is of kind ``lora_adapter``.
    """

    names: list[str]
    edges: set[tuple[str, str]]
    family_of: dict[str, str]
    relation: dict[tuple[str, str], str]
    weight: dict[tuple[str, str], float | None]

    @classmethod
    def load(cls, zoo: Path) -> "Truth":
        data = json.loads((zoo / "truth.json").read_text())
        if "models" not in data:
            data = _from_child_map(data)
        names = [m["name"] for m in data["models"]]
        kind = {m["name"]: m.get("kind") for m in data["models"]}
        edges, relation, weight = set(), {}, {}
        for e in data["edges"]:
            key = (e["parent"], e["child"])
            edges.add(key)
            default = "adapter" if kind.get(e["child"]) == "lora_adapter" else "finetune"
            relation[key] = e.get("relation") or default
            weight[key] = e.get("weight")
        family_of = {}
        for i, members in enumerate(data["families"]):
            for m in members:
                family_of[m] = str(i)
        return cls(names, edges, family_of, relation, weight)

    @property
    def merge_children(self) -> dict[str, set[str]]:
        """Each merge child and its true parents."""
        out: dict[str, set[str]] = {}
        for (parent, child), relation in self.relation.items():
            if relation == "merge":
                out.setdefault(child, set()).add(parent)
        return out


@dataclass(frozen=True)
class Score:
    recipe: str
    directed: float
    undirected: float
    ari: float
    edges: int
    families: int
    relation: float = float("nan")
    merges_found: int = 0
    merges: int = 0
    ece: float = float("nan")
    auroc: float = float("nan")
    scored_edges: int = 0
    wrong_edges: int = 0

    def row(self) -> str:
        merges = f"{self.merges_found}/{self.merges}" if self.merges else "-"
        return (f"{self.recipe:<10} {self.directed:>9.3f} {self.undirected:>11.3f} {self.ari:>6.3f} "
                f"{_fmt(self.relation):>9} {merges:>7} {_fmt(self.ece):>6} {_fmt(self.auroc):>6} "
                f"{self.wrong_edges:>3}/{self.scored_edges:<3} {self.families:>9d}")


def _fmt(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3f}"


def score(recipe: str, truth: Truth, edges: Sequence[ScoredEdge | tuple[str, str]],
          families: Sequence[Sequence[str]]) -> Score:
    """Scores of one recipe's ``edges`` (ScoredEdges, or plain (parent, child) pairs)."""
    typed = [e if isinstance(e, ScoredEdge) else ScoredEdge(e[0], e[1]) for e in edges]
    found = {(e.parent, e.child) for e in typed}
    relation_of = {(e.parent, e.child): e.relation or "finetune" for e in typed}
    undirected = {frozenset(e) for e in found}
    total = len(truth.edges) or 1
    directed = sum(1 for e in truth.edges if e in found) / total
    undirected_acc = sum(1 for e in truth.edges if frozenset(e) in undirected) / total
    relation_acc = sum(1 for e in truth.edges if e in found and relation_of[e] == truth.relation[e]) / total
    merges = truth.merge_children
    recovered_parents: dict[str, set[str]] = {}
    for e in typed:
        if e.relation == "merge":
            recovered_parents.setdefault(e.child, set()).add(e.parent)
    merges_found = sum(1 for child, parents in merges.items() if recovered_parents.get(child) == parents)
    label = {m: i for i, fam in enumerate(families) for m in fam}
    names = [n for n in truth.names if n in truth.family_of]
    next_label = len(families)
    predicted = []
    for n in names:
        if n not in label:  # a model the recipe did not place: its own family
            label[n] = next_label
            next_label += 1
        predicted.append(label[n])
    ari = adjusted_rand_score([truth.family_of[n] for n in names], predicted)
    with_confidence = [e for e in typed if e.confidence is not None]
    right = [(e.parent, e.child) in truth.edges for e in with_confidence]
    probabilities = [float(e.confidence) for e in with_confidence]
    return Score(recipe, directed, undirected_acc, float(ari), len(truth.edges), len(families),
                 relation=relation_acc, merges_found=merges_found, merges=len(merges),
                 ece=expected_calibration_error(probabilities, right) if with_confidence else float("nan"),
                 auroc=auroc(probabilities, right) if with_confidence else float("nan"),
                 scored_edges=len(with_confidence), wrong_edges=sum(1 for r in right if not r))


def genealogy_edges(genealogy: Genealogy) -> list[ScoredEdge]:
    return [ScoredEdge(e.parent, e.child, e.relation, e.confidence) for e in genealogy.edges]


def recover_zoo(zoo: Path, recovery: GenealogyRecovery | None = None
                ) -> tuple[list[IngestedModel], Genealogy]:
    """Ingest a zoo's models and recover their genealogy with ``recovery``."""
    ingested: list[IngestedModel] = []
    for result in ingest_many(model_entries(zoo / "models")):
        if isinstance(result, IngestFailure):
            log.warning("%s could not be read: %s", result.name, result.error)
        else:
            ingested.append(result)
    recovery = recovery or GenealogyRecovery()
    genealogy = recovery.recover([m.fingerprint for m in ingested],
                                 declared_bases={m.name: m.profile.declared_base for m in ingested})
    return ingested, genealogy


def evaluate_zoo(zoo: str | Path, recovery: GenealogyRecovery | None = None,
                 baselines: bool = True) -> list[Score]:
    """Scores of ``ours`` (and the two baselines) on the zoo at ``zoo`` (models/ + truth.json)."""
    zoo = Path(zoo)
    truth = Truth.load(zoo)
    ingested, genealogy = recover_zoo(zoo, recovery)
    scores = [score("ours", truth, genealogy_edges(genealogy), [f.members for f in genealogy.families])]
    if baselines:
        full = [m for m in ingested if not m.profile.is_adapter]
        loaded = [load_model(m.path, m.name) for m in full]
        fps = [m.fingerprint for m in full]
        k = len(set(truth.family_of.values()))
        scores.append(score("reference", truth, *reference_recipe(loaded, fps, k)))
        scores.append(score("seed", truth, *seed_recipe(loaded, fps)))
    return scores


def format_scores(scores: Sequence[Score]) -> str:
    header = (f"{'recipe':<10} {'directed':>9} {'undirected':>11} {'ARI':>6} {'relation':>9} {'merges':>7} "
              f"{'ECE':>6} {'AUROC':>6} {'wrong':>7} {'families':>9}")
    notes = ("relation: true edges recovered with the right direction and relation; merges: merge "
             "children found with all their parents; ECE (10 bins) and AUROC: the edge confidences "
             "against right/wrong edges (wrong/scored edges); n/a where a recipe has no confidences "
             "or all its edges are of one class")
    return "\n".join([header, *(s.row() for s in scores), "", notes])
