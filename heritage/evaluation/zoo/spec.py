"""The zoo's genealogies: which model is trained from which, how, and saved how.

The spec is data, not code, so the ground truth can be read at a glance and the
builder stays generic.  Entries are listed parents-first.  Design rules behind it:

* two (``full``: three) families with different pretrained roots, plus an unrelated
  model that shares family A's architecture but none of its weights, so recovery
  must separate families by weights rather than by shape;
* three levels at least, with full fine-tunes and merged LoRA children mixed at
  every level, because they move weights very differently (dense vs. low-rank);
* every layout and dtype a recovery tool must read (safetensors, ``.bin``, ``.pt``,
  Hugging Face folders, sharded folders, a PEFT adapter; fp32, fp16, bf16);
* children differ by task and seed; names say what a model is for, not where it
  comes from, so they give nothing away about lineage.

Bump :data:`SPEC_VERSION` whenever anything here (or in training) changes the
produced weights: cached zoos are keyed by it.
"""

from __future__ import annotations

from dataclasses import dataclass

from heritage.evaluation.zoo.training import TrainConfig

__all__ = ["SPEC_VERSION", "SIZES", "KINDS", "FORMATS", "ModelSpec", "zoo_spec"]

SPEC_VERSION = 4
SIZES = ("small", "full")
KINDS = ("pretrained", "full_finetune", "merged_lora", "lora_adapter", "unrelated")
FORMATS = ("safetensors", "pytorch", "hf_folder", "sharded_folder", "peft_adapter")

# Learning rates chosen so a child's attention matrices move by ~1e-3..1e-2 relative
# to its parent (measured on MiniLM-L6 at batch 8, seq 32): enough to be a real
# fine-tune, small enough that siblings stay closer to their parent than to cousins.
_FULL_LR = 5e-5
_LORA_LR = 5e-4


@dataclass(frozen=True)
class ModelSpec:
    """One zoo model.

    ``source`` names the pretrained loader for ``pretrained`` models and the
    architecture to copy for ``unrelated`` ones; ``suffix`` is the file extension of
    single-file formats (folders have none).
    """

    name: str
    kind: str
    format: str
    parent: str | None = None
    train: TrainConfig | None = None
    source: str | None = None
    init_seed: int | None = None
    dtype: str = "float32"
    suffix: str = ""
    shard_backend: str = "safetensors"

    @property
    def entry(self) -> str:
        return self.name + self.suffix


def _full(
    name: str, parent: str, fmt: str, task: str, seed: int, steps: int = 40, lr: float = _FULL_LR, **kw: str
) -> ModelSpec:
    return ModelSpec(name, "full_finetune", fmt, parent, TrainConfig(task, steps, lr, seed), **kw)


def _lora(
    name: str, parent: str, fmt: str, task: str, seed: int, rank: int = 8, lr: float = _LORA_LR, **kw: str
) -> ModelSpec:
    train = TrainConfig(task, 40, lr, seed, lora_rank=rank, lora_alpha=2 * rank)
    return ModelSpec(name, "merged_lora", fmt, parent, train, **kw)


def _adapter(name: str, parent: str, task: str, seed: int, rank: int = 8) -> ModelSpec:
    train = TrainConfig(task, 40, _LORA_LR, seed, lora_rank=rank, lora_alpha=2 * rank)
    return ModelSpec(name, "lora_adapter", "peft_adapter", parent, train)


def _smol_lora(name: str, task: str, seed: int) -> ModelSpec:
    # A higher rate than MiniLM's: the update must stand out from bf16 rounding.
    train = TrainConfig(task, 30, 1e-3, seed, batch_size=4, seq_len=16, lora_rank=8, lora_alpha=16)
    return ModelSpec(name, "merged_lora", "safetensors", ROOT_C, train, dtype="bfloat16", suffix=".safetensors")


