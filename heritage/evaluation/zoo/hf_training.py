"""Real gradient steps on ``transformers`` models, for the wild zoo.

The wild zoo trains the task models people publish (``BertForSequenceClassification``,
``BertForMaskedLM``, ``LlamaForCausalLM``, PEFT-wrapped ones) through their own
``forward(..., labels=...)`` losses.  The data are the synthetic tasks of
:mod:`heritage.evaluation.zoo.training` (no data set is reachable offline); what matters
for lineage is that every child sees its own gradients from its parent's published
weights.  Everything is seeded: the task stream by ``seed``, dropout and any fresh
head by ``torch.manual_seed(seed)``.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from heritage.evaluation.zoo.training import make_batch

__all__ = ["train_classifier", "train_masked_lm", "train_causal_lm", "distill_student", "trainable_parameters"]

log = logging.getLogger(__name__)

_MASK_SHARE = 0.15
_IGNORE = -100  # the label transformers' losses skip

Loss = Callable[[torch.Generator], torch.Tensor]


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for p in model.parameters() if p.requires_grad]


def _loop(
    model: nn.Module,
    params: Iterable[nn.Parameter],
    loss_of_batch: Loss,
    *,
    steps: int,
    lr: float,
    seed: int,
    weight_decay: float,
) -> None:
    """The AdamW loop every wild-zoo model is trained with (clip 1.0, model left in eval mode)."""
    params = list(params)
    if not params:
        raise ValueError("nothing to train: no parameter requires a gradient")
    torch.manual_seed(seed)  # dropout
    data = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    model.train()
    for step in range(steps):
        loss = loss_of_batch(data)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step in (0, steps - 1):
            log.debug("step %d loss %.4f", step, loss.item())
    model.eval()


def train_classifier(
    model: nn.Module,
    task: str,
    *,
    vocab_size: int,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int = 8,
    seq_len: int = 32,
    weight_decay: float = 0.01,
) -> None:
    """Train a sequence classifier (or a PEFT model wrapping one) on ``task``, in place.

    Only parameters with ``requires_grad`` move, so a frozen backbone stays bit-identical.
    """

    def loss(data: torch.Generator) -> torch.Tensor:
        ids, mask, labels = make_batch(task, vocab_size, batch_size, seq_len, data)
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    _loop(model, trainable_parameters(model), loss, steps=steps, lr=lr, seed=seed, weight_decay=weight_decay)


def train_masked_lm(
    model: nn.Module,
    *,
    base_vocab: int,
    added_tokens: int,
    mask_token_id: int,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int = 8,
    seq_len: int = 32,
) -> None:
    """Masked-LM training in which the added tokens (ids ``base_vocab..``) occur and are predicted."""

    def loss(data: torch.Generator) -> torch.Tensor:
        ids, mask, _ = make_batch("lexical", base_vocab, batch_size, seq_len, data)
        if added_tokens:
            new = torch.randint(base_vocab, base_vocab + added_tokens, ids.shape, generator=data)
            use_new = (torch.rand(ids.shape, generator=data) < 0.1) & mask.bool()
            ids = torch.where(use_new, new, ids)
        masked = (torch.rand(ids.shape, generator=data) < _MASK_SHARE) & mask.bool()
        labels = torch.where(masked, ids, torch.full_like(ids, _IGNORE))
        inputs = torch.where(masked, torch.full_like(ids, mask_token_id), ids)
        return model(input_ids=inputs, attention_mask=mask, labels=labels).loss

    _loop(model, trainable_parameters(model), loss, steps=steps, lr=lr, seed=seed, weight_decay=0.01)


def train_causal_lm(
    model: nn.Module,
    *,
    vocab_size: int,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int = 4,
    seq_len: int = 32,
) -> None:
    """Next-token training on padded synthetic sequences (padding excluded from the loss)."""

    def loss(data: torch.Generator) -> torch.Tensor:
        ids, mask, _ = make_batch("lexical", vocab_size, batch_size, seq_len, data)
        labels = torch.where(mask.bool(), ids, torch.full_like(ids, _IGNORE))
        return model(input_ids=ids, attention_mask=mask, labels=labels).loss

    _loop(model, trainable_parameters(model), loss, steps=steps, lr=lr, seed=seed, weight_decay=0.0)


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


def distill_student(
    student: nn.Module,
    teacher: nn.Module,
    *,
    vocab_size: int,
    steps: int,
    lr: float,
    seed: int,
    batch_size: int = 8,
    seq_len: int = 32,
) -> None:
    """Sentence-embedding distillation: the student's mean-pooled output regresses the teacher's."""
    teacher.eval()

    def loss(data: torch.Generator) -> torch.Tensor:
        ids, mask, _ = make_batch("lexical", vocab_size, batch_size, seq_len, data)
        with torch.no_grad():
            target = _mean_pool(teacher(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
        output = _mean_pool(student(input_ids=ids, attention_mask=mask).last_hidden_state, mask)
        return F.mse_loss(output, target)

    _loop(student, trainable_parameters(student), loss, steps=steps, lr=lr, seed=seed, weight_decay=0.01)
