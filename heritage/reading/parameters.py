"""From the tensors a checkpoint stores to the parameters of the model it holds.

Writers differ in what they store besides parameters: older transformers versions save
buffers (``embeddings.position_ids``, rotary ``inv_freq``, GPT-2's causal
``attn.bias``), and a tied output projection (``lm_head.weight`` equal to the input
embedding) is stored by some writers and dropped by others. :func:`split_parameters`
gives every convention the same view: canonical names, buffers set apart, tied copies
recorded in a map instead of as tensors.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

import numpy as np

from heritage.errors import ModelLoadError
from heritage.reading.layers import is_buffer, is_vocabulary_matrix
from heritage.reading.model import TensorRef
from heritage.reading.naming import canonical_names

__all__ = ["DROPPED_OUTPUT_NAME", "find_tied_outputs", "split_parameters"]

# Output projections that transformers ties to the input embedding (``_tied_weights_keys``).
_OUTPUT_PROJECTION = re.compile(
    r"^(lm_head|lm_head\.decoder|cls\.predictions\.decoder|predictions\.decoder|vocab_projector|"
    r"generator_lm_head|embed_out|proj_out|output)\.weight$")
# Task classes whose output projection is tied by default (tie_word_embeddings=True).
_LM_ARCHITECTURE = re.compile(r"(ForCausalLM|LMHeadModel|ForMaskedLM|ForPreTraining|ForConditionalGeneration)$")
# The name recorded for a tied copy the writer dropped (transformers' causal-LM name).
DROPPED_OUTPUT_NAME = "lm_head.weight"
_SAMPLED_ROWS = 8


def _same_rows(a: TensorRef, b: TensorRef) -> bool:
    """Exact equality on a few spread rows: a stored tied copy is bit-identical, a trained
    or separately initialised head differs in every row."""
    left, right = a.load(), b.load()
    rows = np.unique(np.linspace(0, left.shape[0] - 1, _SAMPLED_ROWS).astype(int))
    return bool(np.array_equal(np.asarray(left[rows]), np.asarray(right[rows])))


def find_tied_outputs(tensors: Mapping[str, TensorRef], config: Mapping[str, object]) -> dict[str, str]:
    """``{output projection: input embedding}`` for the output projections tied to the input
    embedding: stored copies equal to it, or (by ``config``) a copy the writer dropped."""
    embeddings = [n for n, t in tensors.items() if len(t.shape) == 2 and is_vocabulary_matrix(n)]
    if not embeddings:
        return {}
    embedding = embeddings[0]
    shape = tensors[embedding].shape
    outputs = [n for n, t in tensors.items() if _OUTPUT_PROJECTION.match(n) and t.shape == shape]
    tied = {n: embedding for n in outputs if _same_rows(tensors[n], tensors[embedding])}
    if not outputs and config.get("tie_word_embeddings", True) is not False:
        architectures = config.get("architectures") or []
        if isinstance(architectures, list) and any(
                isinstance(a, str) and _LM_ARCHITECTURE.search(a) for a in architectures):
            tied[DROPPED_OUTPUT_NAME] = embedding
    return tied


def split_parameters(refs: Mapping[str, TensorRef], config: Mapping[str, object] | None = None,
                     find_ties: bool = True) -> tuple[dict[str, TensorRef], dict[str, TensorRef], dict[str, str]]:
    """``(parameters, buffers, tied)`` under canonical names (see the module docstring).

    ``config`` is the checkpoint's ``config.json`` (its ``model_type`` names a wrapper
    prefix, its ``architectures`` and ``tie_word_embeddings`` tell whether a missing output
    projection is tied). Raises :class:`ModelLoadError` when two stored tensors have the
    same canonical name.
    """
    config = config or {}
    model_type = config.get("model_type")
    names = canonical_names(refs, model_type if isinstance(model_type, str) else None)
    parameters: dict[str, TensorRef] = {}
    buffers: dict[str, TensorRef] = {}
    for raw, ref in refs.items():
        name = names[raw]
        if name in parameters or name in buffers:
            raise ModelLoadError(f"two tensors map to the same name {name!r}")
        renamed = dataclasses.replace(ref, name=name)
        (buffers if is_buffer(name, ref.dtype) else parameters)[name] = renamed
    tied = find_tied_outputs(parameters, config) if find_ties else {}
    for name in tied:
        parameters.pop(name, None)
    return parameters, buffers, tied
