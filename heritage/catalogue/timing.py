"""Where the time of a long operation goes (compute vs database), for reports and benchmarks."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from collections.abc import Iterator

__all__ = ["Timings"]


class Timings:
    """Accumulated seconds per category; categories may nest (inner time is not subtracted)."""

    def __init__(self) -> None:
        self._seconds: dict[str, float] = defaultdict(float)
        self._lock = threading.Lock()

    @contextmanager
    def measure(self, category: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - started
            with self._lock:
                self._seconds[category] += elapsed

    def as_dict(self) -> dict[str, float]:
        with self._lock:
            return {k: round(v, 4) for k, v in self._seconds.items()}