_ST = {"suffix": ".safetensors"}
_BIN = {"suffix": ".bin"}
_PT = {"suffix": ".pt"}

ROOT_A = "all-MiniLM-L6-v2"
ROOT_B = "paraphrase-MiniLM-L3-v2"
ROOT_C = "SmolLM2-135M-Instruct"


def _small() -> list[ModelSpec]:
    return [
        # Family A: all-MiniLM-L6-v2, three levels plus an adapter.
        ModelSpec(ROOT_A, "pretrained", "safetensors", source="minilm-l6", **_ST),
        _full("minilm-l6-sentiment", ROOT_A, "hf_folder", "lexical", seed=11),
        _lora("minilm-l6-topics", ROOT_A, "pytorch", "topic", seed=12, **_BIN),
        _full(
            "minilm-l6-reviews", "minilm-l6-sentiment", "sharded_folder", "lexical-reviews", seed=13,
            dtype="float16",
        ),
        _full("minilm-l6-news", "minilm-l6-topics", "pytorch", "topic-news", seed=14, dtype="bfloat16", **_PT),
        _adapter("minilm-l6-order-adapter", "minilm-l6-sentiment", "position", seed=15),
        # Family B: paraphrase-MiniLM-L3-v2 recovered from ONNX, three levels.
        ModelSpec(ROOT_B, "pretrained", "hf_folder", source="minilm-l3"),
        _full("minilm-l3-length", ROOT_B, "safetensors", "length", seed=21, dtype="float16", **_ST),
        _lora("minilm-l3-pairs", ROOT_B, "safetensors", "pair", seed=22, **_ST),
        _full("minilm-l3-entailment", "minilm-l3-pairs", "pytorch", "pair-entailment", seed=23, **_PT),
        # Same architecture as A, independent weights.
        ModelSpec(
            "bert-l6-scratch", "unrelated", "safetensors", train=TrainConfig("lexical", 30, 1e-4, 31),
            source="minilm-l6", init_seed=1031, **_ST,
        ),
    ]


