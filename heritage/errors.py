"""The project's own error types.

Every failure that comes from a model file (rather than from a bug) is a
:class:`ModelLoadError` or one of its subclasses, so callers can report it per model
and carry on with the others.
"""

from __future__ import annotations


class HeritageError(Exception):
    """Base class of every error this package raises on purpose."""


class ModelLoadError(HeritageError):
    """A checkpoint could not be read: corrupt, truncated, unsupported or unsafe."""


class UnsupportedFormatError(ModelLoadError):
    """The file or folder is not a checkpoint format we read."""


class UnsafeCheckpointError(ModelLoadError):
    """A pickle that would need to run code to load; it is refused, never executed."""


class InvalidWeightsError(ModelLoadError):
    """The weights themselves are unusable (NaN/Inf values, nothing to compare)."""


class IncompatibleModelsError(HeritageError):
    """Models that cannot be compared, e.g. different architectures."""
