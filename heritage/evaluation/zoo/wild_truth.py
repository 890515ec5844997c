"""What ``truth.json`` says about each published wild-zoo model, read back from its files.

The builder (:mod:`heritage.evaluation.zoo.wild`) decides what to make; this module
describes what was made: parameter counts, architecture and label count read from the
written files, the layout and writer of each spec, its declared lineage, and the
``truth.json`` document (models, families, edges with ``relation`` and ``weight``, the
hub-cache repositories and the library versions that wrote everything).
"""

from __future__ import annotations

import json
import struct
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from heritage.evaluation.zoo.wild_spec import WILD_SPEC_VERSION, WildSpec

__all__ = [
    "stored_parameters",
    "head_rows",
    "architecture",
    "format_of",
    "writer_of",
    "declared_of",
    "size_of",
    "truth_document",
]


# truth.json build key -> distribution of the libraries that wrote the zoo's files.
_WRITERS = {
    "transformers": "transformers",
    "peft": "peft",
    "huggingface_hub": "huggingface_hub",
    "gguf": "gguf",
    "llama_cpp_python": "llama-cpp-python",
}


def _safetensors_header(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        return json.loads(handle.read(size))


def stored_parameters(path: Path) -> int:
    """Number of values stored in a published model (all tensors, buffers included)."""
    if path.suffix == ".gguf":
        import gguf

        return sum(int(np.prod(t.shape)) for t in gguf.GGUFReader(str(path)).tensors)
    files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
    total = 0
    for file in files:
        if file.suffix == ".safetensors":
            for key, info in _safetensors_header(file).items():
                if key != "__metadata__":
                    total += int(np.prod(info["shape"]))
        else:
            total += sum(t.numel() for t in torch.load(str(file), map_location="cpu", weights_only=True).values())
    return total


def head_rows(path: Path, key: str = "classifier.weight") -> int | None:
    """Rows of a published folder's ``key`` tensor (a classifier's label count), if it has one."""
    if not path.is_dir():
        return None
    for file in sorted(path.glob("*.safetensors")):
        info = _safetensors_header(file).get(key)
        if info is not None:
            return int(info["shape"][0])
    for file in sorted(path.glob("*.bin")):
        state = torch.load(str(file), map_location="cpu", weights_only=True)
        if key in state:
            return int(state[key].shape[0])
    return None


def architecture(path: Path) -> str:
    if path.suffix == ".gguf":
        import gguf

        return str(gguf.GGUFReader(str(path)).fields["general.architecture"].contents())
    config = path / "config.json"
    if config.is_file():
        return json.loads(config.read_text())["architectures"][0]
    adapter = json.loads((path / "adapter_config.json").read_text())
    return f"peft-{adapter['peft_type'].lower()}"




def format_of(spec: WildSpec) -> str:
    return {
        "original": "hf_folder",
        "save_pretrained": "hf_folder",
        "save_pretrained_sharded": "sharded_folder",
        "torch_save": "hf_folder_bin",
        "peft": "peft_adapter",
        "gguf": "gguf",
    }[spec.save]


def writer_of(spec: WildSpec) -> str:
    if spec.save == "original":
        return "original file"
    if spec.save == "torch_save":
        return "torch.save (pytorch_model.bin as transformers 4.x saved it) + transformers config"
    if spec.save == "peft":
        return "peft PeftModel.save_pretrained"
    if spec.save == "gguf":
        return "llama.cpp llama_model_quantize" if spec.option("quantizer") == "llama.cpp" else "gguf GGUFWriter"
    if spec.kind == "merge":
        return "mergekit formula + transformers save_pretrained"
    return "transformers save_pretrained"


def declared_of(spec: WildSpec) -> dict[str, Any]:
    declared = spec.declared
    if spec.save == "gguf":
        where = "gguf metadata (general.base_model.*)"
    elif spec.save == "peft":
        where = "README.md (written by peft) and adapter_config.json"
    elif spec.save == "original":
        where = "README.md (original)"
    else:
        where = "README.md" if declared.card else None
    return {
        "source": where,
        "base_model": list(declared.base_model) or None,
        "base_model_relation": declared.relation,
        "truthful": declared.truthful,
        "issue": declared.issue,
    }


def size_of(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def truth_document(
    records: list[dict[str, Any]], hub: list[dict[str, Any]], seconds: float, threads: int
) -> dict[str, Any]:
    """``truth.json``: the other zoos' structure plus one edge per parent with its relation
    and weight (null except for merge parents), the hub cache and the writers' versions."""
    families: dict[str, list[str]] = {}
    for record in records:
        families.setdefault(record["family"], []).append(record["name"])
    edges = [
        {"parent": parent["name"], "child": record["name"], "relation": parent["relation"], "weight": parent["weight"]}
        for record in records
        for parent in record["parents"]
    ]
    versions = {"torch": torch.__version__}
    versions.update({key: metadata.version(dist) for key, dist in _WRITERS.items()})
    return {
        "size": "wild",
        "spec_version": WILD_SPEC_VERSION,
        "models": records,
        "families": list(families.values()),
        "edges": edges,
        "hub": {"folder": "hub", "repos": hub},
        "build": {**versions, "threads": threads, "seconds": round(seconds, 1)},
    }

