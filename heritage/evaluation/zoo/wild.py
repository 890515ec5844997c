"""Build the ``wild`` zoo: every file written by the tool that writes such files in the wild.

Walks :func:`~heritage.evaluation.zoo.wild_spec.wild_spec` parents-first.  Every child
is made from its parent *as published*: loaded back from the parent's files with
``from_pretrained`` (the adapter's parent through the hub cache, by its Hub id, as a
user would), so a child differs from its parent by exactly what was done to it.
Writers: the packaged original files copied byte for byte; ``save_pretrained``
(single file, sharded, fp16/bf16); ``torch.save`` of the state dict for a
``pytorch_model.bin`` (current ``transformers`` writes safetensors only);
``PeftModel.save_pretrained``; mergekit's formulas (:mod:`.merging`) saved with
``save_pretrained``; GGUF through ``gguf``'s writer and llama.cpp's quantiser
(:mod:`.gguf_export`); cards through ``huggingface_hub`` (:mod:`.cards`); and a hub
cache copy of some models (:mod:`.hub_cache`).

``truth.json`` keeps the structure of the other zoos (``models``, ``families``,
``edges``, ``build``) and adds per edge its ``relation`` and ``weight`` (merge parents;
null otherwise), per model its ``hub_id``, ``writer``, ``parents``, declared lineage
and kind-specific facts, and a ``hub`` section listing the cached repositories.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import torch

from heritage.evaluation.zoo import cards, gguf_export, hf_training, merging, pretrained
from heritage.evaluation.zoo.builder import with_ancestors
from heritage.evaluation.zoo.hub_cache import add_to_hub_cache
from heritage.evaluation.zoo.training import task_classes
from heritage.evaluation.zoo.wild_spec import WildSpec, wild_spec
from heritage.evaluation.zoo.wild_truth import (
    architecture,
    declared_of,
    format_of,
    head_rows,
    size_of,
    stored_parameters,
    truth_document,
    writer_of,
)

__all__ = ["build_wild_zoo"]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[dict[str, Any], float], None]

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
_PIPELINE = {
    "sequence_classification": "text-classification",
    "masked_lm": "fill-mask",
    "base": "feature-extraction",
    "causal_lm": "text-generation",
}
_LORA_TARGETS = {"sequence_classification": ["query", "value"], "causal_lm": ["q_proj", "v_proj"]}


def _offline() -> None:
    """No hub is reachable: make every Hugging Face library fail fast instead of retrying."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _quiet_transformers() -> None:
    """Load reports and progress bars go to the log level we choose, not to stdout."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


# ----------------------------------------------------------------------------- the builder


class _WildBuilder:
    """State of one build: where things go, which parents still have children to make."""

    def __init__(self, out: Path, specs: list[WildSpec], threads: int) -> None:
        self.out = out
        self.models = out / "models"
        self.hub = out / "hub"
        self.specs = {spec.name: spec for spec in specs}
        self.family: dict[str, str] = {}
        self.hub_repos: list[dict[str, Any]] = []
        self.threads = threads
        self.pending_gguf = Counter(
            spec.parents[0] for spec in specs if spec.save == "gguf" and spec.option("quantizer") == "llama.cpp"
        )
        self._float_gguf: dict[str, Path] = {}
        self._scratch = Path(tempfile.mkdtemp(prefix=".wild-scratch-", dir=out))

    def close(self) -> None:
        shutil.rmtree(self._scratch, ignore_errors=True)

    def path(self, name: str) -> Path:
        return self.models / self.specs[name].entry

    # ------------------------------------------------------------------ loading parents

    def _load(self, cls: Any, name: str, seed: int, **kwargs: Any) -> Any:
        """``cls.from_pretrained`` of a published zoo model, seeding whatever it initialises."""
        torch.manual_seed(seed)
        return cls.from_pretrained(str(self.path(name)), dtype=torch.float32, **kwargs)

    def _load_from_hub(self, cls: Any, name: str, seed: int, **kwargs: Any) -> Any:
        """Load a model by its Hub id from the zoo's hub cache, offline, as a user would."""
        spec = self.specs[name]
        if not spec.hub:
            raise ValueError(f"{name} is not in the hub cache")
        torch.manual_seed(seed)
        return cls.from_pretrained(
            spec.hub_id, cache_dir=str(self.hub), local_files_only=True, dtype=torch.float32, **kwargs
        )

    # ------------------------------------------------------------------ writing

    def _save(self, spec: WildSpec, model: Any) -> None:
        """Publish ``model`` with the writer ``spec.save`` names, in ``spec.dtype``."""
        folder = self.path(spec.name)
        model = model.to(_DTYPES[spec.dtype])
        if spec.save == "save_pretrained":
            model.save_pretrained(str(folder))
        elif spec.save == "save_pretrained_sharded":
            model.save_pretrained(str(folder), max_shard_size=str(spec.option("max_shard_size")))
        elif spec.save == "torch_save":
            # transformers 4.x's `safe_serialization=False`: config.json plus a plain
            # torch.save of the state dict (transformers 5 writes safetensors only).
            folder.mkdir(parents=True, exist_ok=True)
            model.config.architectures = [type(model).__name__]
            model.config.save_pretrained(str(folder))
            state = {key: value.detach().clone().contiguous() for key, value in model.state_dict().items()}
            torch.save(state, str(folder / "pytorch_model.bin"))
        else:
            raise ValueError(f"{spec.name}: {spec.save!r} is not a transformers writer")

    def _write_card(self, spec: WildSpec, description: str, tags: tuple[str, ...] = ()) -> None:
        if not spec.declared.card:
            return
        text = cards.model_card_text(
            spec.hub_id,
            description,
            base_model=spec.declared.base_model,
            relation=spec.declared.relation,
            pipeline_tag=_PIPELINE.get(spec.head),
            tags=tags,
        )
        (self.path(spec.name) / "README.md").write_text(text)

    def _add_to_hub(self, spec: WildSpec) -> dict[str, Any]:
        extra: dict[str, Path] = {}
        if spec.save == "gguf":
            card = self._scratch / f"{spec.name}.README.md"
            card.write_text(
                cards.model_card_text(
                    spec.hub_id,
                    f"GGUF {spec.option('quant')} quantisation, made with llama.cpp.",
                    base_model=(self.specs[spec.parents[0]].hub_id,),
                    relation="quantized",
                    library_name="gguf",
                    pipeline_tag="text-generation",
                    tags=("gguf", "llama-cpp"),
                )
            )
            extra["README.md"] = card
        repo = add_to_hub_cache(self.hub, spec.hub_id, self.path(spec.name), extra)
        entry = {"repo_id": repo.repo_id, "revision": repo.revision, "model": spec.name, "files": list(repo.files)}
        self.hub_repos.append(entry)
        return {
            "repo_id": repo.repo_id,
            "revision": repo.revision,
            "card_declares": ({"base_model": [self.specs[spec.parents[0]].hub_id], "base_model_relation": "quantized"}
                              if spec.save == "gguf" else None),
        }

    # ------------------------------------------------------------------ makers, one per kind

    def _pretrained(self, spec: WildSpec) -> dict[str, Any]:
        folder = self.path(spec.name)
        if spec.source == "minilm-l6":
            source = pretrained.minilm_l6_folder()
            for file in sorted(p for p in source.rglob("*") if p.is_file()):
                target = folder / file.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, target)
            return {"source": pretrained.MINILM_L6_HUB_ID, "original": "packaged repository, files byte for byte"}
        if spec.source == "minilm-l3":
            from transformers import BertConfig, BertModel

            ours, state = pretrained.load_paraphrase_minilm_l3()
            config = BertConfig(
                vocab_size=ours.vocab_size,
                hidden_size=ours.hidden_size,
                num_hidden_layers=ours.num_hidden_layers,
                num_attention_heads=ours.num_attention_heads,
                intermediate_size=ours.intermediate_size,
                max_position_embeddings=ours.max_position_embeddings,
                type_vocab_size=ours.type_vocab_size,
            )
            # sentence-transformers exports the encoder without BERT's pooler.
            model = BertModel(config, add_pooling_layer=ours.add_pooler)
            missing, unexpected = model.load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(f"ONNX weights do not fit BertModel: missing {missing}, unexpected {unexpected}")
            self._save(spec, model)
            self._write_card(spec, "Re-saved with transformers from the published ONNX export.",
                             ("sentence-transformers", "feature-extraction"))
            return {"source": pretrained.MINILM_L3_HUB_ID, "original": "ONNX export (converted)"}
        if spec.source == "smollm2":
            from transformers import LlamaConfig, LlamaForCausalLM

            ours, state = pretrained.gguf_llama_state_dict(pretrained.smollm2_gguf())
            config = LlamaConfig(
                vocab_size=ours.vocab_size,
                hidden_size=ours.hidden_size,
                intermediate_size=ours.intermediate_size,
                num_hidden_layers=ours.num_hidden_layers,
                num_attention_heads=ours.num_attention_heads,
                num_key_value_heads=ours.num_key_value_heads,
                head_dim=ours.hidden_size // ours.num_attention_heads,
                rms_norm_eps=ours.rms_norm_eps,
                rope_theta=ours.rope_theta,
                max_position_embeddings=ours.max_position_embeddings,
                tie_word_embeddings=ours.tie_word_embeddings,
                bos_token_id=1,
                eos_token_id=2,
                pad_token_id=2,
            )
            model = LlamaForCausalLM(config)
            missing, unexpected = model.load_state_dict(state, strict=False)
            if unexpected or set(missing) - {"lm_head.weight"}:
                raise ValueError(f"GGUF weights do not fit LlamaForCausalLM: {missing}, {unexpected}")
            model.tie_weights()
            self._save(spec, model)
            self._write_card(spec, "Dequantised from the published GGUF and re-saved with transformers.",
                             ("smollm2", "conversational"))
            return {"source": pretrained.SMOLLM2_HUB_ID, "original": "GGUF Q4_1 (dequantised)"}
        raise ValueError(f"{spec.name}: unknown pretrained source {spec.source!r}")

    def _classifier_class(self) -> Any:
        from transformers import BertForSequenceClassification

        return BertForSequenceClassification

    def _train_info(self, spec: WildSpec, **extra: Any) -> dict[str, Any]:
        info: dict[str, Any] = {"task": spec.task, "steps": spec.steps, "lr": spec.lr, "seed": spec.seed}
        info["batch_size"] = spec.batch_size
        info["seq_len"] = spec.seq_len
        info.update(extra)
        return info

    def _classifier_training(self, spec: WildSpec, model: Any, vocab: int) -> None:
        hf_training.train_classifier(
            model, spec.task, vocab_size=vocab, steps=spec.steps, lr=spec.lr, seed=spec.seed,
            batch_size=spec.batch_size, seq_len=spec.seq_len,
        )

    def _full_finetune(self, spec: WildSpec) -> dict[str, Any]:
        (parent,) = spec.parents
        if spec.head == "masked_lm":
            from transformers import BertForMaskedLM

            model = self._load(BertForMaskedLM, parent, spec.seed)
            base_vocab = model.config.vocab_size
            added = int(spec.option("added_tokens", 0))
            model.resize_token_embeddings(base_vocab + added)
            hf_training.train_masked_lm(
                model, base_vocab=base_vocab, added_tokens=added, mask_token_id=103,
                steps=spec.steps, lr=spec.lr, seed=spec.seed,
            )
            self._save(spec, model)
            self._write_card(spec, "Domain-adapted masked language model.")
            return {"train": self._train_info(spec, objective="masked_lm", trainable="all"),
                    "added_tokens": added, "vocab_size": base_vocab + added}
        labels = task_classes(spec.task)
        model = self._load(self._classifier_class(), parent, spec.seed, num_labels=labels)
        self._classifier_training(spec, model, model.config.vocab_size)
        self._save(spec, model)
        self._write_card(spec, f"Fine-tuned for `{spec.task}` classification ({labels} labels).")
        return {"train": self._train_info(spec, objective="sequence_classification", trainable="all"),
                "num_labels": labels}

    def _unrelated(self, spec: WildSpec) -> dict[str, Any]:
        from transformers import BertConfig

        labels = task_classes(spec.task)
        config = BertConfig.from_pretrained(str(pretrained.minilm_l6_folder()), num_labels=labels)
        torch.manual_seed(spec.seed)
        model = self._classifier_class()(config)
        self._classifier_training(spec, model, config.vocab_size)
        self._save(spec, model)
        self._write_card(spec, "A small encoder trained from scratch.")
        return {"train": self._train_info(spec, objective="sequence_classification", trainable="all",
                                          init="random"), "num_labels": labels, "init_seed": spec.seed}

    def _lora(self, spec: WildSpec, model: Any) -> Any:
        from peft import LoraConfig, TaskType, get_peft_model

        rank = spec.lora_rank or 8
        task_type = TaskType.CAUSAL_LM if spec.head == "causal_lm" else TaskType.SEQ_CLS
        config = LoraConfig(task_type=task_type, r=rank, lora_alpha=2 * rank, lora_dropout=0.0,
                            target_modules=_LORA_TARGETS[spec.head])
        torch.manual_seed(spec.seed + 7919)  # LoRA factor init, apart from the data stream
        with warnings.catch_warnings():  # peft calls a transformers API transformers deprecated
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(model, config)

    def _merged_lora(self, spec: WildSpec) -> dict[str, Any]:
        (parent,) = spec.parents
        rank = spec.lora_rank or 8
        if spec.head == "causal_lm":
            from transformers import LlamaForCausalLM

            base = self._load(LlamaForCausalLM, parent, spec.seed)
            peft_model = self._lora(spec, base)
            hf_training.train_causal_lm(
                peft_model, vocab_size=base.config.vocab_size, steps=spec.steps, lr=spec.lr, seed=spec.seed,
                batch_size=spec.batch_size, seq_len=spec.seq_len,
            )
            extra: dict[str, Any] = {"objective": "causal_lm"}
        else:
            labels = task_classes(spec.task)
            base = self._load(self._classifier_class(), parent, spec.seed, num_labels=labels)
            peft_model = self._lora(spec, base)
            self._classifier_training(spec, peft_model, base.config.vocab_size)
            extra = {"objective": "sequence_classification"}
        merged = peft_model.merge_and_unload()
        self._save(spec, merged)
        self._write_card(spec, "LoRA fine-tune, merged into the weights.")
        return {"train": self._train_info(spec, trainable="lora+task head" if spec.head != "causal_lm" else "lora",
                                          lora_rank=rank, lora_alpha=2 * rank,
                                          lora_targets=_LORA_TARGETS[spec.head], **extra)}

    def _lora_adapter(self, spec: WildSpec) -> dict[str, Any]:
        (parent,) = spec.parents
        labels = task_classes(spec.task)
        base = self._load_from_hub(self._classifier_class(), parent, spec.seed, num_labels=labels)
        peft_model = self._lora(spec, base)
        self._classifier_training(spec, peft_model, base.config.vocab_size)
        peft_model.save_pretrained(str(self.path(spec.name)))  # writes its own README.md card
        rank = spec.lora_rank or 8
        return {"train": self._train_info(spec, objective="sequence_classification", trainable="lora+task head",
                                          lora_rank=rank, lora_alpha=2 * rank,
                                          lora_targets=_LORA_TARGETS[spec.head]),
                "num_labels": labels}

    def _head_only(self, spec: WildSpec) -> dict[str, Any]:
        (parent,) = spec.parents
        labels = task_classes(spec.task)
        model = self._load(self._classifier_class(), parent, spec.seed, num_labels=labels,
                           ignore_mismatched_sizes=True)
        for param in model.bert.parameters():
            param.requires_grad_(False)
        self._classifier_training(spec, model, model.config.vocab_size)
        self._save(spec, model)
        self._write_card(spec, f"A new {labels}-way head on a frozen encoder.")
        return {"train": self._train_info(spec, objective="sequence_classification", trainable="classifier"),
                "num_labels": labels}

    def _dtype_conversion(self, spec: WildSpec) -> dict[str, Any]:
        (parent,) = spec.parents
        model = self._load(self._classifier_class(), parent, spec.seed)
        self._save(spec, model)  # cast to spec.dtype on the way out
        self._write_card(spec, f"{spec.dtype} weights for smaller downloads.")
        return {"train": None}

    def _merge(self, spec: WildSpec) -> dict[str, Any]:
        cls = self._classifier_class()
        models = [self._load(cls, parent, spec.seed) for parent in spec.parents]
        states = [model.state_dict() for model in models]
        method = spec.option("method")
        if method == "linear":
            merged = merging.linear_merge(states, spec.weights or ())
            details: dict[str, Any] = {"method": "linear", "normalize": True, "weights": list(spec.weights or ())}
        elif method == "slerp":
            t = float(spec.option("t"))
            merged = merging.slerp_merge(states[0], states[1], t)
            details = {"method": "slerp", "t": t, "base_model": spec.parents[0]}
        else:
            raise ValueError(f"{spec.name}: unknown merge method {method!r}")
        target = models[0]
        target.load_state_dict(merged, strict=True)
        self._save(spec, target)
        if spec.declared.truthful:  # mergekit leaves its recipe next to the weights
            (self.path(spec.name) / "mergekit_config.yml").write_text(self._mergekit_yaml(spec, details))
        self._write_card(spec, f"A {method} merge made with mergekit.", ("mergekit", "merge"))
        return {"merge": details, "train": None}

    def _mergekit_yaml(self, spec: WildSpec, details: dict[str, Any]) -> str:
        ids = [self.specs[parent].hub_id for parent in spec.parents]
        lines = [f"merge_method: {details['method']}"]
        if details["method"] == "slerp":
            lines += [f"base_model: {ids[0]}", "models:"] + [f"  - model: {i}" for i in ids]
            lines += ["parameters:", f"  t: {details['t']}"]
        else:
            lines.append("models:")
            for model_id, weight in zip(ids, details["weights"]):
                lines += [f"  - model: {model_id}", "    parameters:", f"      weight: {weight}"]
        lines.append(f"dtype: {spec.dtype}")
        return "\n".join(lines) + "\n"

    def _student(self, spec: WildSpec) -> dict[str, Any]:
        from transformers import BertModel

        (teacher_name,) = spec.parents
        layer_map = list(spec.option("layer_map"))
        teacher = self._load(BertModel, teacher_name, spec.seed)
        config = teacher.config.__class__(**{**teacher.config.to_dict(), "num_hidden_layers": len(layer_map)})
        torch.manual_seed(spec.seed)
        student = BertModel(config)
        state: dict[str, torch.Tensor] = {}
        for key, value in teacher.state_dict().items():
            if key.startswith("encoder.layer."):
                layer = int(key.split(".")[2])
                if layer in layer_map:
                    rest = key.split(".", 3)[3]
                    state[f"encoder.layer.{layer_map.index(layer)}.{rest}"] = value.clone()
            else:
                state[key] = value.clone()
        student.load_state_dict(state, strict=False)
        hf_training.distill_student(student, teacher, vocab_size=config.vocab_size, steps=spec.steps,
                                    lr=spec.lr, seed=spec.seed)
        self._save(spec, student)
        self._write_card(spec, f"A {len(layer_map)}-layer student distilled from a sentence encoder.",
                         ("sentence-transformers", "distillation"))
        return {"train": self._train_info(spec, objective="embedding_distillation", trainable="all"),
                "layer_map": {str(i): layer for i, layer in enumerate(layer_map)}}

    def _float_gguf_of(self, parent: str) -> Path:
        """The converter's BF16 GGUF of ``parent``, the input llama-quantize starts from."""
        if parent not in self._float_gguf:
            path = self._scratch / f"{parent}-BF16.gguf"
            gguf_export.write_llama_gguf(self.path(parent), path, "BF16", pretrained.smollm2_gguf())
            self._float_gguf[parent] = path
        return self._float_gguf[parent]

    def _gguf(self, spec: WildSpec) -> dict[str, Any]:
        (parent,) = spec.parents
        quant = str(spec.option("quant"))
        out = self.path(spec.name)
        if spec.option("quantizer") == "gguf":
            gguf_export.write_llama_gguf(self.path(parent), out, quant, pretrained.smollm2_gguf())
            how = f"convert_hf_to_gguf conventions, --outtype {quant.lower()} (gguf.GGUFWriter, gguf.quants)"
        else:
            source = self._float_gguf_of(parent)
            gguf_export.llama_cpp_quantize(source, out, quant, threads=self.threads)
            how = f"convert_hf_to_gguf conventions --outtype bf16, then llama.cpp llama_model_quantize {quant}"
            self.pending_gguf[parent] -= 1
            if not self.pending_gguf[parent]:
                self._float_gguf.pop(parent).unlink()
        return {
            "quantization": {
                "file_type": quant,
                "made_by": how,
                "tensor_types": gguf_export.tensor_types(out),
                "dominant_matrix_type": gguf_export.dominant_matrix_type(out),
            },
            "train": None,
        }

    # ------------------------------------------------------------------ one model

    _MAKERS = {
        "pretrained": "_pretrained",
        "full_finetune": "_full_finetune",
        "unrelated": "_unrelated",
        "merged_lora": "_merged_lora",
        "lora_adapter": "_lora_adapter",
        "head_only": "_head_only",
        "dtype_conversion": "_dtype_conversion",
        "merge": "_merge",
        "layer_subset_student": "_student",
        "gguf_quantization": "_gguf",
    }

    def build(self, spec: WildSpec) -> dict[str, Any]:
        facts = getattr(self, self._MAKERS[spec.kind])(spec)
        family = self.family[spec.parents[0]] if spec.parents else spec.name
        self.family[spec.name] = family
        hub = self._add_to_hub(spec) if spec.hub else None
        return self._record(spec, family, facts, hub)

    def _record(
        self, spec: WildSpec, family: str, facts: dict[str, Any], hub: dict[str, Any] | None
    ) -> dict[str, Any]:
        path = self.path(spec.name)
        weights = list(spec.weights) if spec.weights else [None] * len(spec.parents)
        record: dict[str, Any] = {
            "name": spec.name,
            "hub_id": spec.hub_id,
            "entry": spec.entry,
            "format": format_of(spec),
            "writer": writer_of(spec),
            "architecture": architecture(path),
            "family": family,
            "parent": spec.parents[0] if spec.parents else None,
            "parents": [
                {"name": parent, "relation": spec.relation, "weight": weight}
                for parent, weight in zip(spec.parents, weights)
            ],
            "relation": spec.relation,
            "kind": spec.kind,
            "params": stored_parameters(path),
            "dtype": str(spec.option("quant")) if spec.save == "gguf" else spec.dtype,
            "declared": declared_of(spec),
            "bytes": size_of(path),
        }
        labels = head_rows(path) or head_rows(path, "base_model.model.classifier.weight")
        if labels is not None:
            record["num_labels"] = labels
        record.update(facts)
        record.setdefault("train", None)
        if hub is not None:
            record["hub"] = hub
        return record


