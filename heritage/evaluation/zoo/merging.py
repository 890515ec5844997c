"""Model merges computed with mergekit's formulas, tensor by tensor.

mergekit (https://github.com/arcee-ai/mergekit) is how most merged models on the Hub
are made, but it is a large tool with its own runtime; the zoos need only three of
its methods on small state dicts, so they are re-implemented here from its source,
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
* ``ties`` (mergekit 0.1.5, ``mergekit/merge_methods/generalized_task_arithmetic.py`` with
  ``consensus_method: sum`` and ``sparsification_method: magnitude`` as registered in
  ``mergekit/merge_methods/registry.py``; the trimming is ``magnitude`` in
  ``mergekit/sparsify.py``): per tensor, task vectors ``τᵢ = Pᵢ - B`` (in the base
  tensor's dtype), each trimmed to its ``max(1, int(density·numel))`` entries of largest
  magnitude (``torch.argsort`` of ``|τᵢ|`` as float32, descending; ``density >= 1``
  keeps all), weighted ``wᵢ·τᵢ``; the elected sign per entry is that of
  ``Σ wᵢ·τᵢ`` (``>= 0`` counts as +); an entry of ``wᵢ·τᵢ`` is kept where its
  sign equals the elected one (trimmed zeros never do); the kept entries are summed
  and, with ``normalize`` (the default for ``ties``), divided by the sum of the
  weights kept there (1 where none is: the disjoint mean); multiplied by ``lambda``
  (default 1); ``B + mixed`` cast back to the base tensor's dtype.  No rescaling
  (``rescale`` defaults to false for ``ties``).

So a linear merge is exactly ``Σ wᵢ·Pᵢ / Σ wᵢ``, and a SLERP merge is, per tensor, a
combination of its two parents whose coefficients are ``1-t`` and ``t`` up to the
angle correction. A TIES merge is a combination of task vectors whose coefficients
change from entry to entry (0 where trimmed or outvoted, ``wᵢ/Σ w`` where parents
agree, 1 where one parent alone is kept), so it is close to ``B + Σ aᵢ·τᵢ`` only
on average.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

__all__ = ["linear_merge", "slerp_merge", "slerp_tensor", "ties_merge", "ties_tensor", "SLERP_DOT_THRESHOLD"]

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


def _magnitude_trim(delta: torch.Tensor, density: float) -> torch.Tensor:
    """mergekit's ``magnitude`` sparsification: keep the ``max(1, int(density * numel))``
    largest magnitudes, zero the rest (``density >= 1`` keeps everything, ``<= 0`` nothing)."""
    if density >= 1:
        return delta
    if density <= 0 or delta.numel() == 0:
        return torch.zeros_like(delta)
    k = max(1, int(density * delta.numel()))
    mask = torch.zeros(delta.numel(), dtype=delta.dtype)
    mask[torch.argsort(delta.abs().reshape(-1).float(), descending=True)[:k]] = 1
    return delta * mask.reshape_as(delta)


def ties_tensor(base: torch.Tensor, others: Sequence[torch.Tensor], weights: Sequence[float],
                densities: Sequence[float], normalize: bool = True, lambda_: float = 1.0) -> torch.Tensor:
    """TIES of one tensor: ``base`` plus the sign-elected disjoint mean of the trimmed,
    weighted task vectors of ``others`` (see the module docstring), as mergekit computes it."""
    deltas = torch.stack([_magnitude_trim(other.to(base.dtype) - base, density)
                          for other, density in zip(others, densities)], dim=0)
    w = torch.tensor(list(weights), dtype=deltas.dtype).reshape(-1, *([1] * (deltas.dim() - 1)))
    weighted = deltas * w
    majority = (weighted.sum(dim=0) >= 0).to(base.dtype) * 2 - 1
    mask = weighted.sign().to(base.dtype) == majority
    mixed = (weighted * mask).sum(dim=0)
    divisor = (w * mask).sum(dim=0)
    divisor[divisor == 0] = 1
    if normalize:
        mixed = mixed / divisor
    if lambda_ != 1:
        mixed = mixed * lambda_
    return (base + mixed).to(base.dtype)


def ties_merge(
    base: Mapping[str, torch.Tensor],
    others: Sequence[Mapping[str, torch.Tensor]],
    weights: Sequence[float],
    density: float | Sequence[float] = 1.0,
    normalize: bool = True,
    lambda_: float = 1.0,
) -> dict[str, torch.Tensor]:
    """mergekit's ``ties`` method over whole state dicts (same tensor names and shapes).

    Parameters
    ----------
    base : the ``base_model``'s state dict (task vectors are taken from it).
    others : the merged models' state dicts, in the order of ``weights``.
    weights : one mixing weight per merged model (mergekit's ``weight``).
    density : share of each task vector's entries kept, per tensor (one value, or one
        per merged model; mergekit's ``density``, default 1).
    normalize : divide by the weights kept per entry (mergekit's default for ``ties``).
    lambda_ : scale of the merged task vector (mergekit's ``lambda``, default 1).

    Returns
    -------
    dict
        The merged state dict, in the base tensors' dtypes. Tensors that are not
        floating point (integer buffers) are the base's, as mergekit never merges them.

    Examples
    --------
    >>> import torch
    >>> base = {"w": torch.zeros(4)}
    >>> a, b = {"w": torch.tensor([1.0, -2.0, 0.1, 3.0])}, {"w": torch.tensor([3.0, 1.0, 0.2, -1.0])}
    >>> # agreeing: the mean; opposed: the elected sign's value alone; 0.1 and 0.2 trimmed
    >>> ties_merge(base, [a, b], [0.5, 0.5], density=0.75)["w"]
    tensor([ 2., -2.,  0.,  3.])
    """
    if len(others) != len(weights) or not others:
        raise ValueError("one weight per merged model is needed")
    densities = [float(density)] * len(others) if isinstance(density, (int, float)) else [float(d) for d in density]
    if len(densities) != len(others):
        raise ValueError("one density per merged model is needed")
    merged: dict[str, torch.Tensor] = {}
    for key in _common_keys([base, *others]):
        if not base[key].is_floating_point():
            merged[key] = base[key].clone()
            continue
        merged[key] = ties_tensor(base[key], [other[key] for other in others], weights, densities,
                                  normalize=normalize, lambda_=lambda_)
    return merged
