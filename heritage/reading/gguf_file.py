"""GGUF checkpoints (llama.cpp): Hugging Face names, unpermuted q/k, dequantised lazily.

A GGUF file holds a whole model: metadata, then tensors under llama.cpp's names
(``blk.N.attn_q.weight``), most of them quantised in blocks (Q8_0, Q4_0, Q4_K, Q6_K ...).
Reading one for lineage means undoing what llama.cpp's converter did:

* **names**: ``gguf.TensorNameMap`` knows, for each architecture, which Hugging Face
  names a GGUF tensor comes from; :func:`hf_tensor_names` picks the architecture's own
  convention among them (``model.layers.N.self_attn.q_proj`` for llama) and
  :mod:`heritage.reading.naming` then makes them canonical like any other checkpoint's;
* **the rotary permutation**: for Llama-family architectures the converter permutes the
  rows of ``q_proj`` and ``k_proj`` so that each head's rotary halves are interleaved;
  :func:`unpermute_rotary` restores the Hugging Face row order, so that a GGUF export
  compares row for row with the model it was made from;
* **quantisation**: each tensor is dequantised when it is loaded, one tensor at a time
  from its own memory mapping, so memory stays near the largest tensor: the common block
  types by the package's compiled decoders (:func:`heritage.reading.kernels.dequantiser`),
  the others by ggml's own when llama.cpp's library is installed
  (:mod:`heritage.reading.ggml_library`, each checked against ``gguf.quants`` first),
  else the common block types by :mod:`heritage.reading.ggml_blocks` (bit for bit
  ``gguf.quants``' values too, a few times faster than it), the rest by
  ``gguf.quants.dequantize``; float types are widened exactly
  by :mod:`heritage.reading.dtypes`. The q/k unpermutation reorders the quantised rows
  before they are decoded, which costs a fraction of reordering float32 rows. Each
  quantised matrix also has a ``row_reader`` that decodes a range of rows into the
  caller's buffer: the fingerprint reads matrices that way, chunk by chunk, into buffers
  it reuses.

The header is parsed here rather than by ``gguf.GGUFReader``, which decodes every
metadata array element by element: on SmolLM2-135M (49,152 tokenizer tokens and as many
merges) it takes seconds, ten times longer than reading the whole file. This parser keeps
the scalar metadata, skips arrays by their lengths, validates every tensor's type, shape
and byte range, and is checked against ``GGUFReader`` in the tests.
"""

from __future__ import annotations

import mmap
import re
import struct
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from heritage.errors import ModelLoadError, UnsupportedFormatError
from heritage.reading.dtypes import bf16_to_float32, f16_to_float32
from heritage.reading.ggml_blocks import dequantise_rows
from heritage.reading.ggml_library import default_dequantisers
from heritage.reading.kernels import dequantiser, skip_strings
from heritage.reading.layers import is_vocabulary_matrix
from heritage.reading.model import LoadedModel, ModelFormat, TensorRef
from heritage.reading.parameters import DROPPED_OUTPUT_NAME, split_parameters

__all__ = ["GGUFHeader", "GGUFTensorInfo", "hf_tensor_names", "load_gguf", "read_gguf_header",
           "unpermute_rotary", "unpermuted_rows"]

_MAGIC = b"GGUF"
_DEFAULT_ALIGNMENT = 32
_MAX_STRING = 1 << 24
_MAX_DIMS = 8
# Architectures whose q/k rows llama.cpp's converter permutes (LlamaModel.permute).
ROTARY_PERMUTED_ARCHITECTURES = frozenset({"llama"})
_FLOAT_TYPES = frozenset({"F32", "F16", "BF16", "F64"})
# GGUF value types: struct format of the scalar ones (gguf.GGUFValueType numbering).
_SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9
_MAX_ARRAY_NESTING = 4


@dataclass(frozen=True)
class GGUFTensorInfo:
    """One tensor as the file describes it (llama.cpp name, GGML type, NumPy-order shape)."""

    name: str
    type_name: str
    type_id: int
    shape: tuple[int, ...]
    offset: int  # absolute byte offset in the file
    nbytes: int


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, object]  # scalar and string values (arrays are skipped)
    tensors: list[GGUFTensorInfo]

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def field(self, key: str, default: object = None) -> object:
        """An architecture field (``block_count`` -> ``llama.block_count``)."""
        return self.metadata.get(f"{self.architecture}.{key}", default)


