"""A small BERT encoder in plain PyTorch with Hugging Face ``BertModel`` key names.

The zoo fine-tunes real pretrained weights, and the checkpoints it writes must look
like the ones people publish, so the module tree below mirrors ``transformers``'
``BertModel`` attribute by attribute: ``state_dict()`` yields exactly the keys a
Hugging Face checkpoint has (``embeddings.word_embeddings.weight``,
``encoder.layer.N.attention.self.query.weight``, ...).  Writing our own encoder keeps
``transformers`` out of the dependencies; only what the zoo needs is implemented
(absolute positions, GELU, no cross-attention, no KV cache).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BertConfig", "BertModel", "mean_pool"]


@dataclass(frozen=True)
class BertConfig:
    """The subset of the Hugging Face ``BertConfig`` fields the encoder uses."""

    vocab_size: int = 30522
    hidden_size: int = 384
    num_hidden_layers: int = 6
    num_attention_heads: int = 12
    intermediate_size: int = 1536
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    layer_norm_eps: float = 1e-12
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    pad_token_id: int = 0
    add_pooler: bool = False

    @property
    def architecture(self) -> str:
        """A short architecture tag, equal for models whose weights are comparable."""
        return f"bert-L{self.num_hidden_layers}-H{self.hidden_size}"

    def to_hf_dict(self) -> dict[str, Any]:
        """The ``config.json`` a Hugging Face folder for this encoder would carry."""
        fields = asdict(self)
        fields.pop("add_pooler")
        return {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "hidden_act": "gelu",
            "initializer_range": 0.02,
            "position_embedding_type": "absolute",
            "torch_dtype": "float32",
            **fields,
        }

    @classmethod
    def from_hf_dict(cls, config: dict[str, Any]) -> "BertConfig":
        """Read the fields we know from a Hugging Face ``config.json`` dictionary."""
        known = {name for name in cls.__dataclass_fields__ if name != "add_pooler"}
        return cls(**{key: value for key, value in config.items() if key in known})


class BertEmbeddings(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(
            config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id
        )
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        hidden = (
            self.word_embeddings(input_ids)
            + self.position_embeddings(positions)[None]
            + self.token_type_embeddings.weight[0]
        )
        return self.dropout(self.LayerNorm(hidden))


class BertSelfAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.value = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout_p = config.attention_probs_dropout_prob

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = self._heads(self.query(hidden)), self._heads(self.key(hidden)), self._heads(self.value(hidden))
        context = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout_p if self.training else 0.0
        )
        batch, _, length, _ = context.shape
        return context.transpose(1, 2).reshape(batch, length, -1)


class BertSelfOutput(nn.Module):
    """Projection after attention plus the residual LayerNorm (``attention.output``)."""

    def __init__(self, config: BertConfig, in_features: int) -> None:
        super().__init__()
        self.dense = nn.Linear(in_features, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, hidden: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dropout(self.dense(hidden)) + residual)


class BertAttention(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config, config.hidden_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return self.output(self.self(hidden, mask), hidden)


class BertIntermediate(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.intermediate_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(hidden))


class BertLayer(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        # The feed-forward output block has the same shape as ``attention.output``.
        self.output = BertSelfOutput(config, config.intermediate_size)

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        attended = self.attention(hidden, mask)
        return self.output(self.intermediate(attended), attended)


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(BertLayer(config) for _ in range(config.num_hidden_layers))

    def forward(self, hidden: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        for layer in self.layer:
            hidden = layer(hidden, mask)
        return hidden


class BertPooler(nn.Module):
    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.dense(hidden[:, 0]))


class BertModel(nn.Module):
    """The encoder; ``forward`` returns the last hidden states ``(batch, seq, hidden)``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if config.add_pooler else None

    def init_weights(self, generator: torch.Generator) -> None:
        """Hugging Face's initialisation (normal(0, 0.02), zero biases, unit LayerNorms).

        Used for the zoo's unrelated models, which must share the architecture of a
        pretrained family but none of its weights.
        """
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * 0.02)
                    if isinstance(module, nn.Linear):
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
            self.embeddings.word_embeddings.weight[self.config.pad_token_id].zero_()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        mask = None
        if attention_mask is not None:
            # Additive mask broadcast over heads and query positions.
            mask = (1.0 - attention_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        return self.encoder(self.embeddings(input_ids), mask)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Sentence-transformers style mean over the non-padding positions."""
    weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def parameter_count(state_dict: dict[str, torch.Tensor]) -> int:
    """Number of scalar weights in a state dict (what ``truth.json`` calls ``params``)."""
    return int(sum(math.prod(t.shape) for t in state_dict.values()))
