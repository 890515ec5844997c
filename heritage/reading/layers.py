"""Which role each weight plays, from its name, and which layers each metric compares.

Names follow the common Hugging Face conventions (BERT, RoBERTa, GPT-2, Llama/Mistral,
ViT, T5-ish ``q/k/v/o``). A weight that matches nothing is ``OTHER`` and is never
selected by default, so the filter really filters.

Task heads (``classifier``, ``score``, ``cls.predictions``, ``lm_head``, ``qa_outputs``,
``pooler`` ...) are ``HEAD`` whatever they contain (a head's LayerNorm is part of the
head), so they stay apart from the backbone that lineage compares. Buffers
(``position_ids``, ``inv_freq``, causal masks, integer tensors: :func:`is_buffer`) are
not parameters; the loader sets them apart before anything is compared.
"""

from __future__ import annotations

import enum
import re
from functools import lru_cache
from typing import Iterable, Sequence


class LayerRole(str, enum.Enum):
    ATTENTION_Q = "attention_q"
    ATTENTION_K = "attention_k"
    ATTENTION_V = "attention_v"
    ATTENTION_O = "attention_o"
    ATTENTION_QKV = "attention_qkv"  # fused projections (GPT-2 c_attn, Falcon, ...)
    MLP = "mlp"
    EMBEDDING = "embedding"
    NORM = "norm"
    HEAD = "head"
    BUFFER = "buffer"
    OTHER = "other"


ATTENTION_ROLES = frozenset(
    {LayerRole.ATTENTION_Q, LayerRole.ATTENTION_K, LayerRole.ATTENTION_V, LayerRole.ATTENTION_O,
     LayerRole.ATTENTION_QKV}
)

# Buffers registered by transformers modules (never trained, never saved by some writers).
_BUFFER = re.compile(
    r"((^|\.)(position_ids|token_type_ids|inv_freq|masked_bias|num_batches_tracked|_float_tensor)"
    r"|(^|\.)attn\.bias|(^|\.)(causal_mask|attention_mask)|(^|\.)(rope\.freqs|rope_freqs)(\.weight)?)$")

# Task heads: the modules a task class adds next to its base model (transformers' names).
_HEAD_TOP = (
    "classifier|score|lm_head|qa_outputs|pooler|pre_classifier|cls|embed_out|proj_out|"
    "vocab_transform|vocab_layer_norm|vocab_projector|predictions|generator_predictions|"
    "generator_lm_head|discriminator_predictions|sop_classifier|seq_relationship|head|heads|"
    "dense_head|logits|output_projection"
)

# Heads a pretrained model is published with (language-model and pretraining outputs,
# poolers), as opposed to the task heads fine-tuning adds (classifier, score, qa_outputs ...).
_PRETRAINING_HEAD = re.compile(
    r"^(lm_head|cls|embed_out|proj_out|vocab_transform|vocab_layer_norm|vocab_projector|predictions|"
    r"generator_predictions|generator_lm_head|discriminator_predictions|seq_relationship|output_projection)\.|"
    r"(^|\.)(lm_head|pooler)\.", re.I)

# Order matters: the first matching pattern wins.
_PATTERNS: Sequence[tuple[LayerRole, re.Pattern[str]]] = [
    (LayerRole.BUFFER, _BUFFER),
    (LayerRole.HEAD, re.compile(rf"^({_HEAD_TOP})\.|(^|\.)(lm_head|classifier|score|qa_outputs|pre_classifier|pooler)\.", re.I)),
    (LayerRole.NORM, re.compile(r"(layer_?norm|\bln_?\w*|norm\d*|\.ln\d?)\.(weight|bias)$", re.I)),
    (LayerRole.EMBEDDING, re.compile(r"(embed|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings|patch_embed|shared)\b", re.I)),
    (LayerRole.ATTENTION_QKV, re.compile(r"(c_attn|qkv|query_key_value|in_proj)(_weight)?\b", re.I)),
    (LayerRole.ATTENTION_Q, re.compile(r"(\bq_proj|\.query|\.query_proj|\.q|\bwq|q_lin)\.weight$", re.I)),
    (LayerRole.ATTENTION_K, re.compile(r"(\bk_proj|\.key|\.key_proj|\.k|\bwk|k_lin)\.weight$", re.I)),
    (LayerRole.ATTENTION_V, re.compile(r"(\bv_proj|\.value|\.value_proj|\.v|\bwv|v_lin)\.weight$", re.I)),
    (LayerRole.ATTENTION_O, re.compile(r"(\bo_proj|out_proj|attention\.output\.dense|attn\.c_proj|self_attn\.o|\.o|\bwo|out_lin|attn\.proj)\.weight$", re.I)),
    (LayerRole.MLP, re.compile(r"(mlp|intermediate\.dense|\boutput\.dense|fc\d|gate_proj|up_proj|down_proj|c_fc|ffn|feed_forward|w[123])\b.*\.weight$", re.I)),
]


