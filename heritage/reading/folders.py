"""Model folders: Hugging Face layouts, sharded checkpoints and PEFT LoRA adapters."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from heritage.errors import ModelLoadError, UnsupportedFormatError
from heritage.reading.model import AdapterInfo, TensorRef, canonical_name
from heritage.reading.sniff import read_json

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?P<part>[AB])(?:\.[^.]+)?\.weight$")


def shard_index(folder: Path) -> Path | None:
    """The shard index file of a sharded checkpoint, if any (safetensors preferred)."""
    for pattern in ("*.safetensors.index.json", "*.bin.index.json"):
        found = sorted(folder.glob(pattern))
        if found:
            return found[0]
    return None


def shard_files(folder: Path, index_path: Path) -> list[Path]:
    index = read_json(index_path)
    weight_map = index.get("weight_map")
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelLoadError(f"{index_path.name}: missing or empty weight_map")
    files: list[Path] = []
    for shard in sorted(set(weight_map.values())):
        if not isinstance(shard, str) or "/" in shard or "\\" in shard or shard.startswith("."):
            raise ModelLoadError(f"{index_path.name}: invalid shard name {shard!r}")
        path = folder / shard
        if not path.is_file():
            raise ModelLoadError(f"{index_path.name}: shard {shard} is missing")
        files.append(path)
    return files


def single_weight_file(folder: Path) -> Path:
    """The one weights file of an unsharded folder."""
    preferred = ("model.safetensors", "pytorch_model.bin", "model.pt", "model.pth")
    for name in preferred:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in WEIGHT_SUFFIXES)
    if not candidates:
        raise UnsupportedFormatError("folder holds no weights file (.safetensors/.bin/.pt/.pth/.gguf)")
    if len(candidates) > 1:
        names = ", ".join(p.name for p in candidates[:5])
        raise UnsupportedFormatError(f"folder holds several weights files without an index: {names}")
    return candidates[0]


def adapter_info(config: dict) -> AdapterInfo:
    peft_type = str(config.get("peft_type", "LORA")).upper()
    if peft_type != "LORA":
        raise UnsupportedFormatError(f"PEFT adapter type {peft_type} is not supported (LoRA only)")
    try:
        rank = int(config.get("r", 8))
        alpha = float(config.get("lora_alpha", rank))
    except (TypeError, ValueError):
        raise ModelLoadError("adapter_config.json: r and lora_alpha must be numbers") from None
    if rank <= 0:
        raise ModelLoadError("adapter_config.json: r must be positive")
    scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
    targets = config.get("target_modules") or ()
    if isinstance(targets, str):
        targets = (targets,)
    base = config.get("base_model_name_or_path")
    return AdapterInfo(
        rank=rank,
        alpha=alpha,
        scale=scale,
        target_modules=tuple(str(t) for t in targets),
        declared_base=str(base) if base else None,
    )


def lora_deltas(raw: dict[str, TensorRef], info: AdapterInfo) -> dict[str, TensorRef]:
    """Effective weight deltas ``B @ A * scale``, named after the weights they modify."""
    parts: dict[str, dict[str, TensorRef]] = {}
    for name, ref in raw.items():
        match = _LORA_KEY.match(name)
        if match:
            parts.setdefault(match["module"], {})[match["part"]] = ref
    if not parts:
        raise ModelLoadError("adapter holds no lora_A/lora_B weights")
    deltas: dict[str, TensorRef] = {}
    for module, ab in sorted(parts.items()):
        if set(ab) != {"A", "B"}:
            raise ModelLoadError(f"adapter module {module}: lora_A or lora_B is missing")
        a, b = ab["A"], ab["B"]
        if len(a.shape) != 2 or len(b.shape) != 2 or a.shape[0] != b.shape[1]:
            raise ModelLoadError(
                f"adapter module {module}: lora_A {a.shape} and lora_B {b.shape} do not fit"
            )
        target = canonical_name(f"{module}.weight")

        def load(a=a, b=b) -> np.ndarray:
            return (b.load().astype(np.float32) @ a.load().astype(np.float32)) * np.float32(info.scale)

        deltas[target] = TensorRef(name=target, shape=(b.shape[0], a.shape[1]), dtype=a.dtype, loader=load)
    return deltas
