"""Result shapes of the catalogue service, and converters from Cypher rows.

Why plain dataclasses and dicts: the API converts them into its own Pydantic models and
the CLI prints them, so the service stays free of web types.  Write results
(:class:`ImportResult`, :class:`ImportSummary`) are dataclasses; read results are dicts
whose keys are documented by the ``TypedDict`` classes below (snake_case; the graph keeps
camelCase property names, see ``cypher/README.md``).  Neo4j temporal values are turned
into ``datetime`` objects, NaN floats into ``None``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict
from collections.abc import Mapping

__all__ = [
    "ImportStatus",
    "ImportResult",
    "ImportSummary",
    "ModelRecord",
    "FamilyRecord",
    "EdgeRecord",
    "ParentRecord",
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


class EdgeRecord(TypedDict, total=False):
    """A stored DERIVED_FROM edge, child -> parent.  ``relation`` is ``finetune`` for
    edges stored without one; ``weight`` is a merge parent's mixing weight, else ``None``."""

    parent: str
    child: str
    relation: str
    weight: float | None
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


_MODEL_KEYS = {
    "id": "id", "name": "name", "description": "description", "sha256": "sha256",
    "format": "format", "params": "params", "tensors": "tensors", "layers": "layers",
    "structureHash": "structure_hash", "dtype": "dtype", "isAdapter": "is_adapter",
    "adapterRank": "adapter_rank", "kurtosis": "kurtosis", "status": "status",
    "error": "error", "createdAt": "created_at", "processedAt": "processed_at",
    "path": "path", "declaredBase": "declared_base", "declaredRelation": "declared_relation",
    "declaredBases": "declared_bases", "quantization": "quantization", "revision": "revision",
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
