"""Pydantic models of every request and response body.

The catalogue returns dataclasses and typed dicts (snake_case, see
:mod:`heritage.catalogue.records`); these models are the public contract built from
them (``from_attributes``): documented in OpenAPI, validated on the way out, and free of
internals such as server file paths or the process that owns a job.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator

from heritage.catalogue.names import name_problem

__all__ = [
    "ErrorResponse",
    "ConflictResponse",
    "ValidationErrorResponse",
    "Health",
    "ModelRef",
    "ParentRef",
    "Relation",
    "Model",
    "ModelPage",
    "UploadForm",
    "RegisterRequest",
    "ImportResponse",
    "DeleteResponse",
    "Family",
    "FamilyList",
    "TreeNode",
    "TreeEdge",
    "TreeValidation",
    "TreeStatistics",
    "Genealogy",
    "LineageNode",
    "AncestorNode",
    "Lineage",
    "PathEdge",
    "ModelPath",
    "DeclaredBaseRef",
    "CommonAncestor",
    "DeclaredMismatch",
    "Job",
    "JobAccepted",
    "ClusteringConfiguration",
    "ClusteringStatistics",
    "SystemStatistics",
    "MAX_NAME_LENGTH",
    "MAX_DESCRIPTION_LENGTH",
]

MAX_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 10_000
JobState = Literal["queued", "running", "succeeded", "failed"]
Relation = Literal["finetune", "adapter", "merge", "quantization", "conversion", "head_only", "distillation"]
_RELATION = ("how the child derives from the parent: finetune, adapter, merge (one edge per parent, with "
             "its weight), quantization, conversion (dtype/format only), head_only or distillation")
_WEIGHT = "the parent's estimated mixing weight on a merge edge, else null"


class _Out(BaseModel):
    """Response models: built from catalogue results (dataclasses or dicts), extra keys ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, from_attributes=True)


class _In(BaseModel):
    """Request models: unknown fields are an error (a typo must not pass silently)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------- generic


class ErrorResponse(BaseModel):
    detail: str = Field(description="what went wrong, in one line")


class ConflictResponse(ErrorResponse):
    existing_id: str | None = Field(None, description="the model that already holds these weights or this name")


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorResponse(BaseModel):
    """422: the request does not match the schema (FastAPI's validation error format)."""

    detail: list[ValidationIssue]


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    detail: str | None = None


# ----------------------------------------------------------------------------- models


class ModelRef(_Out):
    id: str
    name: str


class ParentRef(_Out):
    """One recovered parent of a model (a merge child has several)."""

    id: str
    name: str
    relation: Relation = Field("finetune", description=_RELATION)
    weight: float | None = Field(None, description=_WEIGHT)
    confidence: float | None = Field(None, description="probability that this edge is right, 0..1")
    distance: float | None = None
    aligned: float | None = Field(None, description="share of the child's compared parameters aligned with the parent's")


class Model(_Out):
    """A stored model.  Profile facts are read from the weights, never estimated."""

    id: str
    name: str
    description: str | None = None
    sha256: str | None = Field(None, description="SHA-256 of the weight file(s)")
    format: str | None = None
    params: int | None = Field(None, description="number of parameters")
    tensors: int | None = None
    layers: int | None = None
    structure_hash: str | None = Field(None, description="hash of tensor names and shapes")
    dtype: str | None = None
    is_adapter: bool = False
    adapter_rank: int | None = None
    kurtosis: float | None = None
    status: str | None = Field(None, description="processing | ok | error")
    error: str | None = None
    created_at: datetime | None = None
    processed_at: datetime | None = None
    declared_base: str | None = Field(None, description="base model named by the model card / adapter config")
    declared_relation: str | None = None
    declared_base_id: str | None = None
    declared_bases: list[str] | None = Field(None, description="every base the model card declares (several for a merge)")
    quantization: str | None = Field(None, description="dominant GGML type of a quantised (GGUF) model, e.g. Q4_K")
    revision: str | None = Field(None, description="Hugging Face hub commit the model was imported from")
    family_id: str | None = None
    parent_id: str | None = Field(None, description="recovered (main) parent (stored DERIVED_FROM edge; "
                                                    "for a merge, the parent of largest weight)")
    parent_name: str | None = None
    confidence: float | None = Field(None, description="probability that the edge to the parent is right, 0..1")
    distance: float | None = None
    method: str | None = None
    relation: Relation | None = Field(None, description=_RELATION)
    weight: float | None = Field(None, description=_WEIGHT)
    parents: list[ParentRef] = Field(default_factory=list, description="every recovered parent, main one first")


class ModelPage(_Out):
    items: list[Model]
    total: int = Field(description="models matching the filters, over all pages")
    skip: int
    limit: int


# No control characters; names also without slashes (they become file-like labels), and
# none of the characters heritage.catalogue.names refuses (checked by UploadForm).
NAME_PATTERN = r"^[^\x00-\x1f\x7f/\\]+$"
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"


class UploadForm(_In):
    """The text fields of ``POST /api/models`` (the file itself is the ``file`` part)."""

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH, pattern=NAME_PATTERN,
                             description="model name (default: the file name without extension)")
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH, pattern=TEXT_PATTERN)

    @field_validator("name")
    @classmethod
    def _readable_name(cls, name: str | None) -> str | None:
        problem = None if name is None else name_problem(name)
        if problem is not None:
            raise ValueError(problem)
        return name


