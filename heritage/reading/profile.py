"""A model's profile: real facts read from its files, never guessed from sizes."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from heritage.reading.layers import BLOCK_INDEX
from heritage.reading.loader import LoadedModel

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelProfile:
    name: str
    format: str
    params: int
    tensors: int
    layers: int
    dtypes: tuple[str, ...]
    structure_hash: str
    sha256: str
    is_adapter: bool
    adapter_rank: int | None
    declared_base: str | None
    declared_relation: str | None

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["dtypes"] = list(self.dtypes)
        return d


def structure_hash(model: LoadedModel) -> str:
    """SHA-256 over the sorted (canonical name, shape) pairs: equal iff same architecture.

    Dtypes are left out on purpose: an fp16 export of a model has its architecture.
    Adapters hash the shapes of the weights they modify under an ``adapter:`` tag, so
    they never share a family key with full models.
    """
    h = hashlib.sha256(b"adapter:" if model.is_adapter else b"full:")
    for name in sorted(model.tensors):
        h.update(f"{name}:{','.join(map(str, model.tensors[name].shape))};".encode())
    return h.hexdigest()


def file_sha256(paths: list[Path]) -> str:
    """Streamed SHA-256: of the bytes for one file, of (name, bytes) pairs for several."""
    h = hashlib.sha256()
    several = len(paths) > 1
    for path in sorted(paths, key=lambda p: p.name) if several else paths:
        if several:
            h.update(path.name.encode() + b"\0")
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
    return h.hexdigest()


def layer_count(model: LoadedModel) -> int:
    """Number of repeated blocks (``layer.N`` ...), else the number of weight matrices."""
    indices = {int(m.group(1)) for n in model.tensors if (m := BLOCK_INDEX.search(n))}
    if indices:
        return max(indices) + 1
    return sum(1 for t in model.tensors.values() if len(t.shape) >= 2)


def profile_model(model: LoadedModel, sha256: str | None = None) -> ModelProfile:
    """Build the profile; pass ``sha256`` if it was computed elsewhere (e.g. while uploading)."""
    declared_base = model.model_card.get("base_model")
    if isinstance(declared_base, list):
        declared_base = declared_base[0] if declared_base else None
    if declared_base is None and model.adapter is not None:
        declared_base = model.adapter.declared_base
    relation = model.model_card.get("base_model_relation")
    if relation is None and model.adapter is not None:
        relation = "adapter"
    return ModelProfile(
        name=model.name,
        format=model.format.value,
        params=model.stored_params if model.stored_params is not None
        else sum(t.numel for t in model.tensors.values()),
        tensors=len(model.tensors),
        layers=layer_count(model),
        dtypes=tuple(model.dtypes()),
        structure_hash=structure_hash(model),
        sha256=sha256 or file_sha256(model.files),
        is_adapter=model.is_adapter,
        adapter_rank=model.adapter.rank if model.adapter else None,
        declared_base=str(declared_base) if declared_base else None,
        declared_relation=str(relation) if relation else None,
    )
