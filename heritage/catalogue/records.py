"""Result shapes of the catalogue service, and converters from Cypher rows.

Why plain dataclasses: the API builds its Pydantic models from them and the CLI and
Python users read their attributes, so the service stays free of web types.  Import
results, genealogies, lineages and statistics are dataclasses; a single model or family
is a ``TypedDict`` (:class:`ModelRecord`, :class:`FamilyRecord`: typed keys, snake_case;
the graph keeps camelCase property names, see ``cypher/README.md``).  Neo4j temporal
values are turned into ``datetime`` objects, NaN floats into ``None``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from heritage.lineage.trees import TreeStatistics, TreeValidation

__all__ = [
    "ImportStatus",
    "ImportResult",
    "ImportSummary",
    "ModelRecord",
    "FamilyRecord",
    "ParentRecord",
    "GenealogyNode",
    "GenealogyEdge",
    "FamilyGenealogy",
    "LineageRoot",
    "Ancestor",
    "Descendant",
    "Lineage",
    "CatalogueStatistics",
    "ClusteringStatistics",
    "model_record",
    "family_record",
    "native",
]

ImportStatus = Literal["created", "duplicate", "failed"]


@dataclass
class ImportResult:
    """Outcome of importing one model.

    ``status``: ``created`` (stored now), ``duplicate`` (the same weights were already
    stored; ``model_id`` is the existing model) or ``failed`` (``error`` says why; nothing
    was written).  ``family_id`` is the family the model belongs to after the import.
    """

    model_id: str | None
    name: str
    status: ImportStatus
    error: str | None = None
    family_id: str | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ImportSummary:
    """Outcome of a batch import: one result per entry, in input order.

    ``timings`` splits the wall time into ``hash`` (reading files for SHA-256),
    ``fingerprint`` (profiles and fingerprints), ``neo4j`` (every database round trip),
    ``placement`` (exact distances to candidate relatives) and ``trees`` (tree recovery);
    ``families`` lists the families created or rebuilt.
    """

    results: list[ImportResult] = field(default_factory=list)
    families: list[str] = field(default_factory=list)
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    def count(self, status: ImportStatus) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def created(self) -> int:
        return self.count("created")

    @property
    def duplicates(self) -> int:
        return self.count("duplicate")

    @property
    def failed(self) -> int:
        return self.count("failed")

    def to_dict(self) -> dict[str, Any]:
        return {
            "results": [r.to_dict() for r in self.results],
            "families": list(self.families),
            "seconds": self.seconds,
            "timings": dict(self.timings),
            "created": self.created,
            "duplicates": self.duplicates,
            "failed": self.failed,
        }


class ModelRecord(TypedDict, total=False):
    """A stored model as the reads return it (every key present; ``None`` when unknown).

    Profile facts (``params``, ``layers``, ``tensors``, ``structure_hash``, ``dtype``) are
    read from the weights at import, never estimated.  ``family_id``, ``parent_id``,
    ``parent_name`` and ``confidence`` (of the DERIVED_FROM edge to the parent) come from
    the stored genealogy; ``declared_base`` is what the model card or adapter config
    names (the first of ``declared_bases``, several for a merge), ``declared_base_id`` the
    catalogue model it resolved to (``None`` if external). ``quantization`` is the GGML
    type of a quantised (GGUF) model, ``revision`` the hub cache commit it was read from.
    """

    id: str
    name: str
    description: str | None
    sha256: str
    format: str
    params: int
    tensors: int
    layers: int
    structure_hash: str
    dtype: str
    is_adapter: bool
    adapter_rank: int | None
    kurtosis: float | None
    status: str
    error: str | None
    created_at: datetime | None
    processed_at: datetime | None
    path: str | None
    uploaded: bool
    declared_base: str | None
    declared_relation: str | None
    declared_base_id: str | None
    declared_bases: list[str] | None
    quantization: str | None
    revision: str | None
    family_id: str | None
    parent_id: str | None
    parent_name: str | None
    confidence: float | None
    distance: float | None
    method: str | None
    relation: str | None
    weight: float | None
    parents: list["ParentRecord"]


class ParentRecord(TypedDict, total=False):
    """One recovered parent of a model (the DERIVED_FROM edge to it)."""

    id: str
    name: str
    relation: str
    weight: float | None
    confidence: float | None
    distance: float | None
    method: str | None
    aligned: float | None


class FamilyRecord(TypedDict, total=False):
    """A family: ``member_count`` is counted from real membership at read time;
    ``edge_count`` and ``mean_confidence`` (of its DERIVED_FROM edges) where the read
    counts them (family list and get), else ``None``."""

    id: str
    member_count: int
    mean_distance: float | None
    structure_hash: str | None
    threshold: float | None
    metric: str | None
    regime: str | None
    regime_evidence: str | None
    tree_method: str | None
    lambda_: float | None
    version: int
    created_at: datetime | None
    updated_at: datetime | None
    roots: list[dict[str, str]]
    edge_count: int | None
    mean_confidence: float | None


@dataclass(frozen=True)
class GenealogyNode:
    """One model in a stored family genealogy: ``parent_id`` is its main parent (the one of
    largest weight; a merged model has one edge per parent, all in ``parent_ids``),
    ``relation`` and ``confidence`` those of the edge to it."""

    id: str
    name: str
    parent_id: str | None
    parent_ids: list[str]
    relation: str | None
    confidence: float | None
    generation: int
    is_root: bool
    is_leaf: bool
    is_adapter: bool
    status: str | None


@dataclass(frozen=True)
class GenealogyEdge:
    """A stored DERIVED_FROM edge, child -> parent, with how it was decided: ``relation``
    (``finetune``, ``adapter``, ``merge``, ...), a merge parent's ``weight``, and the share
    of the parameters ``aligned`` between them."""

    parent: str
    child: str
    parent_name: str | None
    child_name: str | None
    confidence: float | None
    distance: float | None
    method: str | None
    relation: str
    weight: float | None
    aligned: float | None
    lambda_: float | None
    run_id: str | None
    created_at: datetime | None


@dataclass(frozen=True)
class FamilyGenealogy:
    """A family's stored genealogy (a tree apart from merge children, which have one edge
    per parent): the family, its models (with their parents), nodes, edges, roots (ids),
    its statistics and validation, and the mean edge confidence."""

    family: FamilyRecord
    models: list[ModelRecord]
    nodes: list[GenealogyNode]
    edges: list[GenealogyEdge]
    roots: list[str]
    statistics: TreeStatistics
    validation: TreeValidation
    mean_confidence: float | None

    def node(self, name: str) -> GenealogyNode:
        """The node of the model called ``name`` (``KeyError`` when it is not a member)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def parent_of(self, name: str) -> str | None:
        """The name of the main stored parent of the model called ``name`` (``None`` for a root)."""
        names = {n.id: n.name for n in self.nodes}
        parent = self.node(name).parent_id
        return names.get(parent) if parent else None