class RegisterRequest(UploadForm):
    """Register a model that already lies on the server, inside an import root."""

    # No "~": a client must not make the server expand its own (or another user's) home.
    path: str = Field(min_length=1, max_length=4096, pattern=r"^[^~\x00][^\x00]*$",
                      description="file or folder inside one of HERITAGE_IMPORT_ROOTS "
                                  "(absolute, or relative to a root; no leading '~')")


class ImportResponse(_Out):
    """The outcome of an upload or registration that stored a model."""

    status: Literal["created"]
    model: Model


class DeleteResponse(_Out):
    id: str
    name: str | None = None
    family_id: str | None = None
    family_deleted: bool = False
    children: list[str] = Field(default_factory=list, description="former children, re-attached in the family")


# --------------------------------------------------------------------------- families


class Family(_Out):
    id: str
    member_count: int
    mean_distance: float | None = Field(None, description="mean pairwise distance between members")
    structure_hash: str | None = None
    threshold: float | None = None
    metric: str | None = None
    regime: str | None = Field(None, description="kurtosis regime deciding edge direction")
    regime_evidence: str | None = None
    tree_method: str | None = None
    lambda_: float | None = Field(None, validation_alias=AliasChoices("lambda_", "lambda"),
                                  serialization_alias="lambda")
    version: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    roots: list[ModelRef] = Field(default_factory=list)
    edge_count: int | None = Field(None, description="DERIVED_FROM edges of the family's stored tree")
    mean_confidence: float | None = Field(None, description="mean confidence of those edges, 0..1")


class FamilyList(_Out):
    items: list[Family]
    skip: int
    limit: int


class TreeNode(_Out):
    id: str
    name: str
    parent_id: str | None = Field(None, description="the main parent (largest weight for a merge)")
    parent_ids: list[str] = Field(default_factory=list, description="every parent, main one first")
    relation: Relation | None = Field(None, description=_RELATION)
    confidence: float | None = None
    generation: int = 0
    is_root: bool
    is_leaf: bool
    is_adapter: bool = False
    status: str | None = None


class TreeEdge(_Out):
    parent: str
    child: str
    parent_name: str | None = None
    child_name: str | None = None
    relation: Relation = Field("finetune", description=_RELATION)
    weight: float | None = Field(None, description=_WEIGHT)
    aligned: float | None = Field(None, description="share of the child's compared parameters aligned with the parent's")
    confidence: float | None = Field(None, description="probability that the edge is right, 0..1")
    distance: float | None = None
    method: str | None = None
    lambda_: float | None = Field(None, validation_alias=AliasChoices("lambda_", "lambda"),
                                  serialization_alias="lambda")
    run_id: str | None = None
    created_at: datetime | None = None


class TreeValidation(_Out):
    valid: bool
    issues: list[str] = Field(default_factory=list)


class TreeStatistics(_Out):
    """Shape of the stored tree (roots and leaves are model ids)."""

    nodes: int
    edges: int
    roots: list[str]
    leaves: list[str]
    depth: int = Field(description="longest root-to-leaf path, in edges")
    max_branching: int
    mean_branching: float


class Genealogy(_Out):
    """A family's STORED genealogy (nothing is recomputed from weights on read): a tree
    apart from merge children, which have one edge per parent."""

    family: Family
    models: list[Model]
    nodes: list[TreeNode]
    edges: list[TreeEdge]
    roots: list[str]
    statistics: TreeStatistics
    validation: TreeValidation
    mean_confidence: float | None = None


