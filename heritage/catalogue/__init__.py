"""The catalogue service: models, families and DERIVED_FROM genealogy stored in Neo4j.

Modules, each with one job:

* :mod:`~heritage.catalogue.service` — :class:`Catalogue`, the facade the API and CLI use;
* :mod:`~heritage.catalogue.config` — :class:`CatalogueConfig` from ``HERITAGE_*`` variables;
* :mod:`~heritage.catalogue.importer` / :mod:`~heritage.catalogue.prepare` — importing;
* :mod:`~heritage.catalogue.placement` — nearest relatives (vector index + exact distances);
* :mod:`~heritage.catalogue.planning` / :mod:`~heritage.catalogue.commit` — computing a
  family's tree, then writing it atomically with optimistic concurrency;
* :mod:`~heritage.catalogue.maintenance` — delete, rebuild, reprocess, recluster;
* :mod:`~heritage.catalogue.reads` — stored genealogies, lineages, statistics;
* :mod:`~heritage.catalogue.jobs` — long work as ``(:Job)`` nodes;
* :mod:`~heritage.catalogue.records` / :mod:`~heritage.catalogue.errors` — results, errors.
"""

from heritage.catalogue.config import MAX_DEPTH, CatalogueConfig
from heritage.catalogue.errors import (
    CatalogueError,
    ConcurrentUpdateError,
    FamilyNotFound,
    JobNotFound,
    ModelNotFound,
    InvalidNameError,
    NameTakenError,
    PathNotAllowedError,
    UnusablePathError,
)
from heritage.catalogue.records import (
    CatalogueStatistics,
    ClusteringStatistics,
    FamilyGenealogy,
    FamilyRecord,
    ImportResult,
    ImportSummary,
    Lineage,
    ModelRecord,
)
from heritage.catalogue.service import Catalogue, collect_entries

__all__ = [
    "Catalogue",
    "CatalogueConfig",
    "collect_entries",
    "MAX_DEPTH",
    "ImportResult",
    "ImportSummary",
    "ModelRecord",
    "FamilyRecord",
    "FamilyGenealogy",
    "Lineage",
    "CatalogueStatistics",
    "ClusteringStatistics",
    "CatalogueError",
    "ModelNotFound",
    "FamilyNotFound",
    "JobNotFound",
    "NameTakenError",
    "InvalidNameError",
    "PathNotAllowedError",
    "UnusablePathError",
    "ConcurrentUpdateError",
]
