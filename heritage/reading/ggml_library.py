"""ggml's own compiled dequantisers, called through ``ctypes`` when llama.cpp's library is installed.

Why: decoding the quantised blocks is the largest single cost of fingerprinting a GGUF
checkpoint. The whole-array NumPy decoder (:mod:`heritage.reading.ggml_blocks`) needs
about 2 ns per value; ggml's C loops (``dequantize_row_q4_1`` ...) need 0.2-1 ns, and
``ctypes`` releases the GIL while they run, so a second thread can decode one tensor
while another is fingerprinted. The library is the ``libggml-base`` that
llama-cpp-python (the ``zoo`` extra) builds and ships; it is optional: without it, or
for a type it does not export, callers fall back to the NumPy decoder.

Bit-exactness is not taken on trust: the compiler that built the library might fuse a
multiply and an add, which would change the last bit of some values. So before a type's
decoder is used, it decodes a fixed probe of random blocks (every bit pattern of the
code and scale fields, zero and non-finite scales included) and its output is compared
bit for bit with ``gguf.quants.dequantize``; a type whose probe differs is never used
(logged once).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["GGMLDequantisers", "default_dequantisers", "find_ggml_library"]

log = logging.getLogger(__name__)

_LIBRARY_NAMES = ("libggml-base.so", "libggml-base.dylib", "ggml-base.dll")
_PROBE_BLOCKS = 64
_PROBE_SEED = 0x66_6D_6C

Decoder = Callable[[np.ndarray, np.ndarray], None]


def find_ggml_library() -> Path | None:
    """The ``libggml-base`` shipped inside the installed ``llama_cpp`` package, else one the
    system's loader knows, else None. ``llama_cpp`` itself is not imported (that would
    load the whole of llama.cpp): only its folder is looked up."""
    spec = importlib.util.find_spec("llama_cpp")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        for name in _LIBRARY_NAMES:
            candidate = Path(folder) / "lib" / name
            if candidate.is_file():
                return candidate
    found = ctypes.util.find_library("ggml-base")
    return Path(found) if found else None


def _symbol(type_name: str) -> str:
    """ggml's name for a type's row dequantiser: ``Q4_1`` -> ``dequantize_row_q4_1``,
    ``Q4_K`` -> ``dequantize_row_q4_K`` (the K stays upper-case), ``IQ4_NL`` -> ``..._iq4_nl``."""
    lower = type_name.lower()
    if lower.endswith("_k"):
        lower = lower[:-1] + "K"
    return f"dequantize_row_{lower}"


class GGMLDequantisers:
    """The row dequantisers of one ``libggml-base``, each checked before its first use.

    Parameters
    ----------
    library : path of the shared library (see :func:`find_ggml_library`).

    Raises
    ------
    OSError
        When the library cannot be loaded.
    """

    def __init__(self, library: Path) -> None:
        self.library = library
        self._lib = ctypes.CDLL(str(library))  # CDLL: the GIL is released during each call
        self._checked: dict[str, Decoder | None] = {}
        self._lock = threading.Lock()

    def decoder(self, type_name: str) -> Decoder | None:
        """``decode(blocks, out)`` for ``type_name``, or None when the library has no
        dequantiser for it or its probe differs from ``gguf.quants`` by a single bit.

        ``blocks`` is C-contiguous ``uint8`` holding whole blocks, ``out`` a C-contiguous
        float32 array of as many values as the blocks hold.
        """
        with self._lock:
            if type_name not in self._checked:
                self._checked[type_name] = self._checked_decoder(type_name)
            return self._checked[type_name]

    def _checked_decoder(self, type_name: str) -> Decoder | None:
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
        from gguf.quants import dequantize

        try:
            qtype = GGMLQuantizationType[type_name]
            function = getattr(self._lib, _symbol(type_name))
        except (KeyError, AttributeError):
            return None
        function.restype = None
        function.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
        block_values, block_bytes = GGML_QUANT_SIZES[qtype]

        def decode(blocks: np.ndarray, out: np.ndarray) -> None:
            if not (blocks.flags.c_contiguous and out.flags.c_contiguous and out.dtype == np.float32
                    and blocks.dtype == np.uint8 and blocks.size * block_values == out.size * block_bytes):
                raise ValueError(f"{type_name}: {blocks.size} bytes of blocks do not decode into "
                                 f"{out.size} contiguous float32 values")
            if out.size:
                function(blocks.ctypes.data, out.ctypes.data, out.size)

        probe = np.random.default_rng([_PROBE_SEED, int(qtype)]).integers(
            0, 256, size=(_PROBE_BLOCKS, block_bytes), dtype=np.uint8)
        try:
            with np.errstate(all="ignore"):
                expected = np.asarray(dequantize(probe, qtype), dtype=np.float32).reshape(-1)
        except Exception:  # noqa: BLE001 - gguf.quants cannot decode it: nothing to hold the library to
            return None
        values = np.empty(_PROBE_BLOCKS * block_values, dtype=np.float32)
        decode(probe, values)
        if not np.array_equal(values.view(np.uint32), expected.view(np.uint32)):
            log.info("%s: %s from %s differs from gguf.quants; the NumPy decoder is used",
                     type_name, _symbol(type_name), self.library)
            return None
        return decode

    def dequantise_rows(self, raw: np.ndarray, type_name: str, columns: int,
                        order: np.ndarray | None = None) -> np.ndarray | None:
        """Like :func:`heritage.reading.ggml_blocks.dequantise_rows`, by the library.

        Parameters
        ----------
        raw : the tensor's bytes, one row of blocks per row (uint8, rows x bytes per row).
        type_name : the GGML type (``"Q4_1"`` ...).
        columns : values per row.
        order : optional source row of each output row (rows are gathered as bytes,
            before decoding).

        Returns
        -------
        numpy.ndarray or None
            float32 ``(rows, columns)``, bit for bit ``gguf.quants.dequantize``'s values;
            None when the library has no checked decoder for ``type_name``.

        Examples
        --------
        >>> import numpy as np
        >>> from gguf import GGMLQuantizationType, quants
        >>> library = default_dequantisers()
        >>> w = np.linspace(-1, 1, 64, dtype=np.float32).reshape(2, 32)
        >>> raw = quants.quantize(w, GGMLQuantizationType.Q8_0)
        >>> values = library.dequantise_rows(raw, "Q8_0", 32) if library else quants.dequantize(raw, GGMLQuantizationType.Q8_0)
        >>> np.array_equal(values, quants.dequantize(raw, GGMLQuantizationType.Q8_0))
        True
        """
        decode = self.decoder(type_name)
        if decode is None:
            return None
        from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

        block_values, block_bytes = GGML_QUANT_SIZES[GGMLQuantizationType[type_name]]
        rows = raw.shape[0]
        if columns % block_values or raw.shape[1] != columns // block_values * block_bytes:
            raise ValueError(f"{type_name}: rows of {raw.shape[1]} bytes do not hold {columns} values")
        blocks = np.ascontiguousarray(raw if order is None else raw[order])
        out = np.empty((rows, columns), dtype=np.float32)
        decode(blocks, out)
        return out


@lru_cache(maxsize=1)
def default_dequantisers() -> GGMLDequantisers | None:
    """The dequantisers of :func:`find_ggml_library`'s library (loaded once), or None
    when there is none or it cannot be loaded."""
    path = find_ggml_library()
    if path is None:
        return None
    try:
        return GGMLDequantisers(path)
    except OSError as error:
        log.info("ggml library %s cannot be loaded (%s); the NumPy decoder is used", path, error)
        return None
