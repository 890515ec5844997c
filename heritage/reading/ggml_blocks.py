"""Dequantising GGML block types with whole-array NumPy, bit for bit like ``gguf.quants``.

``gguf.quants.dequantize`` is the reference: it splits a tensor into groups of 16
rows and, per group, splits every field out of the blocks, shifts, masks and converts
them with a dozen temporaries, about 20 ns per value. Reading a GGUF checkpoint for a
fingerprint dequantises every attention matrix, so that cost decides ingest speed.

Here each common type is decoded in three steps over large row chunks, written straight
into the output: the integer codes of every value as ``uint8`` (masks and shifts on one
byte per value), one conversion to float32 (the type's offset, e.g. ``q - 8`` for Q4_0,
subtracted on the way: exact for such small integers), then one in-place multiply by
the block (or sub-block) scale and, for types with a minimum, one subtraction or
addition. Every float operation is the one ``gguf.quants`` performs, in the same order
and precision, so the values are identical to the bit (checked in the tests on every
type, and on real files written by gguf and by llama.cpp's quantiser).

Types: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K. Others return None and the
caller falls back to ``gguf.quants``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["FAST_TYPES", "dequantise_rows"]

QK_K = 256
# Values decoded per chunk: bounds the uint8 code temporaries (1 byte per value).
_CHUNK_VALUES = 1 << 20
_FOUR = np.uint8(4)
_LOW = np.uint8(0x0F)


def _f16(blocks: np.ndarray, start: int) -> np.ndarray:
    """The float16 field at byte ``start`` of every block, as float32 (n_blocks, 1)."""
    return np.ascontiguousarray(blocks[:, start:start + 2]).view(np.float16).astype(np.float32)


def _nibbles(qs: np.ndarray, codes: np.ndarray) -> None:
    """Low nibbles of ``qs`` (..., n) into ``codes[..., 0, :]``, high nibbles into ``[..., 1, :]``."""
    np.bitwise_and(qs, _LOW, out=codes[..., 0, :])
    np.right_shift(qs, _FOUR, out=codes[..., 1, :])


def _values(codes: np.ndarray, out: np.ndarray, offset: int = 0) -> None:
    """``out = float32(codes - offset)``: exact for these small integers, as gguf's casts are."""
    if offset:
        np.subtract(codes, np.float32(offset), out=out)
    else:
        np.copyto(out, codes, casting="unsafe")


def _q8_0(blocks: np.ndarray, out: np.ndarray) -> None:
    np.copyto(out, blocks[:, 2:].view(np.int8), casting="unsafe")
    out *= _f16(blocks, 0)


def _q4_0(blocks: np.ndarray, out: np.ndarray) -> None:
    n = blocks.shape[0]
    codes = np.empty((n, 2, 16), dtype=np.uint8)
    _nibbles(blocks[:, 2:], codes)
    _values(codes.reshape(n, 32), out, 8)
    out *= _f16(blocks, 0)


def _q4_1(blocks: np.ndarray, out: np.ndarray) -> None:
    n = blocks.shape[0]
    codes = np.empty((n, 2, 16), dtype=np.uint8)
    _nibbles(blocks[:, 4:], codes)
    _values(codes.reshape(n, 32), out)
    out *= _f16(blocks, 0)
    out += _f16(blocks, 2)


def _five_bit_codes(qh: np.ndarray, qs: np.ndarray) -> np.ndarray:
    """Q5_0/Q5_1: low nibbles from ``qs``, the fifth bit of value j from bit j of ``qh``."""
    n = qs.shape[0]
    codes = np.empty((n, 2, 16), dtype=np.uint8)
    _nibbles(qs, codes)
    codes = codes.reshape(n, 32)
    high = np.unpackbits(qh, axis=-1, bitorder="little")
    high <<= _FOUR
    codes |= high
    return codes


def _q5_0(blocks: np.ndarray, out: np.ndarray) -> None:
    _values(_five_bit_codes(blocks[:, 2:6], blocks[:, 6:]), out, 16)
    out *= _f16(blocks, 0)


def _q5_1(blocks: np.ndarray, out: np.ndarray) -> None:
    _values(_five_bit_codes(blocks[:, 4:8], blocks[:, 8:]), out)
    out *= _f16(blocks, 0)
    out += _f16(blocks, 2)


