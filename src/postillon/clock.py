"""The one source of time. Production uses SystemClock; tests advance a VirtualClock."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    async def sleep_until(self, moment: datetime) -> None:
        """Wait until this clock reads `moment` or later (at once if it already does)."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, moment: datetime) -> None:
        delay = (moment - self.now()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock:
    """A clock that only moves when told to; sleepers wake when it is advanced past their time."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = ensure_utc(start or datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
        self._lock = threading.Lock()
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        return self.set(self.now() + delta)

    def set(self, moment: datetime) -> datetime:
        moment = ensure_utc(moment)
        with self._lock:
            if moment < self._now:
                raise ValueError("a virtual clock never goes backwards")
            self._now = moment
            due = [(t, f) for t, f in self._sleepers if t <= moment]
            self._sleepers = [(t, f) for t, f in self._sleepers if t > moment]
        for _, future in due:
            future.get_loop().call_soon_threadsafe(_resolve, future)
        return moment

    async def sleep_until(self, moment: datetime) -> None:
        wake_at = ensure_utc(moment)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        with self._lock:
            if wake_at <= self._now:
                return
            self._sleepers.append((wake_at, future))
        await future


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def ensure_utc(moment: datetime) -> datetime:
    """Naive datetimes are taken as UTC; aware ones are converted to UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
