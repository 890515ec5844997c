"""Scoring recovered genealogies against a ground-truth zoo, side by side with baselines.

Three recipes run on the same models in the same process: ``ours``
(:class:`heritage.lineage.recovery.GenealogyRecovery` with its defaults: K not given,
sketch distances, regime decided from the data, adapters attached to their base), and
the ``reference`` and ``seed`` recipes of :mod:`heritage.evaluation.baselines`.

Scores: directed-edge accuracy (share of true parent->child edges recovered with the
right direction), undirected accuracy, and the adjusted Rand index of the families.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from sklearn.metrics import adjusted_rand_score

from heritage.evaluation.baselines import reference_recipe, seed_recipe
from heritage.lineage.recovery import GenealogyRecovery
from heritage.reading.ingest import IngestedModel, IngestFailure, ingest_many, model_entries
from heritage.reading.loader import load_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Truth:
    """A zoo's ground truth: model names, parent -> child edges and families.

    ``relations`` maps every edge to its relation word and ``weights`` every merge
    edge to that parent's mixing weight.  Truth files written before relations were
    recorded read as ``finetune`` (``adapter`` where the child is a ``lora_adapter``).
    """

    names: list[str]
    edges: set[tuple[str, str]]
    family_of: dict[str, str]
    relations: dict[tuple[str, str], str] = field(default_factory=dict)
    weights: dict[tuple[str, str], float] = field(default_factory=dict)

    @classmethod
    def load(cls, zoo: Path) -> "Truth":
        data = json.loads((zoo / "truth.json").read_text())
        names = [m["name"] for m in data["models"]]
        kind_of = {m["name"]: m.get("kind") for m in data["models"]}
        edges: set[tuple[str, str]] = set()
        relations: dict[tuple[str, str], str] = {}
        weights: dict[tuple[str, str], float] = {}
        for e in data["edges"]:
            edge = (e["parent"], e["child"])
            edges.add(edge)
            default = "adapter" if kind_of.get(e["child"]) == "lora_adapter" else "finetune"
            relations[edge] = e.get("relation") or default
            if e.get("weight") is not None:
                weights[edge] = float(e["weight"])
        family_of = {}
        for i, members in enumerate(data["families"]):
            for m in members:
                family_of[m] = str(i)
        return cls(names, edges, family_of, relations, weights)


@dataclass(frozen=True)
class Score:
    recipe: str
    directed: float
    undirected: float
    ari: float
    edges: int
    families: int

    def row(self) -> str:
        return (f"{self.recipe:<10} {self.directed:>9.3f} {self.undirected:>11.3f} "
                f"{self.ari:>6.3f} {self.families:>9d}")


def score(recipe: str, truth: Truth, edges: Sequence[tuple[str, str]],
          families: Sequence[Sequence[str]]) -> Score:
    found = set(edges)
    undirected = {frozenset(e) for e in found}
    total = len(truth.edges) or 1
    directed = sum(1 for e in truth.edges if e in found) / total
    undirected_acc = sum(1 for e in truth.edges if frozenset(e) in undirected) / total
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
    return Score(recipe, directed, undirected_acc, float(ari), len(truth.edges), len(families))


def evaluate_zoo(zoo: str | Path, recovery: GenealogyRecovery | None = None,
                 baselines: bool = True) -> list[Score]:
    """Scores of ``ours`` (and the two baselines) on the zoo at ``zoo`` (models/ + truth.json)."""
    zoo = Path(zoo)
    truth = Truth.load(zoo)
    entries = model_entries(zoo / "models")
    ingested: list[IngestedModel] = []
    for result in ingest_many(entries):
        if isinstance(result, IngestFailure):
            log.warning("%s could not be read: %s", result.name, result.error)
        else:
            ingested.append(result)
    recovery = recovery or GenealogyRecovery()
    genealogy = recovery.recover([m.fingerprint for m in ingested],
                                 declared_bases={m.name: m.profile.declared_base for m in ingested})
    scores = [score("ours", truth, [(e.parent, e.child) for e in genealogy.edges],
                    [f.members for f in genealogy.families])]
    if baselines:
        full = [m for m in ingested if not m.profile.is_adapter]
        loaded = [load_model(m.path, m.name) for m in full]
        fps = [m.fingerprint for m in full]
        k = len(set(truth.family_of.values()))
        scores.append(score("reference", truth, *reference_recipe(loaded, fps, k)))
        scores.append(score("seed", truth, *seed_recipe(loaded, fps)))
    return scores


def format_scores(scores: Sequence[Score]) -> str:
    header = f"{'recipe':<10} {'directed':>9} {'undirected':>11} {'ARI':>6} {'families':>9}"
    return "\n".join([header, *(s.row() for s in scores)])
