"""Configuration of the catalogue service, read from the environment
(:class:`CatalogueEnvironment`, the settings mechanism of :mod:`graph.settings`).

``HERITAGE_METRIC``        tree distance: auto|l2|cosine|rank (default auto)
``HERITAGE_CLUSTERING``    family clustering for ``recluster``: auto|threshold|dbscan|kmeans
``HERITAGE_THRESHOLD``     family threshold, relative weight change (default 0.5)
``HERITAGE_TREE_METHOD``   mother|distance_only|kurtosis_only (default mother)
``HERITAGE_LAMBDA``        kurtosis penalty weight (default 0.3)
``HERITAGE_FAMILY_SEARCH`` families for ``recluster``: sparse (nearest-neighbour candidates) | exact
``HERITAGE_NEIGHBOURS``    candidate neighbours per model in the sparse search (default 16)
``HERITAGE_TREE_LIMIT``    families of more models get their tree on candidate edges (default 1000;
                           0: every tree dense)
``HERITAGE_RECLUSTER_BATCH`` models whose families ``recluster`` writes per transaction (default 20000)
``HERITAGE_DASK_SCHEDULER`` address of a Dask scheduler (``tcp://host:8786``): fingerprinting of
                           imports and recluster's candidate searches and trees run there
``HERITAGE_IMPORT_ROOTS``  folders (os.pathsep-separated) that ``register`` may read from
``HERITAGE_UPLOAD_DIR``    where the API stores uploaded files (default ~/.cache/model-heritage/uploads)
``HERITAGE_MAX_UPLOAD_BYTES`` largest accepted upload (default 20 GiB)

Invalid values raise ``ValueError`` naming the variable, at start-up rather than on the
first request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from graph.settings import EnvironmentSettings
from heritage.lineage.candidates import DEFAULT_NEIGHBOURS, FamilySearch
from heritage.lineage.clustering import DEFAULT_THRESHOLD, ClusteringMethod
from heritage.lineage.distances import DistanceMetric
from heritage.lineage.recovery import DEFAULT_TREE_LIMIT, GenealogyRecovery
from heritage.lineage.trees import DEFAULT_LAMBDA, TreeBuildingMethod

__all__ = ["CatalogueConfig", "CatalogueEnvironment", "DEFAULT_UPLOAD_DIR", "DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_RECLUSTER_BATCH",
           "MAX_DEPTH"]

DEFAULT_UPLOAD_DIR = Path.home() / ".cache" / "model-heritage" / "uploads"
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024**3
# Deepest lineage walk any query does; Cypher cannot take a variable-length bound as a
# parameter, so the .cypher files use this constant and filter by ``$depth``.
MAX_DEPTH = 50
# Models per recluster write transaction: Neo4j estimated about 11 KB of transaction memory
# per model rewritten (benchmarks/bench_scale.py), so 20,000 take about 220 MB, inside the
# 717 MiB a 1 GB heap allows a transaction by default.
DEFAULT_RECLUSTER_BATCH = 20_000


class CatalogueEnvironment(EnvironmentSettings):
    """The ``HERITAGE_*`` variables of the catalogue (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="HERITAGE_")

    metric: DistanceMetric = DistanceMetric.AUTO
    clustering: ClusteringMethod = ClusteringMethod.AUTO
    threshold: float = Field(DEFAULT_THRESHOLD, gt=0)
    tree_method: TreeBuildingMethod = TreeBuildingMethod.MOTHER
    lam: float = Field(DEFAULT_LAMBDA, ge=0, validation_alias="HERITAGE_LAMBDA")
    import_roots: Annotated[tuple[Path, ...], NoDecode] = ()
    upload_dir: Path = DEFAULT_UPLOAD_DIR
    max_upload_bytes: int = Field(DEFAULT_MAX_UPLOAD_BYTES, gt=0)
    family_search: FamilySearch = FamilySearch.SPARSE
    neighbours: int = Field(DEFAULT_NEIGHBOURS, ge=1)
    tree_limit: int = Field(DEFAULT_TREE_LIMIT, ge=0)
    recluster_batch: int = Field(DEFAULT_RECLUSTER_BATCH, ge=1)
    dask_scheduler: str | None = None

    @field_validator("metric", "clustering", "tree_method", "family_search", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("dask_scheduler", mode="before")
    @classmethod
    def _address(cls, value: Any) -> Any:
        return (value.strip() or None) if isinstance(value, str) else value

    @field_validator("import_roots", mode="before")
    @classmethod
    def _paths(cls, value: Any) -> Any:
        if isinstance(value, str):  # folders separated like PATH
            return tuple(Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p.strip())
        return value


@dataclass(frozen=True)
class CatalogueConfig:
    """How genealogies are recovered and what the service may read or accept."""

    metric: DistanceMetric = DistanceMetric.AUTO
    clustering: ClusteringMethod = ClusteringMethod.AUTO
    threshold: float = DEFAULT_THRESHOLD
    tree_method: TreeBuildingMethod = TreeBuildingMethod.MOTHER
    lam: float = DEFAULT_LAMBDA
    import_roots: tuple[Path, ...] = ()
    upload_dir: Path = DEFAULT_UPLOAD_DIR
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    # Placement: an architecture with at most this many models is compared exactly with
    # all of them; above it, the vector index proposes ``placement_candidates`` models.
    exact_placement_limit: int = 256
    placement_candidates: int = 32
    # Candidates farther than this many thresholds by placement vector (an estimate of
    # the relative l2 within ~20%) are not compared exactly.
    placement_margin: float = 2.0
    # Models read, hashed and fingerprinted per UNWIND write in ``import_many``.
    batch_size: int = 32
    # Parsed fingerprints kept in memory (bytes of serialised data).
    fingerprint_cache_bytes: int = 512 * 1024**2
    # Families in ``recluster``: sparse candidates (``neighbours`` per model) or every pair.
    family_search: FamilySearch = FamilySearch.SPARSE
    neighbours: int = DEFAULT_NEIGHBOURS
    # Families of more models get their tree on candidate edges (0: every tree dense).
    tree_limit: int = DEFAULT_TREE_LIMIT
    # ``recluster`` writes the new genealogy in transactions of about this many models
    # (whole groups of overlapping families each): Neo4j bounds one transaction's memory
    # (``db.memory.transaction.total.max``), and a hub-sized genealogy exceeds it.
    recluster_batch: int = DEFAULT_RECLUSTER_BATCH
    # A Dask scheduler's address: imports fingerprint there, recluster searches and builds there.
    dask_scheduler: str | None = None

    def __post_init__(self) -> None:
        # Validate eagerly: a bad setting fails at start-up, not on the first request.
        if self.metric is DistanceMetric.MOTHER:
            raise ValueError("HERITAGE_METRIC=mother needs weights; use l2, cosine, rank or auto")
        try:
            self.recovery()
        except ValueError as exc:
            raise ValueError(f"invalid HERITAGE_* setting: {exc}") from None
        if not self.placement_margin >= 1.0:
            raise ValueError("placement_margin must be at least 1")
        for name in ("exact_placement_limit", "placement_candidates", "batch_size", "fingerprint_cache_bytes",
                     "neighbours", "recluster_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    @classmethod
    def from_env(cls, **overrides: Any) -> CatalogueConfig:
        """The configuration from the ``HERITAGE_*`` variables (see the module doc), with
        ``overrides`` replacing fields; ``ValueError`` naming the variable of a bad value."""
        env = CatalogueEnvironment.read()
        values: dict[str, Any] = dict(
            metric=env.metric, clustering=env.clustering, threshold=env.threshold, tree_method=env.tree_method,
            lam=env.lam, import_roots=env.import_roots, upload_dir=env.upload_dir.expanduser(),
            max_upload_bytes=env.max_upload_bytes,
            family_search=env.family_search, neighbours=env.neighbours, dask_scheduler=env.dask_scheduler,
            recluster_batch=env.recluster_batch, tree_limit=env.tree_limit,
        )
        values.update(overrides)
        return cls(**values)

    @property
    def max_approximate_distance(self) -> float:
        """Candidates farther than this by placement vector are not compared exactly."""
        return self.placement_margin * self.threshold

    def recovery(self) -> GenealogyRecovery:
        """A recovery engine configured like this catalogue."""
        return GenealogyRecovery(metric=self.metric, clustering=self.clustering,
                                 threshold=self.threshold, tree_method=self.tree_method, lam=self.lam,
                                 search=self.family_search, neighbours=self.neighbours,
                                 margin=self.placement_margin, tree_limit=self.tree_limit or None)

    def as_dict(self) -> dict[str, Any]:
        """The settings that shape genealogies (reported by ``clustering_statistics``)."""
        return {
            "metric": self.metric.value,
            "clustering": self.clustering.value,
            "threshold": self.threshold,
            "tree_method": self.tree_method.value,
            "lambda": self.lam,
            "import_roots": [str(p) for p in self.import_roots],
            "max_upload_bytes": self.max_upload_bytes,
            "family_search": self.family_search.value,
            "neighbours": self.neighbours,
            "tree_limit": self.tree_limit,
        }
