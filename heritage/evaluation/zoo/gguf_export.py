"""GGUF files of a Hugging Face Llama checkpoint, written the way llama.cpp writes them.

Quantised models reach users as GGUF files made by two llama.cpp tools:
``convert_hf_to_gguf.py`` (a ``save_pretrained`` folder to a float or ``Q8_0`` GGUF)
and ``llama-quantize`` (a float GGUF to the K-quants and the rest).  This module
reproduces the first with ``gguf``'s own writer and conventions, and drives the second
through llama.cpp itself (``llama_cpp.llama_model_quantize`` from the
``llama-cpp-python`` package, which compiles llama.cpp), because ``gguf`` cannot make
K-quants.

What the converter does, and :func:`write_llama_gguf` repeats, for a ``LlamaForCausalLM``:

* tensor names mapped with ``gguf.get_tensor_name_map`` (``model.layers.N.self_attn.q_proj``
  → ``blk.N.attn_q``, ``model.embed_tokens`` → ``token_embd``, ...); a tied ``lm_head``
  is not in the checkpoint and gets no ``output.weight``;
* the rows of ``q_proj`` and ``k_proj`` permuted per head from Hugging Face's
  rotate-half rotary layout to llama.cpp's interleaved one:
  ``w.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)``
  (``k_proj`` with the key/value head count);
* tensors that are not float16/float32 (bfloat16) widened to float32 first; 1-D
  tensors and ``*_norm.weight`` kept in F32, every other matrix stored in the output
  type (``Q8_0`` quantised by ``gguf.quants``), F16 if a shape cannot be quantised;
* ``general.*`` metadata from ``gguf.Metadata.load`` on the model folder (its card's
  ``base_model`` becomes ``general.base_model.*``), the architecture's hyper-parameters
  (``llama.block_count``, ``llama.attention.head_count_kv``, ``llama.rope.freq_base``,
  ...), ``general.file_type`` and ``general.quantization_version``;
* the tokenizer (``tokenizer.ggml.*``).  The converter builds it from
  ``tokenizer.json``; the zoo has no tokenizer files for SmolLM2, so the fields are
  copied from the packaged SmolLM2 GGUF, which that same converter produced from the
  same tokenizer.
"""

from __future__ import annotations

import ctypes
import json
import logging
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "write_llama_gguf",
    "llama_cpp_quantize",
    "permute_rotary_rows",
    "tensor_types",
    "dominant_matrix_type",
    "GGUF_FILE_TYPES",
]

log = logging.getLogger(__name__)

# Output types of convert_hf_to_gguf.py (``--outtype``), as gguf's LlamaFileType names.
GGUF_FILE_TYPES = {"F32": "ALL_F32", "F16": "MOSTLY_F16", "BF16": "MOSTLY_BF16", "Q8_0": "MOSTLY_Q8_0"}