def build_wild_zoo(
    out: Path | str,
    *,
    only: list[str] | None = None,
    progress: ProgressCallback | None = None,
    threads: int = 1,
) -> dict[str, Any]:
    """Make and write the wild zoo into ``out`` (``models/``, ``hub/``, ``truth.json``).

    Parameters
    ----------
    out : the folder to write into.
    only : build just these models and their ancestors (cheap determinism checks).
    progress : called after each model with its ``truth.json`` record and the seconds it took.
    threads : the intra-op thread count the caller set (recorded in ``truth.json``; also
        llama.cpp's quantiser threads).

    Returns
    -------
    dict
        The ``truth.json`` document, which is written last: its presence marks a complete
        build.

    Examples
    --------
    Building one model of the zoo with its parent (real fine-tuning, so it is not a
    doctest; ``tests/test_zoo_wild.py`` checks the built zoo)::

        truth = build_wild_zoo("/tmp/wild", only=["length-bucketer"])
        [edge["relation"] for edge in truth["edges"]]  # ['finetune']
    """
    _offline()
    _quiet_transformers()
    out = Path(out)
    specs = wild_spec()
    if only is not None:
        specs = with_ancestors(specs, only, lambda spec: spec.parents)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "hub").mkdir(parents=True, exist_ok=True)
    builder = _WildBuilder(out, specs, threads)
    records = []
    started = time.perf_counter()
    try:
        for spec in specs:
            tick, cpu = time.perf_counter(), time.process_time()
            record = builder.build(spec)
            seconds = time.perf_counter() - tick
            # CPU seconds too: on a shared machine they are what an idle one would take.
            record["build_seconds"] = round(seconds, 1)
            record["build_cpu_seconds"] = round(time.process_time() - cpu, 1)
            records.append(record)
            log.info("built %s (%s) in %.1fs", spec.name, spec.kind, seconds)
            if progress is not None:
                progress(record, seconds)
    finally:
        builder.close()
    truth = truth_document(records, builder.hub_repos, time.perf_counter() - started, threads)
    truth["build"]["cpu_seconds"] = round(sum(r["build_cpu_seconds"] for r in records), 1)
    tmp = out / "truth.json.tmp"
    tmp.write_text(json.dumps(truth, indent=2) + "\n")
    tmp.replace(out / "truth.json")
    return truth
