"""What a loaded model is: an index of lazily readable tensors plus facts about its files."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from heritage.reading.layers import LayerRole, classify, is_vocabulary_matrix
from heritage.reading.naming import canonical_name, canonical_names


class ModelFormat(str, enum.Enum):
    SAFETENSORS = "safetensors"
    PYTORCH = "pytorch"
    HF_FOLDER = "hf_folder"
    SHARDED_FOLDER = "sharded_folder"
    PEFT_ADAPTER = "peft_adapter"
    GGUF = "gguf"
    IN_MEMORY = "in_memory"  # arrays handed over by the caller (heritage.reading.arrays)


@dataclass(frozen=True)
class TensorRef:
    """One tensor of a checkpoint, read only when :meth:`load` is called.

    ``load`` returns float32; for float32 safetensors the array is a view of the
    memory-mapped file, so nothing is copied into RAM until it is touched.

    ``row_reader``, when a reader has one (quantised GGUF matrices), fills a float32
    buffer of the caller's with rows ``start:stop`` of the 2-D tensor, the same values
    ``load()[start:stop]`` holds: the fingerprint decodes a matrix chunk by chunk into
    buffers it reuses, rather than into a fresh array per tensor whose new pages cost
    more to touch than the decoding itself.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    loader: Callable[[], np.ndarray] = field(repr=False, compare=False)
    row_reader: Callable[[int, int, np.ndarray], None] | None = field(default=None, repr=False, compare=False)

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    def load(self) -> np.ndarray:
        return self.loader()


@dataclass(frozen=True)
class AdapterInfo:
    """A PEFT LoRA adapter: rank, scale and the base it declares (maybe unresolvable)."""

    rank: int
    alpha: float
    scale: float
    target_modules: tuple[str, ...]
    declared_base: str | None


@dataclass
class LoadedModel:
    """A checkpoint opened for reading.

    ``tensors`` maps canonical parameter names (wrapper prefixes such as ``module.``
    or ``bert.`` removed: :mod:`heritage.reading.naming`) to lazy references. For an
    adapter, the tensors are the effective weight deltas ``B @ A * scale`` named after
    the weights they modify.

    Only real parameters are in ``tensors``: buffers (``position_ids``, ``inv_freq``,
    causal masks, integer tensors) are in ``buffers``, and an output projection that is
    the input embedding (tied weights) is in ``tied`` (output name -> embedding name)
    whether the checkpoint stored the copy or transformers dropped it, so a tied model
    looks the same in every storage convention. Task heads stay in ``tensors`` under
    their own names (role ``HEAD``): :meth:`backbone_names` leaves them out.

    ``quantization`` is the dominant GGML type name of the 2-D weights of a quantised
    checkpoint (``"Q4_K"``, ``"Q8_0"``), None for float checkpoints; ``revision`` the
    commit of a Hugging Face hub cache snapshot the model was read from.
    """

    name: str
    path: Path
    format: ModelFormat
    tensors: dict[str, TensorRef]
    files: list[Path]
    adapter: AdapterInfo | None = None
    model_card: dict[str, object] = field(default_factory=dict)
    config: dict[str, object] = field(default_factory=dict)
    # Parameters as stored, when they differ from the tensors above (an adapter stores
    # the small A and B factors, not the full-size deltas it exposes).
    stored_params: int | None = None
    buffers: dict[str, TensorRef] = field(default_factory=dict)
    tied: dict[str, str] = field(default_factory=dict)
    # The dominant GGML type of a quantised checkpoint's 2-D weights ("Q4_K", "Q8_0"),
    # None for float checkpoints: quantised models are told apart from float ones by it.
    quantization: str | None = None
    revision: str | None = None

    @property
    def is_adapter(self) -> bool:
        return self.adapter is not None

    def dtypes(self) -> list[str]:
        return sorted({t.dtype for t in self.tensors.values()})

    def backbone_names(self) -> list[str]:
        """Parameter names without the task heads, in storage order."""
        return [n for n in self.tensors if classify(n) is not LayerRole.HEAD]

    def head_names(self) -> list[str]:
        """Parameter names of the task heads (classifier, LM head, pooler ...)."""
        return [n for n in self.tensors if classify(n) is LayerRole.HEAD]

    @property
    def vocab_size(self) -> int | None:
        """Rows of the token embedding (None when there is none, e.g. an adapter)."""
        rows = [t.shape[0] for n, t in self.tensors.items() if len(t.shape) == 2 and is_vocabulary_matrix(n)]
        return max(rows) if rows else None


__all__ = ["AdapterInfo", "LoadedModel", "ModelFormat", "TensorRef", "canonical_name", "canonical_names"]
