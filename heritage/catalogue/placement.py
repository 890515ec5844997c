"""Where a new model belongs: its nearest stored relatives, or the base of an adapter.

Why two stages: comparing a new model with every stored model is O(catalogue) exact
distance computations (the seed reloaded every member of every family from disk on each
upload).  Instead the candidates come from the database — every placed model of the same
architecture when there are few (``exact_placement_limit``), else the nearest
``placement_candidates`` by placement vector from the ``model_placement`` vector index —
and only those whose placement vectors are near enough are compared exactly on their
fingerprints.  The cost of placing one model therefore does not grow with the catalogue.

:func:`family_to_join` is the one answer to "which family does this model join", used by
single imports, batch imports and reprocessing alike.

Only models already in a family are candidates (the queries follow ``IN_FAMILY``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from collections.abc import Sequence

import numpy as np

from graph.database import Database
from heritage.catalogue.config import CatalogueConfig
from heritage.catalogue.fingerprints import FingerprintCache
from heritage.catalogue.timing import Timings
from heritage.lineage.distances import DistanceMetric, distances_to
from heritage.reading.fingerprint import Fingerprint

__all__ = [
    "Relative",
    "family_to_join",
    "nearest_relatives",
    "adapter_fits",
    "declared_base_candidates",
    "adapter_family",
    "placement_vector",
]

log = logging.getLogger(__name__)

# The vector index is asked for this many times more neighbours than needed, because
# its results are filtered afterwards (same architecture, placed, not excluded).
_OVERFETCH = 4


@dataclass(frozen=True)
class Relative:
    """A placed model near the new one: its id, family and exact relative l2 distance."""

    model_id: str
    family_id: str
    distance: float


def placement_vector(fp: Fingerprint) -> list[float] | None:
    """The vector stored in ``Model.placement`` (None for adapters: they are never candidates)."""
    if fp.is_adapter:
        return None
    return [float(x) for x in fp.placement_vector()]


def _approximate(rows: list[dict], vector: np.ndarray, blocks: int) -> np.ndarray:
    """Approximate relative l2 to each row: from the index score, or from the stored vector.

    Placement vectors of models with different numbers of blocks (a layer-subset student
    and its teacher) are not comparable: those rows get 0, so they are compared exactly.
    """
    if not rows:
        return np.zeros(0)
    if "score" in rows[0]:
        score = np.array([max(float(r["score"]), 1e-12) for r in rows])
        approx = np.sqrt(np.maximum(1.0 / score - 1.0, 0.0))  # Neo4j: score = 1 / (1 + d^2)
    else:
        stored = np.array([r["placement"] if r.get("placement") is not None else np.full(vector.size, np.inf)
                           for r in rows], dtype=np.float64)
        approx = np.linalg.norm(stored - vector[None, :], axis=1)
    other_blocks = np.array([r.get("layers") != blocks and blocks > 0 for r in rows])
    return np.where(other_blocks, 0.0, approx)


def nearest_relatives(
    db: Database,
    fp: Fingerprint,
    cache: FingerprintCache,
    *,
    exact_limit: int,
    candidates: int,
    max_approximate: float = np.inf,
    exclude: Sequence[str] = (),
    timings: Timings | None = None,
) -> list[Relative]:
    """Placed full models of ``fp``'s backbone nearest to it, closest first (exact l2 over
    aligned matrices).

    Candidates whose approximate distance (placement vectors) exceeds ``max_approximate``
    are not compared exactly: the vectors estimate relative l2 within about 20%, so a
    margin of twice the family threshold never loses a relative, and an unrelated model
    (distance ~1.4) costs no fingerprint reads at all.
    """
    timings = timings or Timings()
    if fp.is_adapter:
        return []
    vector = fp.placement_vector().astype(np.float64)
    with timings.measure("neo4j"):
        size = db.read("placement_architecture_size", backboneKey=fp.backbone_key)[0]["models"]
        if size <= exact_limit:
            rows = db.read_raw("placement_same_structure", backboneKey=fp.backbone_key,
                               exclude=list(exclude), limit=exact_limit)
        else:
            rows = db.read_raw("placement_candidates", vector=[float(x) for x in vector],
                               backboneKey=fp.backbone_key, exclude=list(exclude),
                             k=candidates * _OVERFETCH, limit=candidates)
    approx = _approximate(rows, vector, fp.block_count)
    rows = [r for r, a in zip(rows, approx) if a <= max_approximate]
    if not rows:
        return []
    with timings.measure("neo4j"):
        fps = cache.get_many((r["id"], r["sha256"]) for r in rows)
    rows = [r for r in rows if r["id"] in fps]
    if not rows:
        return []
    with timings.measure("placement"):
        d = distances_to(fp, [fps[r["id"]] for r in rows], DistanceMetric.L2)
    order = np.argsort(d, kind="stable")
    return [Relative(rows[i]["id"], rows[i]["familyId"], float(d[i])) for i in order]


def adapter_fits(adapter: Fingerprint, base: Fingerprint) -> bool:
    """True when every weight the adapter modifies exists in ``base`` with the same shape."""
    return bool(adapter.layers) and all(
        n in base.layers and base.layers[n].shape == layer.shape for n, layer in adapter.layers.items()
    )


def declared_base_candidates(declared_base: str | None) -> list[str]:
    """Catalogue names a declared base may refer to: as written, and its last path part
    (``sentence-transformers/all-MiniLM-L6-v2`` -> ``all-MiniLM-L6-v2``)."""
    if not declared_base:
        return []
    names = [declared_base.strip(), PurePosixPath(declared_base.strip().rstrip("/")).name]
    return [n for n in dict.fromkeys(names) if n]


def adapter_family(
    db: Database,
    adapter: Fingerprint,
    declared_base: str | None,
    cache: FingerprintCache,
    timings: Timings | None = None,
) -> str | None:
    """Family an unmerged adapter joins: its declared base's when that is stored and fits,
    else the largest family whose root it fits; ``None`` when nothing fits."""
    timings = timings or Timings()
    names = declared_base_candidates(declared_base)
    if names:
        with timings.measure("neo4j"):
            rows = [r for r in db.read("placement_models_by_name", names=names) if not r["isAdapter"]]
            fps = cache.get_many((r["id"], r["sha256"]) for r in rows)
        for row in rows:
            if row["id"] in fps and adapter_fits(adapter, fps[row["id"]]):
                return row["familyId"]
    with timings.measure("neo4j"):
        roots = db.read("placement_family_roots")
    for row in roots:  # largest family first
        with timings.measure("neo4j"):
            fps = cache.get_many([(row["rootId"], row["rootSha256"])])
        base = fps.get(row["rootId"])
        if base is not None and adapter_fits(adapter, base):
            return row["familyId"]
    return None


def family_to_join(
    db: Database,
    cache: FingerprintCache,
    config: CatalogueConfig,
    fp: Fingerprint,
    declared_base: str | None = None,
    *,
    exclude: Sequence[str] = (),
    timings: Timings | None = None,
) -> str | None:
    """The family ``fp`` joins, or ``None`` when it starts one of its own.

    An unmerged adapter joins its base's family (:func:`adapter_family`); a full model
    joins the family of its nearest placed relative when that is within the family
    threshold (relative l2).  ``exclude``: models not to compare with (the model itself,
    when it is re-placed).

    Up to ``config.exact_placement_limit`` placed models of the architecture (256), every
    one is a candidate; beyond, the vector index proposes ``config.placement_candidates``
    (32).  Either way only candidates whose placement vectors lie within
    ``config.max_approximate_distance`` are compared on their fingerprints, so the limit
    bounds how many stored vectors one placement scans (256 vectors of 256 floats: well
    under a millisecond), not how many fingerprints it reads; it is the size up to which
    scanning them all is cheaper than the index and exact rather than approximate.
    """
    if fp.is_adapter:
        return adapter_family(db, fp, declared_base, cache, timings)
    relatives = nearest_relatives(db, fp, cache, exact_limit=config.exact_placement_limit,
                                  candidates=config.placement_candidates,
                                  max_approximate=config.max_approximate_distance, exclude=exclude, timings=timings)
    return relatives[0].family_id if relatives and relatives[0].distance <= config.threshold else None
