"""Reading PyTorch checkpoints (.pt/.pth/.bin) without ever running pickled code.

``torch.load(weights_only=True)`` only rebuilds tensors and plain containers; a pickle
that asks for anything else (a class, a function such as ``os.system``) raises instead
of executing. We memory-map zip-format checkpoints so tensors are paged in on demand.
torch is imported lazily: a safetensors-only installation never needs it.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from heritage.errors import ModelLoadError, UnsafeCheckpointError
from heritage.reading.dtypes import bf16_to_float32, f16_to_float32
from heritage.reading.model import TensorRef

log = logging.getLogger(__name__)

_TORCH_DTYPE_CODES = {
    "torch.float32": "F32",
    "torch.float16": "F16",
    "torch.bfloat16": "BF16",
    "torch.float64": "F64",
    "torch.int64": "I64",
    "torch.int32": "I32",
    "torch.int16": "I16",
    "torch.int8": "I8",
    "torch.uint8": "U8",
    "torch.bool": "BOOL",
}


def _import_torch() -> Any:
    try:
        import torch
    except ImportError:  # pragma: no cover - depends on the installation
        raise ModelLoadError(
            "reading PyTorch checkpoints needs torch: pip install 'model-heritage[torch]'"
        ) from None
    return torch


def _load_object(path: Path) -> Any:
    """``torch.load`` behind a trust boundary: a corrupt file can make it raise nearly any
    exception type, and every one of them means "not a readable checkpoint"."""
    torch = _import_torch()
    is_zip = zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as exc:
        message = str(exc)
        if "Weights only load failed" in message or "Unsupported global" in message:
            first = message.strip().splitlines()[0] if message.strip() else "unsafe pickle"
            raise UnsafeCheckpointError(
                "checkpoint refused: its pickle needs code to load (only tensors and plain "
                f"containers are allowed) [{first[:200]}]"
            ) from None
        raise ModelLoadError(f"not a readable PyTorch checkpoint: {message[:200]}") from None
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: any failure means "unreadable"
        raise ModelLoadError(
            f"not a readable PyTorch checkpoint: {type(exc).__name__}: {str(exc)[:200]}"
        ) from None


def _collect_tensors(obj: Any, prefix: str, out: dict[str, Any]) -> None:
    """Flatten nested dicts such as {"state_dict": {...}} into name -> tensor."""
    torch = _import_torch()
    if isinstance(obj, torch.Tensor):
        if prefix:
            out[prefix] = obj
        return
    if isinstance(obj, dict):
        for key, value in obj.items():
            if not isinstance(key, str):
                continue
            name = f"{prefix}.{key}" if prefix else key
            # Common checkpoint wrappers put the weights under one key.
            if not prefix and key in ("state_dict", "model", "model_state_dict", "module"):
                name = ""
            _collect_tensors(value, name, out)


def torch_dtype_code(tensor: Any) -> str:
    """The safetensors-style dtype code of a tensor (``F32``, ``BF16``...)."""
    return _TORCH_DTYPE_CODES.get(str(tensor.dtype), str(tensor.dtype))


def tensor_to_float32(tensor: Any) -> np.ndarray:
    """float32 NumPy view or copy of ``tensor``, converted by NumPy, not by torch.

    A torch operation wakes torch's thread pool, whose spinning workers then slow the
    BLAS calls of the fingerprint that follows by an order of magnitude on a small
    machine; bf16 is therefore reinterpreted as raw bits and widened like safetensors'.
    """
    torch = _import_torch()
    tensor = tensor.detach()
    if tensor.device.type != "cpu":  # a state dict taken from a model on an accelerator
        tensor = tensor.cpu()
    if tensor.dtype == torch.float32:
        return tensor.numpy()
    if tensor.dtype == torch.bfloat16:
        return bf16_to_float32(tensor.view(torch.int16).numpy().view(np.uint16))
    if tensor.dtype == torch.float16:
        return f16_to_float32(tensor.numpy())
    return tensor.numpy().astype(np.float32)


def open_torch(path: Path) -> dict[str, TensorRef]:
    """Open a PyTorch checkpoint and return lazy float32 references (raw names)."""
    obj = _load_object(path)
    found: dict[str, Any] = {}
    _collect_tensors(obj, "", found)
    if not found:
        raise ModelLoadError("PyTorch checkpoint holds no tensors")
    refs: dict[str, TensorRef] = {}
    for name, tensor in found.items():
        refs[name] = TensorRef(
            name=name,
            shape=tuple(int(d) for d in tensor.shape),
            dtype=torch_dtype_code(tensor),
            loader=lambda t=tensor: tensor_to_float32(t),
        )
    return refs
