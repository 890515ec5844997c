"""Reading a model once: its profile and its fingerprint, or a per-model error; and
:func:`fingerprint`, the one-call way to fingerprint a path or in-memory weights."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from heritage.errors import ModelLoadError
from heritage.reading.hub_cache import hub_cache_models
from heritage.reading.fingerprint import DEFAULT_SKETCH_DIM, Fingerprint, fingerprint_model
from heritage.reading.arrays import model_from_arrays
from heritage.reading.loader import LoadedModel, load_model, model_name_for
from heritage.reading.profile import ModelProfile, profile_model

log = logging.getLogger(__name__)


@dataclass
class IngestedModel:
    name: str
    path: Path
    profile: ModelProfile
    fingerprint: Fingerprint


@dataclass
class IngestFailure:
    name: str
    path: Path
    error: str


def fingerprint(source: str | Path | Mapping[str, Any] | LoadedModel, name: str | None = None,
                sketch_dim: int = DEFAULT_SKETCH_DIM) -> Fingerprint:
    """The fingerprint of a model file or folder, of in-memory weights, or of a loaded model.

    Parameters
    ----------
    source : path, mapping or LoadedModel
        A checkpoint path (anything :func:`~heritage.reading.loader.load_model` opens); a
        mapping of parameter name to NumPy array or ``torch.Tensor`` (a ``state_dict()``);
        or a model already opened.
    name : str, optional
        The fingerprint's name; default: the file's name without extension, or
        ``"in-memory"`` for arrays.

    Raises
    ------
    ModelLoadError
        When the source cannot be read, or holds no weight matrix to compare.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> weights = {f"layer.0.attention.{p}.weight": rng.standard_normal((32, 32), dtype="float32")
    ...            for p in ("query", "key", "value")}
    >>> fp = fingerprint(weights, name="tiny")
    >>> fp.name, len(fp.layers), fp.is_adapter
    ('tiny', 3, False)
    """
    if isinstance(source, LoadedModel):
        model = source
    elif isinstance(source, Mapping):
        model = model_from_arrays(source, name or "in-memory")
    else:
        model = load_model(Path(source), name)
    return fingerprint_model(model, sketch_dim=sketch_dim)


def ingest(path: str | Path, name: str | None = None, sha256: str | None = None,
           sketch_dim: int = DEFAULT_SKETCH_DIM) -> IngestedModel:
    """Open, profile and fingerprint one model; raises :class:`ModelLoadError` subclasses."""
    path = Path(path)
    model = load_model(path, name)
    profile = profile_model(model, sha256=sha256)
    fingerprint = fingerprint_model(model, sketch_dim=sketch_dim)
    return IngestedModel(name=model.name, path=path, profile=profile, fingerprint=fingerprint)


def model_entries(directory: str | Path) -> list[tuple[str, Path]]:
    """Every entry directly inside ``directory`` is one model, named without extension.

    Hidden entries (starting with '.') are skipped. Two entries that map to the same
    name (``a.bin`` and ``a.safetensors``) are both kept under their full entry names.
    A Hugging Face hub cache (``~/.cache/huggingface/hub``, the folder above it, or one
    ``models--org--name`` folder of it) gives one model per cached revision, named
    ``org/name`` (:mod:`heritage.reading.hub_cache`).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelLoadError(f"{directory}: not a directory")
    cached = hub_cache_models(directory)
    if cached is not None:
        return cached
    entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
    names = [model_name_for(p) for p in entries]
    return [
        (name if names.count(name) == 1 else entry.name, entry)
        for name, entry in zip(names, entries)
    ]


def ingest_many(entries: list[tuple[str, Path]]) -> Iterator[IngestedModel | IngestFailure]:
    """Ingest each (name, path); failures are yielded, never raised."""
    for name, path in entries:
        try:
            yield ingest(path, name)
        except ModelLoadError as exc:
            log.warning("skipping %s: %s", name, exc)
            yield IngestFailure(name=name, path=path, error=str(exc))
