"""Model merges computed with mergekit's formulas, tensor by tensor.

mergekit (https://github.com/arcee-ai/mergekit) is how most merged models on the Hub
are made, but it is a large tool with its own runtime; the wild zoo needs only two of
its methods on two small state dicts, so they are re-implemented here from its source,
with the same arithmetic:

* ``linear`` (``mergekit/merge_methods/linear.py``): the tensors stacked, multiplied by
  their weights (in the tensors' dtype) and summed; with ``normalize`` (mergekit's
  default) divided by the sum of the weights.
* ``slerp`` (``mergekit/merge_methods/slerp.py``): spherical interpolation from the
  base model's tensor ``v0`` to the other's ``v1`` at ``t``, computed in float32 NumPy:
  both flattened tensors normalised (norm > 1e-8), their dot product taken; above
  0.9995 in absolute value (nearly colinear) plain ``lerp`` ``(1-t)·v0 + t·v1`` of the
  unnormalised tensors; else ``sin((1-t)θ)/sin θ · v0 + sin(tθ)/sin θ · v1`` with
  ``θ = arccos(dot)``.  The result is cast back to the base tensor's dtype.

So a linear merge is exactly ``Σ wᵢ·Pᵢ / Σ wᵢ``, and a SLERP merge is, per tensor, a
combination of its two parents whose coefficients are ``1-t`` and ``t`` up to the
angle correction.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

__all__ = ["linear_merge", "slerp_merge", "slerp_tensor", "SLERP_DOT_THRESHOLD"]

SLERP_DOT_THRESHOLD = 0.9995
_EPS = 1e-8


def _common_keys(states: Sequence[Mapping[str, torch.Tensor]]) -> list[str]:
    keys = list(states[0])
    for state in states[1:]:
        if set(state) != set(keys):
            raise ValueError(f"merge inputs differ in tensors: {sorted(set(keys) ^ set(state))[:5]}")
    for key in keys:
        shapes = {tuple(state[key].shape) for state in states}
        if len(shapes) != 1:
            raise ValueError(f"merge inputs differ in shape for {key}: {sorted(shapes)}")
    return keys


def linear_merge(
    states: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float], normalize: bool = True
) -> dict[str, torch.Tensor]:
    """mergekit's ``linear`` method over whole state dicts (same tensor names and shapes).

    Parameters
    ----------
    states : the models' state dicts, in the order of ``weights``.
    weights : one mixing weight per model.
    normalize : divide by the sum of the weights (mergekit's default).

    Returns
    -------
    dict
        The merged state dict, in the inputs' dtype.

    Examples
    --------
    >>> import torch
    >>> a, b = {"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 1.0])}
    >>> linear_merge([a, b], [0.6, 0.4])["w"]
    tensor([0.6000, 0.4000])
    """
    if len(states) != len(weights) or not states:
        raise ValueError("one weight per merged model is needed")
    merged: dict[str, torch.Tensor] = {}
    for key in _common_keys(states):
        stacked = torch.stack([state[key] for state in states], dim=0)
        w = torch.tensor(list(weights), dtype=stacked.dtype)
        w = w.reshape(-1, *([1] * (stacked.dim() - 1)))
        result = (w * stacked).sum(dim=0)
        if normalize:
            result = result / w.sum(dim=0)
        merged[key] = result
    return merged


def _unit(v: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(v)
    return v / norm if norm > _EPS else v


def slerp_tensor(t: float, v0: torch.Tensor, v1: torch.Tensor) -> torch.Tensor:
    """SLERP of one tensor pair (``v0`` the base model's), as mergekit computes it."""
    a = v0.detach().float().numpy()
    b = v1.detach().float().numpy()
    dot = np.sum(_unit(a) * _unit(b))
    if np.abs(dot) > SLERP_DOT_THRESHOLD:
        result = (1 - t) * a + t * b
    else:
        theta = np.arccos(dot)
        sin_theta = np.sin(theta)
        result = np.sin(theta - theta * t) / sin_theta * a + np.sin(theta * t) / sin_theta * b
    return torch.from_numpy(np.asarray(result)).to(v0.dtype)


def slerp_merge(
    base: Mapping[str, torch.Tensor], other: Mapping[str, torch.Tensor], t: float
) -> dict[str, torch.Tensor]:
    """mergekit's ``slerp`` method: every tensor interpolated from ``base`` towards ``other``.

    Parameters
    ----------
    base : the base model's state dict (``t = 0`` returns it).
    other : the other model's state dict (``t = 1`` returns it).
    t : the interpolation factor, 0 to 1.

    Returns
    -------
    dict
        The merged state dict, in the base tensors' dtypes.

    Examples
    --------
    >>> import torch
    >>> merged = slerp_merge({"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 1.0])}, 0.5)
    >>> merged["w"]  # on the unit circle, not the chord's midpoint (0.5, 0.5)
    tensor([0.7071, 0.7071])
    """
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"SLERP needs 0 <= t <= 1, not {t}")
    return {key: slerp_tensor(t, base[key], other[key]) for key in _common_keys([base, other])}
