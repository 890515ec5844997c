"""Opening checkpoints: one model is one file or one folder.

``load_model`` recognises, by content rather than extension:

* a safetensors file (memory-mapped, validated header);
* a PyTorch ``.pt/.pth/.bin`` (``torch.load(weights_only=True)``, memory-mapped);
* a Hugging Face folder (``config.json`` + one weights file), a sharded folder
  (``*.safetensors.index.json`` / ``pytorch_model.bin.index.json``);
* a PEFT LoRA adapter folder (``adapter_config.json`` + ``adapter_model.*``), whose
  tensors are the effective deltas ``B @ A * scale``;
* a GGUF file (llama.cpp), dequantised tensor by tensor under Hugging Face names
  (:mod:`heritage.reading.gguf_file`).

Tensor names are canonical, buffers and tied copies set apart
(:mod:`heritage.reading.parameters`); a folder inside a Hugging Face hub cache snapshot
records its revision.

Every failure is a :class:`heritage.errors.ModelLoadError` with a one-line reason.
"""

from __future__ import annotations

from pathlib import Path

from heritage.errors import ModelLoadError, UnsupportedFormatError
from heritage.reading.folders import (
    adapter_info,
    lora_deltas,
    shard_files,
    shard_index,
    single_weight_file,
)
from heritage.reading.model import (
    AdapterInfo,
    LoadedModel,
    ModelFormat,
    TensorRef,
    canonical_name,
)
from heritage.reading.gguf_file import load_gguf
from heritage.reading.hub_cache import snapshot_revision
from heritage.reading.model_card import read_model_card
from heritage.reading.parameters import split_parameters
from heritage.reading.safetensors_file import open_safetensors
from heritage.reading.sniff import FileKind, read_json, sniff_file
from heritage.reading.torch_file import open_torch

__all__ = [
    "AdapterInfo",
    "LoadedModel",
    "ModelFormat",
    "TensorRef",
    "canonical_name",
    "load_model",
    "model_name_for",
]


def model_name_for(path: Path) -> str:
    """A model's default name: its file or folder name without the extension."""
    name = path.name
    for suffix in (".safetensors", ".bin", ".pt", ".pth", ".gguf"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def open_weights_file(path: Path) -> tuple[dict[str, TensorRef], FileKind]:
    """Open one weights file by its content; raw (non-canonical) tensor names."""
    if not path.is_file():
        raise ModelLoadError(f"{path.name}: not a file")
    if path.stat().st_size == 0:
        raise ModelLoadError("empty file")
    kind = sniff_file(path)
    if kind is FileKind.SAFETENSORS:
        refs, _meta = open_safetensors(path)
        return refs, kind
    if kind in (FileKind.TORCH_ZIP, FileKind.TORCH_LEGACY):
        return open_torch(path), kind
    if kind is FileKind.ZIP:
        raise UnsupportedFormatError("a zip archive that is not a PyTorch checkpoint")
    if kind is FileKind.GGUF:
        raise UnsupportedFormatError("a GGUF file is a whole model; it cannot be one shard or an adapter")
    if kind is FileKind.ONNX:
        raise UnsupportedFormatError("ONNX graphs are not supported; export the weights to safetensors")
    if path.suffix == ".safetensors":
        # Sniffing failed on something that claims to be safetensors: report why.
        open_safetensors(path)
    raise UnsupportedFormatError("not a safetensors or PyTorch checkpoint")


def _full_model(name: str, path: Path, fmt: ModelFormat, refs: dict[str, TensorRef], files: list[Path],
                config: dict | None = None, card: dict | None = None) -> LoadedModel:
    """A full (non-adapter) model from its raw stored tensors: canonical parameters,
    buffers and tied outputs set apart (:func:`heritage.reading.parameters.split_parameters`)."""
    config = config or {}
    tensors, buffers, tied = split_parameters(refs, config)
    return LoadedModel(name=name, path=path, format=fmt, tensors=tensors, files=files,
                       model_card=card or {}, config=config, buffers=buffers, tied=tied,
                       revision=snapshot_revision(path))


def _load_file(path: Path, name: str) -> LoadedModel:
    if sniff_file(path) is FileKind.GGUF:
        model = load_gguf(path, name)
        model.revision = snapshot_revision(path)
        if model.revision is not None:  # one of several GGUF files of a hub snapshot: its card
            model.model_card = read_model_card(path.parent)
        return model
    refs, kind = open_weights_file(path)
    fmt = ModelFormat.SAFETENSORS if kind is FileKind.SAFETENSORS else ModelFormat.PYTORCH
    return _full_model(name, path, fmt, refs, [path])


def _load_adapter(folder: Path, name: str) -> LoadedModel:
    config = read_json(folder / "adapter_config.json")
    info = adapter_info(config)
    candidates = [folder / f for f in ("adapter_model.safetensors", "adapter_model.bin")]
    weights = next((p for p in candidates if p.is_file()), None)
    if weights is None:
        raise ModelLoadError("adapter folder has no adapter_model.safetensors or adapter_model.bin")
    raw, _kind = open_weights_file(weights)
    return LoadedModel(
        name=name,
        path=folder,
        format=ModelFormat.PEFT_ADAPTER,
        tensors=lora_deltas(raw, info),
        files=[folder / "adapter_config.json", weights],
        adapter=info,
        model_card=read_model_card(folder),
        config=config,
        stored_params=sum(t.numel for t in raw.values()),
        revision=snapshot_revision(folder),
    )


def _load_folder(folder: Path, name: str) -> LoadedModel:
    if (folder / "adapter_config.json").is_file():
        return _load_adapter(folder, name)
    config = read_json(folder / "config.json") if (folder / "config.json").is_file() else {}
    card = read_model_card(folder)
    index = shard_index(folder)
    if index is not None:
        files = shard_files(folder, index)
        merged: dict[str, TensorRef] = {}
        for shard in files:
            refs, _kind = open_weights_file(shard)
            overlap = merged.keys() & refs.keys()
            if overlap:
                raise ModelLoadError(f"tensor {sorted(overlap)[0]!r} appears in two shards")
            merged.update(refs)
        return _full_model(name, folder, ModelFormat.SHARDED_FOLDER, merged, [index, *files], config, card)
    weights = single_weight_file(folder)
    if sniff_file(weights) is FileKind.GGUF:
        model = load_gguf(weights, name)
        model.path, model.model_card, model.revision = folder, card, snapshot_revision(folder)
        return model
    refs, _kind = open_weights_file(weights)
    files = [weights] + ([folder / "config.json"] if config else [])
    return _full_model(name, folder, ModelFormat.HF_FOLDER, refs, files, config, card)


def load_model(path: str | Path, name: str | None = None) -> LoadedModel:
    """Open the model at ``path`` (a file or a folder) without reading its weights yet."""
    path = Path(path)
    name = name or model_name_for(path)
    try:
        if path.is_dir():
            model = _load_folder(path, name)
        elif path.is_file():
            model = _load_file(path, name)
        else:
            raise ModelLoadError(f"{path}: no such file or folder")
    except PermissionError as exc:
        raise ModelLoadError(f"permission denied: {exc.filename}") from None
    if not model.tensors:
        raise ModelLoadError("checkpoint holds no tensors")
    return model
