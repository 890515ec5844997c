"""Real gradient fine-tuning on synthetic tasks: full fine-tunes and LoRA.

The zoo's value as ground truth depends on children being produced the way real
children are: AdamW steps on a task, starting from the parent's published weights.
The tasks are synthetic (random token sequences from the model's vocabulary labelled
by a per-task rule) because no data set is reachable offline; what matters for
lineage recovery is that different children see different gradients, which they do
as soon as the labelling rule or the seed differs.

A classification head on the mean-pooled encoder output is trained alongside and then
thrown away, as happens when a task head is not published with the backbone.
"""

from __future__ import annotations

import logging
import math
import zlib
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch
from torch import nn
from torch.nn import functional as F

from heritage.evaluation.zoo.bert import mean_pool

__all__ = ["TrainConfig", "TASKS", "LoraWeights", "full_finetune", "lora_finetune", "make_batch", "task_classes"]

log = logging.getLogger(__name__)

# Token ids below this are special / unused in the BERT and SmolLM vocabularies.
_FIRST_TOKEN = 1000


@dataclass(frozen=True)
class TrainConfig:
    """How one child was trained; recorded verbatim in ``truth.json``."""

    task: str
    steps: int
    lr: float
    seed: int
    batch_size: int = 8
    seq_len: int = 32
    lora_rank: int | None = None
    lora_alpha: int | None = None

    def to_json(self) -> dict[str, object]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def _task_rng(task: str) -> torch.Generator:
    """A generator fixed by the task name alone, so a rule is the same in every child."""
    return torch.Generator().manual_seed(zlib.crc32(task.encode()))


def _lexical(ids: torch.Tensor, mask: torch.Tensor, vocab: int, task: str) -> torch.Tensor:
    """Sentiment-like: every token carries a hidden polarity; label = sign of the mean."""
    polarity = torch.randn(vocab, generator=_task_rng(task))
    score = (polarity[ids] * mask).sum(1) / mask.sum(1)
    return (score > 0).long()


def _topic(ids: torch.Tensor, mask: torch.Tensor, vocab: int, task: str) -> torch.Tensor:
    """Topic-like: tokens belong to one of four topics; label = the most frequent one."""
    topic = torch.randint(0, 4, (vocab,), generator=_task_rng(task))
    counts = F.one_hot(topic[ids], 4) * mask.unsqueeze(-1)
    return counts.sum(1).argmax(1)


def _position(ids: torch.Tensor, mask: torch.Tensor, vocab: int, task: str) -> torch.Tensor:
    """Word-order sensitive: is the first token 'larger' than the last real one?"""
    rank = torch.randperm(vocab, generator=_task_rng(task))
    last = ids.gather(1, (mask.sum(1, keepdim=True) - 1).long())
    return (rank[ids[:, 0]] > rank[last[:, 0]]).long()


def _length(ids: torch.Tensor, mask: torch.Tensor, vocab: int, task: str) -> torch.Tensor:
    """Length buckets: uses the attention mask rather than the tokens."""
    half = ids.shape[1] / 2  # lengths are drawn from [half, seq_len]
    edges = torch.tensor([half + half / 3, half + 2 * half / 3])
    return torch.bucketize(mask.sum(1).float(), edges)


def _pair(ids: torch.Tensor, mask: torch.Tensor, vocab: int, task: str) -> torch.Tensor:
    """NLI-like: do the two halves of the sequence share a hidden token class?"""
    klass = torch.randint(0, 3, (vocab,), generator=_task_rng(task))
    half = ids.shape[1] // 2
    left = F.one_hot(klass[ids[:, :half]], 3).sum(1).argmax(1)
    right = F.one_hot(klass[ids[:, half:]], 3).sum(1).argmax(1)
    return (left - right) % 3


_RULES: dict[str, tuple[Callable[..., torch.Tensor], int]] = {
    "lexical": (_lexical, 2),
    "topic": (_topic, 4),
    "position": (_position, 2),
    "length": (_length, 3),
    "pair": (_pair, 3),
}


def _rule(task: str) -> tuple[Callable[..., torch.Tensor], int]:
    """A task is ``<rule>`` or ``<rule>-<variant>``; the variant reseeds the rule."""
    rule = task.split("-", 1)[0]
    if rule not in _RULES:
        raise ValueError(f"unknown task {task!r}; rules are {sorted(_RULES)}")
    return _RULES[rule]


TASKS = tuple(_RULES)


def task_classes(task: str) -> int:
    """How many labels ``task`` (``<rule>`` or ``<rule>-<variant>``) has."""
    return _rule(task)[1]