@dataclass(frozen=True)
class LineageRoot:
    """The root of a model's tree, ``generations`` above the model."""

    id: str
    name: str
    generations: int


@dataclass(frozen=True)
class Relative:
    """A model in another one's lineage, ``generation`` steps away, with the edge that
    links it (``relation``, a merge's ``weight``, ``confidence``, ``distance``, ``method``)."""

    id: str
    name: str
    status: str | None
    format: str | None
    generation: int | None
    confidence: float | None
    distance: float | None
    method: str | None
    relation: str
    weight: float | None


@dataclass(frozen=True)
class Ancestor(Relative):
    """A model above another one; the edge is the one from ``child_id``."""

    child_id: str | None


@dataclass(frozen=True)
class Descendant(Relative):
    """A model below another one (the edge is the one to its parent), with its own descendants."""

    children: list[Descendant] = field(default_factory=list)


@dataclass(frozen=True)
class Lineage:
    """Ancestors (nearest first) and nested descendants of ``model``, up to ``depth``.
    With merges the genealogy is a DAG: each relative is listed once, at its nearest
    generation."""

    model: ModelRecord
    depth: int
    parent_id: str | None
    confidence: float | None
    root: LineageRoot | None
    ancestors: list[Ancestor]
    descendants: list[Descendant]
    descendant_count: int


