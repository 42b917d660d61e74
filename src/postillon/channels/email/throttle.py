"""A token bucket on the clock: how many messages a provider may hand over now.

The sender asks before it claims, and claims no more than it may send, so the limit holds
without anyone sleeping: the worker simply comes back on its next round. Time comes from
the runtime's clock, so tests move it forward instead of waiting.
"""

from __future__ import annotations

import threading
from datetime import datetime


class SendThrottle:
    """`rate_per_second` tokens a second, at most `burst` saved up."""

    def __init__(self, rate_per_second: float, *, burst: float | None = None) -> None:
        self.rate = rate_per_second
        self.burst = max(1.0, burst if burst is not None else rate_per_second)
        self._tokens = self.burst
        self._updated: datetime | None = None
        self._lock = threading.Lock()

    def take(self, wanted: int, now: datetime) -> int:
        """Take up to `wanted` whole tokens; returns how many were granted (maybe 0)."""
        with self._lock:
            if self._updated is not None and now > self._updated:
                elapsed = (now - self._updated).total_seconds()
                self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
            if self._updated is None or now > self._updated:
                self._updated = now
            granted = max(0, min(wanted, int(self._tokens)))
            self._tokens -= granted
            return granted

    def give_back(self, unused: int) -> None:
        """Return tokens taken for messages that were not there to send after all."""
        with self._lock:
            self._tokens = min(self.burst, self._tokens + unused)
