"""Build a zoo from its spec, write ``truth.json``, and cache built zoos.

Building walks the spec parents-first.  Every child is trained from its parent *as
published* (the saved dtype, read back as float32), exactly what someone
downloading the parent would start from; so a child's difference from its parent is
pure training, and a merged LoRA child differs from its parent by a matrix of rank
``r`` exactly.  A parent's weights are dropped from memory once its last child is
built.

Everything is seeded, so a build is deterministic for a given torch build and
thread count; :func:`ensure_zoo` therefore builds each size once into a cache folder
and reuses it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import nn

from heritage.evaluation.zoo import pretrained, writers
from heritage.evaluation.zoo.bert import BertConfig, BertModel, parameter_count
from heritage.evaluation.zoo.llama import LlamaConfig, LlamaForCausalLM
from heritage.evaluation.zoo.spec import SPEC_VERSION, ModelSpec, zoo_spec
from heritage.evaluation.zoo.training import full_finetune, lora_finetune
from heritage.evaluation.zoo.wild_spec import WILD_SPEC_VERSION

__all__ = ["build_zoo", "ensure_zoo", "zoo_cache_dir", "build_threads", "with_ancestors", "ProgressCallback"]

log = logging.getLogger(__name__)

ModelConfig = BertConfig | LlamaConfig
ProgressCallback = Callable[[dict[str, Any], float], None]
"""Called after each model with its ``truth.json`` record and the seconds it took."""

# source key -> (loader returning (config, float32 state), Hub id of the original)
_SOURCES: dict[str, tuple[Callable[[], tuple[Any, dict[str, torch.Tensor]]], str]] = {
    "minilm-l6": (pretrained.load_minilm_l6, pretrained.MINILM_L6_HUB_ID),
    "minilm-l3": (pretrained.load_paraphrase_minilm_l3, pretrained.MINILM_L3_HUB_ID),
    "smollm2": (pretrained.load_smollm2, pretrained.SMOLLM2_HUB_ID),
}


def _new_model(config: ModelConfig) -> nn.Module:
    return BertModel(config) if isinstance(config, BertConfig) else LlamaForCausalLM(config)


def _lora_targets(config: ModelConfig) -> tuple[str, ...]:
    return ("query", "value") if isinstance(config, BertConfig) else ("q_proj", "v_proj")


def _library(config: ModelConfig) -> str:
    return "sentence-transformers" if isinstance(config, BertConfig) else "transformers"


class _Builder:
    """State of one build: published parent weights still needed, and model families."""

    def __init__(self, out: Path, specs: list[ModelSpec]) -> None:
        self.out = out
        self.models = out / "models"
        self.specs = {spec.name: spec for spec in specs}
        self.pending_children = Counter(spec.parent for spec in specs if spec.parent)
        self.published: dict[str, tuple[ModelConfig, dict[str, torch.Tensor]]] = {}
        self.root_configs: dict[str, ModelConfig] = {}
        self.family: dict[str, str] = {}

    def _root(self, source: str) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
        """Load a pretrained root (not kept: the published copy is what children use)."""
        loader, _ = _SOURCES[source]
        config, state = loader()
        self.root_configs[source] = config
        return config, state

    def _root_config(self, source: str) -> ModelConfig:
        if source not in self.root_configs:
            self._root(source)
        return self.root_configs[source]

    def _parent_model(self, spec: ModelSpec) -> tuple[ModelConfig, nn.Module, dict[str, torch.Tensor]]:
        config, state = self.published[spec.parent]
        model = _new_model(config)
        model.load_state_dict(state, strict=True)
        return config, model, state

    def _train(self, spec: ModelSpec) -> tuple[ModelConfig, dict[str, torch.Tensor] | None, Any]:
        """Produce the weights of ``spec``; returns (config, state or None, lora or None)."""
        if spec.kind == "pretrained":
            config, state = self._root(spec.source)
            return config, state, None
        if spec.kind == "unrelated":
            config = self._root_config(spec.source)
            model = _new_model(config)
            model.init_weights(torch.Generator().manual_seed(spec.init_seed))
            return config, full_finetune(model, spec.train), None
        config, model, base = self._parent_model(spec)
        if spec.kind == "full_finetune":
            return config, full_finetune(model, spec.train), None
        lora = lora_finetune(model, spec.train, _lora_targets(config))
        if spec.kind == "merged_lora":
            return config, lora.merged(base), lora
        return config, None, lora  # lora_adapter

    def _write(self, spec: ModelSpec, config: ModelConfig, state: dict[str, torch.Tensor]) -> None:
        path = self.models / spec.entry
        hf_config = {**config.to_hf_dict(), "torch_dtype": spec.dtype}
        if spec.format == "safetensors":
            writers.write_safetensors(state, path)
        elif spec.format == "pytorch":
            writers.write_pytorch(state, path)
        elif spec.format == "hf_folder":
            writers.write_hf_folder(state, path, hf_config, self._card(spec, config))
        elif spec.format == "sharded_folder":
            writers.write_sharded_folder(state, path, hf_config, None, backend=spec.shard_backend)
        else:
            raise ValueError(f"{spec.name}: {spec.format} is not a full-checkpoint format")

    def _card(self, spec: ModelSpec, config: ModelConfig) -> str:
        if spec.kind == "pretrained":
            description = f"A re-export of `{_SOURCES[spec.source][1]}`."
        else:
            description = f"Fine-tuned on the synthetic `{spec.train.task}` task ({spec.kind.replace('_', ' ')})."
        return writers.model_card(spec.name, spec.parent, description, _library(config), [config.architecture])

    def build(self, spec: ModelSpec) -> dict[str, Any]:
        config, state, lora = self._train(spec)
        family = spec.name if spec.parent is None else self.family[spec.parent]
        self.family[spec.name] = family
        if spec.kind == "lora_adapter":
            adapter = lora.peft_state_dict()
            writers.write_peft_adapter(
                writers.cast_state(adapter, spec.dtype),
                self.models / spec.entry,
                rank=lora.rank,
                alpha=lora.alpha,
                target_modules=list(_lora_targets(config)),
                base_model_name_or_path=self._hub_id(spec.parent),
            )
            params = parameter_count(adapter)
        else:
            published = writers.cast_state(state, spec.dtype)
            self._write(spec, config, published)
            params = parameter_count(published)
            if self.pending_children[spec.name]:
                self.published[spec.name] = (config, {k: v.float() for k, v in published.items()})
        if spec.parent is not None:
            self.pending_children[spec.parent] -= 1
            if not self.pending_children[spec.parent]:
                self.published.pop(spec.parent, None)
        return self._record(spec, config, family, params)

    def _hub_id(self, name: str) -> str:
        """What an adapter's config names as its base: what PEFT records, the id or path
        the base was loaded from — the family's Hub id for a pretrained root, the
        publisher's repository id for a fine-tune (``zoo-user/<name>``)."""
        if name == self.family[name]:
            return _SOURCES[self.specs[name].source][1]
        return f"zoo-user/{name}"

    def _record(self, spec: ModelSpec, config: ModelConfig, family: str, params: int) -> dict[str, Any]:
        record: dict[str, Any] = {
            "name": spec.name,
            "entry": spec.entry,
            "format": spec.format,
            "architecture": config.architecture,
            "family": family,
            "parent": spec.parent,
            "kind": spec.kind,
            "params": params,
            "dtype": spec.dtype,
            "train": spec.train.to_json() if spec.train else None,
        }
        if spec.kind == "pretrained":
            record["source"] = _SOURCES[spec.source][1]
        if spec.init_seed is not None:
            record["init_seed"] = spec.init_seed
        return record