@dataclass(frozen=True)
class CatalogueStatistics:
    """Counts of everything stored, and consistency checks that are 0 when healthy:
    ``unplaced_models`` (ok models without a family), ``stale_families`` (stored member
    count differs from membership), ``empty_families``."""

    models: int
    adapters: int
    models_by_status: dict[str, int]
    families: int
    derived_edges: int
    declared_edges: int
    external_models: int
    fingerprints: int
    jobs_by_state: dict[str, int]
    unplaced_models: int
    stale_families: int
    empty_families: int


@dataclass(frozen=True)
class ClusteringStatistics:
    """How the catalogue is clustered: family sizes ({size: number of families}) and the
    settings that shape genealogies (``configuration``)."""

    models: int
    models_by_status: dict[str, int]
    families: int
    family_size_distribution: dict[int, int]
    largest_family: int
    singleton_families: int
    unplaced_models: int
    stale_families: int
    configuration: dict[str, Any]


_MODEL_KEYS = {
    "id": "id", "name": "name", "description": "description", "sha256": "sha256",
    "format": "format", "params": "params", "tensors": "tensors", "layers": "layers",
    "structureHash": "structure_hash", "dtype": "dtype", "isAdapter": "is_adapter",
    "adapterRank": "adapter_rank", "kurtosis": "kurtosis", "status": "status",
    "error": "error", "createdAt": "created_at", "processedAt": "processed_at",
    "path": "path", "uploaded": "uploaded", "declaredBase": "declared_base",
    "declaredRelation": "declared_relation", "declaredBases": "declared_bases", "quantization": "quantization",
    "revision": "revision",
}
_MODEL_EXTRA = {
    "familyId": "family_id", "parentId": "parent_id", "parentName": "parent_name",
    "confidence": "confidence", "distance": "distance", "method": "method",
    "relation": "relation", "weight": "weight", "declaredBaseId": "declared_base_id",
}
_FAMILY_KEYS = {
    "id": "id", "memberCount": "member_count", "meanDistance": "mean_distance",
    "structureHash": "structure_hash", "threshold": "threshold", "metric": "metric",
    "regime": "regime", "regimeEvidence": "regime_evidence", "treeMethod": "tree_method",
    "lambda": "lambda_", "version": "version", "createdAt": "created_at", "updatedAt": "updated_at",
}


def native(value: Any) -> Any:
    """Neo4j temporal types -> ``datetime``; NaN -> ``None``; containers converted deeply."""
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "to_native"):
        return value.to_native()
    if isinstance(value, dict):
        return {k: native(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [native(v) for v in value]
    return value


def model_record(row: Mapping[str, Any]) -> ModelRecord:
    """A :class:`ModelRecord` from a row with a ``model`` map and the optional extra columns."""
    props = row["model"] or {}
    record: dict[str, Any] = {snake: native(props.get(camel)) for camel, snake in _MODEL_KEYS.items()}
    record["is_adapter"] = bool(record["is_adapter"])
    record["uploaded"] = bool(record["uploaded"])
    for camel, snake in _MODEL_EXTRA.items():
        record[snake] = native(row.get(camel))
    record["parents"] = [native(dict(p)) for p in row.get("parents") or []]
    if record["parent_id"] is None and record["parents"]:  # rows that list parents only
        main = record["parents"][0]
        for key in ("id", "name", "confidence", "distance", "method", "relation", "weight"):
            record["parent_" + key if key in ("id", "name") else key] = main.get(key)
    if record["parent_id"] is not None and record["relation"] is None:
        record["relation"] = "finetune"  # an edge stored before relations existed
    if record["declared_base_id"] is None and row.get("declaredBaseName") and not record["declared_base"]:
        record["declared_base"] = row.get("declaredBaseName")
    return record  # type: ignore[return-value]


def family_record(row: Mapping[str, Any]) -> FamilyRecord:
    """A :class:`FamilyRecord` from a row with a ``family`` map, ``members`` and ``roots``
    (and, where the query counts them, ``edges`` and ``meanConfidence``)."""
    props = row["family"] or {}
    record: dict[str, Any] = {snake: native(props.get(camel)) for camel, snake in _FAMILY_KEYS.items()}
    if row.get("members") is not None:
        record["member_count"] = int(row["members"])
    record["edge_count"] = int(row["edges"]) if row.get("edges") is not None else None
    record["mean_confidence"] = native(row.get("meanConfidence"))
    record["roots"] = [dict(r) for r in row.get("roots") or []]
    return record  # type: ignore[return-value]
