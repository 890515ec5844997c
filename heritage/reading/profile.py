"""A model's profile: real facts read from its files, never guessed from sizes."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path

from heritage.reading.layers import BLOCK_INDEX, LayerRole, classify, is_vocabulary_matrix
from heritage.reading.loader import LoadedModel

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class ModelProfile:
    """Facts about one checkpoint.

    ``params`` and ``tensors`` count real parameters only: buffers (``buffers`` says how
    many tensors were set apart) and tied copies of the input embedding are not counted,
    task heads are. ``declared_bases`` lists every base the model card declares (several
    for a merge), ``declared_base`` is the first; ``quantization`` is the dominant GGML
    type of a quantised checkpoint, ``revision`` the hub cache commit it was read from.
    """

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
    declared_bases: tuple[str, ...] = ()
    quantization: str | None = None
    revision: str | None = None
    buffers: int = 0
    tied: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["dtypes"] = list(self.dtypes)
        d["declared_bases"] = list(self.declared_bases)
        d["tied"] = list(self.tied)
        return d


def structure_hash(model: LoadedModel) -> str:
    """SHA-256 over the sorted (canonical name, shape) pairs of the backbone's parameters:
    equal iff same architecture, however the checkpoint was stored.

    Left out on purpose: dtypes (an fp16 or GGUF export of a model has its
    architecture), task heads (a classifier or LM head added to a backbone does not make
    another architecture), buffers and tied copies (the loader sets them apart), and the
    rows of token embeddings (a resized vocabulary is written ``*``: only the width
    counts). Adapters hash the shapes of the weights they modify under an ``adapter:``
    tag, so they never share a family key with full models.
    """
    h = hashlib.sha256(b"adapter:" if model.is_adapter else b"full:")
    for name in sorted(model.tensors):
        if classify(name) is LayerRole.HEAD:
            continue
        shape = [str(d) for d in model.tensors[name].shape]
        if len(shape) == 2 and is_vocabulary_matrix(name):
            shape[0] = "*"
        h.update(f"{name}:{','.join(shape)};".encode())
    return h.hexdigest()


def declared_lineage(model: LoadedModel) -> tuple[tuple[str, ...], str | None]:
    """Every declared base (model card ``base_model``: a string, or a list for a merge;
    else an adapter's ``base_model_name_or_path``) and the declared relation
    (``base_model_relation``; ``adapter`` for a PEFT adapter that names none)."""
    declared = model.model_card.get("base_model")
    bases = [declared] if isinstance(declared, str) else list(declared) if isinstance(declared, list) else []
    bases = [str(b).strip() for b in bases if str(b).strip()]
    if not bases and model.adapter is not None and model.adapter.declared_base:
        bases = [model.adapter.declared_base]
    relation = model.model_card.get("base_model_relation")
    if not relation and model.adapter is not None:
        relation = "adapter"
    return tuple(dict.fromkeys(bases)), str(relation).strip().lower() if relation else None


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
    bases, relation = declared_lineage(model)
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
        declared_base=bases[0] if bases else None,
        declared_relation=relation,
        declared_bases=bases,
        quantization=model.quantization,
        revision=model.revision,
        buffers=len(model.buffers),
        tied=tuple(sorted(model.tied)),
    )
