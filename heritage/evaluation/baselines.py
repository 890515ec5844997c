"""The two recipes ``heritage evaluate`` runs beside ours, on the same models.

* ``reference``: the published MoTHer recipe (mother.md): exact max-entry distance over
  the q/k/v/o matrices with per-layer min-max normalisation, Ward clustering on summed
  mean-absolute differences **given the true number of families K**, kurtosis of the
  attention output projections with the fine-tuning regime fixed, lambda 0.3, Edmonds.
  It has no notion of unmerged adapters, so their edges count as missed;
* ``seed``: the seed system's recipe (seed-system.md): mean per-tensor L2 over every
  tensor (unnormalised), threshold families, and the symmetric cost
  ``D + lambda * |ku_i - ku_j|`` (item 1) that leaves edge direction to input order.

Each returns ``(edges, families)`` as (parent, child) name pairs and name lists.
"""

from __future__ import annotations

from typing import Sequence

import networkx as nx
import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from heritage.lineage.clustering import cluster as cluster_distances
from heritage.lineage.direction import Regime
from heritage.lineage.exact import ExactDistances, exact_distances, mean_tensor_l2
from heritage.lineage.trees import build_tree
from heritage.reading.fingerprint import Fingerprint
from heritage.reading.layers import LayerRole
from heritage.reading.loader import LoadedModel

__all__ = ["REFERENCE_LAMBDA", "SEED_LAMBDA", "SEED_THRESHOLD", "reference_recipe", "seed_recipe"]

REFERENCE_LAMBDA = 0.3
SEED_LAMBDA = 0.3
SEED_THRESHOLD = 0.3


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
