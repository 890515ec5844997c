"""Models that live in memory: a dict of name -> NumPy array, or a PyTorch state dict.

Why: a model being trained, or one loaded by another library, should not have to be
written to disk to be fingerprinted.  :func:`model_from_arrays` wraps the arrays in the
same lazy :class:`~heritage.reading.model.LoadedModel` the file readers build (names
canonicalised and buffers set apart the same way, values read only when the fingerprint
reads them), so the
fingerprint of a state dict equals that of the file ``torch.save`` or ``save_file``
writes from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from heritage.errors import ModelLoadError
from heritage.reading.model import LoadedModel, ModelFormat, TensorRef
from heritage.reading.parameters import split_parameters

__all__ = ["model_from_arrays"]

# NumPy dtype -> the safetensors code the file readers record.
_NUMPY_CODES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL",
}


def _is_torch_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _reference(name: str, value: Any) -> TensorRef:
    if _is_torch_tensor(value):
        from heritage.reading.torch_file import torch_dtype_code, tensor_to_float32

        return TensorRef(name=name, shape=tuple(int(d) for d in value.shape), dtype=torch_dtype_code(value),
                         loader=lambda t=value: tensor_to_float32(t))
    array = np.asarray(value)
    if array.dtype.kind not in "fiub" or array.ndim == 0:
        raise ModelLoadError(f"{name!r} is not a numeric array (got {type(value).__name__} of {array.dtype})")
    return TensorRef(name=name, shape=tuple(int(d) for d in array.shape),
                     dtype=_NUMPY_CODES.get(array.dtype.name, array.dtype.name),
                     loader=lambda a=array: np.asarray(a, dtype=np.float32))


def model_from_arrays(weights: Mapping[str, Any], name: str = "in-memory",
                      config: Mapping[str, object] | None = None) -> LoadedModel:
    """A :class:`LoadedModel` over in-memory weights.

    Parameters
    ----------
    weights : mapping of str to array
        Parameter name -> NumPy array (any numeric dtype) or ``torch.Tensor`` (a
        ``state_dict()``).  Wrapper prefixes (``module.``, ``model.``...) are removed as
        for files.
    name : str
        The model's name, which its fingerprint carries.
    config : mapping, optional
        The model's ``config.json`` content, when known: its ``model_type`` names a
        wrapper prefix, and it tells whether a missing output projection is tied.

    Raises
    ------
    ModelLoadError
        For an empty mapping, a key that is not a string or a value that is not numeric.

    Examples
    --------
    >>> import numpy as np
    >>> model = model_from_arrays({"layer.0.attention.query.weight": np.eye(4, dtype="float32")}, name="tiny")
    >>> model.name, list(model.tensors), model.tensors["layer.0.attention.query.weight"].shape
    ('tiny', ['layer.0.attention.query.weight'], (4, 4))
    """
    if not weights:
        raise ModelLoadError("no weights given")
    refs: dict[str, TensorRef] = {}
    for key, value in weights.items():
        if not isinstance(key, str):
            raise ModelLoadError(f"parameter names must be strings, got {key!r}")
        refs[key] = _reference(key, value)
    config = dict(config or {})
    tensors, buffers, tied = split_parameters(refs, config)
    return LoadedModel(name=name, path=Path(name), format=ModelFormat.IN_MEMORY, tensors=tensors, files=[],
                       config=config, buffers=buffers, tied=tied)
