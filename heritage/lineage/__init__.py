"""Lineage algorithms: from fingerprints to families and directed genealogy trees.

Pure functions and estimators over NumPy arrays and networkx graphs; no file reading
(that is :mod:`heritage.reading`) and no database.

* :mod:`~heritage.lineage.alignment` — which matrices of two models are compared (heads,
  prefixes, buffers and block counts aside);
* :mod:`~heritage.lineage.distances` — scale-free distances between fingerprints;
* :mod:`~heritage.lineage.exact` — the reference max-entry distance, from weights;
* :mod:`~heritage.lineage.clustering` — families without knowing how many there are;
* :mod:`~heritage.lineage.candidates` — the same families from nearest-neighbour
  candidates, without the N x N matrix (hub scale);
* :mod:`~heritage.lineage.sources` — fingerprints read in bounded batches (in memory, a
  spool file, or the catalogue);
* :mod:`~heritage.lineage.direction` — which way edges point (kurtosis or centrality);
* :mod:`~heritage.lineage.arborescence` — Chu-Liu/Edmonds on a dense cost matrix, and
  Tarjan's O(E log V) version on sparse edges;
* :mod:`~heritage.lineage.candidate_distances` — a large family's distances on its
  candidate edges only;
* :mod:`~heritage.lineage.relations` — typed relations and the exact tests for
  conversions, head-only children and quantisations;
* :mod:`~heritage.lineage.merges` — merges fitted as combinations of relatives;
* :mod:`~heritage.lineage.calibration` — edge confidence as a calibrated probability;
* :mod:`~heritage.lineage.trees` — a family's tree, its validation and statistics;
* :mod:`~heritage.lineage.recovery` — :class:`GenealogyRecovery`, all of the above.
"""

from heritage.lineage.alignment import Alignment, AlignmentTable, align
from heritage.lineage.arborescence import minimum_arborescence, sparse_minimum_arborescence
from heritage.lineage.candidate_distances import CandidateDistances
from heritage.lineage.calibration import EdgeCalibrator, EdgeEvidence
from heritage.lineage.clustering import ClusteringMethod, cluster
from heritage.lineage.direction import Regime, decide_direction
from heritage.lineage.candidates import FamilySearch, SparseFamilies
from heritage.lineage.distances import DistanceMetric, aligned_l2, aligned_l2_matrix, distance_matrix
from heritage.lineage.merges import MergeDetector, MergeFit
from heritage.lineage.recovery import Genealogy, GenealogyRecovery, RecoveredEdge, RecoveredFamily
from heritage.lineage.relations import Relation
from heritage.lineage.sources import FingerprintSource, InMemorySource, ModelEntry, SpooledSource
from heritage.lineage.trees import (
    TreeBuildingMethod,
    TreeStatistics,
    TreeValidation,
    build_tree,
    build_tree_sparse,
    tree_statistics,
    validate_tree,
)

__all__ = [
    "Alignment",
    "AlignmentTable",
    "CandidateDistances",
    "ClusteringMethod",
    "DistanceMetric",
    "EdgeCalibrator",
    "EdgeEvidence",
    "FamilySearch",
    "FingerprintSource",
    "Genealogy",
    "InMemorySource",
    "ModelEntry",
    "MergeDetector",
    "MergeFit",
    "GenealogyRecovery",
    "RecoveredEdge",
    "RecoveredFamily",
    "Regime",
    "Relation",
    "SparseFamilies",
    "SpooledSource",
    "TreeBuildingMethod",
    "TreeStatistics",
    "TreeValidation",
    "align",
    "aligned_l2",
    "aligned_l2_matrix",
    "build_tree",
    "build_tree_sparse",
    "cluster",
    "decide_direction",
    "distance_matrix",
    "minimum_arborescence",
    "sparse_minimum_arborescence",
    "tree_statistics",
    "validate_tree",
]
