"""Write a state dict in each checkpoint layout people actually publish.

Lineage recovery has to cope with whatever it is handed, so the zoo deliberately
spreads its models over the common layouts: a single safetensors file, PyTorch
pickles (``.bin`` / ``.pt``), a Hugging Face folder with ``config.json`` and a model
card, a sharded folder with an index, and an unmerged PEFT LoRA adapter.  Every
writer produces exactly the files the real tools would, with the same key names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import save_file

__all__ = [
    "DTYPES",
    "cast_state",
    "write_safetensors",
    "write_pytorch",
    "write_hf_folder",
    "write_sharded_folder",
    "write_peft_adapter",
    "model_card",
]

DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}

# What ``transformers`` writes into a safetensors header.
_ST_METADATA = {"format": "pt"}


def cast_state(state: Mapping[str, torch.Tensor], dtype: str) -> dict[str, torch.Tensor]:
    """Contiguous copies in ``dtype`` (one of :data:`DTYPES`), as a publisher would save."""
    target = DTYPES[dtype]
    return {key: value.detach().to(target).contiguous() for key, value in state.items()}


def write_safetensors(state: Mapping[str, torch.Tensor], path: Path) -> None:
    save_file(dict(state), str(path), metadata=_ST_METADATA)


def write_pytorch(state: Mapping[str, torch.Tensor], path: Path) -> None:
    """A plain ``torch.save(state_dict)``: loadable with ``torch.load(weights_only=True)``."""
    # Clone so that no tensor drags a larger shared storage into the pickle.
    torch.save({key: value.clone() for key, value in state.items()}, str(path))


def model_card(name: str, parent: str | None, description: str, library_name: str, tags: list[str]) -> str:
    """A README.md with the Hugging Face YAML front matter lineage tools read.

    ``base_model`` / ``base_model_relation`` are how the Hub records lineage; only
    some real cards fill them in, so the zoo writes them in its HF folders alone.
    """
    lines = ["---", f"library_name: {library_name}"]
    if parent is not None:
        lines += [f"base_model: {parent}", "base_model_relation: finetune"]
    lines += ["tags:"] + [f"- {tag}" for tag in tags] + ["---", "", f"# {name}", "", description, ""]
    return "\n".join(lines)


def _write_folder_common(folder: Path, config: Mapping[str, Any], card: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    if card is not None:
        (folder / "README.md").write_text(card)


def write_hf_folder(
    state: Mapping[str, torch.Tensor], folder: Path, config: Mapping[str, Any], card: str | None
) -> None:
    """``config.json`` + ``model.safetensors`` (+ ``README.md``), like ``save_pretrained``."""
    _write_folder_common(folder, config, card)
    write_safetensors(state, folder / "model.safetensors")


def _shards(state: Mapping[str, torch.Tensor], count: int) -> list[dict[str, torch.Tensor]]:
    """Split keys, in order, into ``count`` groups of roughly equal byte size."""
    total = sum(t.numel() * t.element_size() for t in state.values())
    shards: list[dict[str, torch.Tensor]] = [{} for _ in range(count)]
    done = 0
    for key, tensor in state.items():
        index = min(count - 1, done * count // max(total, 1))
        shards[index][key] = tensor
        done += tensor.numel() * tensor.element_size()
    return [shard for shard in shards if shard]


def write_sharded_folder(
    state: Mapping[str, torch.Tensor],
    folder: Path,
    config: Mapping[str, Any],
    card: str | None,
    backend: str = "safetensors",
    shards: int = 2,
) -> None:
    """A sharded ``save_pretrained`` folder: numbered shards plus a ``weight_map`` index."""
    _write_folder_common(folder, config, card)
    if backend == "safetensors":
        stem, ext, index_name = "model", "safetensors", "model.safetensors.index.json"
    elif backend == "pytorch":
        stem, ext, index_name = "pytorch_model", "bin", "pytorch_model.bin.index.json"
    else:
        raise ValueError(f"unknown shard backend {backend!r}")
    groups = _shards(state, shards)
    weight_map: dict[str, str] = {}
    for number, group in enumerate(groups, start=1):
        filename = f"{stem}-{number:05d}-of-{len(groups):05d}.{ext}"
        if backend == "safetensors":
            write_safetensors(group, folder / filename)
        else:
            write_pytorch(group, folder / filename)
        weight_map.update(dict.fromkeys(group, filename))
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / index_name).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")


def write_peft_adapter(
    adapter_state: Mapping[str, torch.Tensor],
    folder: Path,
    *,
    rank: int,
    alpha: int,
    target_modules: list[str],
    base_model_name_or_path: str,
) -> None:
    """An unmerged LoRA adapter exactly as ``PeftModel.save_pretrained`` lays it out."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "peft_type": "LORA",
        "task_type": "FEATURE_EXTRACTION",
        "base_model_name_or_path": base_model_name_or_path,
        "r": rank,
        "lora_alpha": alpha,
        "lora_dropout": 0.0,
        "target_modules": list(target_modules),
        "bias": "none",
        "fan_in_fan_out": False,
        "inference_mode": True,
        "init_lora_weights": True,
        "modules_to_save": None,
    }
    (folder / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    write_safetensors(adapter_state, folder / "adapter_model.safetensors")