class _ArrayLength(int):
    """What the parser keeps of a metadata array: its length (the values are skipped)."""


class _Cursor:
    def __init__(self, buf: mmap.mmap, size: int) -> None:
        self.buf, self.size, self.pos = buf, size, 0

    def take(self, n: int) -> int:
        start = self.pos
        if n < 0 or start + n > self.size:
            raise ModelLoadError("truncated GGUF header")
        self.pos += n
        return start

    def unpack(self, fmt: str) -> object:
        return struct.unpack_from(fmt, self.buf, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        n = self.unpack("<Q")
        if n > _MAX_STRING:
            raise ModelLoadError(f"GGUF string of {n} bytes is implausibly long")
        start = self.take(n)
        return bytes(self.buf[start:start + n]).decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        """Step over ``count`` length-prefixed strings (a tokenizer's 50,000 tokens and as
        many merges): most of the header's cost, so compiled where it could be
        (:func:`heritage.reading.kernels.skip_strings`)."""
        pos = skip_strings(self.buf, self.pos, count)
        if pos < 0:
            raise ModelLoadError("truncated GGUF header")
        self.pos = pos

    def value(self, vtype: int, depth: int = 0) -> object:
        if depth > _MAX_ARRAY_NESTING:
            raise ModelLoadError("GGUF metadata arrays nested implausibly deep")
        if vtype in _SCALAR:
            return self.unpack(_SCALAR[vtype])
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            item, count = self.unpack("<I"), self.unpack("<Q")
            if item in _SCALAR:
                self.take(struct.calcsize(_SCALAR[item]) * count)
            elif item == _STRING:
                self.skip_strings(count)
            elif item == _ARRAY:
                for _ in range(count):
                    self.value(_ARRAY, depth + 1)
            else:
                raise ModelLoadError(f"GGUF array of unknown value type {item}")
            return _ArrayLength(count)
        raise ModelLoadError(f"GGUF metadata of unknown value type {vtype}")


def _quant_types() -> tuple[dict[int, str], dict[int, tuple[int, int]]]:
    from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

    names = {int(t): t.name for t in GGMLQuantizationType}
    sizes = {int(t): s for t, s in GGML_QUANT_SIZES.items()}
    return names, sizes


def read_gguf_header(path: Path) -> GGUFHeader:
    """Parse and validate the header of the GGUF file at ``path`` (see the module docstring)."""
    names, sizes = _quant_types()
    size = path.stat().st_size
    if size < 24:
        raise ModelLoadError(f"truncated GGUF file ({size} bytes)")
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        cur = _Cursor(buf, size)
        if bytes(buf[:4]) != _MAGIC:
            raise ModelLoadError("not a GGUF file")
        cur.take(4)
        version = cur.unpack("<I")
        if version not in (2, 3):
            if version & 0xFFFF == 0 and version >> 16 in (2, 3):
                raise UnsupportedFormatError("big-endian GGUF files are not supported")
            raise UnsupportedFormatError(f"GGUF version {version} is not supported (2 and 3 are)")
        n_tensors, n_kv = cur.unpack("<Q"), cur.unpack("<Q")
        if n_tensors > size // 24 or n_kv > size // 12:
            raise ModelLoadError("GGUF header counts are larger than the file")
        metadata: dict[str, object] = {}
        for _ in range(n_kv):
            key = cur.string()
            value = cur.value(cur.unpack("<I"))
            if not isinstance(value, _ArrayLength):
                metadata[key] = value
        raw: list[tuple[str, int, tuple[int, ...], int]] = []
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.unpack("<I")
            if not 1 <= n_dims <= _MAX_DIMS:
                raise ModelLoadError(f"tensor {name!r}: {n_dims} dimensions")
            dims = tuple(cur.unpack("<Q") for _ in range(n_dims))
            raw.append((name, cur.unpack("<I"), dims, cur.unpack("<Q")))
        alignment = metadata.get("general.alignment", _DEFAULT_ALIGNMENT)
        if not isinstance(alignment, int) or isinstance(alignment, bool) or alignment <= 0 or alignment & (alignment - 1):
            raise ModelLoadError(f"GGUF alignment {alignment!r} is not a power of two")
        data_start = -(-cur.pos // alignment) * alignment
    tensors = [_tensor_info(name, tid, dims, offset, data_start, size, names, sizes)
               for name, tid, dims, offset in raw]
    spans = sorted((t.offset, t.offset + t.nbytes, t.name) for t in tensors)
    for (_b1, e1, n1), (b2, _e2, n2) in zip(spans, spans[1:]):
        if b2 < e1:
            raise ModelLoadError(f"tensors {n1!r} and {n2!r} have overlapping data")
    if len({t.name for t in tensors}) != len(tensors):
        raise ModelLoadError("GGUF file names one tensor twice")
    return GGUFHeader(version=version, metadata=metadata, tensors=tensors)


def _tensor_info(name: str, type_id: int, dims: tuple[int, ...], offset: int, data_start: int,
                 file_size: int, names: dict[int, str], sizes: dict[int, tuple[int, int]]) -> GGUFTensorInfo:
    if type_id not in names or type_id not in sizes:
        raise ModelLoadError(f"tensor {name!r}: unknown GGML type {type_id}")
    block, type_size = sizes[type_id]
    if dims[0] % block:
        raise ModelLoadError(f"tensor {name!r}: row of {dims[0]} values is not whole {names[type_id]} blocks")
    numel = 1
    for d in dims:
        numel *= d
    nbytes = numel // block * type_size
    start = data_start + offset
    if start + nbytes > file_size:
        raise ModelLoadError(f"tensor {name!r}: data beyond the end of the file (truncated?)")
    return GGUFTensorInfo(name=name, type_name=names[type_id], type_id=type_id,
                          shape=tuple(reversed(dims)), offset=start, nbytes=nbytes)


# ----------------------------------------------------------------------------- names


# The Hugging Face layout of an architecture: block prefix, prefix of the other tensors,
# name of the output projection. The llama layout, shared by most decoder
# architectures (mistral, qwen2/3, gemma, phi3, olmo, starcoder2 ...), is the default.
_LLAMA_LAYOUT = ("model.layers", "model.", "lm_head")
_HF_LAYOUT = {
    "gpt2": ("transformer.h", "transformer.", "lm_head"),
    "gptj": ("transformer.h", "transformer.", "lm_head"),
    "falcon": ("transformer.h", "transformer.", "lm_head"),
    "mpt": ("transformer.blocks", "transformer.", "lm_head"),
    "gptneox": ("gpt_neox.layers", "gpt_neox.", "embed_out"),
}


@lru_cache(maxsize=32)
def hf_tensor_names(architecture: str, n_blocks: int) -> dict[str, str]:
    """``{gguf base name: Hugging Face base name}`` (no ``.weight``/``.bias`` suffix).

    ``gguf.TensorNameMap`` lists every Hugging Face name each GGUF tensor may come from,
    all conventions together; the architecture's layout (:data:`_HF_LAYOUT`, llama's by
    default) picks one: the first candidate under its block or top-level prefix, else
    the first candidate. Unknown architectures give an empty map (names stay GGUF's).
    """
    import gguf

    arch = next((a for a, n in gguf.MODEL_ARCH_NAMES.items() if n == architecture), None)
    if arch is None:
        return {}
    blocks, top, output = _HF_LAYOUT.get(architecture, _LLAMA_LAYOUT)
    table = gguf.TensorNameMap(arch, max(n_blocks, 1))
    candidates: dict[str, list[str]] = {}
    for hf_name, (_kind, gguf_name) in table.mapping.items():
        if hf_name != gguf_name:
            candidates.setdefault(gguf_name, []).append(hf_name)
    out: dict[str, str] = {}
    for gguf_name, names in candidates.items():
        block = re.match(r"^blk\.(\d+)\.", gguf_name)
        if block:
            wanted = f"{blocks}.{block[1]}."
        elif gguf_name == "output":
            wanted = None
            if output in names:
                out[gguf_name] = output
                continue
        else:
            wanted = top
        out[gguf_name] = next((n for n in names if wanted and n.startswith(wanted)), names[0])
    return out


def unpermute_rotary(weight: np.ndarray, heads: int) -> np.ndarray:
    """Undo llama.cpp's q/k row permutation (per head: interleaved rotary pairs -> halves).

    The converter applies ``w.reshape(heads, 2, rows // heads // 2, *rest).swapaxes(1, 2)``;
    this is its inverse. Returns a new C-contiguous array.
    """
    return np.ascontiguousarray(weight[unpermuted_rows(weight.shape[0], heads)])


@lru_cache(maxsize=64)
def unpermuted_rows(rows: int, heads: int) -> np.ndarray:
    """For each row of the Hugging Face order, the row of llama.cpp's permuted order it
    is stored in (the inverse of the converter's q/k permutation, as a row index; one
    read-only array per shape, shared by every matrix of that shape)."""
    if heads <= 0 or rows % (2 * heads):
        raise ModelLoadError(f"cannot unpermute {rows} rows for {heads} heads")
    order = np.arange(rows).reshape(heads, rows // heads // 2, 2).swapaxes(1, 2).reshape(rows)
    order.setflags(write=False)
    return order


# ----------------------------------------------------------------------------- tensors


def _map_bytes(path: Path, offset: int, nbytes: int) -> np.ndarray:
    from heritage.reading.safetensors_file import map_tensor

    return map_tensor(path, offset, nbytes, np.dtype("u1"), (nbytes,))


def _dequantise(path: Path, info: GGUFTensorInfo, order: np.ndarray | None = None) -> np.ndarray:
    """The tensor's values as float32, its rows taken in ``order`` (None: as stored)."""
    if info.nbytes == 0:
        return np.zeros(info.shape, dtype=np.float32)
    raw = _map_bytes(path, info.offset, info.nbytes)
    rows = 1
    for d in info.shape[:-1]:
        rows *= d
    if order is not None:
        raw = raw.reshape(rows, -1)[order]
    if info.type_name == "F32":
        return raw.view("<f4").reshape(info.shape)
    if info.type_name == "F16":
        return f16_to_float32(raw.view("<f2")).reshape(info.shape)
    if info.type_name == "BF16":
        return bf16_to_float32(raw.view("<u2")).reshape(info.shape)
    if info.type_name == "F64":
        return raw.view("<f8").astype(np.float32).reshape(info.shape)
    return _decode_rows(raw.reshape(rows, info.nbytes // max(rows, 1)), info).reshape(info.shape)


def _decode_rows(by_row: np.ndarray, info: GGUFTensorInfo, out: np.ndarray | None = None) -> np.ndarray:
    """Quantised rows (uint8, rows x bytes) as float32 (rows x values per row), into ``out``
    when given (C-contiguous float32 of that shape).

    Decoded by the package's compiled decoders for the common types
    (:func:`heritage.reading.kernels.dequantiser`), else by llama.cpp's where installed
    (:mod:`heritage.reading.ggml_library`), else by :mod:`heritage.reading.ggml_blocks`
    (whole row chunks) for the common block types, else by ``gguf.quants``: the values
    are the same to the bit on every path."""
    columns = info.shape[-1]
    decode = dequantiser(info.type_name)
    library = default_dequantisers() if decode is None else None
    if library is not None:
        decode = library.decoder(info.type_name)
    if decode is not None:
        out = np.empty((by_row.shape[0], columns), dtype=np.float32) if out is None else out
        decode(np.ascontiguousarray(by_row), out)
        return out
    values = dequantise_rows(by_row, info.type_name, columns)
    if values is None:
        from gguf import GGMLQuantizationType
        from gguf.quants import dequantize

        try:  # gguf dequantises 16 rows at a time: temporaries stay small
            values = np.asarray(dequantize(by_row, GGMLQuantizationType(info.type_id)), dtype=np.float32)
        except NotImplementedError:
            raise UnsupportedFormatError(f"tensor {info.name!r}: GGML type {info.type_name} "
                                         "cannot be dequantised") from None
    if out is None:
        return values
    out[...] = values.reshape(out.shape)
    return out


def _read_rows(path: Path, info: GGUFTensorInfo, order: np.ndarray | None, start: int, stop: int,
               out: np.ndarray) -> None:
    """Rows ``start:stop`` of a quantised matrix (rows in ``order``) decoded into ``out``:
    only the bytes of those rows are read (for unpermuted q/k, the span of the heads
    they come from)."""
    row_bytes = info.nbytes // info.shape[0]
    if order is None:
        first, count, picked = start, stop - start, None
    elif start == 0 and stop == len(order):  # the whole matrix: every stored row
        first, count, picked = 0, stop, order
    else:
        stored = order[start:stop]
        first = int(stored.min())
        count, picked = int(stored.max()) + 1 - first, stored - first
    raw = _read_bytes(path, info.offset + first * row_bytes, count * row_bytes).reshape(count, row_bytes)
    _decode_rows(raw if picked is None else raw[picked], info, out)


def _read_bytes(path: Path, offset: int, nbytes: int) -> np.ndarray:
    """``nbytes`` at ``offset``, read into a new array: for the chunks a fingerprint
    decodes, cheaper than mapping each one (no mapping and unmapping, no page faults),
    and the bytes arrive in cache for the decoder."""
    out = np.empty(nbytes, dtype=np.uint8)
    view = memoryview(out)
    done = 0
    with open(path, "rb", buffering=0) as fh:
        fh.seek(offset)
        while done < nbytes:
            n = fh.readinto(view[done:])
            if not n:
                raise ModelLoadError(f"{path.name}: {nbytes} bytes expected at offset {offset}, "
                                     f"{done} read (truncated?)")
            done += n
    return out


def _loader(path: Path, info: GGUFTensorInfo, unpermute_heads: int | None
            ) -> tuple[Callable[[], np.ndarray], Callable[[int, int, np.ndarray], None] | None]:
    """The tensor's ``load`` and, for a quantised matrix, its ``row_reader``."""
    def order() -> np.ndarray | None:
        return unpermuted_rows(info.shape[0], unpermute_heads) if unpermute_heads else None

    def load() -> np.ndarray:
        return _dequantise(path, info, order())

    def read_rows(start: int, stop: int, out: np.ndarray) -> None:
        _read_rows(path, info, order(), start, stop, out)

    quantised_matrix = len(info.shape) == 2 and info.nbytes > 0 and info.type_name not in _FLOAT_TYPES
    return load, (read_rows if quantised_matrix else None)


def dominant_quantization(infos: list[GGUFTensorInfo]) -> str | None:
    """The GGML type holding most elements of the 2-D weights; None when that is a float type."""
    counts: Counter[str] = Counter()
    for info in infos:
        if len(info.shape) == 2:
            counts[info.type_name] += info.shape[0] * info.shape[1]
    if not counts:
        return None
    kind = counts.most_common(1)[0][0]
    return None if kind in _FLOAT_TYPES else kind


def _count(header: GGUFHeader, key: str, default: int) -> int:
    value = header.field(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelLoadError(f"GGUF metadata {header.architecture}.{key} is not a count: {value!r}")
    return value


def load_gguf(path: Path, name: str) -> LoadedModel:
    """Open the GGUF file at ``path`` as a :class:`LoadedModel` (nothing dequantised yet)."""
    header = read_gguf_header(path)
    arch = header.architecture
    blocks = [int(m[1]) for t in header.tensors if (m := re.match(r"^blk\.(\d+)\.", t.name))]
    names = hf_tensor_names(arch, max(blocks, default=-1) + 1)
    permuted = arch in ROTARY_PERMUTED_ARCHITECTURES
    heads = _count(header, "attention.head_count", 0)
    kv_heads = _count(header, "attention.head_count_kv", heads) or heads
    refs: dict[str, TensorRef] = {}
    for info in header.tensors:
        base, dot, suffix = info.name.rpartition(".")
        if not dot:
            base, suffix = info.name, ""
        hf_base = names.get(base, base)
        hf_name = f"{hf_base}.{suffix}" if suffix else hf_base
        unpermute = None
        if permuted and suffix == "weight" and len(info.shape) == 2 and base.endswith((".attn_q", ".attn_k")):
            unpermute = heads if base.endswith(".attn_q") else kv_heads
            if not unpermute:
                raise ModelLoadError(f"{arch} GGUF without {arch}.attention.head_count: "
                                     "its q/k rows cannot be put back in order")
        if hf_name in refs:
            raise ModelLoadError(f"GGUF tensor {info.name!r} maps to {hf_name!r}, like another tensor")
        load, read_rows = _loader(path, info, unpermute)
        refs[hf_name] = TensorRef(name=hf_name, shape=info.shape, dtype=info.type_name,
                                  loader=load, row_reader=read_rows)
    tensors, buffers, _ = split_parameters(refs, {"model_type": arch}, find_ties=False)
    tied: dict[str, str] = {}
    stored = {t.name for t in header.tensors}
    if "token_embd.weight" in stored and "output.weight" not in stored:
        embedding = next((n for n, t in tensors.items() if len(t.shape) == 2 and is_vocabulary_matrix(n)), None)
        if embedding is not None:
            tied[DROPPED_OUTPUT_NAME] = embedding  # llama.cpp writes no output for tied models
    metadata = {k: v for k, v in header.metadata.items() if isinstance(v, (str, int, float, bool))}
    return LoadedModel(name=name, path=path, format=ModelFormat.GGUF, tensors=tensors, files=[path],
                       config=metadata, buffers=buffers, tied=tied,
                       quantization=dominant_quantization(header.tensors))
