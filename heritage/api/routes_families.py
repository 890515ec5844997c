"""``/api/families``: list, read, members, stored genealogy, tree rebuild (a job)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path as PathParam, Query, Request

from heritage.api.deps import DbDep, JobsDep, ReadAccess, WriteAccess
from heritage.api.routes_models import job_accepted
from heritage.api.schemas import ErrorResponse, Family, FamilyList, Genealogy, JobAccepted, Model

__all__ = ["router"]

router = APIRouter(tags=["families"])

FamilyId = Annotated[str, PathParam(min_length=1, max_length=128, description="family id")]
_NOT_FOUND = {404: {"model": ErrorResponse, "description": "no such family"}}


@router.get("/families", response_model=FamilyList, dependencies=[ReadAccess],
            summary="Families, largest first")
async def list_families(
    db: DbDep,
    skip: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FamilyList:
    items = await db.read(db.catalogue.list_families, skip, limit)
    return FamilyList.model_validate({"items": items, "skip": skip, "limit": limit})


@router.get("/families/{family_id}", response_model=Family, dependencies=[ReadAccess], responses=_NOT_FOUND)
async def get_family(family_id: FamilyId, db: DbDep) -> Family:
    return Family.model_validate(await db.read(db.catalogue.get_family, family_id))


@router.get("/families/{family_id}/models", response_model=list[Model], dependencies=[ReadAccess],
            responses=_NOT_FOUND, summary="Members of a family")
async def family_models(family_id: FamilyId, db: DbDep) -> list[Model]:
    return [Model.model_validate(m) for m in await db.read(db.catalogue.family_models, family_id)]


@router.get("/families/{family_id}/genealogy", response_model=Genealogy, dependencies=[ReadAccess],
            responses=_NOT_FOUND,
            summary="The family's stored tree: nodes, edges with confidences, statistics, validation")
async def family_genealogy(family_id: FamilyId, db: DbDep) -> Genealogy:
    return Genealogy.model_validate(await db.read(db.catalogue.genealogy, family_id))


@router.post("/families/{family_id}/tree/rebuild", status_code=202, response_model=JobAccepted,
             dependencies=[WriteAccess],
             responses={**_NOT_FOUND, 401: {"model": ErrorResponse}, 403: {"model": ErrorResponse}},
             summary="Recompute the family's tree from stored fingerprints (a job)")
async def rebuild_family_tree(family_id: FamilyId, request: Request, db: DbDep, jobs: JobsDep) -> JobAccepted:
    await db.read(db.catalogue.get_family, family_id)  # 404 now rather than a failed job later
    return job_accepted(request, await db.write(jobs.rebuild_family, family_id))
