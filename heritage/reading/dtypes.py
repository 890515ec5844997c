"""Conversion of stored tensor bytes to float32 NumPy arrays.

NumPy has no bfloat16, so bf16 payloads are widened by shifting their 16 bits into
the high half of a float32, which is exact.
"""

from __future__ import annotations

import numpy as np

from heritage.errors import ModelLoadError

# safetensors dtype code -> (numpy dtype of the stored bytes, bytes per element)
SAFETENSORS_DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # reinterpreted by to_float32
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
    "U16": np.dtype("<u2"),
    "U32": np.dtype("<u4"),
    "U64": np.dtype("<u8"),
    "BOOL": np.dtype("?"),
    "F8_E4M3": np.dtype("u1"),
    "F8_E5M2": np.dtype("u1"),
}

FLOAT_CODES = frozenset({"F64", "F32", "F16", "BF16"})


def bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """Widen raw bfloat16 bit patterns (uint16) to float32 exactly.

    One ufunc pass straight into the output buffer: ``raw.astype(np.uint32) << 16`` does
    the same in two passes with a temporary and is over ten times slower.
    """
    out = np.empty(raw.shape, dtype=np.uint32)
    np.left_shift(raw, 16, out=out, dtype=np.uint32)
    return out.view(np.float32)


_F16_TO_F32_SCALE = np.float32(2.0**112)


def f16_to_float32(raw: np.ndarray) -> np.ndarray:
    """Widen IEEE half precision to float32 exactly, about 2.5x faster than ``astype``.

    The 15 magnitude bits moved to float32's exponent/mantissa position read as a float32
    that is exactly ``2**-112`` times the value (normal and subnormal halves alike), so one
    multiplication rescales it; infinities and NaNs, the only exception, are patched.
    """
    h = raw.view(np.uint16)
    bits = np.empty(h.shape, dtype=np.uint32)
    np.bitwise_and(h, np.uint16(0x7FFF), out=bits, dtype=np.uint32)
    special = bits >= 0x7C00 if bits.size and int(bits.max()) >= 0x7C00 else None
    np.left_shift(bits, 13, out=bits)
    values = bits.view(np.float32)
    values *= _F16_TO_F32_SCALE
    if special is not None:  # inf/nan: keep the payload, saturate the exponent
        bits[special] = ((h[special].astype(np.uint32) & 0x3FF) << 13) | np.uint32(0x7F800000)
    sign = np.bitwise_and(h, np.uint16(0x8000), dtype=np.uint32)
    np.left_shift(sign, 16, out=sign)
    np.bitwise_or(bits, sign, out=bits)
    return values


def to_float32(raw: np.ndarray, code: str) -> np.ndarray:
    """Return ``raw`` (stored as safetensors dtype ``code``) as a float32 array.

    float32 input is returned without a copy, so a memory-mapped tensor stays mapped.
    """
    if code == "F32":
        return raw
    if code == "BF16":
        return bf16_to_float32(raw)
    if code == "F16":
        return f16_to_float32(raw)
    if code in ("F16", "F64") or code in SAFETENSORS_DTYPES:
        if code.startswith("F8"):
            raise ModelLoadError(f"8-bit float tensors ({code}) are not supported")
        return raw.astype(np.float32)
    raise ModelLoadError(f"unknown dtype {code!r}")