def permute_rotary_rows(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """llama.cpp's q/k row permutation (rotate-half halves -> interleaved pairs), per head."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _read_safetensors(folder: Path) -> dict[str, torch.Tensor]:
    """Tensors of a save_pretrained folder, in file order (single file or shards)."""
    from safetensors import safe_open

    index = folder / "model.safetensors.index.json"
    files = (
        sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else ["model.safetensors"]
    )
    state: dict[str, torch.Tensor] = {}
    for name in files:
        with safe_open(str(folder / name), framework="pt") as handle:
            for key in handle.keys():
                state[key] = handle.get_tensor(key)
    return state


def _hparam(config: dict, *names: str) -> object:
    for name in names:
        if config.get(name) is not None:
            return config[name]
        if isinstance(config.get("rope_parameters"), dict) and config["rope_parameters"].get(name) is not None:
            return config["rope_parameters"][name]
    return None


def _copy_tokenizer(writer, vocab_source: Path) -> None:  # noqa: ANN001 - gguf.GGUFWriter
    import gguf

    reader = gguf.GGUFReader(str(vocab_source))
    for field in reader.fields.values():
        if not field.name.startswith("tokenizer."):
            continue
        vtype = field.types[0]
        sub_type = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub_type)


def write_llama_gguf(model_dir: Path, out: Path, file_type: str, vocab_source: Path) -> None:
    """Convert the ``LlamaForCausalLM`` folder ``model_dir`` to a GGUF of ``file_type``.

    ``file_type`` is a ``convert_hf_to_gguf.py --outtype``: F32, F16, BF16 or Q8_0.

    Examples
    --------
    Converting a fine-tune saved by ``save_pretrained`` (needs the files, so it is not a
    doctest; ``tests/test_zoo_wild.py`` checks the files the wild zoo writes this way)::

        write_llama_gguf(Path("support-chat-135m"), Path("chat-Q8_0.gguf"), "Q8_0",
                         vocab_source=Path("SmolLM2-135M-Instruct.Q4_1.gguf"))
    """
    import gguf

    if file_type not in GGUF_FILE_TYPES:
        raise ValueError(f"unsupported GGUF output type {file_type!r}; choose from {sorted(GGUF_FILE_TYPES)}")
    ftype = gguf.LlamaFileType[GGUF_FILE_TYPES[file_type]]
    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "llama":
        raise ValueError(f"{model_dir}: not a llama checkpoint (model_type {config.get('model_type')!r})")
    blocks = int(config["num_hidden_layers"])
    heads = int(config["num_attention_heads"])
    kv_heads = int(config.get("num_key_value_heads") or heads)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, blocks)

    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[gguf.MODEL_ARCH.LLAMA])
    for name, tensor in _read_safetensors(model_dir).items():
        if tensor.dtype not in (torch.float16, torch.float32):
            tensor = tensor.to(torch.float32)
        if name.endswith("q_proj.weight"):
            tensor = permute_rotary_rows(tensor, heads)
        elif name.endswith("k_proj.weight"):
            tensor = permute_rotary_rows(tensor, kv_heads)
        new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new_name is None:
            raise ValueError(f"{model_dir}: cannot map tensor {name!r} to a GGUF name")
        data = tensor.numpy()
        if data.ndim <= 1 or new_name.endswith("_norm.weight"):
            qtype = gguf.GGMLQuantizationType.F32
        else:
            qtype = {
                gguf.LlamaFileType.ALL_F32: gguf.GGMLQuantizationType.F32,
                gguf.LlamaFileType.MOSTLY_F16: gguf.GGMLQuantizationType.F16,
                gguf.LlamaFileType.MOSTLY_BF16: gguf.GGMLQuantizationType.BF16,
                gguf.LlamaFileType.MOSTLY_Q8_0: gguf.GGMLQuantizationType.Q8_0,
            }[ftype]
        try:
            stored = gguf.quants.quantize(data, qtype)
        except gguf.QuantError:
            qtype = gguf.GGMLQuantizationType.F16
            stored = gguf.quants.quantize(data, qtype)
        writer.add_tensor(new_name, stored, raw_dtype=qtype)

    total, shared, expert, expert_count = writer.get_total_parameter_count()
    metadata = gguf.Metadata.load(None, model_dir, None, total)
    if metadata.name is None:
        metadata.name = model_dir.name
    if metadata.size_label is None and total > 0:
        metadata.size_label = gguf.size_label(total, shared, expert, expert_count)
    writer.add_type(gguf.GGUFType.MODEL)
    metadata.set_gguf_meta_model(writer)

    writer.add_block_count(blocks)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    rope_theta = _hparam(config, "rope_theta")
    if rope_theta is not None:
        writer.add_rope_freq_base(float(rope_theta))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    head_dim = config.get("head_dim")
    if head_dim is not None:
        writer.add_key_length(int(head_dim))
        writer.add_value_length(int(head_dim))
    writer.add_file_type(ftype)
    writer.add_vocab_size(int(config["vocab_size"]))
    writer.add_rope_dimension_count(int(head_dim or int(config["hidden_size"]) // heads))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    _copy_tokenizer(writer, vocab_source)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    log.info("wrote %s (%s)", out, file_type)


_QUIET_LOG = None


def _silence_llama_cpp() -> None:
    """Route llama.cpp's own logging (hundreds of lines per file) to a no-op."""
    global _QUIET_LOG
    import llama_cpp

    if _QUIET_LOG is None:
        _QUIET_LOG = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
        llama_cpp.llama_log_set(_QUIET_LOG, ctypes.c_void_p(0))


def llama_cpp_quantize(source: Path, out: Path, file_type: str, threads: int = 1) -> None:
    """Quantise a float GGUF with llama.cpp's own quantiser (what ``llama-quantize`` runs).

    ``file_type`` is a llama.cpp ftype suffix: ``Q4_K_M``, ``Q6_K``, ``Q4_0``, ...
    Tensors whose rows are not a multiple of the K-quant block (256) get llama.cpp's
    fallback type, as they would with ``llama-quantize``.
    """
    try:
        import llama_cpp
    except ImportError as exc:  # pragma: no cover - part of the zoo extra
        raise RuntimeError("K-quant GGUF files need llama.cpp: pip install llama-cpp-python") from exc
    ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{file_type}", None)
    if ftype is None:
        raise ValueError(f"llama.cpp has no file type {file_type!r}")
    _silence_llama_cpp()
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftype
    params.nthread = threads
    status = llama_cpp.llama_model_quantize(str(source).encode(), str(out).encode(), ctypes.byref(params))
    if status != 0:
        raise RuntimeError(f"llama.cpp could not quantise {source} to {file_type} (status {status})")
    log.info("quantised %s -> %s (%s)", source.name, out, file_type)


def tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each GGML type a GGUF holds (e.g. ``{"Q8_0": 211, "F32": 61}``)."""
    import gguf

    counts: dict[str, int] = {}
    for tensor in gguf.GGUFReader(str(path)).tensors:
        counts[tensor.tensor_type.name] = counts.get(tensor.tensor_type.name, 0) + 1
    return dict(sorted(counts.items()))


def dominant_matrix_type(path: Path) -> str:
    """The GGML type holding the most parameters among a GGUF's 2-D tensors."""
    import gguf

    weight: dict[str, int] = {}
    for tensor in gguf.GGUFReader(str(path)).tensors:
        if len(tensor.shape) >= 2:
            weight[tensor.tensor_type.name] = weight.get(tensor.tensor_type.name, 0) + int(np.prod(tensor.shape))
    return max(weight, key=weight.__getitem__)
