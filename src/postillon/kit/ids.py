"""Identifiers: time-ordered UUIDs (version 7, RFC 9562) so new rows append to indexes."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from operator import attrgetter

_RAND_A = 0xFFF << 64
_RAND_B = (1 << 62) - 1
_VERSION_AND_VARIANT = (0x7 << 76) | (0b10 << 62)

_new_object = object.__new__
_set_slot = object.__setattr__
_SAFETY_UNKNOWN = uuid.SafeUUID.unknown


def _uuid(value: int) -> uuid.UUID:
    """`uuid.UUID(int=value)` for a value known to be a valid 128-bit number, without the
    checks: the engine makes tens of thousands of ids a second. It sets the two slots as
    `UUID.__init__` does (Python 3.14 names this `UUID._from_int`)."""
    made = _new_object(uuid.UUID)
    _set_slot(made, "int", value)
    _set_slot(made, "is_safe", _SAFETY_UNKNOWN)
    return made


def uuid_from_hex(text: str) -> uuid.UUID:
    """The UUID written as 32 hex digits (`UUID.hex`, how SQLite stores ids), as
    `uuid.UUID(hex=text)` reads it, in two thirds of the time. For 32 characters,
    `uuid.UUID` is `int(text, 16)` too, and refuses what it refuses."""
    if len(text) != 32:
        return uuid.UUID(hex=text)
    return _uuid(int(text, 16))


def _v7(millis: int, rand: int) -> int:
    """A UUIDv7 number: 48 bits of Unix milliseconds, then 74 random bits."""
    value = (millis & ((1 << 48) - 1)) << 80
    value |= ((rand >> 62) << 64) & _RAND_A  # rand_a, 12 bits
    return value | _VERSION_AND_VARIANT | (rand & _RAND_B)  # rand_b, 62 bits


def new_id() -> uuid.UUID:
    """A UUIDv7."""
    return _uuid(_v7(time.time_ns() // 1_000_000, int.from_bytes(os.urandom(10), "big")))


_last_ordered = 0
_ordered_lock = threading.Lock()


def new_ordered_id() -> uuid.UUID:
    """A UUIDv7 greater than any other this function made in this process, even within
    one millisecond (RFC 9562's monotonic counter, method 1): rows that are written in
    order and sorted by (time, id) come back in that order, as history entries must."""
    return new_ordered_ids(1)[0]


def new_ordered_ids(count: int) -> list[uuid.UUID]:
    """`count` ids as `new_ordered_id` makes them, growing in the order of the list: one
    random start, then counting on in the random bits."""
    global _last_ordered
    with _ordered_lock:
        start = new_id().int
        if start <= _last_ordered:
            start = _last_ordered + 1  # same millisecond: count on in the random bits
        # Counting on must not carry into the version and variant bits.
        if (start & _RAND_B) + count > _RAND_B:
            start = (start & ~_RAND_B) + (1 << 64)  # on to the next rand_a value
        _last_ordered = start + count - 1
    return [_uuid(start + offset) for offset in range(count)]


def ordered_id_supply(block: int = 256) -> Iterator[uuid.UUID]:
    """Ids as `new_ordered_id` makes them, without end, made `block` at a time: for a
    batch that does not know beforehand how many new rows it will make."""
    while True:
        yield from new_ordered_ids(block)


_NUMBER = attrgetter("int")


def sorted_ids(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """`sorted(ids)` in a fraction of the time: UUIDs compare by their numbers, and
    sorting by the numbers makes no Python call per comparison."""
    return sorted(ids, key=_NUMBER)
