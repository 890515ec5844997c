"""Errors the API raises itself, and the mapping of every known error to a status code.

Routes stay thin by raising domain errors (from the catalogue, the graph layer, the
upload checks) and letting the handlers here turn them into JSON responses.  No
handler ever puts a traceback in a response: unexpected errors are logged with
their traceback and answered with a generic 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from graph.errors import AuthenticationFailed, DatabaseUnavailable, GraphError
from heritage.api.security import SECURITY_HEADERS

__all__ = [
    "ApiError",
    "UploadTooLarge",
    "UnsupportedContent",
    "UnsafeUpload",
    "BadUpload",
    "install_error_handlers",
    "error_body",
]

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and a one-line message for the client."""

    status_code = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class UploadTooLarge(ApiError):
    status_code = 413


class UnsupportedContent(ApiError):
    status_code = 415


class UnsafeUpload(ApiError):
    """A checkpoint whose loading would run code; refused without being loaded."""

    status_code = 400


class BadUpload(ApiError):
    """A malformed request body or a file that is not a readable model."""

    status_code = 400


class Conflict(ApiError):
    status_code = 409


class NotFound(ApiError):
    status_code = 404


def error_body(detail: str, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, **{k: v for k, v in extra.items() if v is not None}}


def _json(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content=error_body(detail, **extra), headers=headers)


def _catalogue_errors() -> dict[type[BaseException], int]:
    """Status codes of the catalogue's errors."""
    from heritage.catalogue import errors as ce

    return {
        ce.ModelNotFound: 404,
        ce.FamilyNotFound: 404,
        ce.JobNotFound: 404,
        ce.NameTakenError: 409,
        ce.PathNotAllowedError: 403,
        ce.UnusablePathError: 400,
        ce.ConcurrentUpdateError: 503,
    }


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that map errors to responses (see the module doc)."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status_code, exc.detail, headers=getattr(exc, "headers", None), **exc.extra)

    @app.exception_handler(DatabaseUnavailable)
    async def database_unavailable(request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        log.warning("%s %s: database unavailable: %s", request.method, request.url.path, exc)
        settings = getattr(request.app.state, "settings", None)
        # Development: the full reason (URI, how to start Neo4j); production: no internals.
        detail = ("database unavailable: Neo4j cannot be reached; try again shortly"
                  if settings is not None and settings.is_production else f"database unavailable: {exc}")
        return _json(503, detail, headers={"Retry-After": "5"})

    @app.exception_handler(AuthenticationFailed)
    async def database_auth(request: Request, exc: AuthenticationFailed) -> JSONResponse:
        log.error("%s %s: Neo4j rejected the credentials: %s", request.method, request.url.path, exc)
        return _json(503, "database unavailable: the server's Neo4j credentials were rejected")

    @app.exception_handler(GraphError)
    async def graph_error(request: Request, exc: GraphError) -> JSONResponse:
        log.error("%s %s: graph error: %s", request.method, request.url.path, exc, exc_info=exc)
        return _json(500, "internal database error")

    from heritage.errors import ModelLoadError, UnsupportedFormatError

    app.add_exception_handler(ModelLoadError, _domain_handler(400))
    app.add_exception_handler(UnsupportedFormatError, _domain_handler(415))
    for cls, status in _catalogue_errors().items():
        app.add_exception_handler(cls, _domain_handler(status))

    from heritage.catalogue.errors import InvalidNameError

    @app.exception_handler(InvalidNameError)
    async def invalid_name(_: Request, exc: InvalidNameError) -> JSONResponse:
        # A name taken from the registered file: a 422 shaped like a refused "name" field.
        issue = {"loc": ["body", "name"], "msg": str(exc), "type": "value_error"}
        return JSONResponse(status_code=422, content={"detail": [issue]})

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        # Answered by Starlette's outermost middleware, past SecurityHeaders: set them here.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _json(500, "internal server error", headers=dict(SECURITY_HEADERS))


def _domain_handler(status: int):  # type: ignore[no-untyped-def]
    async def handler(request: Request, exc: Exception) -> JSONResponse:
        if status == 403:
            log.warning("refused %s %s: %s", request.method, request.url.path, exc)
        extra = {}
        existing = getattr(exc, "existing_id", None)
        if existing:
            extra["existing_id"] = existing
        # 503 here: the data kept changing under the request (ConcurrentUpdateError); retry.
        headers = {"Retry-After": "1"} if status == 503 else None
        return _json(status, str(exc) or exc.__class__.__name__, headers=headers, **extra)

    return handler
