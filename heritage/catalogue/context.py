"""What the catalogue's operations share: the database, configuration, recovery engine,
caches, locks."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from graph.database import Database
from heritage.catalogue.config import CatalogueConfig
from heritage.catalogue.fingerprints import FingerprintCache
from heritage.lineage.recovery import GenealogyRecovery

__all__ = ["Context"]


@dataclass
class Context:
    """One per :class:`~heritage.catalogue.service.Catalogue`.

    ``db`` is the database every operation reads and writes (never a process-wide one).

    ``write_lock`` serialises genealogy rewrites inside the process (planning reads the
    current trees, so two planners in one process would only invalidate each other);
    across processes, family versions catch conflicts (see :mod:`~heritage.catalogue.commit`).
    Reading and fingerprinting weights happens outside the lock.
    """

    config: CatalogueConfig
    db: Database
    recovery: GenealogyRecovery = field(init=False)
    cache: FingerprintCache = field(init=False)
    write_lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self.recovery = self.config.recovery()
        self.cache = FingerprintCache(self.db, self.config.fingerprint_cache_bytes)
