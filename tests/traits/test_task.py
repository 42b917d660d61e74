"""The worker refreshes traits on a schedule kept in the database: once per interval,
whichever worker gets there first, later again after a failure."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from postillon.clock import VirtualClock
from postillon.models import WorkerSchedule
from postillon.runtime import Runtime
from postillon.traits.tasks import TraitsRefreshTask
from postillon.worker.runner import Worker
from postillon.worker.tasks import default_tasks
from tests.traits.support import add_contact, add_event, traits

DAY = timedelta(days=1)


def due_at(runtime: Runtime) -> object:
    with runtime.database.transaction(read_only=True) as session:
        return session.scalar(
            select(WorkerSchedule.due_at).where(WorkerSchedule.name == "traits_refresh")
        )


def test_the_refresh_runs_once_per_interval(runtime: Runtime, clock: VirtualClock) -> None:
    assert any(isinstance(task, TraitsRefreshTask) for task in default_tasks())
    start = clock.now()
    ann = add_contact(runtime, "ann@example.com")
    add_event(runtime, ann, start, name="/", type="page")
    first, second = TraitsRefreshTask(), TraitsRefreshTask()  # two workers

    assert first.run_due(runtime, clock.now()) == 1
    assert second.run_due(runtime, clock.now()) == 0
    assert traits(runtime, ann).engagement == "active"
    assert due_at(runtime) == start + timedelta(hours=1)

    clock.advance(timedelta(minutes=59))
    assert second.run_due(runtime, clock.now()) == 0
    clock.advance(31 * DAY)
    assert second.run_due(runtime, clock.now()) == 1
    assert first.run_due(runtime, clock.now()) == 0
    assert traits(runtime, ann).engagement == "moderate"
    assert due_at(runtime) == clock.now() + timedelta(hours=1)


def test_a_failed_refresh_is_tried_again_later(
    runtime: Runtime, clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    task = TraitsRefreshTask()

    def broken(*args: object, **kwargs: object) -> list[object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(runtime.traits, "refresh", broken)
    with pytest.raises(RuntimeError):
        task.run_due(runtime, clock.now())
    assert due_at(runtime) == clock.now() + timedelta(minutes=5)
    monkeypatch.undo()
    clock.advance(timedelta(minutes=4))
    assert task.run_due(runtime, clock.now()) == 0
    clock.advance(timedelta(minutes=1))
    assert task.run_due(runtime, clock.now()) == 1


def test_the_worker_loop_refreshes_as_the_clock_moves(
    runtime: Runtime, clock: VirtualClock
) -> None:
    ann = add_contact(runtime, "ann@example.com")
    add_event(runtime, ann, clock.now(), name="email_clicked", type="internal")
    worker = Worker(runtime, name="test", tasks=[TraitsRefreshTask()])

    async def engagement_becomes(level: str) -> None:
        for _ in range(2000):
            with runtime.database.transaction(read_only=True) as session:
                found = runtime.traits.traits_of(session, ann).engagement
            if found == level:
                return
            await asyncio.sleep(0.005)
        raise AssertionError(f"engagement is {found}, not {level}")

    async def scenario() -> None:
        running = asyncio.create_task(worker.run_forever())
        await engagement_becomes("active")
        clock.advance(91 * DAY)
        await engagement_becomes("passive")
        worker.stop()
        await asyncio.wait_for(running, timeout=5)

    asyncio.run(scenario())
