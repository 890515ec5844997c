"""From fingerprints to families and directed genealogy trees (no database here).

:class:`GenealogyRecovery` is configured once (metric, clustering, threshold, tree
method, lambda) and then applied to any set of fingerprints, like a scikit-learn
estimator. It:

1. groups full models by backbone (:attr:`Fingerprint.backbone_key`: what the compared
   matrices look like per block, so heads, buffers, vocabulary size and block count do
   not matter) and compares them on aligned matrices (:mod:`heritage.lineage.alignment`,
   :func:`heritage.lineage.distances.aligned_l2`);
2. clusters each group into families on the scale-free ``l2`` distance: by default from
   nearest-neighbour candidates with exact distances on candidate edges only
   (:mod:`heritage.lineage.candidates`, the same families as every pairwise distance,
   ``search="exact"``, without the N x N matrix);
3. per family, sets aside near-duplicates found by exact tests — conversions,
   head-only children, quantisations (:mod:`heritage.lineage.relations`) — and finds
   merges among the rest (:mod:`heritage.lineage.merges`);
4. on the remaining representatives, picks the tree metric (``auto``: rank for
   merged-LoRA families, else l2), decides the direction signal from the models whose
   edges are genuinely ambiguous (not merges, not smaller students) — kurtosis in the
   regime that fits, or centrality where kurtosis is inconsistent
   (:mod:`heritage.lineage.direction`; an edge that would take a task head away costs
   more) — and builds the tree (:mod:`heritage.lineage.trees`),
   a merge under its main parent with an edge to each other parent (a TIES-style merge
   has edges to the fine-tunes it merged, not to their base), a student never
   above a model with more blocks; near-duplicates are then attached, every edge typed
   (``relation``) and given a calibrated confidence (:mod:`heritage.lineage.calibration`).
   A family of more than ``tree_limit`` models (default 1,000) does all this on candidate
   edges (:meth:`GenealogyRecovery.build_large_family`): its nearest neighbours by
   placement vector, exact distances on those edges only, Tarjan's arborescence,
   centrality estimated from a sample of members; its fingerprints are read from the
   source a chunk at a time;
5. attaches each unmerged LoRA adapter to its base among the full models: the model its
   ``base_model_name_or_path`` names (by name or path basename) when it is one of them
   and its shapes fit; otherwise — weights alone cannot tell which of several
   same-architecture relatives an adapter was trained on — the root of the largest
   compatible family, with a confidence that says how ambiguous that was.

Fingerprints come from a :class:`~heritage.lineage.sources.FingerprintSource`
(:meth:`GenealogyRecovery.recover_source`): read per candidate batch and per family,
never all at once, so a hub's recovery holds its placement vectors, not its
fingerprints; a ``mapper`` (e.g. a Dask cluster's, :mod:`heritage.distributed`) runs
the candidate searches and the family trees elsewhere.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from heritage.lineage.alignment import AlignmentTable
from heritage.lineage.calibration import EdgeCalibrator, EdgeEvidence
from heritage.lineage.candidates import DEFAULT_NEIGHBOURS, FamilySearch, SparseFamilies, group_pairs
from heritage.lineage.clustering import DEFAULT_THRESHOLD, ClusteringMethod, cluster
from heritage.lineage.candidate_distances import CandidateDistances
from heritage.lineage.direction import (
    Regime,
    RegimeDecision,
    against,
    against_edges,
    against_heads,
    decide_direction,
    decide_direction_sparse,
)
from heritage.lineage.distances import (
    UNALIGNED_DISTANCE,
    DistanceMetric,
    aligned_l2,
    aligned_l2_matrix,
    choose_metric,
    pair_distance,
)
from heritage.lineage.merges import MergeDetector, MergeFit
from heritage.lineage.relations import Attachment, Relation, carries_task_head, is_headless, near_duplicates
from heritage.lineage.sources import FingerprintSource, InMemorySource
from heritage.lineage.trees import (
    DEFAULT_LAMBDA,
    TreeBuildingMethod,
    TreeEdge,
    TreeStatistics,
    TreeValidation,
    build_tree,
    build_tree_sparse,
    tree_shape,
    tree_statistics,
    validate_tree,
)
from heritage.reading.fingerprint import Fingerprint
from heritage.reading.layers import DEFAULT_ROLES, FINGERPRINT_ROLES, LayerRole

log = logging.getLogger(__name__)

# Families whose trees are built together (one task with a Dask mapper); bounded by models.
_TREE_BATCH_MODELS = 512
# Families larger than this get their tree on candidate edges (GenealogyRecovery.tree_limit).
DEFAULT_TREE_LIMIT = 1000
# A large family's centrality and mean distance are estimated from the distances of every
# model to this many of its members (evenly spaced).
CENTRE_SAMPLE = 64
# Fingerprints read at once while a large family streams through (its scalars, its layouts).
_READ_CHUNK = 256

# ``map``-like callable: ``mapper(fn, iterable)`` yields ``fn(item)`` for each item, in order
# (the builtin ``map`` in process; :func:`heritage.distributed.dask_mapper` on a Dask cluster).
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterable[Any]]

# A tie-breaker mixed into integer-valued rank distances so that equal ranks are
# resolved by the size of the change rather than by input order.
_RANK_TIE_BREAK = 1e-3


@dataclass(frozen=True)
class RecoveredEdge:
    """A recovered ``child -> parent`` edge.

    ``relation``: a :class:`~heritage.lineage.relations.Relation` value; ``weight``: the
    parent's mixing weight on ``merge`` edges (else None); ``aligned``: share of the
    child's compared parameters aligned with the parent's; ``confidence``: calibrated
    probability that the edge is right; ``margin``: the raw cost margin it rests on.
    """

    parent: str
    child: str
    confidence: float
    distance: float
    method: str
    relation: str = Relation.FINETUNE.value
    weight: float | None = None
    aligned: float = 1.0
    margin: float | None = None
    # The evidence the confidence was computed from (what calibration is fitted on).
    evidence: EdgeEvidence | None = field(default=None, compare=False, repr=False)


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
        return validate_tree([(e.parent, e.child, e.relation) for e in self.edges], self.members)

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
        """The (main) parent: a merge child's parent of largest weight."""
        edges = [e for e in self.edges if e.child == name]
        if not edges:
            return None
        return max(edges, key=lambda e: e.weight if e.weight is not None else 1.0).parent

    def parents_of(self, name: str) -> list[str]:
        """Every parent (several for a merge child), largest weight first."""
        edges = [e for e in self.edges if e.child == name]
        return [e.parent for e in sorted(edges, key=lambda e: -(e.weight if e.weight is not None else 1.0))]

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
                    "edges": [{k: v for k, v in asdict(e).items() if k != "evidence"} for e in f.edges],
                }
                for f in self.families
            ],
            "kurtosis": self.kurtosis,
        }


