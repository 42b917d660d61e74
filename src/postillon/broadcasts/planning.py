"""Who gets which variant, and when: pure functions of the broadcast and the contact, so a
resumed or repeated materialisation decides exactly as the first one did."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

# The earliest local time on Earth is UTC+14 (Kiribati): a local-time broadcast starts
# materialising when its send time has come there.
EARLIEST_OFFSET = timedelta(hours=14)


def bucket(broadcast_id: uuid.UUID, contact_id: uuid.UUID) -> float:
    """A number in [0, 1) that looks random but is the same for this pair every time."""
    digest = hashlib.sha256(broadcast_id.bytes + contact_id.bytes).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def test_variant(
    broadcast_id: uuid.UUID,
    contact_id: uuid.UUID,
    variants: Sequence[str],
    share_percent: int,
) -> str | None:
    """The variant the contact tests, or None when it belongs to the remaining share.

    Each variant takes `share_percent` of the audience: with 2 variants and 10 %, buckets
    [0, 0.1) test A, [0.1, 0.2) test B and the rest wait for the winner, so the test
    shares and the remainder never overlap."""
    share = share_percent / 100
    position = bucket(broadcast_id, contact_id) / share
    index = int(position)
    return variants[index] if index < len(variants) else None


def zone(name: str | None, default: ZoneInfo) -> ZoneInfo:
    """The contact's zone, or the broadcast's default for none or an unknown name."""
    if not name:
        return default
    return _zone(name) or default


@lru_cache(maxsize=1024)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def local_moment(local_time: datetime, where: ZoneInfo) -> datetime:
    """The UTC moment at which it is `local_time` (naive, wall clock) in `where`."""
    return local_time.replace(tzinfo=where).astimezone(UTC)


def local_start(local_time: datetime) -> datetime:
    """When a local-time broadcast must start: when the first zone reaches the time."""
    return local_time.replace(tzinfo=UTC) - EARLIEST_OFFSET


def parse_local_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def format_local_time(moment: datetime) -> str:
    return moment.replace(tzinfo=None).isoformat(timespec="minutes")


class Spreader:
    """Throttling by due times: at most `rate_per_minute` messages are due in any minute
    of the clock. A message takes the first free slot (minute + n / rate) at or after its
    start (the phase's start, or its zone's local send time), so zones whose times
    overlap share the rate. `slots` counts the messages per minute (ISO time); the
    broadcast stores it, so the next chunk goes on filling where this one stopped."""

    def __init__(self, rate_per_minute: int | None, slots: dict[str, int]) -> None:
        self.rate = rate_per_minute
        self.slots = slots
        # The first minute with room, per starting minute: minutes only ever fill up.
        self._free_from: dict[datetime, datetime] = {}

    def due(self, start: datetime) -> datetime:
        if not self.rate:
            return start
        step = _MINUTE / self.rate
        first = start.replace(second=0, microsecond=0)
        minute = self._free_from.get(first, first)
        while True:
            taken = self.slots.get(minute.isoformat(), 0)
            if minute == first:
                # The slots of the start's own minute before the start are past for it.
                taken = max(taken, -((first - start) // step))
            if taken < self.rate:
                break
            minute += _MINUTE
        self._free_from[first] = minute
        self.slots[minute.isoformat()] = taken + 1
        return minute + step * taken


_MINUTE = timedelta(minutes=1)
