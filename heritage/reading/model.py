"""What a loaded model is: an index of lazily readable tensors plus facts about its files."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np


class ModelFormat(str, enum.Enum):
    SAFETENSORS = "safetensors"
    PYTORCH = "pytorch"
    HF_FOLDER = "hf_folder"
    SHARDED_FOLDER = "sharded_folder"
    PEFT_ADAPTER = "peft_adapter"
    IN_MEMORY = "in_memory"  # arrays handed over by the caller (heritage.reading.arrays)


@dataclass(frozen=True)
class TensorRef:
    """One tensor of a checkpoint, read only when :meth:`load` is called.

    ``load`` returns float32; for float32 safetensors the array is a view of the
    memory-mapped file, so nothing is copied into RAM until it is touched.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    loader: Callable[[], np.ndarray] = field(repr=False, compare=False)

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
    or ``bert.`` removed) to lazy references. For an adapter, the tensors are the
    effective weight deltas ``B @ A * scale`` named after the weights they modify.
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

    @property
    def is_adapter(self) -> bool:
        return self.adapter is not None

    def dtypes(self) -> list[str]:
        return sorted({t.dtype for t in self.tensors.values()})


# Prefixes that wrap the same parameters under different container modules.
_WRAPPER_PREFIXES = (
    "module.",
    "base_model.model.",
    "0.auto_model.",
    "auto_model.",
    "bert.",
    "roberta.",
    "model.",
    "transformer.",
)


def canonical_name(name: str) -> str:
    """Strip container prefixes so the same weight has the same name in every format."""
    changed = True
    while changed:
        changed = False
        for prefix in _WRAPPER_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix):
                name = name[len(prefix):]
                changed = True
    return name
