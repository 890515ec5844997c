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
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Iterable, Sequence

import numpy as np

from heritage.lineage.clustering import DEFAULT_THRESHOLD, ClusteringMethod, cluster
from heritage.lineage.distances import DistanceMetric, choose_metric, distance_matrix
from heritage.reading.fingerprint import Fingerprint
from heritage.lineage.direction import Regime, decide_direction
from heritage.reading.layers import FINGERPRINT_ROLES, LayerRole
from heritage.lineage.trees import (
    DEFAULT_LAMBDA,
    TreeBuildingMethod,
    TreeStatistics,
    TreeValidation,
    build_tree,
    tree_statistics,
    validate_tree,
)

log = logging.getLogger(__name__)

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

    def validation(self) -> TreeValidation:
        return validate_tree([(e.parent, e.child) for e in self.edges], self.members)

    def statistics(self) -> TreeStatistics:
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
    """Recover families and genealogy trees from model fingerprints.

    An estimator in the scikit-learn manner: configured once, then applied with
    :meth:`recover` to any set of fingerprints (or piece by piece with :meth:`cluster`,
    :meth:`build_family` and :meth:`attach_adapter`).  No database, no files: the
    fingerprints carry everything (see :func:`heritage.fingerprint`).

    Parameters
    ----------
    metric : DistanceMetric or str, default "auto"
        Distance the trees are built on: ``l2``, ``cosine``, ``rank`` (LoRA-merged
        families) or ``auto`` (rank where members differ by low-rank updates, else l2).
        Families are always found on l2.
    clustering : ClusteringMethod or str, default "auto"
        ``threshold`` (single linkage), ``dbscan``, ``kmeans`` or ``auto``.
    threshold : float, default 0.5
        Relative weight change below which two models are one family (unrelated weights
        sit near 1.41, fine-tunes at 1e-3 to 1e-1).
    tree_method : TreeBuildingMethod or str, default "mother"
        See :func:`heritage.lineage.trees.build_tree`.
    lam : float, default 0.3
        Weight of the direction penalty in the tree costs.
    regime : Regime or str, optional
        Force the direction signal; by default it is decided per family from the data
        (:func:`heritage.lineage.direction.decide_direction`).
    roles : iterable of LayerRole, optional
        Which weight matrices the distances compare (default: each metric's own).

    Raises
    ------
    ValueError
        For the ``mother`` metric (it needs weights, see :mod:`heritage.lineage.exact`),
        a non-positive threshold, a negative lambda or roles a fingerprint does not keep.

    See Also
    --------
    heritage.lineage.trees.build_tree, heritage.lineage.direction.decide_direction

    Notes
    -----
    The steps are in the module docstring; the method is MoTHer [1]_ with the direction
    signal decided from data and families found without knowing how many there are.

    References
    ----------
    .. [1] E. Horwitz, A. Shul, Y. Hoshen, "Unsupervised Model Tree Heritage Recovery",
       ICLR 2025, arXiv:2405.18432.

    Examples
    --------
    A heavy-tailed base, two fine-tunes of it and a fine-tune of a fine-tune, all in memory:

    >>> import numpy as np
    >>> from heritage import fingerprint
    >>> rng = np.random.default_rng(0)
    >>> names = [f"layer.{i}.attention.{p}.weight" for i in range(2) for p in ("query", "key", "value")]
    >>> def finetune(parent):
    ...     return {n: w + 0.05 * rng.standard_normal(w.shape).astype("float32") for n, w in parent.items()}
    >>> base = {n: rng.standard_t(4, (64, 64)).astype("float32") for n in names}
    >>> chat, code = finetune(base), finetune(base)
    >>> models = {"base": base, "chat": chat, "code": code, "chat-v2": finetune(chat)}
    >>> genealogy = GenealogyRecovery().recover([fingerprint(w, name=n) for n, w in models.items()])
    >>> sorted((edge.parent, edge.child) for edge in genealogy.edges)
    [('base', 'chat'), ('base', 'code'), ('chat', 'chat-v2')]
    >>> genealogy.families[0].regime, genealogy.parent_of("chat-v2")
    ('fine_tuning', 'chat')
    """

    def __init__(
        self,
        metric: DistanceMetric | str = DistanceMetric.AUTO,
        clustering: ClusteringMethod | str = ClusteringMethod.AUTO,
        threshold: float = DEFAULT_THRESHOLD,
        tree_method: TreeBuildingMethod | str = TreeBuildingMethod.MOTHER,
        lam: float = DEFAULT_LAMBDA,
        regime: Regime | str | None = None,
        roles: Iterable[LayerRole | str] | None = None,
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

    # -- families -------------------------------------------------------------
    def cluster(self, fingerprints: Sequence[Fingerprint]) -> list[list[Fingerprint]]:
        """Families of full models (adapters excluded), each a list of fingerprints."""
        groups: dict[str, list[Fingerprint]] = defaultdict(list)
        for fp in fingerprints:
            if not fp.is_adapter:
                groups[fp.structure_hash].append(fp)
        families: list[list[Fingerprint]] = []
        for group in groups.values():
            d = distance_matrix(group, DistanceMetric.L2, self.roles)
            labels = self._cluster_with_fallback(d)
            for label in range(int(labels.max()) + 1 if len(labels) else 0):
                families.append([fp for fp, l in zip(group, labels) if l == label])
        return families

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
                       by_name: dict[str, Fingerprint]) -> tuple[RecoveredFamily, RecoveredEdge] | None:
        compatible = [f for f in families if self._fits(adapter, by_name[f.members[0]])]
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
        names = [fp.name for fp in fingerprints]
        if len(set(names)) != len(names):
            raise ValueError("model names must be unique")
        by_name = {fp.name: fp for fp in fingerprints}
        families = [self.build_family(members, i) for i, members in enumerate(self.cluster(fingerprints))]
        # Bases are full models only: a lone adapter's own family (appended below) is never
        # a candidate for another adapter, whatever its shapes (as in the catalogue's placement).
        full_families = list(families)
        declared_bases = declared_bases or {}
        for fp in fingerprints:
            if not fp.is_adapter:
                continue
            attached = self.attach_adapter(fp, declared_bases.get(fp.name), full_families, by_name)
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
        kurtosis = {fp.name: fp.kurtosis for fp in fingerprints if not math.isnan(fp.kurtosis)}
        return Genealogy(families=families, kurtosis=kurtosis)