def _mean_offdiag(d: np.ndarray) -> float:
    n = d.shape[0]
    return float(d[~np.eye(n, dtype=bool)].mean()) if n > 1 else 0.0


def _forbidden_edges(parents: np.ndarray, children: np.ndarray, blocks: np.ndarray,
                     merges: Mapping[int, Any], position: Mapping[int, int]) -> np.ndarray:
    """Which edges ``parents -> children`` (tree node indices, arrays that broadcast: the
    candidate edges of a large family, or a column and a row for the dense matrix) the
    tree may not use: a parent never has fewer blocks; a merge hangs only under its main
    parent and is never above one of its parents, nor above the base its task vectors
    come from.  (A merge's parents and base have its block count.)"""
    forbidden = blocks[parents] < blocks[children]
    for m, fit in merges.items():
        km = position[m]
        above = [position[p] for p in fit.parents] + ([position[fit.base]] if fit.base is not None else [])
        forbidden = forbidden | ((children == km) & (parents != position[fit.parents[0]]))
        forbidden = forbidden | ((parents == km) & np.isin(children, above))
    return forbidden


def _merges_not_root(merges: dict[int, Any], position: dict[int, int], n: int) -> np.ndarray:
    """Which of ``n`` tree nodes may not be the root: the merges (their parents are in the
    family), unless the family is merges alone (then the costs decide)."""
    not_root = np.zeros(n, dtype=bool)
    not_root[[position[m] for m in merges]] = True
    return not_root & (not bool(not_root.all()))


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
    calibrator : EdgeCalibrator, optional
        Turns edge evidence into a probability (default: the calibration shipped with
        the package).
    merges : MergeDetector, optional
        Finds models merged from several parents (default settings by default).
    search : FamilySearch or str, default "sparse"
        How families are found: nearest-neighbour candidates (``sparse``) or every
        pairwise distance (``exact``); the same families.
    neighbours : int, default 16
        Candidate neighbours per model, for families and for the trees of large families.
    margin : float, default 2.0
        Candidate pairs farther apart than ``margin`` times the search radius by
        placement vector are never compared exactly.
    tree_limit : int or None, default 1000
        Families of more models get their tree on candidate edges
        (:meth:`build_large_family`: ``O(n * neighbours)`` distances, ``O(E log V)``
        arborescence) instead of the dense matrix (``O(n^2)`` distances, ``O(n^3)``
        arborescence); None: always dense.

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
        calibrator: EdgeCalibrator | None = None,
        merges: MergeDetector | None = None,
        search: FamilySearch | str = FamilySearch.SPARSE,
        neighbours: int = DEFAULT_NEIGHBOURS,
        margin: float = 2.0,
        tree_limit: int | None = DEFAULT_TREE_LIMIT,
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
        # Turns edge evidence into a probability (default: the calibration shipped with the package).
        self.calibrator = calibrator if calibrator is not None else EdgeCalibrator.load()
        self.merges = merges if merges is not None else MergeDetector()
        # Families: ``sparse`` (nearest-neighbour candidates, heritage.lineage.candidates) or
        # ``exact`` (every pairwise distance; k-means always uses it).
        self.search = FamilySearch(search)
        if neighbours < 1:
            raise ValueError("neighbours must be at least 1")
        self.neighbours = int(neighbours)
        if not margin >= 1:
            raise ValueError("margin must be at least 1")
        self.margin = float(margin)
        if tree_limit is not None and tree_limit < 2:
            raise ValueError("tree_limit must be at least 2 (or None)")
        self.tree_limit = None if tree_limit is None else int(tree_limit)

    # -- families -------------------------------------------------------------
    def _roles(self, metric: DistanceMetric) -> frozenset[LayerRole]:
        return self.roles or DEFAULT_ROLES[metric.value]

    def aligned_distances(self, members: Sequence[Fingerprint], metric: DistanceMetric = DistanceMetric.L2,
                          ) -> tuple[np.ndarray, AlignmentTable]:
        """Distances over aligned matrices and the alignments (``table(i, j)``: i's matrices
        first, computed when asked for). Pairs whose smaller side aligns less than
        :data:`~heritage.lineage.alignment.MIN_ALIGNED_SHARE` of its parameters get a
        distance beyond any family threshold. ``l2`` is
        :func:`~heritage.lineage.distances.aligned_l2_matrix`, the distance families are
        searched on."""
        roles = self._roles(metric)
        table = AlignmentTable(members, roles)
        if metric is DistanceMetric.L2:
            return aligned_l2_matrix(members, roles), table
        n = len(members)
        d = np.zeros((n, n), dtype=np.float64)
        for i in range(n):
            for j in range(i + 1, n):
                d[i, j] = d[j, i] = self._pair_metric(members[i], members[j], metric, roles, table(i, j))
        return d, table

    def cluster(self, fingerprints: Sequence[Fingerprint]) -> list[list[Fingerprint]]:
        """Families of full models (adapters excluded), each a list of fingerprints."""
        fingerprints = list(fingerprints)
        return [[fingerprints[i] for i in family] for family in self.cluster_source(InMemorySource(fingerprints))]

    def cluster_source(self, source: FingerprintSource, mapper: Mapper | None = None) -> list[np.ndarray]:
        """Families of the full models of ``source``, as arrays of indices into its entries.

        Per backbone key (in order of first appearance), labels in order of first
        appearance: the same families, in the same order, by either search. ``mapper``
        runs the candidate searches (placement vectors only) elsewhere.
        """
        groups: dict[str, list[int]] = defaultdict(list)
        for i, entry in enumerate(source.entries):
            if not entry.is_adapter:
                groups[entry.backbone_key].append(i)
        indices = [np.asarray(g, dtype=np.int64) for g in groups.values()]
        strata = [np.array([source.entries[i].blocks for i in g], dtype=np.int64) for g in indices]
        exact = self.search is FamilySearch.EXACT or self.clustering is ClusteringMethod.KMEANS
        searcher = None if exact else SparseFamilies(self.clustering, self.threshold, neighbours=self.neighbours,
                                                     margin=self.margin)
        nearest: Iterator[Any] | None = None
        if searcher is not None and mapper is not None:
            nearest = iter(mapper(_nearest, ((searcher, source.placement_vectors(g), s)
                                             for g, s in zip(indices, strata))))
        families: list[np.ndarray] = []
        for group, group_strata in zip(indices, strata):
            if searcher is None:
                labels = self._cluster_with_fallback(aligned_l2_matrix(source.fingerprints(group), self._l2_roles))
            else:
                labels = self._sparse_labels(searcher, source, group, group_strata,
                                             None if nearest is None else next(nearest))
            families.extend(group[members] for members in group_pairs(labels))
        return families

    @property
    def _l2_roles(self) -> frozenset[LayerRole]:
        return self._roles(DistanceMetric.L2)

    def _pair_l2(self, source: FingerprintSource, group: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``pairs(i, j)``: the aligned ``l2`` of the pairs ``(group[i[p]], group[j[p]])``,
        reading the fingerprints of those models only."""
        def pairs(i: np.ndarray, j: np.ndarray) -> np.ndarray:
            unique = np.unique(np.concatenate([i, j]))
            fps = source.fingerprints(group[unique])
            pi, pj = np.searchsorted(unique, i), np.searchsorted(unique, j)
            return aligned_l2([fps[p] for p in pi], [fps[p] for p in pj], self._l2_roles)

        return pairs

    def _sparse_labels(self, searcher: SparseFamilies, source: FingerprintSource, group: np.ndarray,
                       strata: np.ndarray, nearest: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
        pairs = self._pair_l2(source, group)

        def dense(idx: np.ndarray) -> np.ndarray:
            return aligned_l2_matrix(source.fingerprints(group[idx]), self._l2_roles)

        labels, report = searcher.fit(source.placement_vectors(group), pairs, dense, nearest, strata)
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
    def family_distances(self, members: Sequence[Fingerprint],
                         l2: np.ndarray | None = None) -> tuple[np.ndarray, DistanceMetric]:
        """The tree distance of a family (``auto``: rank for merged-LoRA families, else l2)."""
        if l2 is None:
            l2, _ = self.aligned_distances(members)
        metric = choose_metric(members, l2) if self.metric is DistanceMetric.AUTO else self.metric
        if metric is DistanceMetric.L2:
            return l2, metric
        d, _ = self.aligned_distances(members, metric)
        if metric is DistanceMetric.RANK:
            d = d + _RANK_TIE_BREAK * l2 / (float(l2.max()) or 1.0)
        return d, metric

    def _decide(self, d: np.ndarray, ku: np.ndarray, ambiguous: list[int]) -> RegimeDecision:
        if len(ambiguous) >= 2:
            return decide_direction(d[np.ix_(ambiguous, ambiguous)], ku[ambiguous])
        return RegimeDecision(Regime.FINE_TUNING, Regime.FINE_TUNING)

    def build_family(self, members: Sequence[Fingerprint], index: int = 0) -> RecoveredFamily:
        """Genealogy of one family from its members' fingerprints (module docstring, 3-4);
        a family of more than ``tree_limit`` models is built on candidate edges
        (:meth:`build_large_family`)."""
        if self.tree_limit is not None and len(members) > self.tree_limit:
            return self.build_large_family(InMemorySource(members), np.arange(len(members)), index)
        return self._build_dense_family(members, index)

    def _build_dense_family(self, members: Sequence[Fingerprint], index: int) -> RecoveredFamily:
        """:meth:`build_family` on the family's dense distance matrix."""
        names = [fp.name for fp in members]
        l2, alignments = self.aligned_distances(members)
        reps, attachments = near_duplicates(members, l2, alignments)
        merges = self.merges.detect(members, l2, reps) if len(reps) >= 3 else {}
        sub = [members[i] for i in reps]
        d, metric = self.family_distances(sub, l2[np.ix_(reps, reps)])
        ku, blocks, carries, bare = self._member_scalars(sub)
        position = {i: k for k, i in enumerate(reps)}
        ambiguous = self._ambiguous(reps, merges, blocks)
        decision = self._decide(d, ku, ambiguous)
        regime, evidence = self._regime(decision)
        every = np.arange(len(reps))
        forbidden = _forbidden_edges(every[:, None], every[None, :], blocks, merges, position)
        heads_away = against_heads(carries, bare)
        tree = build_tree(d, ku, self.tree_method, self.lam, regime, forbidden=forbidden,
                          against_structure=heads_away, not_root=_merges_not_root(merges, position, len(reps)))
        kurtosis_says = against(decision.kurtosis_regime, ku, d)
        centre_says = against(Regime.CENTRALITY, ku, d)
        centre = d.sum(axis=1) / max(len(reps) - 1, 1)
        mean_d = _mean_offdiag(d)
        edges = self._family_edges(
            members, reps, tree, l2=l2, alignments=alignments, attachments=attachments, merges=merges,
            ku=ku, blocks=blocks, decision=decision, regime=regime, centre=centre, mean_distance=mean_d,
            gap=lambda child, parent: self._gap(d, child, parent, forbidden),
            signals=lambda parent, child: bool(kurtosis_says[parent, child] == centre_says[parent, child]),
            heads=lambda child, parent: bool(heads_away[child, parent]))
        return self._recovered(index, names, members[0].backbone_key, metric, regime, evidence, mean_d, edges)

    def build_large_family(self, source: FingerprintSource, indices: Sequence[int], index: int = 0,
                           ) -> RecoveredFamily:
        """Genealogy of a large family on its candidate edges, reading its fingerprints
        from ``source`` a batch at a time (``indices``: the members' positions in it).

        The steps of :meth:`build_family` on
        :meth:`~heritage.lineage.candidates.SparseFamilies.candidate_graph`'s edges (each
        model's nearest by placement vector, every pair across block counts, links until
        connected; exact aligned ``l2`` on those edges, as the family search computes it):
        near-duplicates and merges among candidate neighbours, the direction decided on
        the candidate graph's spanning tree, the MoTHer tree by
        :func:`~heritage.lineage.trees.build_tree_sparse`.  Centrality and the mean
        distance (the direction penalty's scale) are estimated from every model's distances
        to :data:`CENTRE_SAMPLE` members.  Only the ``mother`` tree method is built this
        way; the others fall back to :meth:`build_family`'s dense path.
        """
        group = np.asarray(indices, dtype=np.int64)
        if self.tree_method is not TreeBuildingMethod.MOTHER:
            log.warning("the %s tree of a family of %d models is built on its dense matrix", self.tree_method.value,
                        group.size)
            return self._build_dense_family(source.fingerprints(group), index)
        members = _SourceMembers(source, group)
        names = [source.entries[int(i)].name for i in group]
        read_pairs = self._pair_l2(source, group)

        def pair_l2(i: np.ndarray, j: np.ndarray) -> np.ndarray:
            return _in_batches(read_pairs, i, j)

        strata = np.array([source.entries[int(i)].blocks for i in group], dtype=np.int64)
        searcher = SparseFamilies(ClusteringMethod.THRESHOLD, self.threshold, neighbours=self.neighbours,
                                  margin=self.margin)
        l2 = CandidateDistances(group.size, *searcher.candidate_graph(source.placement_vectors(group), pair_l2, strata))
        alignments = AlignmentTable(members, self._l2_roles)
        reps, attachments = near_duplicates(members, l2, alignments)
        merges = self.merges.detect(members, l2, reps) if len(reps) >= 3 else {}
        sub = _SourceMembers(source, group[reps])
        rep_l2 = l2.subset(reps)
        metric = choose_metric(sub, rep_l2) if self.metric is DistanceMetric.AUTO else self.metric
        tree_pairs = self._tree_pairs(sub, alignments, reps, pair_l2, metric, rep_l2)
        ri, rj, rd = rep_l2.pairs()
        if metric is not DistanceMetric.L2:
            rd = tree_pairs(ri, rj)
        rep_l2_tree = CandidateDistances(len(reps), ri, rj, rd)  # the tree distance on candidate pairs
        ku, blocks, carries, bare = self._member_scalars(sub)
        centre, mean_d = self._estimated_centre(len(reps), tree_pairs)
        ambiguous = self._ambiguous(reps, merges, blocks)
        if len(ambiguous) >= 2:
            among = rep_l2_tree.subset(ambiguous)
            decision = decide_direction_sparse(len(ambiguous), *among.pairs(), ku[ambiguous], centre[ambiguous])
        else:
            decision = RegimeDecision(Regime.FINE_TUNING, Regime.FINE_TUNING)
        regime, evidence = self._regime(decision)
        parents, children, distances = np.r_[ri, rj], np.r_[rj, ri], np.r_[rd, rd]
        position = {i: k for k, i in enumerate(reps)}
        forbidden = _forbidden_edges(parents, children, blocks, merges, position)
        tree = build_tree_sparse(len(reps), parents, children, distances, ku, centre, mean_d, self.lam, regime,
                                 forbidden=forbidden, against_structure=carries[parents] & bare[children],
                                 not_root=_merges_not_root(merges, position, len(reps)))
        allowed_parents, allowed_children = parents[~forbidden], children[~forbidden]
        allowed_distances = distances[~forbidden]
        by_child = np.argsort(allowed_children, kind="stable")
        starts = np.searchsorted(allowed_children[by_child], np.arange(len(reps) + 1))

        def gap(child: int, parent: int) -> float:
            # Distance to the next allowed candidate parent over the distance to the chosen one.
            incoming = by_child[starts[child]:starts[child + 1]]
            values = allowed_distances[incoming[allowed_parents[incoming] != parent]]
            if not values.size:
                return float("inf")
            chosen = float(rep_l2_tree[child, parent])
            return float(values.min()) / chosen if chosen > 0 else float("inf")

        def signals(parent: int, child: int) -> bool:
            p, c = np.array([parent]), np.array([child])
            return bool(against_edges(decision.kurtosis_regime, ku, centre, p, c)[0]
                        == against_edges(Regime.CENTRALITY, ku, centre, p, c)[0])

        edges = self._family_edges(
            members, reps, tree, l2=l2, alignments=alignments, attachments=attachments, merges=merges,
            ku=ku, blocks=blocks, decision=decision, regime=regime, centre=centre, mean_distance=mean_d,
            gap=gap, signals=signals, heads=lambda child, parent: bool(carries[child] and bare[parent]))
        log.info("tree of a family of %d models on %d candidate edges", group.size, l2.edges)
        return self._recovered(index, names, source.entries[int(group[0])].backbone_key, metric, regime,
                               evidence, mean_d, edges)

    def _tree_pairs(self, sub: Sequence[Fingerprint], alignments: AlignmentTable, reps: list[int],
                    pair_l2: Callable[[np.ndarray, np.ndarray], np.ndarray], metric: DistanceMetric,
                    rep_l2: CandidateDistances) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
        """``pairs(a, b)``: the tree distance between representatives ``a[p]`` and ``b[p]``
        (the values of :meth:`family_distances`, rank's tie-break scaled by the largest
        candidate ``l2``)."""
        index = np.asarray(reps, dtype=np.int64)
        if metric is DistanceMetric.L2:
            return lambda a, b: pair_l2(index[a], index[b])
        roles = self._roles(metric)
        scale = float(rep_l2.pairs()[2].max(initial=0.0)) or 1.0

        def one_batch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            out = np.array([self._pair_metric(sub[x], sub[y], metric, roles, alignments(index[x], index[y]))
                            for x, y in zip(a.tolist(), b.tolist())], dtype=np.float64)
            if metric is DistanceMetric.RANK:
                out = out + _RANK_TIE_BREAK * pair_l2(index[a], index[b]) / scale
            return out

        return lambda a, b: _in_batches(one_batch, a, b)

    @staticmethod
    def _pair_metric(a: Fingerprint, b: Fingerprint, metric: DistanceMetric, roles: frozenset[LayerRole],
                     found: Any) -> float:
        return pair_distance(a, b, metric, roles, found) if found.pairs else UNALIGNED_DISTANCE

    @staticmethod
    def _estimated_centre(n: int, pairs: Callable[[np.ndarray, np.ndarray], np.ndarray],
                          ) -> tuple[np.ndarray, float]:
        """Each model's mean distance to :data:`CENTRE_SAMPLE` evenly spaced members (its
        centrality, estimated) and the mean of those distances (the family's mean distance)."""
        sample = np.unique(np.linspace(0, n - 1, min(n, CENTRE_SAMPLE)).astype(np.int64))
        a = np.repeat(np.arange(n, dtype=np.int64), sample.size)
        b = np.tile(sample, n)
        keep = a != b
        values = np.zeros(a.size)
        values[keep] = pairs(a[keep], b[keep])
        counts = np.bincount(a[keep], minlength=n)
        centre = np.bincount(a, weights=values, minlength=n) / np.maximum(counts, 1)
        return centre, float(values[keep].mean()) if keep.any() else 0.0

    @staticmethod
    def _member_scalars(sub: Sequence[Fingerprint]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per model, in one pass: mean kurtosis (0 where unknown), block count, whether it
        carries a task head, whether it has no head at all."""
        ku, blocks, carries, bare = [], [], [], []
        for fp in sub:
            ku.append(fp.mean_kurtosis)
            blocks.append(fp.block_count)
            carries.append(carries_task_head(fp))
            bare.append(is_headless(fp))
        kurtosis = np.array(ku, dtype=np.float64)
        return (np.where(np.isnan(kurtosis), 0.0, kurtosis), np.array(blocks), np.array(carries, dtype=bool),
                np.array(bare, dtype=bool))

    @staticmethod
    def _ambiguous(reps: Sequence[int], merges: Mapping[int, MergeFit], blocks: np.ndarray) -> list[int]:
        """Representatives whose edges are genuinely ambiguous, on which the direction
        signal is decided: merges and students have structural parents; conversions are
        set aside already."""
        ambiguous = [k for k, i in enumerate(reps) if i not in merges and blocks[k] == blocks.max()]
        if len(ambiguous) < 2:
            ambiguous = [k for k, i in enumerate(reps) if i not in merges]
        return ambiguous

    def _regime(self, decision: RegimeDecision) -> tuple[Regime, str]:
        regime = self.regime or decision.regime
        evidence = decision.evidence if self.regime is None else f"{regime.value}: set in configuration"
        if self.tree_method is TreeBuildingMethod.KURTOSIS_ONLY and regime is Regime.CENTRALITY:
            regime = decision.kurtosis_regime
        return regime, evidence

    def _recovered(self, index: int, names: list[str], structure_hash: str, metric: DistanceMetric,
                   regime: Regime, evidence: str, mean_distance: float,
                   edges: list[RecoveredEdge]) -> RecoveredFamily:
        """The family as returned, dense or on candidate edges alike."""
        return RecoveredFamily(index=index, members=names, structure_hash=structure_hash, metric=metric.value,
                               regime=regime.value, regime_evidence=evidence, mean_distance=mean_distance,
                               threshold=self.threshold, edges=edges)

    def _family_edges(self, members: Sequence[Fingerprint], reps: list[int], tree: Sequence[TreeEdge], *,
                      l2: Any, alignments: AlignmentTable, attachments: Sequence[Attachment],
                      merges: Mapping[int, MergeFit], ku: np.ndarray, blocks: np.ndarray,
                      decision: RegimeDecision, regime: Regime, centre: np.ndarray, mean_distance: float,
                      gap: Callable[[int, int], float], signals: Callable[[int, int], bool],
                      heads: Callable[[int, int], bool]) -> list[RecoveredEdge]:
        """Typed, calibrated edges of a family from its tree over the representatives
        (``l2``: a matrix or :class:`CandidateDistances`; ``gap(child, parent)``,
        ``signals(parent, child)``, ``heads(child, parent)``: the per-edge evidence)."""
        agreement = decision.agreement.get(regime.value, 1.0)
        edges: list[RecoveredEdge] = []
        children_of: dict[int, list[int]] = defaultdict(list)
        for e in tree:
            children_of[e.parent].append(e.child)
        has_parent = {e.child for e in tree}
        position = {i: k for k, i in enumerate(reps)}
        mean_d = mean_distance or 1.0
        family = tree_shape(len(reps), tree, centre, ku, decision.kurtosis_regime)
        for e in tree:
            child, parent = reps[e.child], reps[e.parent]
            shape = dict(parent_children=len(children_of[e.parent]), leaf=not children_of.get(e.child),
                         root_edge=e.parent not in has_parent,
                         centre_step=float(centre[e.child] - centre[e.parent]) / mean_d,
                         kurtosis_step=float(family.kurtosis_sign * (ku[e.parent] - ku[e.child]))
                         / family.kurtosis_spread,
                         root_children=family.root_children, depth=family.depth[e.child],
                         subtree=family.subtree[e.child] / len(reps), root_central=family.root_central,
                         root_kurtosis=family.root_kurtosis, heads=heads(e.child, e.parent))
            fit = merges.get(child)
            if fit is not None:
                edges += self._merge_edges(members, fit, l2, alignments, tree_children=children_of,
                                           position=position, reps=reps, size=len(reps))
                continue
            relation = Relation.DISTILLATION if blocks[e.child] < blocks[e.parent] else (
                Relation.QUANTIZATION if members[child].quantization else Relation.FINETUNE)
            edges.append(self._edge(members, child, parent, e.distance, e.confidence, relation,
                                    EdgeEvidence(e.confidence, gap(e.child, e.parent), signals(e.parent, e.child),
                                                 agreement, len(reps), relation.value, **shape),
                                    alignments))
        # A copy attached to another copy: the two are equal, so which one is the parent
        # (and whether the original is) is not decided by the weights.
        copies = {a.child for a in attachments if a.relation in (Relation.CONVERSION, Relation.HEAD_ONLY)}
        for a in attachments:
            margin, a_gap = self._attachment_margin(a, l2, members)
            edges.append(self._edge(members, a.child, a.parent, float(l2[a.child, a.parent]), margin, a.relation,
                                    EdgeEvidence(margin, a_gap, True, 1.0, len(reps), a.relation.value,
                                                 parent_copy=a.parent in copies), alignments))
        return edges

    @staticmethod
    def _gap(d: np.ndarray, child: int, parent: int, forbidden: np.ndarray) -> float:
        """Distance to the next candidate parent over the distance to the chosen one."""
        others = ~forbidden[:, child]
        others[[child, parent]] = False
        if not others.any():
            return float("inf")
        chosen = float(d[parent, child])
        nearest = float(d[others, child].min())
        return nearest / chosen if chosen > 0 else float("inf")

    @staticmethod
    def _attachment_margin(a: Attachment, l2: np.ndarray, members: Sequence[Fingerprint]) -> tuple[float, float]:
        """(margin, gap) of a near-duplicate's attachment: exact relations are certain up
        to which of several equal models is the parent; a quantisation's parent is the
        nearest float model by a margin."""
        if a.relation is not Relation.QUANTIZATION:
            return 1.0, float("inf")
        chosen = float(l2[a.child, a.parent])
        row = np.asarray(l2[a.child], dtype=np.float64)  # a large family's: inf off its candidate edges
        others = [float(row[q]) for q in np.flatnonzero(np.isfinite(row)).tolist()
                  if q not in (a.child, a.parent) and not members[q].quantization]
        if not others:
            return 1.0, float("inf")
        nearest = min(others)
        return (max(0.0, 1.0 - chosen / nearest) if nearest > 0 else 0.0,
                nearest / chosen if chosen > 0 else float("inf"))

    def _edge(self, members: Sequence[Fingerprint], child: int, parent: int, distance: float, margin: float,
              relation: Relation, evidence: EdgeEvidence, alignments: AlignmentTable,
              weight: float | None = None) -> RecoveredEdge:
        return RecoveredEdge(parent=members[parent].name, child=members[child].name,
                             confidence=self.calibrator.probability(evidence), distance=distance,
                             method=self.tree_method.value, relation=relation.value, weight=weight,
                             aligned=alignments[(child, parent)].share_a, margin=margin, evidence=evidence)

    def _merge_edges(self, members: Sequence[Fingerprint], fit: MergeFit, l2: np.ndarray,
                     alignments: AlignmentTable, *, tree_children: dict[int, list[int]],
                     position: dict[int, int], reps: list[int], size: int) -> list[RecoveredEdge]:
        """One ``merge`` edge per fitted parent that is not the merge's own descendant."""
        below: set[int] = set()
        stack = [position[fit.child]]
        while stack:
            for c in tree_children.get(stack.pop(), []):
                if c not in below:
                    below.add(c)
                    stack.append(c)
        keep = [(p, w) for p, w in zip(fit.parents, fit.weights) if position[p] not in below]
        total = sum(w for _, w in keep) or 1.0
        margin = self.merges.margin(fit)
        relation = Relation.MERGE if len(keep) >= 2 else Relation.FINETUNE
        return [
            self._edge(members, fit.child, p, float(l2[fit.child, p]), margin, relation,
                       EdgeEvidence(margin, float("inf"), True, 1.0, size, relation.value), alignments,
                       weight=w / total if relation is Relation.MERGE else None)
            for p, w in keep
        ]

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
        # The confidence is already a probability: 1 for a declared base, else the chance
        # of having picked the right one among the compatible candidates.
        edge = RecoveredEdge(parent=parent, child=adapter.name, confidence=confidence,
                             distance=float(np.mean(rel)), method=how, relation=Relation.ADAPTER.value,
                             margin=confidence)
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
        built_at: dict[int, RecoveredFamily] = {}
        pending: deque[list[int]] = deque()

        def tasks() -> Iterator[tuple[GenealogyRecovery, list[list[Fingerprint]]]]:
            for positions, batch in self._tree_batches(source, self.cluster_source(source, mapper), kurtosis):
                if isinstance(batch, np.ndarray):  # a large family: built here, reading the source as it goes
                    built_at[positions[0]] = self.build_large_family(source, batch)
                    continue
                pending.append(positions)
                yield self, batch

        for built in (mapper or map)(_build_families, tasks()):
            built_at.update(zip(pending.popleft(), built))
        families = [built_at[p] for p in sorted(built_at)]
        for k, family in enumerate(families):
            family.index = k
        # Bases are full models only: a lone adapter's own family (appended below) is never
        # a candidate for another adapter, whatever its shapes (as in the catalogue's placement).
        full_families = list(families)
        declared_bases = declared_bases or {}
        by_name = _LazyFingerprints(source, index_of)
        for i, entry in enumerate(source.entries):
            if not entry.is_adapter:
                continue
            fp = source.fingerprints([i])[0]
            fit_by_layout: dict[tuple[str, int], bool] = {}

            def fits(family: RecoveredFamily, fp: Fingerprint = fp, cache: dict[tuple[str, int], bool] = fit_by_layout,
                     ) -> bool:
                # Models of one backbone key and block count have the same matrices: check
                # one member per such layout, not one per family.
                first = source.entries[index_of[family.members[0]]]
                key = (first.backbone_key, first.blocks)
                if key not in cache:
                    cache[key] = self._fits(fp, by_name[family.members[0]])
                return cache[key]

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

    def _tree_batches(self, source: FingerprintSource, families: list[np.ndarray], kurtosis: dict[int, float],
                      ) -> Iterator[tuple[list[int], list[list[Fingerprint]] | np.ndarray]]:
        """``(positions, batch)``: families' fingerprints, a few hundred models at a time
        (read lazily as consumed), or a family above ``tree_limit`` alone as its indices
        (its tree reads the source itself); ``positions``: the families' places in
        ``families``."""
        batch: list[list[Fingerprint]] = []
        positions: list[int] = []
        size = 0
        for position, members in enumerate(families):
            large = self.tree_limit is not None and len(members) > self.tree_limit
            # A large family is read a chunk at a time (its tree reads the source again).
            fps = _SourceMembers(source, members) if large else source.fingerprints(members)
            for i, fp in zip(members, fps):
                if not math.isnan(fp.kurtosis):
                    kurtosis[int(i)] = fp.kurtosis
            if large:
                yield [position], members
                continue
            batch.append(fps)
            positions.append(position)
            size += len(fps)
            if size >= _TREE_BATCH_MODELS:
                yield positions, batch
                batch, positions, size = [], [], 0
        if batch:
            yield positions, batch


def _in_batches(pairs: Callable[[np.ndarray, np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray,
                size: int | None = None) -> np.ndarray:
    """``pairs(a, b)`` ``size`` pairs at a time (default: half of :data:`_READ_CHUNK`, so
    that a batch reads the fingerprints of at most that many models)."""
    size = size or max(1, _READ_CHUNK // 2)
    out = np.empty(a.size, dtype=np.float64)
    for start in range(0, a.size, size):
        out[start:start + size] = pairs(a[start:start + size], b[start:start + size])
    return out


def _nearest(task: tuple[SparseFamilies, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """One group's candidate search (a module-level function, so a Dask worker can run it)."""
    searcher, vectors, strata = task
    return searcher.nearest(vectors, strata)


def _build_families(task: tuple[GenealogyRecovery, list[list[Fingerprint]]]) -> list[RecoveredFamily]:
    """Trees of a batch of families (a module-level function, so a Dask worker can run it)."""
    recovery, batch = task
    return [recovery.build_family(members) for members in batch]


class _SourceMembers(Sequence[Fingerprint]):
    """A family's fingerprints read from the source on demand (a pass over them reads
    :data:`_READ_CHUNK` at a time), so a large family is never all in memory at once."""

    def __init__(self, source: FingerprintSource, indices: np.ndarray) -> None:
        self._source = source
        self._indices = np.asarray(indices, dtype=np.int64)

    def __len__(self) -> int:
        return int(self._indices.size)

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return self._source.fingerprints(self._indices[k])
        return self._source.fingerprints([int(self._indices[k])])[0]

    def __iter__(self) -> Iterator[Fingerprint]:
        for start in range(0, self._indices.size, _READ_CHUNK):
            yield from self._source.fingerprints(self._indices[start:start + _READ_CHUNK])


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
