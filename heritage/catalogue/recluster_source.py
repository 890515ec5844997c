"""The stored catalogue as a fingerprint source for recovery (see :mod:`heritage.lineage.sources`).

Why: a recluster of a hub cannot load every fingerprint (hundreds of KB each for a
BERT-base) at once.  Recovery asks for the placement vectors of one backbone at a time
(stored on the model, 1 KB each, read in pages) and for fingerprints per candidate batch
and per family; these come through the catalogue's bounded fingerprint cache, so memory
grows with the number of models times the placement vector, not the fingerprint.
Models are named by id, as everywhere in the catalogue's recovery.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from graph.database import Database
from heritage.catalogue.commit import StaleFamilyError
from heritage.catalogue.fingerprints import FingerprintCache
from heritage.catalogue.planning import Member
from heritage.lineage.sources import ModelEntry
from heritage.reading.fingerprint import PLACEMENT_DIM, Fingerprint

__all__ = ["CatalogueSource", "PLACEMENT_PAGE"]

log = logging.getLogger(__name__)

# Placement vectors read per round trip (256 floats each).
PLACEMENT_PAGE = 2000


class CatalogueSource:
    """``members`` read lazily from ``db`` through ``cache``.

    ``rows``: the members' ``model_keys_all`` rows (backbone key and block count).  A
    model stored before backbone keys existed has none: its fingerprint is read once
    here to compute them, as recovery in process does.
    """

    def __init__(self, db: Database, members: Sequence[Member], rows: Sequence[Mapping[str, Any]],
                 cache: FingerprintCache) -> None:
        self.db = db
        self.members = list(members)
        self._cache = cache
        legacy = [i for i, r in enumerate(rows) if not r.get("isAdapter") and not r.get("backboneKey")]
        computed = {i: ModelEntry.of(fp) for i, fp in zip(legacy, self.fingerprints(legacy))} if legacy else {}
        if legacy:
            log.info("%d model(s) stored without a backbone key: computed from their fingerprints", len(legacy))
        self.entries: list[ModelEntry] = []
        for i, (m, r) in enumerate(zip(self.members, rows)):
            key, blocks = ((computed[i].backbone_key, computed[i].blocks) if i in computed
                           else (r.get("backboneKey") or "", int(r.get("layers") or 0)))
            self.entries.append(ModelEntry(m.id, key, m.is_adapter, blocks))

    def placement_vectors(self, indices: np.ndarray) -> np.ndarray:
        out = np.zeros((len(indices), PLACEMENT_DIM), dtype=np.float32)
        ids = [self.members[int(i)].id for i in indices]
        row_of = {model_id: row for row, model_id in enumerate(ids)}
        missing: list[int] = []
        for start in range(0, len(ids), PLACEMENT_PAGE):
            for row in self.db.read_raw("model_placements", ids=ids[start : start + PLACEMENT_PAGE]):
                if row["placement"] is None:
                    missing.append(row_of[row["id"]])
                else:
                    out[row_of[row["id"]]] = np.asarray(row["placement"], dtype=np.float32)
        if missing:  # stored before placement vectors existed: compute them from the fingerprint
            for row, fp in zip(missing, self.fingerprints([int(indices[r]) for r in missing])):
                out[row] = fp.placement_vector()
        return out

    def fingerprints(self, indices: Sequence[int]) -> list[Fingerprint]:
        keys = [(self.members[int(i)].id, self.members[int(i)].sha256) for i in indices]
        found = self._cache.get_many(keys)
        lost = [model_id for model_id, _ in keys if model_id not in found]
        if lost:
            raise StaleFamilyError(f"the fingerprints of {len(lost)} model(s) disappeared during the recluster "
                                   f"(e.g. {lost[0]})")
        return [found[model_id] for model_id, _ in keys]
