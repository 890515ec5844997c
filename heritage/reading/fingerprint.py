"""Compact per-model fingerprints, read once at ingest, so that comparisons never reload weights.

For every attention projection (or, in a model without attention, every MLP matrix:
see :func:`fingerprint_roles`) a fingerprint keeps:

* exact statistics: Frobenius norm, mean, standard deviation, excess kurtosis
  (the moments only for the kurtosis roles, where direction is decided);
* a two-sided Gaussian sketch ``Y = L W R^T`` of fixed size ``k x k`` (``L`` and ``R``
  are ``k x dim`` Gaussian matrices scaled by ``1/sqrt(k)``, the same for every model
  because they are seeded by the dimension alone; a side of size ``<= k`` is kept whole).

The sketch is linear, so ``sketch(W_u) - sketch(W_v) = sketch(W_u - W_v)`` and:

* ``||Y_u - Y_v||_F`` estimates ``||W_u - W_v||_F`` (unbiased in the square; the
  relative error is about ``sqrt(2/k^2)`` for a full-rank difference and ``sqrt(4/(k r))``
  for a rank-``r`` one), and inner products likewise: the ``l2`` and ``cosine``
  distances come from sketches;
* ``rank(Y_u - Y_v) = rank(W_u - W_v)`` whenever that rank is below ``k`` (almost
  surely for Gaussian ``L, R``): the LoRA ``rank`` distance is exact up to ``k``;
* a LoRA adapter's effective model ``W_p + delta`` has sketch ``Y_p + sketch(delta)``, so
  an adapter can be compared with any candidate base without its weights.

Only the reference ``mother`` distance (a maximum over entries) cannot be sketched; it
is computed exactly from weights (see :mod:`heritage.lineage.exact`) where weights are at hand.

Exact tests need more than a sketch: a dtype conversion is ``child == round(parent)``
and a head-only child has a bit-identical backbone. So each compared matrix (and each
task head) also keeps *digests*: hashes of every eighth row of its values, as float32
and rounded to float16 and to bfloat16 (:class:`_Digester`). A child stored in
bfloat16 is an exact conversion of a float32 parent iff their ``bf16`` digests agree on
every matrix (and their sketches differ by no more than that rounding). Sampling rows
keeps the cost at a few percent of the sketch; together with the sketch, which sees
every entry, equal digests mean equal values. Adapters and quantised models keep none:
no exact test reads them.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import logging
import math
import os
import threading
from dataclasses import dataclass, field
from functools import lru_cache, partial
from typing import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from heritage.errors import InvalidWeightsError
from heritage.reading.layers import (
    ATTENTION_ROLES,
    FINGERPRINT_ROLES,
    KURTOSIS_ROLES,
    LayerRole,
    block_index,
    block_pattern,
    classify,
)
from heritage.reading.kernels import power_sums, to_bf16, to_f16
from heritage.reading.loader import LoadedModel
from heritage.reading.model import TensorRef
from heritage.reading.profile import structure_hash

log = logging.getLogger(__name__)

FINGERPRINT_VERSION = 2
# Versions from_bytes still reads (version 1: no digests, heads, dtype or quantisation).
READABLE_VERSIONS = frozenset({1, 2})
# Digests hash every DIGEST_ROW_STEP-th row (see the module docstring).
DIGEST_ROW_STEP = 8
# Storage precisions, finest first; a digest at precision p hashes the values rounded to p.
PRECISIONS = ("f32", "f16", "bf16")
_PRECISION_OF_DTYPE = {"F64": "f64", "F32": "f32", "F16": "f16", "BF16": "bf16"}
DEFAULT_SKETCH_DIM = 48
PLACEMENT_DIM = 256
_PLACEMENT_BLOCK = 4
_SKETCH_SEED = 0x5EED_0F_1A6E
_CHUNK_ELEMENTS = 1 << 21  # 2M values per chunk: bounded temporaries whatever the tensor size


@lru_cache(maxsize=64)
def sketch_matrix(dim: int, k: int) -> np.ndarray | None:
    """The shared ``k x dim`` Gaussian projection for a side of size ``dim`` (None: identity)."""
    if dim <= k:
        return None
    rng = np.random.default_rng([_SKETCH_SEED, dim, k])
    g = rng.standard_normal((k, dim), dtype=np.float32)
    g *= np.float32(1.0 / math.sqrt(k))
    g.setflags(write=False)
    return g


class _Digester:
    """Hashes of the sampled rows of one tensor at every precision (see :class:`TensorDigest`)."""

    def __init__(self) -> None:
        self._hashes = {p: hashlib.sha1(usedforsecurity=False) for p in PRECISIONS}

    def update(self, rows: np.ndarray) -> None:
        if rows.size == 0:
            return
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        self._hashes["f32"].update(memoryview(rows).cast("B"))
        self._hashes["f16"].update(memoryview(to_f16(rows)).cast("B"))
        self._hashes["bf16"].update(memoryview(to_bf16(rows)).cast("B"))

    def update_chunk(self, chunk: np.ndarray, start: int) -> None:
        """Feed rows ``start..`` of a tensor: the sampled ones among them are hashed."""
        self.update(chunk[(-start) % DIGEST_ROW_STEP :: DIGEST_ROW_STEP])

    def result(self) -> dict[str, str]:
        return {p: h.hexdigest()[:32] for p, h in self._hashes.items()}


@dataclass
class LayerFingerprint:
    name: str
    role: LayerRole
    shape: tuple[int, int]
    norm: float
    mean: float
    std: float
    kurtosis: float  # NaN where moments were not computed
    sketch: np.ndarray = field(repr=False)
    # precision ("f32", "f16", "bf16") -> hash of the sampled rows rounded to it; empty
    # for adapters, quantised models and fingerprints of version 1.
    digests: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class HeadFingerprint:
    """A task head or other non-backbone weight (classifier, score, lm_head): shape and digests.

    Heads are not compared by distance (a new head is random); they only tell apart
    models whose backbones are equal (head-only training) from exact duplicates.
    """

    name: str
    shape: tuple[int, ...]
    digests: dict[str, str] = field(default_factory=dict)


def precision_of(dtype: str | None) -> str | None:
    """``"f32"``, ``"f16"``, ``"bf16"`` or ``"f64"`` for a stored float dtype code, else None."""
    return _PRECISION_OF_DTYPE.get(dtype or "")


@dataclass
class Fingerprint:
    """What we keep of a model for comparisons (a few hundred KB for a BERT-base)."""

    name: str
    structure_hash: str
    is_adapter: bool
    adapter_rank: int | None
    sketch_dim: int
    layers: dict[str, LayerFingerprint]
    version: int = FINGERPRINT_VERSION
    # Stored dtype code of most fingerprinted values ("F32", "BF16", "Q4_K", ...).
    dtype: str | None = None
    # LoadedModel.quantization: the GGML type of a quantised checkpoint, None if float.
    quantization: str | None = None
    heads: dict[str, HeadFingerprint] = field(default_factory=dict)

    @property
    def precision(self) -> str | None:
        """Storage precision of the compared matrices (None: quantised or unknown)."""
        return None if self.quantization else precision_of(self.dtype)

    @property
    def backbone_key(self) -> str:
        """Hash of what the compared matrices look like per block: their names with the
        block index replaced by ``#``, and shapes.

        Equal for every model whose backbone can be aligned with another's, whatever
        its heads, buffers, vocabulary size, wrapper prefix or number of blocks (a
        layer-subset student shares its teacher's key). Families are searched among
        models with the same key.
        """
        h = hashlib.sha256(b"adapter:" if self.is_adapter else b"backbone:")
        for item in sorted({f"{block_pattern(n)}:{','.join(map(str, l.shape))}"
                            for n, l in self.layers.items() if l.role in FINGERPRINT_ROLES}):
            h.update(item.encode() + b";")
        return h.hexdigest()

    @property
    def block_count(self) -> int:
        """Number of repeated blocks among the compared matrices (0 when none is indexed)."""
        indices = {i for n in self.layers if (i := block_index(n)) is not None}
        return len(indices)

    @property
    def mean_kurtosis(self) -> float:
        """Mean excess kurtosis per kurtosis-role matrix: comparable across block counts."""
        values = [l.kurtosis for l in self.layers.values()
                  if l.role in KURTOSIS_ROLES and not math.isnan(l.kurtosis)]
        return float(np.mean(values)) if values else float("nan")

    @property
    def kurtosis(self) -> float:
        """Sum of excess kurtosis over the kurtosis-role matrices (the direction signal)."""
        values = [l.kurtosis for l in self.layers.values() if l.role in KURTOSIS_ROLES]
        values = [v for v in values if not math.isnan(v)]
        return float(sum(values)) if values else float("nan")

    def placement_vector(self, dim: int = PLACEMENT_DIM) -> np.ndarray:
        """A fixed-size vector whose Euclidean distances approximate relative ``l2``.

        Made for approximate nearest-neighbour search (a vector index) when a new model
        is placed into a large catalogue: candidates found this way are then compared
        exactly on their full fingerprints. Each layer contributes the top-left
        ``s x s`` block of its sketch (itself a valid, smaller Gaussian sketch), scaled
        by ``k / s`` and divided by the layer norm, the whole divided by sqrt(#layers):
        so ``||v_u - v_v||^2`` estimates the mean squared per-layer relative distance.
        A shared Gaussian projection then maps it to ``dim`` values.
        """
        names = sorted(n for n, l in self.layers.items() if l.role in FINGERPRINT_ROLES)
        if not names:
            return np.zeros(dim, dtype=np.float32)
        parts = []
        for n in names:
            layer = self.layers[n]
            s = min(_PLACEMENT_BLOCK, *layer.sketch.shape)
            k = math.sqrt(layer.sketch.shape[0] * layer.sketch.shape[1])
            block = layer.sketch[:s, :s].reshape(-1) * (k / s) / (layer.norm or 1.0)
            parts.append(block)
        flat = np.concatenate(parts).astype(np.float32) / np.float32(math.sqrt(len(names)))
        proj = sketch_matrix(flat.size, dim)
        vec = flat if proj is None else proj @ flat
        if vec.size < dim:
            vec = np.pad(vec, (0, dim - vec.size))
        return vec.astype(np.float32)

    def to_bytes(self) -> bytes:
        """Serialise (JSON header + one float32 blob) for storage in the database."""
        names = sorted(self.layers)
        header = {
            "version": self.version,
            "name": self.name,
            "structure_hash": self.structure_hash,
            "is_adapter": self.is_adapter,
            "adapter_rank": self.adapter_rank,
            "sketch_dim": self.sketch_dim,
            "dtype": self.dtype,
            "quantization": self.quantization,
            "heads": [{"name": h.name, "shape": list(h.shape), "digests": h.digests}
                      for h in sorted(self.heads.values(), key=lambda h: h.name)],
            "layers": [
                {
                    "name": n,
                    "role": self.layers[n].role.value,
                    "shape": list(self.layers[n].shape),
                    "norm": self.layers[n].norm,
                    "mean": self.layers[n].mean,
                    "std": self.layers[n].std,
                    "kurtosis": None if math.isnan(self.layers[n].kurtosis) else self.layers[n].kurtosis,
                    "sketch_shape": list(self.layers[n].sketch.shape),
                    "digests": self.layers[n].digests,
                }
                for n in names
            ],
        }
        raw = json.dumps(header).encode()
        buf = io.BytesIO()
        buf.write(len(raw).to_bytes(4, "little"))
        buf.write(raw)
        for n in names:
            buf.write(np.ascontiguousarray(self.layers[n].sketch, dtype="<f4").tobytes())
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Fingerprint":
        n = int.from_bytes(data[:4], "little")
        header = json.loads(data[4 : 4 + n])
        if header.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"fingerprint version {header.get('version')} is not one of "
                             f"{sorted(READABLE_VERSIONS)}")
        offset = 4 + n
        layers: dict[str, LayerFingerprint] = {}
        for entry in header["layers"]:
            shape = tuple(entry["sketch_shape"])
            count = int(np.prod(shape))
            sketch = np.frombuffer(data, dtype="<f4", count=count, offset=offset).reshape(shape)
            offset += 4 * count
            layers[entry["name"]] = LayerFingerprint(
                name=entry["name"],
                role=LayerRole(entry["role"]),
                shape=tuple(entry["shape"]),
                norm=entry["norm"],
                mean=entry["mean"],
                std=entry["std"],
                kurtosis=float("nan") if entry["kurtosis"] is None else entry["kurtosis"],
                sketch=sketch,
                digests=dict(entry.get("digests") or {}),
            )
        return cls(
            name=header["name"],
            structure_hash=header["structure_hash"],
            is_adapter=header["is_adapter"],
            adapter_rank=header["adapter_rank"],
            sketch_dim=header["sketch_dim"],
            layers=layers,
            version=header["version"],
            dtype=header.get("dtype"),
            quantization=header.get("quantization"),
            heads={h["name"]: HeadFingerprint(h["name"], tuple(h["shape"]), dict(h["digests"]))
                   for h in header.get("heads") or []},
        )


class _Scratch(threading.local):
    """Float32 buffers that each thread reuses from one matrix to the next.

    A temporary allocated per matrix often comes back as fresh pages, and touching fresh
    pages costs a page fault per 4 KB: decoding SmolLM2's 120 attention matrices into
    fresh arrays cost 12,700 page faults, 18 ms of an ingest's 160 ms of CPU time (busy
    machine), more than half of what the decoding itself costs.
    """

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def get(self, key: str, count: int) -> np.ndarray:
        """A 1-D float32 buffer of ``count`` values (its content is whatever was left)."""
        buffer = self.buffers.get(key)
        if buffer is None or buffer.size < count:
            buffer = self.buffers[key] = np.empty(count, dtype=np.float32)
        return buffer[:count]


def _layer_fingerprint(name: str, role: LayerRole, source: np.ndarray | TensorRef, k: int,
                       with_moments: bool, with_digests: bool = True,
                       scratch: _Scratch | None = None) -> LayerFingerprint:
    """The fingerprint of one matrix, read in row chunks from ``source``: an array, or a
    tensor whose ``row_reader`` decodes the chunks into a reused buffer (else loaded)."""
    scratch = scratch if scratch is not None else _Scratch()
    reader = source.row_reader if isinstance(source, TensorRef) else None
    w = source.load() if isinstance(source, TensorRef) and reader is None else source
    out_dim, in_dim = w.shape
    left, right = sketch_matrix(out_dim, k), sketch_matrix(in_dim, k)
    z = np.empty((out_dim, in_dim if right is None else right.shape[0]), dtype=np.float32)
    rows = max(1, _CHUNK_ELEMENTS // max(in_dim, 1))
    # Raw power sums: in one float64 pass per chunk where the moments are wanted
    # (kernels.power_sums), else the square sum alone by a BLAS dot product in float32
    # per chunk; float64 across chunks. Weight matrices have |mean| << std, so central
    # moments from raw sums lose no meaningful precision and no shifted copy is needed.
    s1 = s2 = s3 = s4 = 0.0
    digester = _Digester() if with_digests else None
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
        for start in range(0, out_dim, rows):
            stop = min(out_dim, start + rows)
            if reader is not None:
                chunk = scratch.get("rows", (stop - start) * in_dim).reshape(stop - start, in_dim)
                reader(start, stop, chunk)
            else:
                chunk = np.asarray(w[start:stop], dtype=np.float32)
            z[start:stop] = chunk if right is None else chunk @ right.T
            if digester is not None:
                digester.update_chunk(chunk, start)
            flat = chunk.reshape(-1)
            if with_moments:
                p1, p2, p3, p4 = power_sums(flat)
                s1, s2, s3, s4 = s1 + p1, s2 + p2, s3 + p3, s4 + p4
            else:
                s2 += float(np.dot(flat, flat))
        if not math.isfinite(s2) or (with_moments and not math.isfinite(s4 + s1)):
            values = source.load() if isinstance(source, TensorRef) else source
            bad = int(np.count_nonzero(~np.isfinite(np.asarray(values))))
            what = f"{bad} NaN/Inf values" if bad else "values too large for float32 arithmetic"
            raise InvalidWeightsError(f"tensor {name!r} has {what}")
        sketch = z if left is None else left @ z
    n = out_dim * in_dim
    if with_moments and n > 1:
        m1, r2, r3, r4 = s1 / n, s2 / n, s3 / n, s4 / n
        var = max(r2 - m1 * m1, 0.0)
        c4 = r4 - 4 * m1 * r3 + 6 * m1 * m1 * r2 - 3 * m1**4
        kurt = c4 / (var * var) - 3.0 if var > 0 else 0.0
        mean, std = m1, math.sqrt(var)
    else:
        mean = float("nan")
        std = math.sqrt(s2 / n) if n else 0.0
        kurt = float("nan")
    return LayerFingerprint(
        name=name, role=role, shape=(out_dim, in_dim), norm=math.sqrt(s2), mean=mean, std=std,
        kurtosis=kurt, sketch=np.ascontiguousarray(sketch, dtype=np.float32),
        digests=digester.result() if digester is not None else {},
    )


def _head_fingerprint(name: str, values: np.ndarray) -> HeadFingerprint:
    matrix = values.reshape(values.shape[0], -1) if values.ndim > 1 else values.reshape(1, -1)
    digester = _Digester()
    digester.update_chunk(matrix, 0)
    return HeadFingerprint(name=name, shape=tuple(values.shape), digests=digester.result())


def fingerprint_roles(model: LoadedModel) -> frozenset[LayerRole]:
    """The roles a model's fingerprint keeps: its attention projections, or, for a model
    without attention (an MLP, a CNN head), its MLP matrices.

    Attention alone is what fine-tuning lineage needs (on the real zoo it recovers every
    edge; MLP matrices alone recover under half, since LoRA leaves them untouched), and
    skipping the MLP matrices, most of a transformer's weights, keeps ingest near the
    speed of reading the file.
    """
    roles = {classify(n) for n, ref in model.tensors.items() if len(ref.shape) == 2}
    return ATTENTION_ROLES if roles & ATTENTION_ROLES else frozenset({LayerRole.MLP})


def fingerprint_model(model: LoadedModel, sketch_dim: int = DEFAULT_SKETCH_DIM,
                      roles: frozenset[LayerRole] | None = None, threads: int | None = None) -> Fingerprint:
    """Read each selected matrix of ``model`` once and build its fingerprint.

    ``roles`` defaults to :func:`fingerprint_roles`. Tensors are processed one at a time
    per thread, in row chunks, so peak memory stays near ``threads`` times the largest
    selected tensor (zero-copy for memory-mapped float32; a quantised GGUF matrix is
    decoded chunk by chunk into reused buffers) plus fixed buffers. Raises
    :class:`InvalidWeightsError` for NaN/Inf weights or when no layer is selected.

    ``threads`` tensors are read and fingerprinted at once. Most of the work runs without
    the GIL (BLAS products, NumPy passes, hashing, ggml's decoders), so a second thread
    can use a second core: for a quantised GGUF one tensor is decoded while another is
    sketched. Every tensor's result is the same whatever the number of threads. The
    default (None) is :func:`default_threads`.
    """
    roles = roles if roles is not None else fingerprint_roles(model)
    threads = default_threads(model) if threads is None else threads
    # Heads are digested only up to the size of the largest compared matrix, so memory and
    # time stay bounded by it: a language-model head (vocabulary x width) is kept by name
    # and shape only.
    largest = max((ref.numel for n, ref in model.tensors.items()
                   if len(ref.shape) == 2 and classify(n) in roles), default=0)
    # Digests serve the exact tests between float models (equal values, rounded copies,
    # head-only training: heritage.lineage.relations); an adapter's or a quantised model's
    # values never take part in one (a quantised model is attached as a quantization of
    # the nearest float model), so theirs would be hashed for nothing.
    digested = not model.is_adapter and model.quantization is None
    jobs: list[tuple[str, Callable[[], LayerFingerprint | HeadFingerprint]]] = []
    scratch = _Scratch()  # per thread
    values_by_dtype: dict[str, int] = {}
    for name, ref in model.tensors.items():
        if not ref.shape or min(ref.shape) == 0:
            continue
        role = classify(name)
        if role is LayerRole.HEAD and not model.is_adapter:
            jobs.append((name, partial(_head_job, name, ref) if digested and ref.numel <= largest
                         else partial(HeadFingerprint, name, tuple(ref.shape))))
        elif len(ref.shape) == 2 and role in roles:
            jobs.append((name, partial(_layer_fingerprint, name, role, ref, sketch_dim,
                                       with_moments=role in KURTOSIS_ROLES and not model.is_adapter,
                                       with_digests=digested, scratch=scratch)))
            values_by_dtype[ref.dtype] = values_by_dtype.get(ref.dtype, 0) + ref.numel
    if not values_by_dtype:
        raise InvalidWeightsError(
            "no attention or MLP weight matrices found to compare (unrecognised parameter names)"
        )
    # One BLAS thread: the products here are thin (k = 48 columns), and a second BLAS
    # thread spinning for its share made them up to 17x slower on a busy 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        results = _run_in_order(jobs, threads)
    layers = {n: r for n, r in results.items() if isinstance(r, LayerFingerprint)}
    heads = {n: r for n, r in results.items() if isinstance(r, HeadFingerprint)}
    return Fingerprint(
        name=model.name,
        structure_hash=structure_hash(model),
        is_adapter=model.is_adapter,
        adapter_rank=model.adapter.rank if model.adapter else None,
        sketch_dim=sketch_dim,
        layers=layers,
        dtype=max(values_by_dtype, key=values_by_dtype.__getitem__) if values_by_dtype else None,
        quantization=model.quantization,
        heads=heads,
    )


def default_threads(model: LoadedModel) -> int:
    """Two threads for a model whose matrices are decoded (quantised GGUF: tensors with a
    ``row_reader``) while a core is idle (the 1-minute load average leaves one free), else one.

    Measured on a 2-core machine: idle, two threads ingested the SmolLM2 GGUF files 1.3-1.4x
    faster than one (decoding one matrix while another is sketched) but a float32
    safetensors model only 1.07x (nothing to decode; the threads' Python between their C
    calls holds the GIL); busy with other work (load average 4-6), two threads made the
    GGUF 15-50% slower, as each waits for the GIL held by the other, descheduled, thread.
    """
    if not any(ref.row_reader is not None for ref in model.tensors.values()):
        return 1
    affinity = getattr(os, "sched_getaffinity", None)
    cores = len(affinity(0)) if affinity else (os.cpu_count() or 1)  # the cores this process may use
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this platform
        return 1
    return 2 if cores >= 2 and load <= cores - 1 else 1


def _head_job(name: str, ref: TensorRef) -> HeadFingerprint:
    return _head_fingerprint(name, np.asarray(ref.load(), dtype=np.float32))


def _run_in_order(jobs: list[tuple[str, Callable[[], object]]], threads: int) -> dict[str, object]:
    """``{name: job()}`` in the jobs' order, ``threads`` jobs running at a time (the calling
    thread is one of them); the first failure in that order is raised and the jobs after
    it that had not started are dropped.

    The threads take the next job from a shared counter rather than through an executor's
    futures: with some 120 short jobs per model, the futures' locks and notifications
    were a sixth of the time the two threads held the GIL, which is what limits them.
    """
    if threads <= 1 or len(jobs) <= 1:
        return {name: job() for name, job in jobs}
    results: list[object] = [None] * len(jobs)
    errors: dict[int, BaseException] = {}
    first_failed = [len(jobs)]  # no job at or after it is started
    taken = itertools.count()  # next() on it is atomic: each job is taken once
    lock = threading.Lock()

    def work() -> None:
        for i in taken:
            if i >= first_failed[0]:
                return
            try:
                results[i] = jobs[i][1]()
            except BaseException as error:  # noqa: BLE001 - re-raised in the caller, in order
                with lock:
                    errors[i] = error
                    first_failed[0] = min(first_failed[0], i)
                return

    helpers = [threading.Thread(target=work, name=f"fingerprint-{k}", daemon=True) for k in range(threads - 1)]
    for helper in helpers:
        helper.start()
    try:
        work()
    finally:
        for helper in helpers:
            helper.join()
    if errors:
        raise errors[first_failed[0]]
    return {name: results[i] for i, (name, _job) in enumerate(jobs)}
