"""Model Heritage: recover the genealogy of AI model weights.

The package is layered so that each part can be understood alone:

* :mod:`heritage.reading` opens checkpoints and reads each model once into a fingerprint;
* :mod:`heritage.lineage` turns fingerprints into families and directed trees;
* :mod:`heritage.evaluation` builds ground-truth zoos and scores recoveries;

these three never import the database.  :mod:`heritage.catalogue`, :mod:`heritage.api`
and :mod:`heritage.cli` compose them with the Neo4j layer in the top-level ``graph``
package.

The names a Python user needs are importable from here (``from heritage import
GenealogyRecovery, fingerprint``); each is imported on first use, so ``import heritage``
stays cheap and the command line does not load what it does not run.  See the README's
"Python API" section.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # reading: checkpoints and fingerprints
    "load_model": "heritage.reading.loader",
    "LoadedModel": "heritage.reading.loader",
    "fingerprint": "heritage.reading.ingest",
    "model_from_arrays": "heritage.reading.arrays",
    "Fingerprint": "heritage.reading.fingerprint",
    # lineage: families and trees
    "GenealogyRecovery": "heritage.lineage.recovery",
    "Genealogy": "heritage.lineage.recovery",
    "RecoveredFamily": "heritage.lineage.recovery",
    "RecoveredEdge": "heritage.lineage.recovery",
    "DistanceMetric": "heritage.lineage.distances",
    "ClusteringMethod": "heritage.lineage.clustering",
    "TreeBuildingMethod": "heritage.lineage.trees",
    "validate_tree": "heritage.lineage.trees",
    "tree_statistics": "heritage.lineage.trees",
    "TreeValidation": "heritage.lineage.trees",
    "TreeStatistics": "heritage.lineage.trees",
    # catalogue: the Neo4j-backed service and its typed results
    "Catalogue": "heritage.catalogue.service",
    "CatalogueConfig": "heritage.catalogue.config",
    "ImportResult": "heritage.catalogue.records",
    "ImportSummary": "heritage.catalogue.records",
    "FamilyGenealogy": "heritage.catalogue.records",
    "Lineage": "heritage.catalogue.records",
    "CatalogueStatistics": "heritage.catalogue.records",
    "ClusteringStatistics": "heritage.catalogue.records",
    "ModelRecord": "heritage.catalogue.records",
    "FamilyRecord": "heritage.catalogue.records",
    "Database": "graph.database",
    "Neo4jSettings": "graph.settings",
    # errors
    "HeritageError": "heritage.errors",
    "ModelLoadError": "heritage.errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from graph.database import Database
    from graph.settings import Neo4jSettings
    from heritage.catalogue.config import CatalogueConfig
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
    from heritage.catalogue.service import Catalogue
    from heritage.errors import HeritageError, ModelLoadError
    from heritage.lineage.clustering import ClusteringMethod
    from heritage.lineage.distances import DistanceMetric
    from heritage.lineage.recovery import Genealogy, GenealogyRecovery, RecoveredEdge, RecoveredFamily
    from heritage.lineage.trees import TreeBuildingMethod, TreeStatistics, TreeValidation, tree_statistics, validate_tree
    from heritage.reading.arrays import model_from_arrays
    from heritage.reading.fingerprint import Fingerprint
    from heritage.reading.ingest import fingerprint
    from heritage.reading.loader import LoadedModel, load_model


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'heritage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
