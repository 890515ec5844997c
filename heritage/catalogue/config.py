"""Configuration of the catalogue service, read from the environment.

``HERITAGE_METRIC``        tree distance: auto|l2|cosine|rank (default auto)
``HERITAGE_CLUSTERING``    family clustering for ``recluster``: auto|threshold|dbscan|kmeans
``HERITAGE_THRESHOLD``     family threshold, relative weight change (default 0.5)
``HERITAGE_TREE_METHOD``   mother|distance_only|kurtosis_only (default mother)
``HERITAGE_LAMBDA``        kurtosis penalty weight (default 0.3)
``HERITAGE_FAMILY_SEARCH`` families for ``recluster``: sparse (nearest-neighbour candidates) | exact
``HERITAGE_NEIGHBOURS``    candidate neighbours per model in the sparse search (default 16)
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
from typing import Any
from collections.abc import Mapping

from heritage.lineage.candidates import DEFAULT_NEIGHBOURS, FamilySearch
from heritage.lineage.clustering import DEFAULT_THRESHOLD, ClusteringMethod
from heritage.lineage.distances import DistanceMetric
from heritage.lineage.recovery import GenealogyRecovery
from heritage.lineage.trees import DEFAULT_LAMBDA, TreeBuildingMethod

__all__ = ["CatalogueConfig", "DEFAULT_UPLOAD_DIR", "DEFAULT_MAX_UPLOAD_BYTES", "MAX_DEPTH"]

DEFAULT_UPLOAD_DIR = Path.home() / ".cache" / "model-heritage" / "uploads"
DEFAULT_MAX_UPLOAD_BYTES = 20 * 1024**3
# Deepest lineage walk any query does; Cypher cannot take a variable-length bound as a
# parameter, so the .cypher files use this constant and filter by ``$depth``.
MAX_DEPTH = 50


def _enum(env: Mapping[str, str], key: str, enum_type: Any, default: Any) -> Any:
    text = env.get(key)
    if not text:
        return default
    try:
        return enum_type(text.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in enum_type)
        raise ValueError(f"{key}={text!r} is not one of: {choices}") from None


def _number(env: Mapping[str, str], key: str, default: float, kind: type = float,
            positive: bool = True) -> Any:
    text = env.get(key)
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ValueError(f"{key}={text!r} is not a number") from None
    if value < 0 or (positive and value == 0):
        raise ValueError(f"{key}={text!r} must be {'positive' if positive else 'non-negative'}")
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
                     "neighbours"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> CatalogueConfig:
        """Build the configuration from ``env`` (default ``os.environ``); see the module doc."""
        env = os.environ if env is None else env
        roots = tuple(
            Path(p).expanduser().resolve()
            for p in (env.get("HERITAGE_IMPORT_ROOTS") or "").split(os.pathsep)
            if p.strip()
        )
        values: dict[str, Any] = dict(
            metric=_enum(env, "HERITAGE_METRIC", DistanceMetric, DistanceMetric.AUTO),
            clustering=_enum(env, "HERITAGE_CLUSTERING", ClusteringMethod, ClusteringMethod.AUTO),
            threshold=_number(env, "HERITAGE_THRESHOLD", DEFAULT_THRESHOLD),
            tree_method=_enum(env, "HERITAGE_TREE_METHOD", TreeBuildingMethod, TreeBuildingMethod.MOTHER),
            lam=_number(env, "HERITAGE_LAMBDA", DEFAULT_LAMBDA, positive=False),
            import_roots=roots,
            upload_dir=Path(env.get("HERITAGE_UPLOAD_DIR") or DEFAULT_UPLOAD_DIR).expanduser(),
            max_upload_bytes=_number(env, "HERITAGE_MAX_UPLOAD_BYTES", DEFAULT_MAX_UPLOAD_BYTES, int),
            family_search=_enum(env, "HERITAGE_FAMILY_SEARCH", FamilySearch, FamilySearch.SPARSE),
            neighbours=_number(env, "HERITAGE_NEIGHBOURS", DEFAULT_NEIGHBOURS, int),
            dask_scheduler=(env.get("HERITAGE_DASK_SCHEDULER") or "").strip() or None,
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
                                 margin=self.placement_margin)

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
        }
