"""``GET /api/health``: is the service able to reach Neo4j?

Always open (load balancers and orchestrators call it without credentials) and
always quick: the connectivity probe has its own short deadline.
"""

from __future__ import annotations

import logging

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from graph.errors import GraphError
from heritage.api.deps import database_probe
from heritage.api.schemas import Health

__all__ = ["router"]

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

HEALTH_TIMEOUT_S = 3.0


@router.get(
    "/health",
    response_model=Health,
    summary="Service health: is Neo4j reachable?",
    responses={503: {"model": Health, "description": "Neo4j is not reachable"}},
)
async def health(request: Request) -> Health | JSONResponse:
    try:
        with anyio.fail_after(HEALTH_TIMEOUT_S):
            await anyio.to_thread.run_sync(database_probe, request.app.state.db.catalogue,
                                          abandon_on_cancel=True)
    except TimeoutError:
        detail = f"Neo4j did not answer within {HEALTH_TIMEOUT_S:g} s"
    except GraphError as exc:
        production = request.app.state.settings.is_production
        detail = f"Neo4j is not reachable ({exc.__class__.__name__})" if production else str(exc)
    else:
        return Health(status="ok")
    log.warning("health check: %s", detail)
    body = Health(status="unavailable", detail=detail)
    return JSONResponse(status_code=503, content=body.model_dump())
