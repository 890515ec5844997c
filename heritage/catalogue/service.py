"""The catalogue service: models, families and their stored genealogy in Neo4j.

:class:`Catalogue` is the one entry point the API and the CLI use.  It takes its
database explicitly (a :class:`graph.Database` around a driver the caller owns), or
builds and owns one with :meth:`Catalogue.from_settings`.  Share one catalogue between
threads: the Neo4j driver is thread-safe, genealogy rewrites are serialised by a lock
inside the catalogue and guarded by family versions across processes, and reads run in
their own read transactions.

Writes (import, delete, rebuild, reprocess, recluster) compute trees from stored
fingerprints (never by reloading weights, except ``reprocess``) and store each change
with the trees it affects in one transaction.  Reads return stored genealogies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from graph.database import Database
from graph.schema import apply_schema
from graph.settings import Neo4jSettings
from heritage.catalogue import importer, jobs, maintenance, reads
from heritage.catalogue.config import MAX_DEPTH, CatalogueConfig
from heritage.catalogue.context import Context
from heritage.catalogue.paths import check_import_path
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
from heritage.errors import ModelLoadError
from heritage.reading.ingest import model_entries

__all__ = ["Catalogue", "collect_entries"]

log = logging.getLogger(__name__)


def collect_entries(paths: Iterable[str | Path], recursive: bool = False) -> list[tuple[str, Path]]:
    """``(name, path)`` models from files and folders, as ``heritage recover`` reads them.

    A path that is itself a model (a weights file, or a folder with ``config.json``,
    ``adapter_config.json`` or a shard index) is one model named by its entry name; any
    other folder contributes every entry inside it (:func:`heritage.reading.ingest.model_entries`:
    a Hugging Face hub cache gives one model per cached revision, named ``org/name``),
    and with ``recursive`` the entries of its sub-folders that are not models themselves.
    Raises ``ModelLoadError`` for a path that does not exist.
    """
    from heritage.reading.loader import model_name_for

    out: list[tuple[str, Path]] = []

    def is_model_folder(folder: Path) -> bool:
        return any((folder / marker).exists() for marker in ("config.json", "adapter_config.json")) or any(
            folder.glob("*.index.json"))

    def walk(folder: Path) -> None:
        for name, entry in model_entries(folder):
            if recursive and entry.is_dir() and not is_model_folder(entry):
                walk(entry)
            else:
                out.append((name, entry))

    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise ModelLoadError(f"{path}: no such file or folder")
        if path.is_dir() and not is_model_folder(path):
            walk(path)
        else:
            out.append((model_name_for(path), path))
    return out


class Catalogue:
    """Models, families and genealogy stored in Neo4j; see the module docstring.

    Parameters
    ----------
    config : CatalogueConfig, optional
        How genealogies are recovered and what may be imported; default
        :meth:`CatalogueConfig.from_env`.
    db : graph.Database
        The database to use; its driver belongs to the caller, who closes it.
    ensure_schema : bool, default True
        Apply ``cypher/schema.cypher`` (idempotent) and mark failed the jobs whose process
        is gone.

    Examples
    --------
    With a driver of your own::

        driver = neo4j.GraphDatabase.driver(uri, auth=(user, password))
        catalogue = Catalogue(CatalogueConfig(), db=Database(driver))

    or one the catalogue builds from ``NEO4J_*`` settings and closes::

        with Catalogue.from_settings() as catalogue:
            catalogue.import_model("models/base.safetensors")
    """

    def __init__(self, config: CatalogueConfig | None = None, *, db: Database,
                 ensure_schema: bool = True) -> None:
        self.config = config or CatalogueConfig.from_env()
        self.db = db
        self._owns_db = False
        self._ctx = Context(self.config, db)
        self._jobs = jobs.JobRunner(db)
        self._dask: Any = None  # a distributed.Client, connected on first use
        if ensure_schema:
            self.ensure_schema()

    @classmethod
    def from_settings(cls, settings: Neo4jSettings | None = None, config: CatalogueConfig | None = None, *,
                      ensure_schema: bool = True) -> Catalogue:
        """A catalogue on a driver of its own, built from ``settings`` (default: ``NEO4J_*``
        variables); :meth:`close` closes that driver."""
        db = Database.connect(settings)
        try:
            catalogue = cls(config, db=db, ensure_schema=ensure_schema)
        except BaseException:
            db.close()
            raise
        catalogue._owns_db = True
        return catalogue

    # ------------------------------------------------------------------ lifecycle
    def ensure_schema(self) -> None:
        """Apply the schema (constraints, indexes) and fail orphaned jobs."""
        apply_schema(self.db)
        jobs.fail_orphaned_jobs(self.db)

    def ping(self) -> None:
        """Raise ``graph.errors.DatabaseUnavailable`` unless Neo4j answers."""
        self.db.ping()

    def close(self) -> None:
        """Wait for background jobs; close the driver if :meth:`from_settings` built it."""
        self._jobs.shutdown(wait=True)
        if self._dask is not None:
            self._dask.close()
            self._dask = None
        if self._owns_db:
            self.db.close()

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _dask_client(self) -> Any:
        """The Dask client of ``config.dask_scheduler`` (None without one)."""
        if self.config.dask_scheduler is None:
            return None
        if self._dask is None:
            from heritage.distributed import connect

            self._dask = connect(self.config.dask_scheduler)
            log.info("reading and recovery tasks go to the Dask scheduler at %s", self.config.dask_scheduler)
        return self._dask

    # ------------------------------------------------------------------ writes
    def import_model(self, path: str | Path, name: str | None = None,
                     description: str | None = None, *, uploaded: bool = False) -> ImportResult:
        """Import one model file or folder (see :mod:`heritage.catalogue.importer`).

        Status ``created`` / ``duplicate`` (same SHA-256: the existing id, nothing
        written) / ``failed`` (unreadable model: ``error``, nothing written).  Raises
        :class:`~heritage.catalogue.errors.NameTakenError` when another model has the name,
        :class:`~heritage.catalogue.errors.InvalidNameError` for a name that may not be used.
        ``uploaded``: the file was stored by an upload and goes with the model when it is
        deleted (never set it for a user's own file).
        """
        return importer.import_one(self._ctx, path, name, description, uploaded=uploaded)

    def import_many(self, entries: Sequence[tuple[str, str | Path]],
                    progress: Callable[[ImportResult], None] | None = None, *,
                    description: str | None = None,
                    stage: Callable[[str], None] | None = None) -> ImportSummary:
        """Batch import of ``(name, path)`` entries: idempotent by SHA-256, resumable,
        UNWIND-batched; ``progress`` is called once per entry, ``stage`` between phases.
        A taken name or a bad model is a ``failed`` result, never an exception."""
        normalised = [(str(name), Path(path)) for name, path in entries]
        client = self._dask_client()
        reader = None
        if client is not None:
            from heritage.distributed import DaskReader

            reader = DaskReader(client)
        return importer.import_batch(self._ctx, normalised, description=description,
                                     progress=progress, stage=stage, reader=reader)

    def register(self, path: str | Path, name: str | None = None,
                 description: str | None = None) -> ImportResult:
        """Import a model that already lies on the server, inside HERITAGE_IMPORT_ROOTS;
        raises :class:`~heritage.catalogue.errors.PathNotAllowedError` otherwise."""
        resolved = check_import_path(path, self.config.import_roots)
        return self.import_model(resolved, name, description)

    def delete_model(self, model_id: str) -> dict[str, Any]:
        """Delete a model; its children are re-attached by its family's rebuilt tree.
        Returns ``{id, name, family_id, family_deleted, children, path, uploaded}``."""
        return maintenance.delete_model(self._ctx, model_id)

    def rebuild_family(self, family_id: str) -> FamilyRecord:
        """Recompute one family's tree from stored fingerprints; the updated family."""
        maintenance.rebuild_family(self._ctx, family_id)
        return reads.get_family(self.db, family_id)

    def reprocess_model(self, model_id: str) -> ModelRecord:
        """Re-read a model's weights from its path, refresh it and its family's tree; the
        updated model (``status`` ``error`` with ``error`` set when it cannot be read)."""
        maintenance.reprocess_model(self._ctx, model_id)
        return reads.get_model(self.db, model_id)

    def recluster(self, progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
        """Recompute all families and trees with the configured clustering and store them,
        each family whole (in transactions of about ``recluster_batch`` models; see
        :func:`heritage.catalogue.maintenance.recluster`).  Returns ``{models, families,
        edges, reused_families, new_families, deleted_families, transactions, seconds}``.
        With a Dask scheduler configured, candidate searches and family trees run there."""
        client = self._dask_client()
        mapper = None
        if client is not None:
            from heritage.distributed import dask_mapper

            mapper = dask_mapper(client)
        return maintenance.recluster(self._ctx, progress, mapper=mapper)

    def place_unplaced(self) -> list[str]:
        """Put models without a family (e.g. after an interrupted batch) into families."""
        return importer.place_unplaced(self._ctx)

    # ------------------------------------------------------------------ reads
    def get_model(self, model_id: str) -> ModelRecord:
        return reads.get_model(self.db, model_id)

    def find_model(self, ref: str) -> ModelRecord:
        """A model by id or name (the CLI's way of naming one)."""
        return reads.find_model(self.db, ref)

    def list_models(self, q: str | None = None, family_id: str | None = None, format: str | None = None,
                    status: str | None = None, skip: int = 0, limit: int = 50) -> tuple[list[ModelRecord], int]:
        return reads.list_models(self.db, q, family_id, format, status, skip, limit)

    def list_families(self, skip: int = 0, limit: int = 1000) -> list[FamilyRecord]:
        return reads.list_families(self.db, skip, limit)

    def get_family(self, family_id: str) -> FamilyRecord:
        return reads.get_family(self.db, family_id)

    def family_models(self, family_id: str) -> list[ModelRecord]:
        return reads.family_models(self.db, family_id)

    def genealogy(self, family_id: str) -> FamilyGenealogy:
        """The family's stored tree: nodes, edges with confidences, statistics, validation."""
        return reads.genealogy(self.db, family_id)

    def lineage(self, model_id: str, depth: int = 10) -> Lineage:
        """Ancestors (nearest first) and nested descendants of a model, ``depth`` (1..50) each way."""
        return reads.lineage(self.db, model_id, depth)

    def path(self, a: str, b: str) -> dict[str, Any] | None:
        """The tree path from ``a`` to ``b``: ``{nodes, edges, length}``, ``None`` if unrelated."""
        return reads.path_between(self.db, a, b)

    def lowest_common_ancestor(self, a: str, b: str) -> dict[str, Any] | None:
        """``{id, name, from_a, from_b}`` (generations from each), ``None`` if unrelated."""
        return reads.lowest_common_ancestor(self.db, a, b)

    def siblings(self, model_id: str) -> list[dict[str, Any]]:
        """Models sharing this model's stored parent."""
        return reads.siblings(self.db, model_id)

    def declared_mismatches(self, model_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
        """Where declared and recovered lineage disagree, by parent or relation (all models, or ``model_id``'s)."""
        return reads.declared_mismatches(self.db, model_id, limit)

    def statistics(self) -> CatalogueStatistics:
        """Counts of everything stored, with consistency checks (0 when healthy)."""
        return reads.statistics(self.db)

    def clustering_statistics(self) -> ClusteringStatistics:
        """Family sizes and the configuration that shapes genealogies."""
        stats = reads.statistics(self.db)
        sizes = reads.family_size_distribution(self.db)
        return ClusteringStatistics(
            models=stats.models,
            models_by_status=stats.models_by_status,
            families=stats.families,
            family_size_distribution=sizes,
            largest_family=max(sizes, default=0),
            singleton_families=sizes.get(1, 0),
            unplaced_models=stats.unplaced_models,
            stale_families=stats.stale_families,
            configuration={**self.config.as_dict(), "max_depth": MAX_DEPTH},
        )

    # ------------------------------------------------------------------ jobs
    def submit_job(self, kind: str, work: Callable[[jobs.JobContext], Any],
                   message: str | None = None) -> jobs.JobRecord:
        """Run ``work(context)`` in the background as a Job; returns the queued job."""
        return self._jobs.submit(kind, work, message)

    def submit_recluster(self) -> jobs.JobRecord:
        """``recluster`` as a background job (its result is the recluster summary)."""
        return self.submit_job("recluster", lambda job: self.recluster(progress=job.progress),
                               "waiting to recluster")

    def get_job(self, job_id: str) -> jobs.JobRecord:
        return jobs.get_job(self.db, job_id)

    def list_jobs(self, state: str | None = None, limit: int = 50) -> list[jobs.JobRecord]:
        return jobs.list_jobs(self.db, state, limit)

    def fail_orphaned_jobs(self) -> list[str]:
        return jobs.fail_orphaned_jobs(self.db)
