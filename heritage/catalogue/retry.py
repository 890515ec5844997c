"""Doing work again when the data it read changed before it could use it.

Writes plan a family's tree outside any transaction and commit it only if the family is
still as planned (:mod:`~heritage.catalogue.commit`); reads of a whole tree check that no
rewrite landed while they read (:mod:`~heritage.catalogue.reads`).  Either raises a
:class:`DataChanged` when it lost the race, and :func:`retry` runs it again, up to
:data:`MAX_ATTEMPTS` times, before giving up with
:class:`~heritage.catalogue.errors.ConcurrentUpdateError` (the API's 503 Retry-After).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from heritage.catalogue.errors import ConcurrentUpdateError

__all__ = ["DataChanged", "MAX_ATTEMPTS", "retry"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# How often work whose data changed under it is done again before giving up: each loss
# means another writer committed meanwhile, so eight in a row means the data is hot.
MAX_ATTEMPTS = 8


class DataChanged(Exception):
    """What the work read changed before it could use it; doing it again will see the change."""


def retry(what: str, attempt: Callable[[int], T], *, attempts: int = MAX_ATTEMPTS, pause_s: float = 0.0) -> T:
    """``attempt(n)`` for n = 0, 1, ... until it returns without :class:`DataChanged`.

    ``what`` completes "could not ..." in the error raised after ``attempts`` losses;
    ``pause_s`` (doubled after each loss) lets a rewrite that is being committed finish.
    ``attempt`` receives its number, so a read can accept on its last try what it could
    not prove whole before.
    """
    for n in range(attempts):
        try:
            return attempt(n)
        except DataChanged as exc:
            log.info("%s: the data changed under attempt %d of %d (%s)", what, n + 1, attempts, exc)
            if pause_s:
                time.sleep(pause_s * 2**n)
    raise ConcurrentUpdateError(f"could not {what}: the data kept changing meanwhile; try again")
