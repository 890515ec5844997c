"""A small zoo of models stored the way the ecosystem stores them, with known lineage.

Everything is written by the ecosystem's own writers: ``transformers``
``save_pretrained`` (task models with ``bert.``/``model.`` prefixes and new heads,
resized vocabularies, dtype conversions, a frozen-backbone head-only model, a
layer-subset student), ``peft`` (an unmerged LoRA adapter), ``safetensors`` (an original
file with its ``position_ids`` buffer, a causal LM with its tied head stored), ``gguf``
(GGUF copies as llama.cpp's converter writes them, quantised to Q8_0 and Q4_0 by
``gguf.quants``) and mergekit's formulas (linear, SLERP) applied to real fine-tunes. Every child is trained
with real AdamW steps from its parent's weights.

``build(directory)`` writes ``directory/<name>`` entries and returns the truth:
``{child: (relation, {parent: weight or None})}``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

VOCAB, HIDDEN, LAYERS, HEADS = 120, 64, 4, 4


def _bert_config(layers: int = LAYERS, vocab: int = VOCAB):
    from transformers import BertConfig

    return BertConfig(vocab_size=vocab, hidden_size=HIDDEN, num_hidden_layers=layers, num_attention_heads=HEADS,
                      intermediate_size=2 * HIDDEN, max_position_embeddings=32)


def _batch(seed: int, vocab: int = VOCAB) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab, (8, 16), generator=g), torch.randint(0, 3, (8,), generator=g)


def _train(model, seed: int, steps: int, lr: float, task: str) -> None:
    """Real AdamW steps on a synthetic task (masked LM, classification or causal LM)."""
    torch.manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(params, lr=lr)
    model.train()
    vocab = model.config.vocab_size
    for step in range(steps):
        ids, labels = _batch(seed * 1000 + step, vocab)
        if task == "mlm":
            out = model(input_ids=ids, labels=torch.where(ids % 5 == 0, ids, -100))
        elif task == "cls":
            out = model(input_ids=ids, labels=labels)
        else:
            out = model(input_ids=ids, labels=ids)
        optimiser.zero_grad()
        out.loss.backward()
        optimiser.step()
    model.eval()


def _heavy_tails(model, seed: int) -> None:
    generator = np.random.default_rng(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and "embeddings" not in name:
                values = generator.standard_t(4.0, size=tuple(p.shape)) * 0.05 / np.sqrt(2.0)
                p.copy_(torch.from_numpy(values.astype(np.float32)))


def _save(model, path: Path, dtype: torch.dtype | None = None) -> Path:
    if dtype is not None:
        model = model.to(dtype)
    model.save_pretrained(str(path))
    return path


def _state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path / "model.safetensors"))


def _linear(states: list[dict[str, torch.Tensor]], weights: list[float]) -> dict[str, torch.Tensor]:
    """mergekit ``linear`` (normalize: true): sum_i w_i * t_i / sum_i w_i, per tensor."""
    total = sum(weights)
    return {k: sum(w * s[k].float() for w, s in zip(weights, states)) / total for k in states[0]}


def _slerp_tensor(t: float, v0: np.ndarray, v1: np.ndarray, dot_threshold: float = 0.9995,
                  eps: float = 1e-8) -> np.ndarray:
    """mergekit's ``slerp`` of two tensors (lerp when they are nearly colinear)."""
    n0 = v0 / max(np.linalg.norm(v0), eps)
    n1 = v1 / max(np.linalg.norm(v1), eps)
    dot = float(np.sum(n0 * n1))
    if abs(dot) > dot_threshold:
        return (1 - t) * v0 + t * v1
    theta0 = np.arccos(dot)
    theta_t = theta0 * t
    return np.sin(theta0 - theta_t) / np.sin(theta0) * v0 + np.sin(theta_t) / np.sin(theta0) * v1