def with_ancestors(
    specs: list[Any], names: Iterable[str], parents_of: Callable[[Any], Iterable[str]] | None = None
) -> list[Any]:
    """The specs named in ``names`` and all their ancestors, in spec order.

    ``parents_of`` gives a spec's parent names (default: its ``parent``, if any).
    """
    parents_of = parents_of or (lambda spec: [spec.parent] if spec.parent else [])
    by_name = {spec.name: spec for spec in specs}
    wanted: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name not in by_name:
            raise ValueError(f"no zoo model named {name!r}")
        if name not in wanted:
            wanted.add(name)
            stack.extend(parents_of(by_name[name]))
    return [spec for spec in specs if spec.name in wanted]


def build_zoo(
    out: Path | str,
    size: str = "small",
    *,
    only: Iterable[str] | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Train and write the zoo of ``size`` into ``out``; returns the ``truth.json`` data.

    ``only`` restricts the build to the named models and their ancestors (used to
    check determinism cheaply).  ``truth.json`` is written last, so its presence
    marks a complete build.
    """
    if size == "wild":
        from heritage.evaluation.zoo.wild import build_wild_zoo

        threads = build_threads()
        with _torch_threads(threads):
            return build_wild_zoo(out, only=None if only is None else list(only), progress=progress, threads=threads)
    out = Path(out)
    specs = zoo_spec(size)
    if only is not None:
        specs = with_ancestors(specs, only)
    (out / "models").mkdir(parents=True, exist_ok=True)
    builder = _Builder(out, specs)
    records = []
    started = time.perf_counter()
    threads = build_threads()
    with _torch_threads(threads):
        for spec in specs:
            tick = time.perf_counter()
            record = builder.build(spec)
            records.append(record)
            seconds = time.perf_counter() - tick
            log.info("built %s (%s, %s) in %.1fs", spec.name, spec.kind, spec.format, seconds)
            if progress is not None:
                progress(record, seconds)
    truth = _truth(size, records, time.perf_counter() - started, threads)
    tmp = out / "truth.json.tmp"
    tmp.write_text(json.dumps(truth, indent=2) + "\n")
    tmp.replace(out / "truth.json")
    return truth


def build_threads() -> int:
    """Intra-op threads used for training: ``$HERITAGE_ZOO_THREADS``, default 1.

    Fixed rather than "all cores" for two reasons: float reductions round differently
    with different thread counts, so the count is part of what makes a build
    reproducible; and on a shared machine a single thread is several times faster
    than two spinning OpenMP threads fighting other processes for the cores.
    """
    value = os.environ.get("HERITAGE_ZOO_THREADS", "1")
    try:
        threads = int(value)
    except ValueError:
        raise ValueError(f"HERITAGE_ZOO_THREADS must be a positive integer, not {value!r}") from None
    if threads < 1:
        raise ValueError(f"HERITAGE_ZOO_THREADS must be a positive integer, not {value!r}")
    return threads


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _truth(size: str, records: list[dict[str, Any]], seconds: float, threads: int) -> dict[str, Any]:
    families: dict[str, list[str]] = {}
    for record in records:
        families.setdefault(record["family"], []).append(record["name"])
    return {
        "size": size,
        "spec_version": SPEC_VERSION,
        "models": records,
        "families": list(families.values()),
        "edges": [{"parent": r["parent"], "child": r["name"]} for r in records if r["parent"]],
        "build": {
            "torch": torch.__version__,
            "threads": threads,
            "seconds": round(seconds, 1),
        },
    }


def zoo_cache_dir(size: str) -> Path:
    """Where :func:`ensure_zoo` keeps the zoo of ``size``.

    ``$HERITAGE_ZOO_CACHE/zoo-<size>-v<version>`` when the variable is set, else
    under ``~/.cache/model-heritage``: outside the repository, shared by all checkouts.
    The version is :data:`SPEC_VERSION` for ``small``/``full`` and
    :data:`~heritage.evaluation.zoo.wild_spec.WILD_SPEC_VERSION` for ``wild``.
    """
    base = os.environ.get("HERITAGE_ZOO_CACHE") or Path.home() / ".cache" / "model-heritage"
    version = WILD_SPEC_VERSION if size == "wild" else SPEC_VERSION
    return Path(base).expanduser() / f"zoo-{size}-v{version}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock, so parallel test workers build a zoo only once."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX: no locking
        yield
        return
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_zoo(size: str = "small", progress: ProgressCallback | None = None) -> Path:
    """Path of a complete zoo of ``size``, building it into the cache the first time."""
    target = zoo_cache_dir(size)
    if (target / "truth.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f".{target.name}.lock"):
        if (target / "truth.json").is_file():  # built by another process meanwhile
            return target
        staging = target.parent / f".{target.name}.building-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        log.info("building the %s zoo into %s", size, target)
        build_zoo(staging, size, progress=progress)
        shutil.rmtree(target, ignore_errors=True)  # an incomplete earlier attempt
        staging.rename(target)
    return target
