"""``/api/clustering`` and ``/api/stats``: recluster everything (a job), statistics."""

from __future__ import annotations

from fastapi import APIRouter, Request

from heritage.api.deps import DbDep, JobsDep, ReadAccess, WriteAccess
from heritage.api.routes_models import job_accepted
from heritage.api.schemas import ClusteringStatistics, ErrorResponse, JobAccepted, SystemStatistics

__all__ = ["router"]

router = APIRouter(tags=["clustering"])


@router.post("/clustering/recluster", status_code=202, response_model=JobAccepted, dependencies=[WriteAccess],
             responses={401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
             summary="Recompute all families and trees with the configured clustering (a job)")
async def recluster(request: Request, db: DbDep, jobs: JobsDep) -> JobAccepted:
    return job_accepted(request, await db.write(jobs.recluster))


@router.get("/clustering/statistics", response_model=ClusteringStatistics, dependencies=[ReadAccess],
            summary="Model counts by status, family size distribution, current configuration")
async def clustering_statistics(db: DbDep) -> ClusteringStatistics:
    return ClusteringStatistics.model_validate(await db.read(db.catalogue.clustering_statistics))


@router.get("/stats", response_model=SystemStatistics, dependencies=[ReadAccess],
            summary="Counts of everything in the catalogue, with consistency checks")
async def stats(db: DbDep) -> SystemStatistics:
    return SystemStatistics.model_validate(await db.read(db.catalogue.statistics))
