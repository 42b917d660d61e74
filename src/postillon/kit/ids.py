"""Identifiers: time-ordered UUIDs (version 7, RFC 9562) so new rows append to indexes."""

from __future__ import annotations

import os
import threading
import time
import uuid


def new_id() -> uuid.UUID:
    """A UUIDv7: 48 bits of Unix milliseconds, then 74 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a, 12 bits
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b, 62 bits
    return uuid.UUID(int=value)


_last_ordered = 0
_ordered_lock = threading.Lock()


def new_ordered_id() -> uuid.UUID:
    """A UUIDv7 greater than any other this function made in this process, even within
    one millisecond (RFC 9562's monotonic counter, method 1): rows that are written in
    order and sorted by (time, id) come back in that order, as history entries must."""
    global _last_ordered
    with _ordered_lock:
        value = new_id().int
        if value <= _last_ordered:
            value = _last_ordered + 1  # same millisecond: count on in the random bits
        _last_ordered = value
    return uuid.UUID(int=value)
