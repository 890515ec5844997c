"""Inner loops of the fingerprint and the GGUF header: compiled where built, else NumPy/Python.

Fingerprinting a quantised GGUF file is bound by passes over its decoded values, so the
passes that NumPy cannot fuse are compiled (``_kernels.c``, built with the package; the
build is optional). Each compiled function has a twin here that gives the same result
bit for bit (the power sums: to float32 rounding; ``tests/test_kernels.py`` compares
them), and the package works where nothing could be compiled:

* :func:`power_sums` — the four power sums the kurtosis needs, in one pass instead of five;
* :func:`to_f16`, :func:`to_bf16` — the digest rows rounded to float16 / bfloat16;
* :func:`skip_strings` — stepping over a tokenizer's length-prefixed metadata strings;
* :func:`dequantiser` — decoders of the common GGML block types (Q8_0, Q4_0, Q4_1, Q5_0,
  Q5_1, Q4_K, Q6_K), ``gguf.quants``' values bit for bit; their twins are the NumPy
  decoders of :mod:`heritage.reading.ggml_blocks`, and llama.cpp's own library where
  installed (:mod:`heritage.reading.ggml_library`).

``HERITAGE_KERNELS=python`` forces the twins (for comparisons and benchmarks).
"""

from __future__ import annotations

import logging
import os
import struct
from functools import partial
from types import ModuleType
from typing import Callable

import numpy as np

__all__ = ["power_sums", "to_f16", "to_bf16", "skip_strings", "dequantiser", "compiled",
           "DECODED_TYPES"]

log = logging.getLogger(__name__)

_U64 = struct.Struct("<Q")
# GGML types the compiled decoder knows, with their numbers (gguf.GGMLQuantizationType).
DECODED_TYPES = {"Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q4_K": 12, "Q6_K": 14}
_STRING_WINDOW = 1 << 20  # bytes of the header copied at a time while strings are skipped


# The entry points this module expects (``VERSION`` in _kernels.c).
KERNELS_VERSION = 1


def _load_compiled() -> ModuleType | None:
    if os.environ.get("HERITAGE_KERNELS", "").strip().lower() == "python":
        return None
    try:
        from heritage.reading import _kernels
    except ImportError:  # not built (no compiler at install time): the twins below are used
        log.info("compiled fingerprint kernels not built; using the NumPy versions")
        return None
    if getattr(_kernels, "VERSION", None) != KERNELS_VERSION:  # built from an older source
        log.warning("compiled fingerprint kernels %s are version %s, not %s: using the NumPy "
                    "versions (rebuild: pip install -e .)", _kernels.__file__,
                    getattr(_kernels, "VERSION", None), KERNELS_VERSION)
        return None
    return _kernels


_compiled = _load_compiled()


def compiled() -> bool:
    """True when the compiled kernels are in use."""
    return _compiled is not None


def power_sums_numpy(values: np.ndarray) -> tuple[float, float, float, float]:
    """:func:`power_sums` by NumPy: the square, cube and fourth-power sums as float32 BLAS
    dot products, the plain sum by NumPy's pairwise float32 summation (five passes).

    Agrees with the compiled kernel's float64 sums to float32 rounding (about 1e-7
    relative), not to the bit: enough, since BLAS products (the sketches) already differ
    in their last bits from one machine to another."""
    flat = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    squares = flat * flat
    return (float(flat.sum()), float(np.dot(flat, flat)), float(np.dot(squares, flat)),
            float(np.dot(squares, squares)))


def power_sums(values: np.ndarray) -> tuple[float, float, float, float]:
    """``(sum x, sum x^2, sum x^3, sum x^4)`` of a float32 array, accumulated in float64.

    Examples
    --------
    >>> import numpy as np
    >>> power_sums(np.array([1, 2, 3], dtype=np.float32))
    (6.0, 14.0, 36.0, 98.0)
    """
    if _compiled is not None:
        return _compiled.power_sums(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    return power_sums_numpy(values)


def to_f16(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 ``values`` rounded to float16 (nearest even), as uint16 bit patterns: the
    bits of ``values.astype(np.float16)`` for every value but NaN (refused weights)."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty(values.shape, dtype=np.uint16) if out is None else out
    if _compiled is not None:
        _compiled.to_f16(values.reshape(-1), out.reshape(-1))
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            out[...] = values.astype(np.float16).view(np.uint16)
    return out


def to_bf16(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """float32 ``values`` rounded to bfloat16 bit patterns, nearest even (as
    ``tensor.to(torch.bfloat16)``), as uint16."""
    values = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty(values.shape, dtype=np.uint16) if out is None else out
    if _compiled is not None:
        _compiled.to_bf16(values.reshape(-1), out.reshape(-1))
    else:
        u = values.view(np.uint32)
        rounded = u + (np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1)))
        out[...] = (rounded >> np.uint32(16)).astype(np.uint16)
    return out


def skip_strings_python(buffer, pos: int, count: int) -> int:
    """Like :func:`skip_strings`, in Python: adds lengths over a bytes copy of 1 MB of
    the buffer at a time (quicker to read than a mapping); reading past a copy's end
    raises and moves on to the next copy, so the loop body needs no bounds check."""
    size, unpack = len(buffer), _U64.unpack_from
    while count:
        if pos + 8 > size:
            return -1
        data = buffer[pos:pos + _STRING_WINDOW]
        at, done = 0, count
        try:
            for done in range(count):  # done: strings stepped over when a read fails
                at += 8 + unpack(data, at)[0]
            done = count
        except (struct.error, OverflowError):  # the next length is not (wholly) in this copy
            pass
        pos += at
        count -= done
    return pos if pos <= size else -1


def skip_strings(buffer, pos: int, count: int) -> int:
    """The position in ``buffer`` (bytes-like: a GGUF header, mapped) after ``count``
    GGUF strings (a little-endian uint64 length, then that many bytes) from ``pos``, or
    -1 when they run past its end.

    Examples
    --------
    >>> skip_strings(b"\\x02\\0\\0\\0\\0\\0\\0\\0hi\\x00\\0\\0\\0\\0\\0\\0\\0", 0, 2)
    18
    >>> skip_strings(b"\\x09\\0\\0\\0\\0\\0\\0\\0hi", 0, 1)
    -1
    """
    if _compiled is not None:
        return _compiled.skip_strings(buffer, pos, count)
    return skip_strings_python(buffer, pos, count)


def dequantiser(type_name: str) -> Callable[[np.ndarray, np.ndarray], None] | None:
    """``decode(blocks, out)`` for a GGML type the compiled kernels decode, else None.

    ``blocks``: C-contiguous uint8 holding whole blocks; ``out``: C-contiguous float32
    holding exactly their values (else ``ValueError``). The GIL is released while it runs.

    Examples
    --------
    A Q4_0 block: a float16 scale, then 32 four-bit codes stored with an offset of 8.

    >>> import numpy as np
    >>> block = np.frombuffer(np.float16(0.5).tobytes() + bytes([0x9F] * 16), dtype=np.uint8)
    >>> out = np.empty(32, dtype=np.float32)
    >>> decode = dequantiser("Q4_0")  # None where the kernels were not built
    >>> decode(block, out)
    >>> out[:2].tolist(), out[16:18].tolist()  # low nibbles 0xF - 8, high 0x9 - 8, times 0.5
    ([3.5, 3.5], [0.5, 0.5])
    """
    number = DECODED_TYPES.get(type_name)
    if _compiled is None or number is None:
        return None
    return partial(_compiled.dequantize, number)
