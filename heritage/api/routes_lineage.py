"""``/api/lineage``: questions about the catalogue's lineage as a whole."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from heritage.api.deps import DbDep, ReadAccess
from heritage.api.schemas import DeclaredMismatch, ErrorResponse

__all__ = ["router"]

router = APIRouter(tags=["lineage"])


@router.get("/lineage/declared-mismatches", response_model=list[DeclaredMismatch], dependencies=[ReadAccess],
            responses={404: {"model": ErrorResponse, "description": "no such model (model_id)"}},
            summary="Where declared lineage (model cards, adapter configs) and recovered lineage disagree")
async def declared_mismatches(
    db: DbDep,
    model_id: Annotated[str | None, Query(min_length=1, max_length=128,
                                          description="only this model's declared bases")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[DeclaredMismatch]:
    rows = await db.read(db.catalogue.declared_mismatches, model_id, limit)
    return [DeclaredMismatch.model_validate(r) for r in rows]