class _LineageBase(_Out):
    id: str
    name: str
    status: str | None = None
    format: str | None = None
    generation: int | None = None
    confidence: float | None = None
    distance: float | None = None
    method: str | None = None
    relation: Relation = Field("finetune", description=_RELATION)
    weight: float | None = Field(None, description=_WEIGHT)


class AncestorNode(_LineageBase):
    child_id: str | None = Field(None, description="the model one generation below this ancestor")


class LineageNode(_LineageBase):
    children: list["LineageNode"] = Field(default_factory=list)


class LineageRoot(_Out):
    id: str
    name: str
    generations: int


class Lineage(_Out):
    model: Model
    depth: int
    parent_id: str | None = None
    confidence: float | None = Field(None, description="confidence of the model's own parent edge")
    root: LineageRoot | None = None
    ancestors: list[AncestorNode] = Field(description="nearest first")
    descendants: list[LineageNode] = Field(description="children, each with its own children")
    descendant_count: int = 0


class PathEdge(_Out):
    parent: str
    child: str
    confidence: float | None = None
    relation: Relation = Field("finetune", description=_RELATION)
    weight: float | None = Field(None, description=_WEIGHT)


class DeclaredBaseRef(_Out):
    """One base a model declares (``id`` null when it is not in the catalogue)."""

    id: str | None = None
    name: str
    external: bool = Field(False, description="not in the catalogue")


class DeclaredMismatch(_Out):
    """A model whose declared lineage (model card, adapter config) disagrees with the
    recovered one: ``reason`` ``parent`` (a declared base is none of its recovered parents;
    for a declared merge, also a recovered parent that was not declared) or ``relation``
    (the declared base is a recovered parent, by another relation). One per model; the
    ``declared_*`` fields name the declared base the disagreement is about."""

    id: str
    name: str
    reason: Literal["parent", "relation"]
    relation: str | None = Field(None, description="declared relation, as the model card words it")
    declared_name: str | None = None
    declared_id: str | None = None
    declared_external: bool = Field(False, description="the declared base is not in the catalogue")
    declared_bases: list[DeclaredBaseRef] = Field(default_factory=list,
                                                  description="every declared base (several for a merge)")
    recovered_id: str | None = Field(None, description="the recovered (main) parent")
    recovered_name: str | None = None
    recovered_relation: Relation | None = None
    relation_to_declared: Relation | None = Field(None, description="relation of the recovered edge to the declared base")
    confidence: float | None = None
    recovered_parents: list[ParentRef] = Field(default_factory=list)


class ModelPath(_Out):
    """The tree path between two models (through their lowest common ancestor)."""

    related: bool
    nodes: list[ModelRef] = Field(default_factory=list)
    edges: list[PathEdge] = Field(default_factory=list)
    length: int | None = None


class CommonAncestor(_Out):
    """The lowest common ancestor of two models (one of them when it is the other's ancestor)."""

    related: bool = Field(description="false when the models share no ancestor (different trees)")
    ancestor: ModelRef | None = None
    from_a: int | None = Field(None, description="generations from the first model up to the ancestor")
    from_b: int | None = Field(None, description="generations from the second model up to the ancestor")


# ------------------------------------------------------------------------------- jobs


class Job(_Out):
    id: str
    kind: str | None = None
    state: JobState
    progress: float = 0.0
    message: str | None = None
    result: Any = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class JobAccepted(_Out):
    job: Job
    url: str = Field(description="where to poll the job")


# -------------------------------------------------------------------------- statistics


class ClusteringConfiguration(_Out):
    metric: str
    clustering: str
    threshold: float
    tree_method: str
    lambda_: float = Field(validation_alias=AliasChoices("lambda_", "lambda"), serialization_alias="lambda")
    max_depth: int | None = None
    max_upload_bytes: int | None = None
    family_search: str | None = Field(None, description="sparse (nearest-neighbour candidates) or exact")
    neighbours: int | None = Field(None, description="candidate neighbours per model in the sparse search")


class ClusteringStatistics(_Out):
    models: int
    models_by_status: dict[str, int]
    families: int
    family_size_distribution: dict[int, int] = Field(description="{family size: number of families}")
    largest_family: int
    singleton_families: int
    unplaced_models: int
    stale_families: int
    configuration: ClusteringConfiguration


class SystemStatistics(_Out):
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
