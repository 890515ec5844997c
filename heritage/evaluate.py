"""Scoring recovered genealogies against a ground-truth zoo, side by side with baselines.

Three recipes run on the same models in the same process:

* ``ours``: :class:`heritage.recovery.GenealogyRecovery` with its defaults — K not given,
  sketch distances, regime decided from the data, adapters attached to their base;
* ``reference``: the published MoTHer recipe (mother.md): exact max-entry distance over
  the q/k/v/o matrices with per-layer min-max normalisation, Ward clustering on summed
  mean-absolute differences **given the true number of families K**, kurtosis of the
  attention output projections with the fine-tuning regime fixed, lambda 0.3, Edmonds.
  It has no notion of unmerged adapters, so their edges count as missed;
* ``seed``: the seed system's recipe (seed-system.md): mean per-tensor L2 over every
  tensor (unnormalised), threshold families, and the symmetric cost
  ``D + lambda * |ku_i - ku_j|`` (item 1) that leaves edge direction to input order.

Scores: directed-edge accuracy (share of true parent->child edges recovered with the
right direction), undirected accuracy, and the adjusted Rand index of the families.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import networkx as nx
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.metrics import adjusted_rand_score

from heritage.clustering import cluster as cluster_distances
from heritage.exact import ExactDistances, exact_distances, mean_tensor_l2
from heritage.fingerprint import Fingerprint
from heritage.ingest import IngestedModel, IngestFailure, ingest_many, model_entries
from heritage.kurtosis import Regime
from heritage.layers import LayerRole
from heritage.loading import LoadedModel, load_model
from heritage.recovery import GenealogyRecovery
from heritage.trees import build_tree

log = logging.getLogger(__name__)

REFERENCE_LAMBDA = 0.3
SEED_LAMBDA = 0.3
SEED_THRESHOLD = 0.3


@dataclass(frozen=True)
class Truth:
    names: list[str]
    edges: set[tuple[str, str]]
    family_of: dict[str, str]

    @classmethod
    def load(cls, zoo: Path) -> "Truth":
        data = json.loads((zoo / "truth.json").read_text())
        names = [m["name"] for m in data["models"]]
        edges = {(e["parent"], e["child"]) for e in data["edges"]}
        family_of = {}
        for i, members in enumerate(data["families"]):
            for m in members:
                family_of[m] = str(i)
        return cls(names, edges, family_of)


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


def _arch_groups(fps: Sequence[Fingerprint]) -> list[list[int]]:
    groups: dict[str, list[int]] = {}
    for i, fp in enumerate(fps):
        groups.setdefault(fp.structure_hash, []).append(i)
    return list(groups.values())


def reference_recipe(models: Sequence[LoadedModel], fps: Sequence[Fingerprint],
                     k: int) -> tuple[list[tuple[str, str]], list[list[str]]]:
    n = len(models)
    groups = _arch_groups(fps)
    mean_abs = np.zeros((n, n))
    exact_of: dict[int, tuple[ExactDistances, int]] = {}  # model -> its group's distances, its index there
    for g in groups:
        ex = exact_distances([models[i] for i in g])
        mean_abs[np.ix_(g, g)] = ex.mean_abs
        exact_of.update((i, (ex, local)) for local, i in enumerate(g))
    big = (mean_abs.max() or 1.0) * 10
    for a in groups:
        for b in groups:
            if a is not b:
                mean_abs[np.ix_(a, b)] = big
    labels = (fcluster(linkage(squareform(mean_abs, checks=False), method="ward"), t=k, criterion="maxclust")
              if n > 1 else np.ones(1, dtype=int))
    families: list[list[str]] = []
    edges: list[tuple[str, str]] = []
    ku_out = [sum(l.kurtosis for l in fp.layers.values() if l.role is LayerRole.ATTENTION_O) for fp in fps]
    for label in sorted(set(labels)):
        idx = [i for i in range(n) if labels[i] == label]
        families.append([models[i].name for i in idx])
        if len(idx) < 2 or len({fps[i].structure_hash for i in idx}) > 1:
            continue
        ex = exact_of[idx[0]][0]
        d = ex.subset([exact_of[i][1] for i in idx]).mother()
        for e in build_tree(d, [ku_out[i] for i in idx], "mother", REFERENCE_LAMBDA, Regime.FINE_TUNING):
            edges.append((models[idx[e.parent]].name, models[idx[e.child]].name))
    return edges, families


def seed_recipe(models: Sequence[LoadedModel], fps: Sequence[Fingerprint]) -> tuple[list[tuple[str, str]], list[list[str]]]:
    n = len(models)
    groups = _arch_groups(fps)
    d = np.full((n, n), np.inf)
    for g in groups:
        d[np.ix_(g, g)] = mean_tensor_l2([models[i] for i in g])
    finite = np.where(np.isfinite(d), d, 1e6)
    labels = cluster_distances(finite, "threshold", SEED_THRESHOLD)
    families, edges = [], []
    ku = [fp.kurtosis for fp in fps]
    for label in sorted(set(labels)):
        idx = [i for i in range(n) if labels[i] == label]
        families.append([models[i].name for i in idx])
        if len(idx) < 2:
            continue
        graph = nx.DiGraph()
        for a in idx:
            for b in idx:
                if a != b:
                    graph.add_edge(a, b, weight=float(finite[a, b] + SEED_LAMBDA * abs(ku[a] - ku[b])))
        tree = nx.minimum_spanning_arborescence(graph)
        edges += [(models[p].name, models[c].name) for p, c in tree.edges()]
    return edges, families


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