def _full_size() -> list[ModelSpec]:
    a = [
        ModelSpec(ROOT_A, "pretrained", "safetensors", source="minilm-l6", **_ST),
        # Four children: two full fine-tunes, two merged LoRAs.
        _full("minilm-l6-sentiment", ROOT_A, "hf_folder", "lexical", seed=11),
        _lora("minilm-l6-topics", ROOT_A, "pytorch", "topic", seed=12, **_BIN),
        _full("minilm-l6-order", ROOT_A, "safetensors", "position", seed=16, lr=3e-5, dtype="bfloat16", **_ST),
        _lora("minilm-l6-nli", ROOT_A, "hf_folder", "pair", seed=17, rank=16),
        # Grandchildren, 2-3 per child, mixed methods, layouts and dtypes.
        _full(
            "minilm-l6-reviews", "minilm-l6-sentiment", "sharded_folder", "lexical-reviews", seed=13,
            dtype="float16",
        ),
        _lora("minilm-l6-tweets", "minilm-l6-sentiment", "safetensors", "lexical-tweets", seed=18, **_ST),
        _full("minilm-l6-finance", "minilm-l6-sentiment", "pytorch", "lexical-finance", seed=19, steps=50, **_PT),
        _full("minilm-l6-news", "minilm-l6-topics", "pytorch", "topic-news", seed=14, dtype="bfloat16", **_PT),
        _full("minilm-l6-science", "minilm-l6-topics", "safetensors", "topic-science", seed=20, lr=8e-5, **_ST),
        _lora("minilm-l6-sports", "minilm-l6-topics", "hf_folder", "topic-sports", seed=24, rank=4),
        _full(
            "minilm-l6-syntax", "minilm-l6-order", "sharded_folder", "position-syntax", seed=25,
            shard_backend="pytorch",
        ),
        _lora("minilm-l6-grammar", "minilm-l6-order", "safetensors", "position-grammar", seed=26, **_ST),
        _full(
            "minilm-l6-contradiction", "minilm-l6-nli", "safetensors", "pair-contradiction", seed=27,
            dtype="float16", **_ST,
        ),
        _full("minilm-l6-paraphrase", "minilm-l6-nli", "pytorch", "pair-paraphrase", seed=28, **_BIN),
        _lora("minilm-l6-qa", "minilm-l6-nli", "pytorch", "pair-qa", seed=29, **_PT),
        # Unmerged adapters, one on the root and one on a child.
        _adapter("minilm-l6-order-adapter", "minilm-l6-sentiment", "position", seed=15),
        _adapter("minilm-l6-length-adapter", ROOT_A, "length", seed=30, rank=4),
    ]
    b = [
        ModelSpec(ROOT_B, "pretrained", "hf_folder", source="minilm-l3"),
        _full("minilm-l3-length", ROOT_B, "safetensors", "length", seed=21, dtype="float16", **_ST),
        _lora("minilm-l3-pairs", ROOT_B, "safetensors", "pair", seed=22, **_ST),
        _full("minilm-l3-polarity", ROOT_B, "hf_folder", "lexical-polarity", seed=32),
        _full("minilm-l3-entailment", "minilm-l3-pairs", "pytorch", "pair-entailment", seed=23, **_PT),
        _lora("minilm-l3-duplicates", "minilm-l3-pairs", "pytorch", "pair-duplicates", seed=33, **_BIN),
        _full(
            "minilm-l3-brevity", "minilm-l3-length", "safetensors", "length-brevity", seed=34,
            dtype="bfloat16", **_ST,
        ),
        _full("minilm-l3-emotion", "minilm-l3-polarity", "sharded_folder", "lexical-emotion", seed=35),
        _lora("minilm-l3-toxicity", "minilm-l3-polarity", "safetensors", "lexical-toxicity", seed=36, **_ST),
    ]
    # SmolLM2 costs ~20x MiniLM-L6 per token: LoRA children only, on smaller batches.
    c = [
        # Published in bfloat16 like the original, so bf16 children differ by training only.
        ModelSpec(ROOT_C, "pretrained", "safetensors", source="smollm2", dtype="bfloat16", **_ST),
        _smol_lora("smollm2-chat-topics", "topic", seed=41),
        _smol_lora("smollm2-chat-sentiment", "lexical", seed=42),
    ]
    unrelated = [
        ModelSpec(
            "bert-l6-scratch", "unrelated", "safetensors", train=TrainConfig("lexical", 30, 1e-4, 31),
            source="minilm-l6", init_seed=1031, **_ST,
        ),
        ModelSpec(
            "bert-l3-scratch", "unrelated", "pytorch", train=TrainConfig("topic", 30, 1e-4, 37),
            source="minilm-l3", init_seed=1037, **_BIN,
        ),
    ]
    return a + b + c + unrelated


def zoo_spec(size: str) -> list[ModelSpec]:
    """The ordered (parents first) list of models of the ``small`` or ``full`` zoo."""
    if size == "small":
        specs = _small()
    elif size == "full":
        specs = _full_size()
    else:
        raise ValueError(f"unknown zoo size {size!r}; choose from {SIZES}")
    _validate(specs)
    return specs


def _validate(specs: list[ModelSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"duplicate zoo model {spec.name!r}")
        if spec.kind not in KINDS or spec.format not in FORMATS:
            raise ValueError(f"{spec.name}: bad kind/format {spec.kind}/{spec.format}")
        rooted = spec.kind in ("pretrained", "unrelated")
        if rooted != (spec.parent is None):
            raise ValueError(f"{spec.name}: only pretrained/unrelated models lack a parent")
        if spec.parent is not None and spec.parent not in seen:
            raise ValueError(f"{spec.name}: parent {spec.parent!r} must be listed before it")
        seen.add(spec.name)


