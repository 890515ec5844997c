"""From fingerprints to families and directed genealogy trees (no database here).

:class:`GenealogyRecovery` is configured once (metric, clustering, threshold, tree
method, lambda) and then applied to any set of fingerprints, like a scikit-learn
estimator. It:

1. groups full models by architecture (structural hash);
2. clusters each group into families on the scale-free ``l2`` distance;
3. per family, picks the tree metric (``auto``: rank for merged-LoRA families, else
   l2), decides the direction signal from the data — kurtosis in the regime that fits,
   or centrality where kurtosis is inconsistent (:mod:`heritage.lineage.direction`) — and builds
   the tree (:mod:`heritage.lineage.trees`);
4. attaches each unmerged LoRA adapter to its base among the full models: the model its
   ``base_model_name_or_path`` names (by name or path basename) when it is one of them
   and its shapes fit; otherwise — weights alone cannot tell which of several
   same-architecture relatives an adapter was trained on — the root of the largest
   compatible family, with a confidence that says how ambiguous that was.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from heritage.lineage.candidates import DEFAULT_NEIGHBOURS, FamilySearch, SparseFamilies, group_pairs
from heritage.lineage.clustering import DEFAULT_THRESHOLD, ClusteringMethod, cluster
from heritage.lineage.distances import DistanceMetric, choose_metric, distance_matrix
from heritage.lineage.sources import FingerprintSource, InMemorySource, pair_l2
from heritage.reading.fingerprint import Fingerprint
from heritage.lineage.direction import Regime, decide_direction
from heritage.reading.layers import FINGERPRINT_ROLES, LayerRole
from heritage.lineage.trees import DEFAULT_LAMBDA, TreeBuildingMethod, build_tree, tree_statistics, validate_tree

log = logging.getLogger(__name__)

# Families whose trees are built together (one task with a Dask mapper); bounded by models.
_TREE_BATCH_MODELS = 512

# ``map``-like callable: ``mapper(fn, iterable)`` yields ``fn(item)`` for each item, in order
# (the builtin ``map`` in process; :func:`heritage.distributed.dask_mapper` on a Dask cluster).
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]

# A tie-breaker mixed into integer-valued rank distances so that equal ranks are
# resolved by the size of the change rather than by input order.
_RANK_TIE_BREAK = 1e-3


@dataclass(frozen=True)
class RecoveredEdge:
    parent: str
    child: str
    confidence: float
    distance: float
    method: str


@dataclass
class RecoveredFamily:
    index: int
    members: list[str]
    structure_hash: str
    metric: str
    regime: str
    regime_evidence: str
    mean_distance: float
    threshold: float
    edges: list[RecoveredEdge] = field(default_factory=list)

    @property
    def root(self) -> str:
        children = {e.child for e in self.edges}
        roots = [m for m in self.members if m not in children]
        return roots[0] if roots else self.members[0]

    def validation(self) -> tuple[bool, list[str]]:
        return validate_tree([(e.parent, e.child) for e in self.edges], self.members)

    def statistics(self) -> dict[str, object]:
        return tree_statistics([(e.parent, e.child) for e in self.edges], self.members)


@dataclass
class Genealogy:
    families: list[RecoveredFamily]
    kurtosis: dict[str, float]

    @property
    def edges(self) -> list[RecoveredEdge]:
        return [e for f in self.families for e in f.edges]

    def family_of(self, name: str) -> RecoveredFamily | None:
        for family in self.families:
            if name in family.members:
                return family
        return None

    def parent_of(self, name: str) -> str | None:
        return next((e.parent for e in self.edges if e.child == name), None)

    def to_dict(self) -> dict[str, object]:
        return {
            "families": [
                {
                    "index": f.index,
                    "root": f.root,
                    "members": f.members,
                    "metric": f.metric,
                    "regime": f.regime,
                    "regime_evidence": f.regime_evidence,
                    "mean_distance": f.mean_distance,
                    "threshold": f.threshold,
                    "edges": [asdict(e) for e in f.edges],
                }
                for f in self.families
            ],
            "kurtosis": self.kurtosis,
        }


def _mean_offdiag(d: np.ndarray) -> float:
    n = d.shape[0]
    return float(d[~np.eye(n, dtype=bool)].mean()) if n > 1 else 0.0


class GenealogyRecovery:
    """Recover families and trees from fingerprints; see the module docstring."""

    def __init__(
        self,
        metric: DistanceMetric | str = DistanceMetric.AUTO,
        clustering: ClusteringMethod | str = ClusteringMethod.AUTO,
        threshold: float = DEFAULT_THRESHOLD,
        tree_method: TreeBuildingMethod | str = TreeBuildingMethod.MOTHER,
        lam: float = DEFAULT_LAMBDA,
        regime: Regime | str | None = None,
        roles: Iterable[LayerRole | str] | None = None,
        search: FamilySearch | str = FamilySearch.SPARSE,
        neighbours: int = DEFAULT_NEIGHBOURS,
        margin: float = 2.0,
    ) -> None:
        self.metric = DistanceMetric(metric)
        if self.metric is DistanceMetric.MOTHER:
            raise ValueError("the exact 'mother' distance needs weights: use heritage.lineage.exact")
        self.clustering = ClusteringMethod(clustering)
        if not threshold > 0:
            raise ValueError("threshold must be positive")
        self.threshold = float(threshold)
        self.tree_method = TreeBuildingMethod(tree_method)
        if lam < 0:
            raise ValueError("lambda must be non-negative")
        self.lam = float(lam)
        self.regime = Regime(regime) if regime else None
        # Layers compared by every distance; None: each metric's default (heritage.reading.layers).
        self.roles = frozenset(LayerRole(r) for r in roles) if roles else None
        if self.roles is not None and not self.roles <= FINGERPRINT_ROLES:
            outside = ", ".join(sorted(r.value for r in self.roles - FINGERPRINT_ROLES))
            raise ValueError(f"fingerprints keep attention (or MLP) matrices only; cannot compare {outside}")
        # Families: ``sparse`` (nearest-neighbour candidates, heritage.lineage.candidates) or
        # ``exact`` (every pairwise distance; k-means always uses it).
        self.search = FamilySearch(search)
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        self.neighbours = int(neighbours)
        if not margin >= 1:
            raise ValueError("margin must be at least 1")
        self.margin = float(margin)

    # -- families -------------------------------------------------------------
    def cluster(self, fingerprints: Sequence[Fingerprint]) -> list[list[Fingerprint]]:
        """Families of full models (adapters excluded), each a list of fingerprints."""
        fingerprints = list(fingerprints)
        return [[fingerprints[i] for i in family] for family in self.cluster_source(InMemorySource(fingerprints))]

    def cluster_source(self, source: FingerprintSource, mapper: Mapper | None = None) -> list[np.ndarray]:
        """Families of the full models of ``source``, as arrays of indices into its entries.

        Per architecture (structural hash, in order of first appearance), labels in order
        of first appearance: the same families, in the same order, by either search.
        ``mapper`` runs the candidate searches (placement vectors only) elsewhere.
        """
        groups: dict[str, list[int]] = defaultdict(list)
        for i, entry in enumerate(source.entries):
            if not entry.is_adapter:
                groups[entry.structure_hash].append(i)
        indices = [np.asarray(g, dtype=np.int64) for g in groups.values()]
        exact = self.search is FamilySearch.EXACT or self.clustering is ClusteringMethod.KMEANS
        searcher = None if exact else SparseFamilies(self.clustering, self.threshold, neighbours=self.neighbours,
                                                     margin=self.margin)
        nearest: Iterator[Any] | None = None
        if searcher is not None and mapper is not None:
            nearest = iter(mapper(searcher.nearest, (source.placement_vectors(g) for g in indices)))
        families: list[np.ndarray] = []
        for group in indices:
            if searcher is None:
                labels = self._cluster_with_fallback(
                    distance_matrix(source.fingerprints(group), DistanceMetric.L2, self.roles))
            else:
                labels = self._sparse_labels(searcher, source, group, None if nearest is None else next(nearest))
            families.extend(group[members] for members in group_pairs(labels))
        return families

    def _sparse_labels(self, searcher: SparseFamilies, source: FingerprintSource, group: np.ndarray,
                       nearest: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        def pairs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
            unique = np.unique(np.concatenate([i, j]))
            fps = source.fingerprints(group[unique])
            pi, pj = np.searchsorted(unique, i), np.searchsorted(unique, j)
            return pair_l2([fps[p] for p in pi], [fps[p] for p in pj], self.roles)

        def dense(idx: np.ndarray) -> np.ndarray:
            return distance_matrix(source.fingerprints(group[idx]), DistanceMetric.L2, self.roles)

        labels, report = searcher.fit(source.placement_vectors(group), pairs, dense, nearest)
        log.debug("sparse families: %s", report)
        return labels

    def _cluster_with_fallback(self, distances: np.ndarray) -> np.ndarray:
        """The configured clustering; if that method fails on these distances (k-means or
        DBSCAN on degenerate input), single linkage at the threshold, with a warning."""
        try:
            return cluster(distances, self.clustering, self.threshold)
        except (ValueError, np.linalg.LinAlgError) as exc:
            if self.clustering is ClusteringMethod.THRESHOLD:
                raise
            log.warning("%s clustering failed (%s); falling back to threshold clustering",
                        self.clustering.value, exc)
            return cluster(distances, ClusteringMethod.THRESHOLD, self.threshold)

    # -- trees ----------------------------------------------------------------
    def family_distances(self, members: Sequence[Fingerprint]) -> tuple[np.ndarray, DistanceMetric]:
        l2 = distance_matrix(members, DistanceMetric.L2, self.roles)
        metric = choose_metric(members, l2) if self.metric is DistanceMetric.AUTO else self.metric
        if metric is DistanceMetric.L2:
            return l2, metric
        d = distance_matrix(members, metric, self.roles)
        if metric is DistanceMetric.RANK:
            d = d + _RANK_TIE_BREAK * l2 / (float(l2.max()) or 1.0)
        return d, metric

    def build_family(self, members: Sequence[Fingerprint], index: int = 0) -> RecoveredFamily:
        """Tree of one family from its members' fingerprints."""
        names = [fp.name for fp in members]
        ku = [fp.kurtosis for fp in members]
        d, metric = self.family_distances(members)
        decision = decide_direction(d, ku)
        regime = self.regime or decision.regime
        evidence = decision.evidence if self.regime is None else f"{regime.value}: set in configuration"
        if self.tree_method is TreeBuildingMethod.KURTOSIS_ONLY and regime is Regime.CENTRALITY:
            regime = decision.kurtosis_regime
        edges = build_tree(d, ku, self.tree_method, self.lam, regime)
        return RecoveredFamily(
            index=index,
            members=names,
            structure_hash=members[0].structure_hash,
            metric=metric.value,
            regime=regime.value,
            regime_evidence=evidence,
            mean_distance=_mean_offdiag(d),
            threshold=self.threshold,
            edges=[
                RecoveredEdge(parent=names[e.parent], child=names[e.child], confidence=e.confidence,
                              distance=e.distance, method=self.tree_method.value)
                for e in edges
            ],
        )

    # -- adapters -------------------------------------------------------------
    @staticmethod
    def _fits(adapter: Fingerprint, base: Fingerprint) -> bool:
        return all(n in base.layers and base.layers[n].shape == l.shape for n, l in adapter.layers.items())

    def attach_adapter(self, adapter: Fingerprint, declared_base: str | None,
                       families: Sequence[RecoveredFamily],
                       by_name: Mapping[str, Fingerprint],
                       fits: Callable[[RecoveredFamily], bool] | None = None,
                       ) -> tuple[RecoveredFamily, RecoveredEdge] | None:
        """``fits(family)``: whether the adapter fits the family (default: its first member's shapes)."""
        fits = fits or (lambda f: self._fits(adapter, by_name[f.members[0]]))
        compatible = [f for f in families if fits(f)]
        if not compatible:
            return None
        parent, confidence, how = None, 0.0, "adapter_base"
        if declared_base:
            wanted = {declared_base.lower(), PurePosixPath(declared_base).name.lower()}
            for family in compatible:
                for member in family.members:
                    if member.lower() in wanted and not by_name[member].is_adapter:
                        parent, confidence, how = member, 1.0, "declared_base"
        if parent is None:
            family = max(compatible, key=lambda f: len(f.members))
            parent = family.root
            confidence = 1.0 / len(compatible) * (1.0 / len(family.members))
        family = next(f for f in compatible if parent in f.members)
        base = by_name[parent]
        rel = [
            float(np.linalg.norm(l.sketch)) / (base.layers[n].norm or 1.0)
            for n, l in adapter.layers.items()
        ]
        edge = RecoveredEdge(parent=parent, child=adapter.name, confidence=confidence,
                             distance=float(np.mean(rel)), method=how)
        return family, edge

    # -- everything -----------------------------------------------------------
    def recover(self, fingerprints: Sequence[Fingerprint],
                declared_bases: dict[str, str | None] | None = None) -> Genealogy:
        """Families and trees for ``fingerprints`` (names must be unique)."""
        return self.recover_source(InMemorySource(fingerprints), declared_bases)

    def recover_source(self, source: FingerprintSource, declared_bases: dict[str, str | None] | None = None,
                       mapper: Mapper | None = None) -> Genealogy:
        """Families and trees of the models of ``source`` (names must be unique).

        Fingerprints are read per candidate batch and per family, never all at once;
        ``mapper`` (a ``map``-like callable, e.g. a Dask cluster's) runs the candidate
        searches and the family trees.
        """
        names = [e.name for e in source.entries]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique")
        index_of = {name: i for i, name in enumerate(names)}
        kurtosis: dict[int, float] = {}
        families: list[RecoveredFamily] = []
        batches = self._tree_batches(source, self.cluster_source(source, mapper), kurtosis)
        for built in (mapper or map)(_build_families, ((self, batch) for batch in batches)):
            for family in built:
                family.index = len(families)
                families.append(family)
        # Bases are full models only: a lone adapter's own family (appended below) is never
        # a candidate for another adapter, whatever its shapes (as in the catalogue's placement).
        full_families = list(families)
        declared_bases = declared_bases or {}
        by_name = _LazyFingerprints(source, index_of)
        for i, entry in enumerate(source.entries):
            if not entry.is_adapter:
                continue
            fp = source.fingerprints([i])[0]
            fit_by_structure: dict[str, bool] = {}

            def fits(family: RecoveredFamily, fp: Fingerprint = fp, cache: dict[str, bool] = fit_by_structure) -> bool:
                # One architecture, one set of shapes: check one member per structural hash.
                if family.structure_hash not in cache:
                    cache[family.structure_hash] = self._fits(fp, by_name[family.members[0]])
                return cache[family.structure_hash]

            attached = self.attach_adapter(fp, declared_bases.get(fp.name), full_families, by_name, fits)
            if attached is None:
                log.warning("adapter %s fits no full model here; it stands alone", fp.name)
                families.append(RecoveredFamily(
                    index=len(families), members=[fp.name], structure_hash=fp.structure_hash,
                    metric="none", regime="n/a", regime_evidence="adapter without a base",
                    mean_distance=0.0, threshold=self.threshold))
                continue
            family, edge = attached
            family.members.append(fp.name)
            family.edges.append(edge)
        return Genealogy(families=families, kurtosis={names[i]: kurtosis[i] for i in sorted(kurtosis)})

    @staticmethod
    def _tree_batches(source: FingerprintSource, families: list[np.ndarray],
                      kurtosis: dict[int, float]) -> Iterator[list[list[Fingerprint]]]:
        """Families' fingerprints, a few hundred models at a time (read lazily as consumed)."""
        batch: list[list[Fingerprint]] = []
        size = 0
        for members in families:
            fps = source.fingerprints(members)
            for i, fp in zip(members, fps):
                if not math.isnan(fp.kurtosis):
                    kurtosis[int(i)] = fp.kurtosis
            batch.append(fps)
            size += len(fps)
            if size >= _TREE_BATCH_MODELS:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch


def _build_families(task: tuple[GenealogyRecovery, list[list[Fingerprint]]]) -> list[RecoveredFamily]:
    """Trees of a batch of families (a module-level function, so a Dask worker can run it)."""
    recovery, batch = task
    return [recovery.build_family(members) for members in batch]


class _LazyFingerprints(Mapping[str, Fingerprint]):
    """Fingerprints by name, read from the source only when looked up."""

    def __init__(self, source: FingerprintSource, index_of: dict[str, int]) -> None:
        self._source = source
        self._index_of = index_of

    def __getitem__(self, name: str) -> Fingerprint:
        return self._source.fingerprints([self._index_of[name]])[0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index_of)

    def __len__(self) -> int:
        return len(self._index_of)