def _slerp(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], gradient: list[float]) -> dict[str, torch.Tensor]:
    """mergekit ``slerp`` with ``t`` interpolated over the layers from ``gradient``."""
    import re

    out = {}
    for key in a:
        match = re.search(r"layer\.(\d+)\.", key)
        pos = int(match.group(1)) / (LAYERS - 1) if match else 0.0
        t = float(np.interp(pos, np.linspace(0, 1, len(gradient)), gradient))
        out[key] = torch.from_numpy(_slerp_tensor(t, a[key].double().numpy(), b[key].double().numpy()).astype(np.float32))
    return out


def _from_state(cls, config, state: dict[str, torch.Tensor]):
    model = cls(config)
    model.load_state_dict(state, strict=False)
    return model


def build(directory: Path) -> dict[str, tuple[str, dict[str, float | None]]]:
    """Write the zoo into ``directory`` and return its truth (see the module docstring)."""
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import BertForMaskedLM, BertForSequenceClassification, BertModel, LlamaConfig, LlamaForCausalLM

    directory.mkdir(parents=True, exist_ok=True)
    work = directory.parent / (directory.name + "-work")
    work.mkdir(exist_ok=True)
    truth: dict[str, tuple[str, dict[str, float | None]]] = {}
    torch.manual_seed(0)

    # The pretrained root: an MLM with heavy-tailed weights, as long pretraining leaves
    # them (Student-t, std 0.05), trained a little further; shipped as the original file
    # with its int64 position_ids buffer (as sentence-transformers' files are).
    root = BertForMaskedLM(_bert_config())
    _heavy_tails(root, 0)
    _train(root, 1, 30, 1e-3, "mlm")
    root_dir = _save(root, work / "root")
    original = {k: v.contiguous() for k, v in root.bert.state_dict().items()}
    original["embeddings.position_ids"] = torch.arange(32, dtype=torch.int64)[None, :]
    save_file(original, str(directory / "root.safetensors"))

    def fine_tune(parent: Path, name: str, cls, seed: int, task: str, steps: int = 12, lr: float = 5e-4,
                  **kwargs):
        model = cls.from_pretrained(str(parent), **kwargs)
        _train(model, seed, steps, lr, task)
        return model

    cls_a = fine_tune(root_dir, "cls-a", BertForSequenceClassification, 11, "cls", num_labels=3)
    a_dir = _save(cls_a, directory / "cls-a")
    truth["cls-a"] = ("finetune", {"root": None})
    cls_b = fine_tune(root_dir, "cls-b", BertForSequenceClassification, 12, "cls", num_labels=3)
    b_dir = _save(cls_b, directory / "cls-b")
    truth["cls-b"] = ("finetune", {"root": None})
    grand = fine_tune(a_dir, "cls-a-more", BertForSequenceClassification, 13, "cls")
    _save(grand, directory / "cls-a-more")
    truth["cls-a-more"] = ("finetune", {"cls-a": None})

    # A masked LM with 8 added tokens (resized word embeddings and decoder).
    vocab = BertForMaskedLM.from_pretrained(str(root_dir))
    vocab.resize_token_embeddings(VOCAB + 8)
    _train(vocab, 14, 12, 5e-4, "mlm")
    _save(vocab, directory / "mlm-more-tokens")
    truth["mlm-more-tokens"] = ("finetune", {"root": None})

    # Head-only training: the backbone frozen, a new classifier trained.
    frozen = BertForSequenceClassification.from_pretrained(str(root_dir), num_labels=5)
    for p in frozen.bert.parameters():
        p.requires_grad = False
    _train(frozen, 15, 12, 5e-3, "cls")
    _save(frozen, directory / "head-only")
    truth["head-only"] = ("head_only", {"root": None})

    # Conversions: dtype only (the published root has no MLM head and no pooler, so neither
    # has its copy).
    _save(BertModel.from_pretrained(str(root_dir), add_pooling_layer=False), directory / "root-bf16",
          torch.bfloat16)
    truth["root-bf16"] = ("conversion", {"root": None})
    _save(BertForSequenceClassification.from_pretrained(str(a_dir)), directory / "cls-a-fp16", torch.float16)
    truth["cls-a-fp16"] = ("conversion", {"cls-a": None})

    # Merges of the two classifiers, by mergekit's formulas.
    config = BertForSequenceClassification.from_pretrained(str(a_dir)).config
    state_a, state_b = _state(a_dir), _state(b_dir)
    linear = _from_state(BertForSequenceClassification, config, _linear([state_a, state_b], [0.3, 0.7]))
    _save(linear, directory / "merge-linear")
    truth["merge-linear"] = ("merge", {"cls-a": 0.3, "cls-b": 0.7})
    slerp = _from_state(BertForSequenceClassification, config, _slerp(state_a, state_b, [0.2, 0.5, 0.8]))
    _save(slerp, directory / "merge-slerp")
    truth["merge-slerp"] = ("merge", {"cls-a": 0.5, "cls-b": 0.5})

    # A layer-subset student: blocks 0 and 2 of the root, then trained a little.
    student = BertForMaskedLM(_bert_config(layers=2))
    teacher = root.state_dict()
    kept = {0: 0, 1: 2}
    state = {}
    for key in student.state_dict():
        source = key
        for new, old in kept.items():
            source = source.replace(f"layer.{new}.", f"layer.{old}.") if f"layer.{new}." in key else source
        state[key] = teacher[source].clone()
    student.load_state_dict(state)
    _train(student, 16, 6, 2e-4, "mlm")
    _save(student, directory / "student")
    truth["student"] = ("distillation", {"root": None})

    # An unmerged LoRA adapter saved by peft, naming its base.
    base = BertForMaskedLM.from_pretrained(str(root_dir))
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]))
    _train(lora, 17, 10, 2e-3, "mlm")
    lora.save_pretrained(str(directory / "adapter"))
    config_path = directory / "adapter" / "adapter_config.json"
    import json

    data = json.loads(config_path.read_text())
    data["base_model_name_or_path"] = "root"
    config_path.write_text(json.dumps(data))
    truth["adapter"] = ("adapter", {"root": None})

    # A causal LM family: the root ties its head to the embeddings (not stored); its
    # fine-tune is stored as a plain state dict with the tied head written out.
    llama_config = LlamaConfig(vocab_size=VOCAB, hidden_size=HIDDEN, intermediate_size=2 * HIDDEN,
                               num_hidden_layers=3, num_attention_heads=HEADS, num_key_value_heads=2,
                               max_position_embeddings=32, tie_word_embeddings=True)
    llama = LlamaForCausalLM(llama_config)
    _heavy_tails(llama, 1)
    _train(llama, 21, 20, 1e-3, "clm")
    llama_dir = _save(llama, directory / "llama-root")
    tuned = LlamaForCausalLM.from_pretrained(str(llama_dir))
    _train(tuned, 22, 12, 5e-4, "clm")
    save_file({k: v.detach().clone().contiguous() for k, v in tuned.state_dict().items()},
              str(directory / "llama-tuned.safetensors"))
    truth["llama-tuned"] = ("finetune", {"llama-root": None})

    # GGUF copies of the fine-tune as llama.cpp's converter writes them (gguf's writer:
    # llama.cpp names, q/k rows permuted, the tied output left out), every matrix quantised
    # by gguf.quants: quantisation leaves under the fine-tune, not under its parent.
    from gguf_writing import Q, write_llama_gguf

    tuned_dir = _save(tuned, work / "llama-tuned")
    for quant in ("Q8_0", "Q4_0"):
        write_llama_gguf(directory / f"llama-tuned-{quant}.gguf", tuned_dir, tuned.config,
                         lambda name, data, kind=Q[quant]: kind)
        truth[f"llama-tuned-{quant}"] = ("quantization", {"llama-tuned": None})
    return truth
