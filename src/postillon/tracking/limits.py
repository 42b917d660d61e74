"""A token bucket per (write key, client address), in memory, per web process.

Time comes from the runtime's clock, so a test at a frozen virtual moment sees the bucket
run dry deterministically.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime

_MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    updated: datetime


class RateLimiter:
    def __init__(self, rate_per_second: float, burst: int) -> None:
        self.rate = rate_per_second
        self.burst = max(1, burst)
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: tuple[str, str], now: datetime) -> float | None:
        """Take one token; None if granted, else the seconds until one is available."""
        if self.rate <= 0:
            return None
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= _MAX_BUCKETS:
                    self._buckets.clear()  # crude, but bounded: forgetting only forgives
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            elapsed = max(0.0, (now - bucket.updated).total_seconds())
            bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return None
            return (1 - bucket.tokens) / self.rate


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