def _k_scales(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_K/Q5_K: per sub-block scale ``d * sc`` and minimum ``dmin * m`` (n_blocks, 8, 1)."""
    n = blocks.shape[0]
    d, dmin = _f16(blocks, 0), _f16(blocks, 2)
    packed = blocks[:, 4:16].reshape(n, 3, 4)
    low, mid, top = packed[:, 0], packed[:, 1], packed[:, 2]
    sc = np.concatenate([low & 0x3F, (top & 0x0F) | ((low >> 2) & 0x30)], axis=-1)
    mins = np.concatenate([mid & 0x3F, (top >> 4) | ((mid >> 2) & 0x30)], axis=-1)
    scale = (d * sc.astype(np.float32)).reshape(n, 8, 1)
    minimum = (dmin * mins.astype(np.float32)).reshape(n, 8, 1)
    return scale, minimum


def _q4_k(blocks: np.ndarray, out: np.ndarray) -> None:
    n = blocks.shape[0]
    codes = np.empty((n, 4, 2, 32), dtype=np.uint8)  # 4 groups of 32 bytes: low nibbles, then high
    _nibbles(blocks[:, 16:].reshape(n, 4, 32), codes)
    values = out.reshape(n, 8, 32)
    _values(codes.reshape(n, 8, 32), values)
    scale, minimum = _k_scales(blocks)
    values *= scale
    values -= minimum


def _q5_k(blocks: np.ndarray, out: np.ndarray) -> None:
    n = blocks.shape[0]
    codes = np.empty((n, 4, 2, 32), dtype=np.uint8)
    _nibbles(blocks[:, 48:].reshape(n, 4, 32), codes)
    codes = codes.reshape(n, 8, 32)
    # qh: 32 bytes; bit j of byte i is the fifth bit of value i of sub-block j.
    high = np.unpackbits(blocks[:, 16:48].reshape(n, 32, 1), axis=-1, bitorder="little")
    high <<= _FOUR
    codes |= high.transpose(0, 2, 1)
    values = out.reshape(n, 8, 32)
    _values(codes, values)
    scale, minimum = _k_scales(blocks)
    values *= scale
    values -= minimum


_Q6_SHIFTS = np.array([0, 2, 4, 6], dtype=np.uint8).reshape(1, 1, 4, 1)


def _q6_k(blocks: np.ndarray, out: np.ndarray) -> None:
    n = blocks.shape[0]
    ql = blocks[:, :128].reshape(n, 2, 64)
    qh = blocks[:, 128:192].reshape(n, 2, 1, 32)
    codes = np.empty((n, 2, 2, 64), dtype=np.uint8)  # half, nibble, 64 values
    _nibbles(ql, codes)
    codes = codes.reshape(n, 2, 4, 32)
    high = qh >> _Q6_SHIFTS
    high &= np.uint8(3)
    high <<= _FOUR
    codes |= high
    values = out.reshape(n, 16, 16)
    _values(codes.reshape(n, 16, 16), values, 32)
    scales = blocks[:, 192:208].view(np.int8).astype(np.float32)
    values *= (_f16(blocks, 208) * scales).reshape(n, 16, 1)


# type name -> (values per block, bytes per block, decoder)
_DECODERS: dict[str, tuple[int, int, Callable[[np.ndarray, np.ndarray], None]]] = {
    "Q8_0": (32, 34, _q8_0),
    "Q4_0": (32, 18, _q4_0),
    "Q4_1": (32, 20, _q4_1),
    "Q5_0": (32, 22, _q5_0),
    "Q5_1": (32, 24, _q5_1),
    "Q4_K": (QK_K, 144, _q4_k),
    "Q5_K": (QK_K, 176, _q5_k),
    "Q6_K": (QK_K, 210, _q6_k),
}
FAST_TYPES = frozenset(_DECODERS)


def dequantise_rows(raw: np.ndarray, type_name: str, columns: int,
                    order: np.ndarray | None = None) -> np.ndarray | None:
    """Dequantise a 2-D GGML tensor stored as ``raw`` (rows x bytes per row, uint8).

    Parameters
    ----------
    raw : the tensor's bytes, one row of blocks per row (a memory map is read once).
    type_name : the GGML type (``"Q4_K"`` ...).
    columns : values per row.
    order : optional source row of each output row (a row permutation applied while
        reading, before any value is decoded: cheaper than permuting float32 rows after).

    Returns
    -------
    numpy.ndarray or None
        float32 ``(rows, columns)``, equal to the bit to ``gguf.quants.dequantize``; None
        when ``type_name`` is not one of :data:`FAST_TYPES`.

    Examples
    --------
    >>> import numpy as np
    >>> from gguf import GGMLQuantizationType, quants
    >>> w = np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32)
    >>> raw = quants.quantize(w, GGMLQuantizationType.Q8_0)
    >>> np.array_equal(dequantise_rows(raw, "Q8_0", 32), quants.dequantize(raw, GGMLQuantizationType.Q8_0))
    True
    """
    decoder = _DECODERS.get(type_name)
    if decoder is None:
        return None
    block_values, block_bytes, decode = decoder
    rows = raw.shape[0]
    per_row = columns // block_values
    if columns % block_values or raw.shape[1] != per_row * block_bytes:
        raise ValueError(f"{type_name}: rows of {raw.shape[1]} bytes do not hold {columns} values")
    out = np.empty((rows, columns), dtype=np.float32)
    step = max(1, _CHUNK_VALUES // max(columns, 1))
    for start in range(0, rows, step):
        stop = min(rows, start + step)
        chunk = raw[start:stop] if order is None else raw[order[start:stop]]
        blocks = np.ascontiguousarray(chunk).reshape(-1, block_bytes)
        decode(blocks, out[start:stop].reshape(-1, block_values))
    return out
