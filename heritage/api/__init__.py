"""The REST API of Model Heritage (FastAPI), served by ``heritage serve``.

Modules, each with one job:

* :mod:`~heritage.api.app` — ``create_app(settings=None)``: the application factory;
* :mod:`~heritage.api.settings` — :class:`ApiSettings` from ``HERITAGE_*`` variables;
* :mod:`~heritage.api.schemas` — Pydantic models of every request and response;
* :mod:`~heritage.api.deps` — dependencies: settings, the catalogue behind a
  deadline-keeping :class:`~heritage.api.deps.Db`, API-key checks;
* ``routes_*`` — thin routes (models, families, lineage, clustering, jobs, health);
* :mod:`~heritage.api.uploads` — streamed uploads with a size limit, content sniffing;
* :mod:`~heritage.api.security` — constant-time key checks, pickle inspection;
* :mod:`~heritage.api.jobs` — long work submitted to the catalogue's job runner;
* :mod:`~heritage.api.errors` — error types and their mapping to status codes.

The API holds no Cypher and opens no driver sessions: every database access goes
through :class:`heritage.catalogue.Catalogue`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from fastapi import FastAPI

__all__ = ["create_app"]


def create_app(*args: Any, **kwargs: Any) -> "FastAPI":
    """See :func:`heritage.api.app.create_app` (imported lazily: FastAPI is heavy)."""
    from heritage.api.app import create_app as factory

    return factory(*args, **kwargs)
