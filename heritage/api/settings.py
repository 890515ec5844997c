"""Settings of the HTTP API, read from the environment once, when the app is built
(:class:`ApiEnvironment`, the settings mechanism of :mod:`graph.settings`).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from graph.settings import EnvironmentSettings
from heritage.catalogue.config import DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_UPLOAD_DIR

__all__ = ["ApiEnvironment", "ApiSettings", "ConfigurationError", "DEFAULT_MAX_UPLOAD_BYTES", "DEFAULT_UPLOAD_DIR"]

log = logging.getLogger(__name__)


class ConfigurationError(ValueError):
    """The environment asks for something unsafe or malformed; the message says how to fix it."""


CommaList = Annotated[tuple[str, ...], NoDecode]


class ApiEnvironment(EnvironmentSettings):
    """The API's ``HERITAGE_*`` variables (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="HERITAGE_")

    environment: Literal["development", "production"] = Field("development", validation_alias="HERITAGE_ENV")
    api_keys: CommaList = Field((), repr=False)
    protect_reads: bool = False
    allow_anonymous_writes: bool = False
    cors_origins: CommaList = ()
    job_workers: int = Field(1, ge=1)
    max_concurrent_imports: int = Field(2, ge=1)
    db_timeout_s: float = Field(5.0, gt=0)

    @field_validator("environment", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value


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
    def from_env(cls) -> ApiSettings:
        """Settings from the ``HERITAGE_*`` variables, validated; :class:`ConfigurationError`
        (one line naming the variable) otherwise."""
        from heritage.catalogue.config import CatalogueConfig

        try:
            env = ApiEnvironment.read()
            catalogue = CatalogueConfig.from_env()
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        settings = cls(
            environment=env.environment,
            api_keys=env.api_keys,
            protect_reads=env.protect_reads,
            allow_anonymous_writes=env.allow_anonymous_writes,
            cors_origins=env.cors_origins,
            upload_dir=catalogue.upload_dir,
            max_upload_bytes=catalogue.max_upload_bytes,
            job_workers=env.job_workers,
            max_concurrent_imports=env.max_concurrent_imports,
            db_timeout_s=env.db_timeout_s,
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