@lru_cache(maxsize=65536)
def classify(name: str) -> LayerRole:
    """The role of the parameter called ``name`` (a canonical name).

    Cached: the same names recur in every model of a family and in every pass over them.
    """
    for role, pattern in _PATTERNS:
        if pattern.search(name):
            return role
    return LayerRole.OTHER


def is_task_head(name: str) -> bool:
    """True for a task head's parameter (``classifier``, ``score``, ``qa_outputs``,
    ``pre_classifier`` ...): what fine-tuning for a task adds, unlike the language-model
    outputs and poolers pretrained models are published with.

    Examples
    --------
    >>> is_task_head("classifier.weight"), is_task_head("cls.predictions.bias"), is_task_head("pooler.dense.weight")
    (True, False, False)
    """
    return classify(name) is LayerRole.HEAD and not _PRETRAINING_HEAD.search(name)


INTEGER_DTYPES = frozenset({"I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64", "BOOL"})


def is_buffer(name: str, dtype: str) -> bool:
    """True for a tensor that is state, not a parameter: a known buffer name, or any
    integer or boolean tensor (``dtype`` as a safetensors code: ``I64``, ``BOOL`` ...)."""
    return classify(name) is LayerRole.BUFFER or dtype in INTEGER_DTYPES


_VOCABULARY = re.compile(
    r"(^|\.)(word_embeddings|embed_tokens|wte|embed_in|tok_embeddings|shared|token_embd)\.weight$")


def is_vocabulary_matrix(name: str) -> bool:
    """True for a token embedding, whose rows are vocabulary entries.

    A resized vocabulary (``resize_token_embeddings``) appends rows, so two such
    matrices are comparable on their common first rows (:func:`common_rows`)."""
    return bool(_VOCABULARY.search(name))


def common_rows(*shapes: tuple[int, ...]) -> int:
    """How many leading rows vocabulary matrices of these shapes share (0 if their
    widths differ)."""
    if not shapes or any(len(s) != 2 or s[1] != shapes[0][1] for s in shapes):
        return 0
    return min(s[0] for s in shapes)


def parse_roles(values: Iterable[str]) -> frozenset[LayerRole]:
    """Roles from user input; ``attention`` expands to every attention projection."""
    roles: set[LayerRole] = set()
    for value in values:
        value = value.strip().lower()
        if value == "attention":
            roles |= ATTENTION_ROLES
        elif value:
            roles.add(LayerRole(value))
    return frozenset(roles)


# Roles a fingerprint can hold: attention projections, or MLP matrices for models without
# attention (heritage.reading.fingerprint.fingerprint_roles). Distances compare what both hold.
FINGERPRINT_ROLES = ATTENTION_ROLES | {LayerRole.MLP}

# Default comparison layers per distance metric (see heritage.lineage.distances).
DEFAULT_ROLES: dict[str, frozenset[LayerRole]] = {
    "l2": FINGERPRINT_ROLES,
    "cosine": FINGERPRINT_ROLES,
    "rank": frozenset({LayerRole.ATTENTION_Q, LayerRole.ATTENTION_V}),
    "mother": frozenset({LayerRole.ATTENTION_Q, LayerRole.ATTENTION_K, LayerRole.ATTENTION_V,
                         LayerRole.ATTENTION_O}),
}

# Matrices whose kurtosis gives a model's direction signal (the reference uses the
# attention output projections; we use every square attention matrix, which is less noisy).
KURTOSIS_ROLES = frozenset({LayerRole.ATTENTION_Q, LayerRole.ATTENTION_K, LayerRole.ATTENTION_V,
                            LayerRole.ATTENTION_O})


# The index of a repeated block in a parameter name (``encoder.layer.3.``, ``layers.11.``,
# GPT-2's ``h.0.``): the same weight of different blocks differs only there.
BLOCK_INDEX = re.compile(r"(?:^|\.)(?:layer|layers|h|blocks|block|blk)\.(\d+)\.")


def block_index(name: str) -> int | None:
    """The repeated-block index in ``name``, or None for a weight outside the blocks."""
    match = BLOCK_INDEX.search(name)
    return int(match.group(1)) if match else None


def block_pattern(name: str) -> str:
    """``name`` with its block index replaced by ``#``: the same for that weight in every block."""
    match = BLOCK_INDEX.search(name)
    if not match:
        return name
    return name[: match.start(1)] + "#" + name[match.end(1):]

