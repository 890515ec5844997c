"""GGUF files written the way llama.cpp's converter writes them, with gguf's own writer."""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch
import transformers
from gguf.quants import quantize

Q = gguf.GGMLQuantizationType


def llama_cpp_permute(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """``LlamaModel.permute`` from llama.cpp's convert_hf_to_gguf.py, verbatim."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2)
            .reshape(weights.shape))


def tiny_llama(tmp_path: Path, hidden: int = 64, tie: bool = True) -> tuple[Path, transformers.LlamaConfig]:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, vocab_size=128,
                                      tie_word_embeddings=tie, max_position_embeddings=64)
    folder = tmp_path / "hf"
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    return folder, config


def write_llama_gguf(path: Path, folder: Path, config: transformers.LlamaConfig, qtype_for) -> dict[str, np.ndarray]:
    """Convert the transformers checkpoint in ``folder`` as llama.cpp's converter does:
    names through ``gguf.TensorNameMap``, q/k permuted, 2-D weights quantised."""
    from safetensors.numpy import load_file

    state = load_file(str(folder / "model.safetensors"))
    names = gguf.TensorNameMap(gguf.MODEL_ARCH.LLAMA, config.num_hidden_layers)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(config.num_hidden_layers)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    writer.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(config.vocab_size)])
    for hf_name, data in state.items():
        if hf_name.endswith("q_proj.weight"):
            data = llama_cpp_permute(data, config.num_attention_heads, config.num_attention_heads)
        elif hf_name.endswith("k_proj.weight"):
            data = llama_cpp_permute(data, config.num_attention_heads, config.num_key_value_heads)
        qtype = qtype_for(hf_name, data) if data.ndim == 2 else Q.F32
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if qtype == Q.F32:
            writer.add_tensor(name, data.astype(np.float32))
        elif qtype == Q.F16:
            writer.add_tensor(name, data.astype(np.float16))
        else:
            writer.add_tensor(name, quantize(data, qtype), raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return state