def make_batch(
    task: str, vocab: int, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One batch ``(input_ids, attention_mask, labels)`` of right-padded random sequences."""
    ids = torch.randint(_FIRST_TOKEN, vocab, (batch_size, seq_len), generator=generator)
    lengths = torch.randint(seq_len // 2, seq_len + 1, (batch_size,), generator=generator)
    mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).long()
    ids = ids * mask  # pad id 0
    rule, _ = _rule(task)
    return ids, mask, rule(ids, mask, vocab, task)


def _train(
    model: nn.Module,
    trainable: Iterable[nn.Parameter],
    cfg: TrainConfig,
    weight_decay: float,
) -> None:
    """The shared AdamW loop; the head is created here and discarded afterwards."""
    torch.manual_seed(cfg.seed)  # head init and dropout
    data = torch.Generator().manual_seed(cfg.seed)
    _, classes = _rule(cfg.task)
    head = nn.Linear(model.config.hidden_size, classes)
    params = [p for p in trainable] + list(head.parameters())
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=weight_decay)
    model.train()
    for step in range(cfg.steps):
        ids, mask, labels = make_batch(cfg.task, model.config.vocab_size, cfg.batch_size, cfg.seq_len, data)
        logits = head(mean_pool(model(ids, mask), mask))
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step == 0 or step == cfg.steps - 1:
            log.debug("task %s step %d loss %.4f", cfg.task, step, loss.item())
    model.eval()


def full_finetune(model: nn.Module, cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """Train every weight of ``model`` in place; returns a detached copy of its state."""
    for p in model.parameters():
        p.requires_grad_(True)
    _train(model, model.parameters(), cfg, weight_decay=0.01)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@dataclass
class LoraWeights:
    """Trained low-rank factors per adapted module: ``W' = W + B @ A * alpha / r``."""

    rank: int
    alpha: int
    factors: dict[str, tuple[torch.Tensor, torch.Tensor]]  # module path -> (A: r x in, B: out x r)

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank

    def merged(self, base: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The full checkpoint a ``merge_and_unload()`` would publish."""
        state = dict(base)
        for path, (a, b) in self.factors.items():
            key = f"{path}.weight"
            state[key] = (base[key].double() + (b.double() @ a.double()) * self.scaling).to(base[key].dtype)
        return state

    def peft_state_dict(self) -> dict[str, torch.Tensor]:
        """Keys as PEFT saves them in ``adapter_model.safetensors``."""
        out: dict[str, torch.Tensor] = {}
        for path, (a, b) in self.factors.items():
            out[f"base_model.model.{path}.lora_A.weight"] = a.contiguous()
            out[f"base_model.model.{path}.lora_B.weight"] = b.contiguous()
        return out


def lora_finetune(
    model: nn.Module, cfg: TrainConfig, targets: tuple[str, ...] = ("query", "value")
) -> LoraWeights:
    """Train LoRA factors on the linear layers whose name ends with one of ``targets``.

    The base weights stay frozen; the low-rank update is added through forward hooks so
    the module tree (and therefore the state-dict names) is untouched.  Initialisation
    follows PEFT: ``A`` Kaiming-uniform, ``B`` zero, so training starts at the parent.
    """
    if cfg.lora_rank is None or cfg.lora_alpha is None:
        raise ValueError("LoRA training needs lora_rank and lora_alpha")
    torch.manual_seed(cfg.seed + 7919)  # factor init, independent of the data stream
    for p in model.parameters():
        p.requires_grad_(False)
    scaling = cfg.lora_alpha / cfg.lora_rank
    factors: dict[str, tuple[nn.Parameter, nn.Parameter]] = {}
    hooks = []
    for path, module in model.named_modules():
        if isinstance(module, nn.Linear) and path.rsplit(".", 1)[-1] in targets:
            a = nn.Parameter(torch.empty(cfg.lora_rank, module.in_features))
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))
            b = nn.Parameter(torch.zeros(module.out_features, cfg.lora_rank))
            factors[path] = (a, b)
            hooks.append(
                module.register_forward_hook(
                    lambda _m, inputs, output, a=a, b=b: output + (inputs[0] @ a.T @ b.T) * scaling
                )
            )
    if not factors:
        raise ValueError(f"no linear layer named {targets} to adapt")
    try:
        _train(model, [p for pair in factors.values() for p in pair], cfg, weight_decay=0.0)
    finally:
        for hook in hooks:
            hook.remove()
    return LoraWeights(
        cfg.lora_rank,
        cfg.lora_alpha,
        {path: (a.detach().clone(), b.detach().clone()) for path, (a, b) in factors.items()},
    )
