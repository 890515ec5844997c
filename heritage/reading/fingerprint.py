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
"""

from __future__ import annotations

import io
import json
import logging
import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from threadpoolctl import threadpool_limits

from heritage.errors import InvalidWeightsError
from heritage.reading.layers import ATTENTION_ROLES, FINGERPRINT_ROLES, KURTOSIS_ROLES, LayerRole, classify
from heritage.reading.loader import LoadedModel
from heritage.reading.profile import structure_hash

log = logging.getLogger(__name__)

FINGERPRINT_VERSION = 1
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
        if header.get("version") != FINGERPRINT_VERSION:
            raise ValueError(f"fingerprint version {header.get('version')} is not {FINGERPRINT_VERSION}")
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
            )
        return cls(
            name=header["name"],
            structure_hash=header["structure_hash"],
            is_adapter=header["is_adapter"],
            adapter_rank=header["adapter_rank"],
            sketch_dim=header["sketch_dim"],
            layers=layers,
        )


def _layer_fingerprint(name: str, role: LayerRole, w: np.ndarray, k: int,
                       with_moments: bool) -> LayerFingerprint:
    out_dim, in_dim = w.shape
    left, right = sketch_matrix(out_dim, k), sketch_matrix(in_dim, k)
    z = np.empty((out_dim, in_dim if right is None else right.shape[0]), dtype=np.float32)
    rows = max(1, _CHUNK_ELEMENTS // max(in_dim, 1))
    # Raw power sums, accumulated by BLAS dot products in float32 per chunk and in
    # float64 across chunks. Weight matrices have |mean| << std, so central moments
    # from raw sums lose no meaningful precision and no shifted copy is needed.
    s1 = s2 = s3 = s4 = 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is reported below
        for start in range(0, out_dim, rows):
            chunk = np.asarray(w[start : start + rows], dtype=np.float32)
            z[start : start + rows] = chunk if right is None else chunk @ right.T
            flat = chunk.reshape(-1)
            s2 += float(np.dot(flat, flat))
            if with_moments:
                x2 = flat * flat
                s1 += float(flat.sum())  # float32 pairwise summation: ample for the mean
                s3 += float(np.dot(x2, flat))
                s4 += float(np.dot(x2, x2))
        if not math.isfinite(s2) or (with_moments and not math.isfinite(s4 + s1)):
            bad = int(np.count_nonzero(~np.isfinite(np.asarray(w))))
            what = f"{bad} NaN/Inf values" if bad else "values too large for float32 arithmetic"
            raise InvalidWeightsError(f"tensor {name!r} has {what}")
        sketch = z if left is None else left @ z
    n = w.size
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
    )


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
                      roles: frozenset[LayerRole] | None = None) -> Fingerprint:
    """Read each selected matrix of ``model`` once and build its fingerprint.

    ``roles`` defaults to :func:`fingerprint_roles`. Tensors are processed one at a time,
    in row chunks, so peak memory stays near the largest selected tensor (zero-copy for
    memory-mapped float32) plus fixed buffers. Raises :class:`InvalidWeightsError` for
    NaN/Inf weights or when no layer is selected.
    """
    roles = roles if roles is not None else fingerprint_roles(model)
    layers: dict[str, LayerFingerprint] = {}
    # One BLAS thread: the products here are thin (k = 48 columns), and a second BLAS
    # thread spinning for its share made them up to 17x slower on a busy 2-core machine.
    with threadpool_limits(limits=1, user_api="blas"):
        for name, ref in model.tensors.items():
            if len(ref.shape) != 2 or min(ref.shape) == 0:
                continue
            role = classify(name)
            if role not in roles:
                continue
            weights = ref.load()
            layers[name] = _layer_fingerprint(
                name, role, weights, sketch_dim,
                with_moments=role in KURTOSIS_ROLES and not model.is_adapter,
            )
            del weights
    if not layers:
        raise InvalidWeightsError(
            "no attention or MLP weight matrices found to compare (unrecognised parameter names)"
        )
    return Fingerprint(
        name=model.name,
        structure_hash=structure_hash(model),
        is_adapter=model.is_adapter,
        adapter_rank=model.adapter.rank if model.adapter else None,
        sketch_dim=sketch_dim,
        layers=layers,
    )
