"""Which role each weight plays, from its name, and which layers each metric compares.

Names follow the common Hugging Face conventions (BERT, RoBERTa, GPT-2, Llama/Mistral,
ViT, T5-ish ``q/k/v/o``). A weight that matches nothing is ``OTHER`` and is never
selected by default, so the filter really filters.
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
    OTHER = "other"


ATTENTION_ROLES = frozenset(
    {LayerRole.ATTENTION_Q, LayerRole.ATTENTION_K, LayerRole.ATTENTION_V, LayerRole.ATTENTION_O,
     LayerRole.ATTENTION_QKV}
)

# Order matters: the first matching pattern wins.
_PATTERNS: Sequence[tuple[LayerRole, re.Pattern[str]]] = [
    (LayerRole.NORM, re.compile(r"(layer_?norm|\bln_?\w*|norm\d*|\.ln\d?)\.(weight|bias)$", re.I)),
    (LayerRole.EMBEDDING, re.compile(r"(embed|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings|patch_embed|shared)\b", re.I)),
    (LayerRole.HEAD, re.compile(r"(lm_head|classifier|pooler|score|\bhead)\b", re.I)),
    (LayerRole.ATTENTION_QKV, re.compile(r"(c_attn|qkv|query_key_value|in_proj)(_weight)?\b", re.I)),
    (LayerRole.ATTENTION_Q, re.compile(r"(\bq_proj|\.query|\.q|\bwq|q_lin)\.weight$", re.I)),
    (LayerRole.ATTENTION_K, re.compile(r"(\bk_proj|\.key|\.k|\bwk|k_lin)\.weight$", re.I)),
    (LayerRole.ATTENTION_V, re.compile(r"(\bv_proj|\.value|\.v|\bwv|v_lin)\.weight$", re.I)),
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
