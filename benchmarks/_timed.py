"""Stage timing for the benchmarks' child processes (imported by their ``-c`` scripts)."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(timings: dict, name: str, fn: Callable) -> Callable:
    """``fn`` wrapped so that each call adds its wall seconds to ``timings[name]``."""
    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
    return wrapper
