"""The ``wild`` zoo's genealogy: what each model is, how it was made, what its card claims.

The ``small`` and ``full`` zoos are written by our own normalising writer; this one is
written only by the tools that write such files in the wild (``transformers``
``save_pretrained``, ``peft``, ``torch.save``, mergekit's formulas saved through
``save_pretrained``, llama.cpp's GGUF conventions through ``gguf``'s writer and
llama.cpp's own quantiser, and the original packaged files byte for byte).  So the
models differ the way real ones do: task heads under a ``bert.`` prefix, buffers kept
by the original file and dropped by re-saves, a resized vocabulary with tied decoder
weights, fp16/bf16 copies, adapters, merges, a layer-subset student and quantised
GGUF files.

Like :mod:`heritage.evaluation.zoo.spec`, the genealogy is data.  Names are hub-like
``org/name`` repositories whose names say what a model is for, never where it comes
from.  A model's folder (or file) under ``models/`` is its repository name.

Each model's card (``README.md`` front matter) declares lineage as the Hub records it
(``base_model``, ``base_model_relation``); most are truthful, a few are deliberately
wrong or missing, as on a real hub, and :class:`Declared` records which.

Bump :data:`WILD_SPEC_VERSION` whenever anything here or in the wild builder changes
the produced files: the cached wild zoo is keyed by it (independently of the
``small``/``full`` zoos' version).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "WILD_SPEC_VERSION",
    "WILD_KINDS",
    "RELATIONS",
    "Declared",
    "WildSpec",
    "wild_spec",
]

WILD_SPEC_VERSION = 1

# How a model was made (recorded as ``kind`` in truth.json).
WILD_KINDS = (
    "pretrained",  # the packaged original, byte for byte or re-saved from another format
    "full_finetune",  # every weight trained (a task head added or kept)
    "merged_lora",  # PEFT LoRA trained, merge_and_unload(), save_pretrained
    "lora_adapter",  # PEFT LoRA saved unmerged by PeftModel.save_pretrained
    "head_only",  # backbone frozen, only a (new) task head trained
    "dtype_conversion",  # the parent cast to a lower precision and re-saved
    "merge",  # mergekit linear / SLERP of two parents
    "layer_subset_student",  # some of the teacher's layers copied, then distilled
    "gguf_quantization",  # GGUF written like llama.cpp's converter, quantised
    "unrelated",  # same architecture as a family, independent random init
)

# Our relation words (the shared interface); the Hub's card words map onto them.
RELATIONS = ("finetune", "adapter", "merge", "quantization", "conversion", "head_only", "distillation")

_RELATION_OF_KIND = {
    "full_finetune": "finetune",
    "merged_lora": "finetune",
    "lora_adapter": "adapter",
    "head_only": "head_only",
    "dtype_conversion": "conversion",
    "merge": "merge",
    "layer_subset_student": "distillation",
    "gguf_quantization": "quantization",
}

# Learning rates: like the small zoo's, large enough that a child is a real fine-tune,
# small enough that siblings stay nearer their parent than their cousins.
_FULL_LR = 5e-5
_LORA_LR = 5e-4


@dataclass(frozen=True)
class Declared:
    """What a model's own files claim about its lineage, and whether that is true.

    ``base_model`` uses Hub ids (``org/name``); ``relation`` the Hub's words
    (``finetune``, ``adapter``, ``merge``, ``quantized``).  ``card`` False means no
    ``README.md`` is written at all.  ``truthful`` False marks a deliberately wrong
    declaration; ``issue`` says what is wrong with it.
    """

    base_model: tuple[str, ...] = ()
    relation: str | None = None
    card: bool = True
    truthful: bool = True
    issue: str | None = None


@dataclass(frozen=True)
class WildSpec:
    """One model of the wild zoo.

    ``parents`` holds one name (two for merges, none for roots); ``weights`` the merge
    weights, in the same order.  ``task`` is a task of
    :mod:`heritage.evaluation.zoo.training` (its rule also fixes the label count).
    ``save`` says which writer publishes it: ``original`` (package files copied),
    ``save_pretrained``, ``save_pretrained_sharded``, ``torch_save`` (a
    ``pytorch_model.bin`` as transformers 4.x wrote it), ``peft`` or ``gguf``.
    ``hub`` puts a copy in the Hugging Face cache folder as well; ``options`` holds
    kind-specific settings (shard size, merge method, layer map, GGUF type).
    """

    name: str
    org: str
    kind: str
    parents: tuple[str, ...] = ()
    weights: tuple[float, ...] | None = None
    task: str | None = None
    steps: int = 40
    lr: float = _FULL_LR
    seed: int = 0
    batch_size: int = 8
    seq_len: int = 32
    lora_rank: int | None = None
    dtype: str = "float32"
    save: str = "save_pretrained"
    head: str = "sequence_classification"
    source: str | None = None
    declared: Declared = field(default_factory=Declared)
    hub: bool = False
    options: tuple[tuple[str, object], ...] = ()

    @property
    def hub_id(self) -> str:
        return f"{self.org}/{self.name}"

    @property
    def entry(self) -> str:
        return self.name + (".gguf" if self.save == "gguf" else "")

    @property
    def relation(self) -> str | None:
        """Our relation word for the edge(s) to the parent(s); None for roots."""
        return _RELATION_OF_KIND.get(self.kind)

    def option(self, key: str, default: Any = None) -> Any:
        return dict(self.options).get(key, default)


ROOT_A = "all-MiniLM-L6-v2"
ROOT_B = "paraphrase-MiniLM-L3-v2"
ROOT_C = "SmolLM2-135M-Instruct"
_ST = "sentence-transformers"


def _ft(name: str, org: str, parent: str, task: str, seed: int, **kw: object) -> WildSpec:
    """A full fine-tune whose card truthfully names its parent."""
    kw.setdefault("declared", Declared())
    return WildSpec(name, org, "full_finetune", (parent,), task=task, seed=seed, **kw)  # type: ignore[arg-type]


def _family_a() -> list[WildSpec]:
    root_id = f"{_ST}/{ROOT_A}"
    sentiment = "lumen-labs/review-sentiment-small"
    router = "northwind-ai/ticket-router"
    return [
        # The packaged original, every file byte for byte (int64 position_ids buffer, no prefix).
        WildSpec(ROOT_A, _ST, "pretrained", save="original", head="base", source="minilm-l6",
                 declared=Declared(), hub=True),
        # Level 1: task models under the `bert.` prefix with heads of different sizes.
        _ft("review-sentiment-small", "lumen-labs", ROOT_A, "lexical", seed=101,
            declared=Declared((root_id,), "finetune")),
        _ft("ticket-router", "northwind-ai", ROOT_A, "topic", seed=102, save="save_pretrained_sharded",
            options=(("max_shard_size", "40MB"),), declared=Declared((root_id,), "finetune"), hub=True),
        _ft("spam-guard-mini", "mailshield", ROOT_A, "lexical-spam", seed=103, save="torch_save",
            declared=Declared((root_id,), "finetune")),
        _ft("intent-detector", "voicebot", ROOT_A, "topic-intent", seed=104,
            declared=Declared((root_id,))),
        # Masked LM with 8 added tokens (30530-row embeddings, decoder tied); no card at all.
        WildSpec("legal-mlm-small", "lexica", "full_finetune", (ROOT_A,), task="mlm", seed=105,
                 head="masked_lm", options=(("added_tokens", 8),),
                 declared=Declared(card=False, truthful=False, issue="no model card: lineage undeclared")),
        # Three of six layers copied into a 3-layer encoder, then distilled on the teacher.
        WildSpec("tiny-sentence-encoder", "pocketnlp", "layer_subset_student", (ROOT_A,), task="distill",
                 seed=106, lr=1e-4, head="base", options=(("layer_map", (0, 2, 4)),),
                 declared=Declared((root_id,))),
        # Level 2 under review-sentiment-small.
        _ft("movie-review-polarity", "filmbuff", "review-sentiment-small", "lexical-movies", seed=111,
            declared=Declared((root_id,), "finetune", truthful=False,
                              issue="names its grandparent (the original base) instead of its parent")),
        WildSpec("review-stars", "lumen-labs", "head_only", ("review-sentiment-small",), task="length-stars",
                 seed=112, lr=1e-3, declared=Declared((sentiment,))),
        WildSpec("sentiment-edge", "quickserve", "dtype_conversion", ("review-sentiment-small",),
                 dtype="float16", declared=Declared((sentiment,))),
        WildSpec("polarity-blend", "merge-lab", "merge", ("review-sentiment-small", "spam-guard-mini"),
                 weights=(0.6, 0.4), options=(("method", "linear"),),
                 declared=Declared((sentiment, "mailshield/spam-guard-mini"), "merge")),
        # Level 2 under ticket-router: a merged LoRA, an unmerged PEFT adapter, a SLERP merge.
        WildSpec("ticket-priority", "northwind-ai", "merged_lora", ("ticket-router",), task="topic-priority",
                 seed=121, lr=_LORA_LR, lora_rank=8, declared=Declared((router,), "finetune")),
        WildSpec("helpdesk-queue-lora", "deskhelp", "lora_adapter", ("ticket-router",), task="topic-helpdesk",
                 seed=122, lr=_LORA_LR, save="peft", lora_rank=8,
                 declared=Declared((router,), "adapter"), hub=True),
        WildSpec("support-fusion", "merge-lab", "merge", ("ticket-router", "intent-detector"),
                 weights=(0.7, 0.3), options=(("method", "slerp"), ("t", 0.3)),
                 declared=Declared((router,), "finetune", truthful=False,
                                   issue="declares a fine-tune of one parent; it is a SLERP merge of two")),
        # Same architecture as family A, independent random weights.
        WildSpec("review-filter-mini", "acme-ml", "unrelated", task="lexical-filter", seed=131, steps=30,
                 lr=1e-4, source="minilm-l6", declared=Declared()),
    ]


def _family_b() -> list[WildSpec]:
    return [
        # Re-saved by save_pretrained from the packaged ONNX export (a real format conversion).
        WildSpec(ROOT_B, _ST, "pretrained", head="base", source="minilm-l3", declared=Declared()),
        _ft("faq-matcher", "faqbot", ROOT_B, "pair", seed=201, declared=Declared((f"{_ST}/{ROOT_B}",), "finetune")),
        # Trained in float32, published in bfloat16.
        _ft("length-bucketer", "textstat", ROOT_B, "length", seed=202, dtype="bfloat16",
            declared=Declared((f"{_ST}/{ROOT_B}",), "finetune")),
        _ft("answer-ranker", "helpcenter", "faq-matcher", "pair-answers", seed=211,
            declared=Declared(("faqbot/faq-matcher",), "finetune")),
    ]


def _family_c() -> list[WildSpec]:
    chat = "shopassist/support-chat-135m"
    gguf_declared = Declared(
        (f"HuggingFaceTB/{ROOT_C}",), None, truthful=False,
        issue="GGUF metadata names the source model's own base (copied from its card by the converter)",
    )
    return [
        # Dequantised from the packaged GGUF, saved by save_pretrained in bfloat16.  Its
        # card names the real SmolLM2 base model, which is not part of the zoo.
        WildSpec(ROOT_C, "HuggingFaceTB", "pretrained", head="causal_lm", source="smollm2", dtype="bfloat16",
                 declared=Declared(("HuggingFaceTB/SmolLM2-135M",), "finetune", issue="names a model outside the zoo")),
        # SmolLM2 costs ~20x MiniLM per token: a LoRA (merged), small batches.
        WildSpec("support-chat-135m", "shopassist", "merged_lora", (ROOT_C,), task="causal", seed=301,
                 steps=30, lr=1e-3, head="causal_lm", dtype="bfloat16", lora_rank=8, batch_size=4, seq_len=32,
                 declared=Declared((f"HuggingFaceTB/{ROOT_C}",), "finetune")),
        WildSpec("pocket-chat-Q8_0", "edgequant", "gguf_quantization", ("support-chat-135m",), head="causal_lm",
                 save="gguf", options=(("quant", "Q8_0"), ("quantizer", "gguf")), declared=gguf_declared),
        WildSpec("mini-helper-Q4_K_M", "bitshrink", "gguf_quantization", ("support-chat-135m",), head="causal_lm",
                 save="gguf", options=(("quant", "Q4_K_M"), ("quantizer", "llama.cpp")), declared=gguf_declared,
                 hub=True),
        WildSpec("tiny-assistant-Q6_K", "bitshrink", "gguf_quantization", ("support-chat-135m",),
                 head="causal_lm", save="gguf", options=(("quant", "Q6_K"), ("quantizer", "llama.cpp")),
                 declared=gguf_declared),
        WildSpec("edge-chat-Q4_0", "edgequant", "gguf_quantization", ("support-chat-135m",),
                 head="causal_lm", save="gguf", options=(("quant", "Q4_0"), ("quantizer", "llama.cpp")),
                 declared=gguf_declared),
    ]


def wild_spec() -> list[WildSpec]:
    """The ordered (parents first) list of the wild zoo's models."""
    specs = _family_a() + _family_b() + _family_c()
    _validate(specs)
    return specs


def _validate(specs: list[WildSpec]) -> None:
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"duplicate wild zoo model {spec.name!r}")
        if spec.kind not in WILD_KINDS:
            raise ValueError(f"{spec.name}: unknown kind {spec.kind!r}")
        rooted = spec.kind in ("pretrained", "unrelated")
        if rooted == bool(spec.parents):
            raise ValueError(f"{spec.name}: only pretrained/unrelated models lack a parent")
        if (spec.kind == "merge") != (len(spec.parents) == 2):
            raise ValueError(f"{spec.name}: merges, and only merges, have two parents")
        if spec.kind == "merge" and (spec.weights is None or len(spec.weights) != len(spec.parents)):
            raise ValueError(f"{spec.name}: a merge needs one weight per parent")
        for parent in spec.parents:
            if parent not in seen:
                raise ValueError(f"{spec.name}: parent {parent!r} must be listed before it")
        seen.add(spec.name)
