"""Time is a dependency: the worker waits on the clock, and tests move the clock."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import DateTime, select
from sqlalchemy.dialects import sqlite

from postillon.clock import VirtualClock, ensure_utc
from postillon.kit.ids import new_id
from postillon.kit.types import UTCDateTime
from postillon.models import ApiKey
from postillon.runtime import Runtime
from postillon.worker.runner import Worker


class CountingTask:
    """Does one unit of work for each due time it has not yet handled."""

    name = "counting"

    def __init__(self, due: list[datetime]) -> None:
        self.due = due
        self.done: list[datetime] = []

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        ready = [t for t in self.due if t <= now and t not in self.done]
        self.done.extend(ready[:1])
        return len(ready[:1])


class FailingTask:
    name = "failing"

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        raise RuntimeError("boom")


def test_the_virtual_clock_only_moves_when_told() -> None:
    clock = VirtualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    assert clock.now() == clock.now()
    clock.advance(timedelta(days=2))
    assert clock.now() == datetime(2026, 3, 3, 12, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    naive = VirtualClock(datetime(2026, 3, 1, 12, 0))
    assert naive.now().tzinfo is UTC


def test_sleepers_wake_when_the_clock_passes_their_time() -> None:
    clock = VirtualClock()
    start = clock.now()
    woke: list[str] = []

    async def sleeper(name: str, delay: timedelta) -> None:
        await clock.sleep_until(start + delay)
        woke.append(name)

    async def scenario() -> None:
        hour = asyncio.create_task(sleeper("hour", timedelta(hours=1)))
        day = asyncio.create_task(sleeper("day", timedelta(days=1)))
        await asyncio.sleep(0)
        clock.advance(timedelta(minutes=59))
        await asyncio.sleep(0.01)
        assert woke == []
        clock.advance(timedelta(minutes=1))
        await asyncio.wait_for(hour, timeout=5)
        assert woke == ["hour"]
        clock.advance(timedelta(days=1))
        await asyncio.wait_for(day, timeout=5)
        await sleeper("past", timedelta(0))
        assert woke == ["hour", "day", "past"]

    asyncio.run(scenario())


def test_the_worker_does_due_work_as_the_clock_advances(
    runtime: Runtime, clock: VirtualClock
) -> None:
    start = clock.now()
    task = CountingTask([start, start + timedelta(hours=1), start + timedelta(days=3)])
    worker = Worker(runtime, name="test", tasks=[FailingTask(), task])

    async def scenario() -> None:
        running = asyncio.create_task(worker.run_forever())
        await _until(lambda: task.done == [start])
        clock.advance(timedelta(hours=1))
        await _until(lambda: len(task.done) == 2)
        clock.advance(timedelta(days=3))
        await _until(lambda: len(task.done) == 3)
        worker.stop()
        await asyncio.wait_for(running, timeout=5)

    asyncio.run(scenario())
    assert task.done == task.due


async def _until(condition: object, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.001)


def test_timestamps_come_back_as_aware_utc(runtime: Runtime) -> None:
    berlin = timezone(timedelta(hours=1))
    key = ApiKey(
        id=uuid.uuid4(),
        name="t",
        scope="admin",
        prefix="p",
        secret_digest="d" * 64,
        created_at=datetime(2026, 6, 1, 10, 0, tzinfo=berlin),
    )
    with runtime.database.transaction() as session:
        session.add(key)
    with runtime.database.transaction(read_only=True) as session:
        stored = session.scalar(select(ApiKey.created_at))
    assert stored == datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    assert stored is not None and stored.utcoffset() == timedelta(0)


def test_ids_are_time_ordered_uuid7() -> None:
    ids = [new_id() for _ in range(1000)]
    assert all(i.version == 7 for i in ids)
    assert len(set(ids)) == 1000
    millis = [i.int >> 80 for i in ids]
    assert millis == sorted(millis)


def test_sqlite_stores_datetimes_as_sqlalchemy_writes_them() -> None:
    """UTCDateTime's own SQLite bind processor writes exactly SQLAlchemy's DATETIME text
    (times compare as text on SQLite, so the format must never change)."""
    dialect = sqlite.dialect()
    ours = UTCDateTime().bind_processor(dialect)
    reference = DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None and reference is not None
    berlin = timezone(timedelta(hours=1))
    for moment in (
        datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
        datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 1, 5, 10, 30, 1, 5, tzinfo=berlin),
        datetime(2026, 1, 5, 9, 0, 0, 1),  # naive: taken as UTC
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
    ):
        expected = reference(ensure_utc(moment).replace(tzinfo=None))
        assert ours(moment) == expected
    assert ours(None) is None
