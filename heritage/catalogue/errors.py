"""Errors of the catalogue service.

Each carries a one-line message fit for a CLI line or an HTTP ``detail``; the API maps
them to status codes (404 for the *NotFound errors, 409 for a taken name,
403 for paths outside the import roots).  ``graph.errors.DatabaseUnavailable`` is not
wrapped: it passes through so that every caller reports "Neo4j is down" the same way.
"""

from __future__ import annotations

__all__ = [
    "CatalogueError",
    "ModelNotFound",
    "FamilyNotFound",
    "JobNotFound",
    "NameTakenError",
    "PathNotAllowedError",
    "UnusablePathError",
    "InvalidNameError",
    "ConcurrentUpdateError",
    "SchedulerUnavailable",
]


class CatalogueError(Exception):
    """Base class of every error the catalogue raises on purpose."""


class ModelNotFound(CatalogueError, LookupError):
    """No model with that id (or name)."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"no model {ref!r} in the catalogue")
        self.ref = ref


class FamilyNotFound(CatalogueError, LookupError):
    """No family with that id."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"no family {ref!r} in the catalogue")
        self.ref = ref


class JobNotFound(CatalogueError, LookupError):
    """No job with that id."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"no job {ref!r}")
        self.ref = ref


class NameTakenError(CatalogueError):
    """Another model (with different weights) already has this name; names are unique."""

    def __init__(self, name: str, existing_id: str | None = None) -> None:
        super().__init__(
            f"the name {name!r} is already used by another model"
            + (f" (id {existing_id})" if existing_id else "")
            + "; choose another name"
        )
        self.name = name
        self.existing_id = existing_id


class PathNotAllowedError(CatalogueError, PermissionError):
    """A path to register lies outside every HERITAGE_IMPORT_ROOTS folder."""


class UnusablePathError(CatalogueError, ValueError):
    """A path to register that cannot even be resolved (a name too long, a link loop)."""


class InvalidNameError(CatalogueError, ValueError):
    """A model name the catalogue refuses (see :mod:`heritage.catalogue.names`)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"invalid model name {name!r}: {reason}")  # repr: shows hidden characters
        self.name = name
        self.reason = reason


class ConcurrentUpdateError(CatalogueError):
    """The data an operation depends on kept changing under it (other writers) after
    several attempts (see :mod:`heritage.catalogue.retry`)."""


class SchedulerUnavailable(CatalogueError):
    """The configured Dask scheduler cannot be reached (or Dask is not installed)."""
