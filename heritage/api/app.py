"""The FastAPI application: ``create_app(settings=None)`` builds one, ready for uvicorn.

The factory validates the settings first and raises :class:`ConfigurationError` (with
the reason) rather than starting an open or broken server.  Shared resources live on
``app.state`` and reach routes through :mod:`heritage.api.deps`: the settings, the
catalogue (the only gateway to Neo4j), a :class:`~heritage.api.deps.Db` wrapper that
runs catalogue calls off the event loop, and the job runner.

Start-up (lifespan) prepares the upload directory, asks the catalogue to apply the
schema and to mark jobs orphaned by a dead process as failed, and starts the job
pool.  Neo4j being down at start-up is logged, not fatal: ``/api/health`` reports it
and requests get 503 until it is back.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from heritage.api.deps import Db
from heritage.api.errors import install_error_handlers
from heritage.api.jobs import JobKinds
from heritage.api.security import SECURITY_HEADERS, KeyVerifier
from heritage.api.settings import ApiSettings, ConfigurationError

__all__ = ["create_app", "ConfigurationError"]

log = logging.getLogger(__name__)

API_PREFIX = "/api"
_JOB_SHUTDOWN_WAIT_S = 10.0

_DESCRIPTION = """\
Lineage of AI model weights: which models belong to one family, and which was
fine-tuned from which (MoTHer: weight distances + kurtosis direction), stored in Neo4j.

State-changing endpoints need an API key (`Authorization: Bearer <key>` or
`X-API-Key: <key>`); read-only endpoints are open unless the server protects them.
Long work (reclustering, tree rebuilds, reprocessing) runs as a job: the request
answers 202 with a job id, and `GET /api/jobs/{id}` shows its progress.
"""


class SecurityHeaders:
    """Pure ASGI middleware adding defensive headers (no request-body buffering).

    Starlette answers an unhandled exception outside every user middleware, so the 500
    handler (:mod:`heritage.api.errors`) sets the same :data:`SECURITY_HEADERS` itself.

    The web front end also gets a strict Content-Security-Policy: its own scripts and
    styles only, no inline code, requests to this origin only.  It inserts every API
    value as text; the policy is the second line of defence should one ever slip through
    as markup.  ``/docs`` keeps its CDN-hosted Swagger UI, so the policy is limited to ``/ui``.
    """

    _HEADERS = [(name.encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
    _FRONT_END_CSP = (b"content-security-policy",
                      b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                      b"connect-src 'self'; form-action 'none'; base-uri 'none'; frame-ancestors 'none'")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        extra = self._HEADERS + ([self._FRONT_END_CSP] if scope.get("path", "").startswith("/ui") else [])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in extra if n not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


STATIC_DIR = Path(__file__).parent / "static"


def _mount_front_end(app: FastAPI) -> None:
    """The small web front end (model list and search, lineage, upload form) at ``/ui/``.

    Plain files over the same REST API, so it needs no build step and shows nothing the
    API does not; ``/`` redirects there.
    """
    app.mount("/ui", StaticFiles(directory=STATIC_DIR, html=True), name="ui")

    @app.get("/", include_in_schema=False)
    async def _home() -> RedirectResponse:
        return RedirectResponse("/ui/")


def _default_catalogue() -> Any:
    """A catalogue with a driver of its own from ``NEO4J_*`` (closed at shutdown)."""
    from heritage.catalogue import Catalogue, CatalogueConfig

    # The schema is applied in the lifespan, where Neo4j being down is not fatal.
    return Catalogue.from_settings(config=CatalogueConfig.from_env(), ensure_schema=False)


def _startup(app: FastAPI) -> None:
    """Blocking start-up work (run in a thread): upload dir, schema, orphaned jobs."""
    from graph.errors import GraphError

    settings: ApiSettings = app.state.settings
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    try:
        app.state.db.catalogue.ensure_schema()  # also fails jobs whose process is gone
    except GraphError as exc:
        log.warning("Neo4j not ready at start-up (%s); requests get 503 until it is", exc)


def _shutdown(app: FastAPI) -> None:
    # Waits for the running job (a killed process leaves it to the next start-up), and
    # closes the driver when the catalogue built it (not a driver the caller passed in).
    close = getattr(app.state.db.catalogue, "close", None)
    if callable(close):
        close()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    import anyio
    import anyio.to_thread

    settings: ApiSettings = app.state.settings
    await anyio.to_thread.run_sync(_startup, app)
    log.info("Model Heritage API ready (%s)", settings.environment)
    try:
        yield
    finally:
        with anyio.move_on_after(_JOB_SHUTDOWN_WAIT_S) as scope:
            await anyio.to_thread.run_sync(_shutdown, app, abandon_on_cancel=True)
        if scope.cancelled_caught:
            log.warning("a job is still running at shutdown; it finishes before the process exits")


def create_app(settings: ApiSettings | None = None, *, catalogue: Any | None = None) -> FastAPI:
    """Build the API.  ``settings`` default to the environment; ``catalogue`` to a
    :class:`heritage.catalogue.Catalogue` configured from the environment, on a driver of
    its own that the app closes at shutdown (a catalogue passed in keeps its database:
    the caller owns that driver).

    Raises :class:`ConfigurationError` for unsafe settings (e.g. production without keys).
    """
    settings = settings or ApiSettings.from_env()
    settings.validate()
    from heritage import __version__ as version  # type: ignore[attr-defined]

    app = FastAPI(
        title="Model Heritage API",
        version=str(version),
        description=_DESCRIPTION,
        lifespan=_lifespan,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    app.state.key_verifier = KeyVerifier(settings.api_keys)
    catalogue = catalogue if catalogue is not None else _default_catalogue()
    app.state.db = Db(catalogue, settings.db_timeout_s, settings.max_concurrent_imports)
    app.state.jobs = JobKinds(catalogue)

    install_error_handlers(app)
    from heritage.api import (
        routes_clustering,
        routes_families,
        routes_health,
        routes_jobs,
        routes_lineage,
        routes_models,
    )

    from heritage.api.schemas import ErrorResponse

    unavailable = {503: {"model": ErrorResponse, "description": "Neo4j is unavailable"}}
    for module in (routes_models, routes_families, routes_lineage, routes_clustering, routes_jobs):
        app.include_router(module.router, prefix=API_PREFIX, responses=unavailable)
    app.include_router(routes_health.router, prefix=API_PREFIX)
    _mount_front_end(app)

    app.add_middleware(SecurityHeaders)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            allow_credentials=False,
        )
    if not settings.api_keys:
        log.warning("no API keys configured: writes are %s",
                    "OPEN to anyone (HERITAGE_ALLOW_ANONYMOUS_WRITES=true)"
                    if settings.writes_open else "disabled")
    return app
