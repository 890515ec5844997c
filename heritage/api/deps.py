"""Shared resources of the routes, as FastAPI dependencies: settings, catalogue, auth.

Every catalogue call is synchronous (driver I/O, numpy work), so routes run it through
:class:`Db`, which moves it to a worker thread and puts a deadline on reads: the
Neo4j driver retries an unreachable server for about 15 s, far longer than a client
should wait for a 503.  After one failure the database is considered down and later
requests check connectivity first (a quick probe) instead of waiting again.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Annotated, Any, Callable, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from graph.errors import DatabaseUnavailable
from heritage.api.errors import ApiError
from heritage.api.jobs import JobKinds
from heritage.api.security import KeyVerifier
from heritage.api.settings import ApiSettings

__all__ = [
    "Db",
    "DbDep",
    "SettingsDep",
    "JobsDep",
    "require_read",
    "require_write",
    "ReadAccess",
    "WriteAccess",
    "database_probe",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

_PROBE_TIMEOUT_S = 2.0


class Unauthorized(ApiError):
    status_code = 401

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.headers = {"WWW-Authenticate": "Bearer"}


class Forbidden(ApiError):
    status_code = 403


def database_probe(catalogue: Any) -> None:
    """Raise ``DatabaseUnavailable`` unless Neo4j answers (used by health and :class:`Db`)."""
    catalogue.ping()


class Db:
    """Runs catalogue calls off the event loop, with deadlines and a down-state memory."""

    def __init__(self, catalogue: Any, timeout_s: float, import_limit: int) -> None:
        self.catalogue = catalogue
        self.timeout_s = timeout_s
        self.import_limiter = anyio.CapacityLimiter(import_limit)
        self._down_since: float | None = None
        self._lock = threading.Lock()

    def _mark(self, down: bool) -> None:
        with self._lock:
            if down and self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("Neo4j marked unavailable")
            elif not down and self._down_since is not None:
                log.info("Neo4j is reachable again")
                self._down_since = None

    async def ensure_available(self) -> None:
        """Probe Neo4j now (before accepting a large upload, say); 503 when it is down."""
        await self._probe()

    async def _check_gate(self) -> None:
        if self._down_since is None:
            return
        await self._probe()

    async def _probe(self) -> None:
        try:
            with anyio.fail_after(_PROBE_TIMEOUT_S):
                await anyio.to_thread.run_sync(database_probe, self.catalogue, abandon_on_cancel=True)
        except TimeoutError:
            self._mark(True)
            raise DatabaseUnavailable(f"Neo4j did not answer within {_PROBE_TIMEOUT_S:g} s") from None
        except DatabaseUnavailable:
            self._mark(True)
            raise
        self._mark(False)

    async def _run(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any],
                   deadline: float | None, limiter: anyio.CapacityLimiter | None) -> T:
        await self._check_gate()
        call = (lambda: fn(*args, **kwargs)) if kwargs else (lambda: fn(*args))
        try:
            if deadline is None:
                result = await anyio.to_thread.run_sync(call, limiter=limiter)
            else:
                with anyio.fail_after(deadline):
                    result = await anyio.to_thread.run_sync(call, abandon_on_cancel=True, limiter=limiter)
        except TimeoutError:
            self._mark(True)
            raise DatabaseUnavailable(
                f"Neo4j did not answer within {deadline:g} s; is it running? (`heritage neo4j status`)"
            ) from None
        except DatabaseUnavailable:
            self._mark(True)
            raise
        return result

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A quick catalogue read, answered or failed with 503 within the deadline."""
        return await self._run(fn, args, kwargs, self.timeout_s, None)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A small write (a job record): the same deadline as a read."""
        return await self._run(fn, args, kwargs, self.timeout_s, None)

    async def long_write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A write that also rebuilds a tree (delete): a longer deadline, still bounded."""
        return await self._run(fn, args, kwargs, max(self.timeout_s, 30.0), None)

    async def compute(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Heavy work (an import): no deadline, at most ``max_concurrent_imports`` at once."""
        return await self._run(fn, args, kwargs, None, self.import_limiter)


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings


def get_db(request: Request) -> Db:
    return request.app.state.db


def get_jobs(request: Request) -> JobKinds:
    return request.app.state.jobs


SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
DbDep = Annotated[Db, Depends(get_db)]
JobsDep = Annotated[JobKinds, Depends(get_jobs)]

# Declared as security schemes so /docs shows an "Authorize" button for both forms.
_bearer = HTTPBearer(auto_error=False, description="API key as a bearer token")
_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")


def _presented_key(bearer: HTTPAuthorizationCredentials | None, header_key: str | None) -> str | None:
    if header_key:
        return header_key
    if bearer is not None and bearer.scheme.lower() == "bearer":
        return bearer.credentials
    return None


def _check_key(request: Request, key: str | None) -> None:
    verifier: KeyVerifier = request.app.state.key_verifier
    if key is None:
        raise Unauthorized("an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")
    if not verifier.verify(key):
        log.warning("rejected an invalid API key for %s %s from %s", request.method,
                    request.url.path, request.client.host if request.client else "?")
        raise Unauthorized("invalid API key")


async def require_write(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_api_key_header)],
) -> None:
    """State-changing endpoints: a valid key, or an explicitly open development server."""
    settings: ApiSettings = request.app.state.settings
    if not settings.api_keys:
        if settings.writes_open:
            return
        raise Forbidden(
            "writes are disabled: no API keys are configured (set HERITAGE_API_KEYS, or "
            "HERITAGE_ALLOW_ANONYMOUS_WRITES=true on a development server)"
        )
    _check_key(request, _presented_key(bearer, header_key))


async def require_read(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_api_key_header)],
) -> None:
    """Read-only endpoints: open unless HERITAGE_PROTECT_READS=true."""
    settings: ApiSettings = request.app.state.settings
    if not settings.protect_reads:
        return
    if not settings.api_keys:
        raise Forbidden("reads are protected but no API keys are configured (set HERITAGE_API_KEYS)")
    _check_key(request, _presented_key(bearer, header_key))


ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
