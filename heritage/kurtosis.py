"""Direction of training from kurtosis, with the regime decided from the data.

Excess kurtosis of weight matrices moves monotonically with training: large-scale
(pre)training makes weights heavier-tailed (kurtosis rises), fine-tuning with dense
optimiser updates makes them less so (kurtosis falls). Which of the two regimes holds
in a family is not a flag the user has to know; we decide it per family:

1. connect the family by its undirected minimum spanning tree over the distance
   (parent-child pairs are the closest pairs);
2. count the *local maxima* of kurtosis on that tree (models whose kurtosis exceeds
   every neighbour's) and the *local minima*;
3. a genealogy has one root and usually several leaves. If kurtosis falls along every
   edge away from the root (fine-tuning), the root is the only local maximum and the
   leaves are local minima; if it rises (continued pre-training), the reverse. So the
   regime whose implied roots are fewer wins: fine-tuning when
   ``#maxima <= #minima``. A tie (two models, or a chain) carries no topological
   evidence and falls back to fine-tuning, by far the common case in model hubs.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Sequence

import networkx as nx
import numpy as np


class Regime(str, enum.Enum):
    FINE_TUNING = "fine_tuning"  # parents have higher kurtosis than children
    PRETRAINING = "pretraining"  # parents have lower kurtosis than children


@dataclass(frozen=True)
class RegimeDecision:
    regime: Regime
    local_maxima: int
    local_minima: int

    @property
    def evidence(self) -> str:
        return (f"{self.regime.value}: {self.local_maxima} local kurtosis maxima vs "
                f"{self.local_minima} minima on the family's minimum spanning tree")


def undirected_mst(distances: np.ndarray) -> nx.Graph:
    n = distances.shape[0]
    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    for i in range(n):
        for j in range(i + 1, n):
            graph.add_edge(i, j, weight=float(distances[i, j]))
    return nx.minimum_spanning_tree(graph)


def decide_regime(distances: np.ndarray, kurtosis: Sequence[float]) -> RegimeDecision:
    """Choose the kurtosis regime of one family (see the module docstring)."""
    n = len(kurtosis)
    if n < 3:
        return RegimeDecision(Regime.FINE_TUNING, min(n, 1), min(n, 1))
    tree = undirected_mst(distances)
    maxima = minima = 0
    for node in tree.nodes:
        neighbours = [kurtosis[m] for m in tree.neighbors(node)]
        if not neighbours:
            continue
        if all(kurtosis[node] > k for k in neighbours):
            maxima += 1
        if all(kurtosis[node] < k for k in neighbours):
            minima += 1
    regime = Regime.FINE_TUNING if maxima <= minima else Regime.PRETRAINING
    return RegimeDecision(regime, maxima, minima)


def direction_sign(regime: Regime) -> int:
    """+1 when the parent should have the higher kurtosis, -1 when the lower."""
    return 1 if regime is Regime.FINE_TUNING else -1
