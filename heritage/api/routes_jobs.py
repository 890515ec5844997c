"""``/api/jobs``: the state and progress of long work started through the API."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path as PathParam, Query

from heritage.api.deps import DbDep, ReadAccess
from heritage.api.schemas import ErrorResponse, Job

__all__ = ["router"]

router = APIRouter(tags=["jobs"])


@router.get("/jobs", response_model=list[Job], dependencies=[ReadAccess], summary="Recent jobs, newest first")
async def list_jobs(
    db: DbDep,
    state: Literal["queued", "running", "succeeded", "failed"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Job]:
    return [Job.model_validate(j) for j in await db.read(db.catalogue.list_jobs, state, limit)]


@router.get("/jobs/{job_id}", response_model=Job, dependencies=[ReadAccess],
            responses={404: {"model": ErrorResponse, "description": "no such job"}})
async def get_job(job_id: Annotated[str, PathParam(min_length=1, max_length=128)], db: DbDep) -> Job:
    return Job.model_validate(await db.read(db.catalogue.get_job, job_id))
