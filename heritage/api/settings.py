"""Settings of the HTTP API, read from the environment once, when the app is built.

Security-relevant defaults are closed: there is no built-in API key, CORS allows no
origin unless told, and in production (``HERITAGE_ENV=production``) the app refuses
to start without keys instead of silently running open.

``HERITAGE_ENV``                     ``development`` (default) or ``production``
``HERITAGE_API_KEYS``                comma-separated keys accepted for writes (and reads
                                     when protected); no default
``HERITAGE_PROTECT_READS``           ``true`` to require a key on read-only endpoints too
``HERITAGE_ALLOW_ANONYMOUS_WRITES``  ``true`` lets a development server without keys accept
                                     writes (tests and ``heritage demo`` set it explicitly)
``HERITAGE_CORS_ORIGINS``            comma-separated origins allowed by CORS; none by default
``HERITAGE_UPLOAD_DIR``, ``HERITAGE_MAX_UPLOAD_BYTES``  where uploads are stored and how
                                     large they may be: read through the catalogue's
                                     :class:`~heritage.catalogue.config.CatalogueConfig` so
                                     that both agree on one default
``HERITAGE_JOB_WORKERS``             threads running long jobs (default 1: recluster and
                                     tree rebuilds write the same families)
``HERITAGE_MAX_CONCURRENT_IMPORTS``  uploads/registrations computed at once (default 2)
``HERITAGE_DB_TIMEOUT_S``            deadline of one database read behind a request (default
                                     5 s): Neo4j being down gives a 503 within that time
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from heritage.catalogue.config import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_UPLOAD_DIR

__all__ = ["ApiSettings", "ConfigurationError", "DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_UPLOAD_DIR"]

log = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigurationError(ValueError):
    """The environment asks for something unsafe or malformed; the message says how to fix it."""


def _flag(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be true or false, got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigurationError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, got {raw!r}") from None
    if not value > 0:
        raise ConfigurationError(f"{name} must be positive, got {raw!r}")
    return value


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in (env.get(name) or "").split(",") if item.strip())


@dataclass(frozen=True)
class ApiSettings:
    """Everything the API needs to know about its deployment; immutable once built."""

    environment: str = "development"
    # Excluded from repr so that settings can be logged without leaking keys.
    api_keys: tuple[str, ...] = field(default=(), repr=False)
    protect_reads: bool = False
    allow_anonymous_writes: bool = False
    cors_origins: tuple[str, ...] = ()
    upload_dir: Path = DEFAULT_UPLOAD_DIR
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    job_workers: int = 1
    max_concurrent_imports: int = 2
    db_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "ApiSettings":
        """Build (and validate) settings from ``env``, default ``os.environ``."""
        env = os.environ if env is None else env
        from heritage.catalogue.config import CatalogueConfig

        environment = (env.get("HERITAGE_ENV") or "development").strip().lower()
        try:
            catalogue = CatalogueConfig.from_env(env)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        settings = cls(
            environment=environment,
            api_keys=_list(env, "HERITAGE_API_KEYS"),
            protect_reads=_flag(env, "HERITAGE_PROTECT_READS"),
            allow_anonymous_writes=_flag(env, "HERITAGE_ALLOW_ANONYMOUS_WRITES"),
            cors_origins=_list(env, "HERITAGE_CORS_ORIGINS"),
            upload_dir=catalogue.upload_dir,
            max_upload_bytes=catalogue.max_upload_bytes,
            job_workers=_int(env, "HERITAGE_JOB_WORKERS", 1),
            max_concurrent_imports=_int(env, "HERITAGE_MAX_CONCURRENT_IMPORTS", 2),
            db_timeout_s=_float(env, "HERITAGE_DB_TIMEOUT_S", 5.0),
        )
        settings.validate()
        return settings

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def validate(self) -> None:
        """Refuse configurations that would run an open or broken server; say why."""
        if self.environment not in ("development", "production"):
            raise ConfigurationError(
                f"HERITAGE_ENV must be 'development' or 'production', got {self.environment!r}"
            )
        if self.is_production and not self.api_keys:
            raise ConfigurationError(
                "refusing to start in production without API keys: set HERITAGE_API_KEYS "
                "to one or more comma-separated secrets (e.g. from `python -c \"import secrets; "
                "print(secrets.token_urlsafe(32))\"`)"
            )
        if self.is_production and self.allow_anonymous_writes:
            raise ConfigurationError(
                "HERITAGE_ALLOW_ANONYMOUS_WRITES=true is not allowed in production"
            )
        if self.protect_reads and not self.api_keys:
            raise ConfigurationError("HERITAGE_PROTECT_READS=true needs keys in HERITAGE_API_KEYS")
        short = [k for k in self.api_keys if len(k) < 16]
        if short and self.is_production:
            raise ConfigurationError("every key in HERITAGE_API_KEYS must be at least 16 characters long")
        if "*" in self.cors_origins:
            log.warning("HERITAGE_CORS_ORIGINS contains '*': any web page may call this API")

    @property
    def writes_open(self) -> bool:
        """True when writes need no key (development only, and only when asked for)."""
        return not self.api_keys and self.allow_anonymous_writes
