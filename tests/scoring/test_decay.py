"""Score decay: after N days without activity, once per period, on the worker's daily
schedule, and never twice when two workers run it at once."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from postillon.scoring.tasks import ScoreDecayTask, latest_slot
from tests.scoring.support import add_model, history, new_contact, scores, set_main, track
from tests.tracking.support import run_worker_round


def give(runtime: Runtime, contact_id: uuid.UUID, model: str, points: int) -> None:
    with runtime.database.transaction() as session:
        runtime.scoring.adjust(session, [contact_id], model, points)


def decay(runtime: Runtime) -> int:
    with runtime.database.transaction() as session:
        return runtime.scoring.decay(session, now=runtime.clock.now(), limit=1000)


def test_scores_decay_after_days_without_activity_once_per_period(
    runtime: Runtime, clock: VirtualClock
) -> None:
    set_main(runtime, decay_percent=25, decay_after_days=30)
    ann = new_contact(runtime)
    give(runtime, ann, "main", 100)
    clock.advance(timedelta(days=29, hours=23))
    assert decay(runtime) == 0
    clock.advance(timedelta(hours=1))  # 30 days without activity
    assert decay(runtime) == 1
    assert scores(runtime, ann) == {"main": 75}
    last = history(runtime, ann)[-1]
    assert (last.delta, last.score, last.reason, last.changed_at) == (-25, 75, "decay", clock.now())
    assert decay(runtime) == 0  # once for this period
    clock.advance(timedelta(days=29))
    assert decay(runtime) == 0
    clock.advance(timedelta(days=1))  # 30 more days: the next period
    assert decay(runtime) == 1
    assert scores(runtime, ann) == {"main": 57}  # 75 - 18.75 rounded toward zero


def test_activity_and_score_changes_restart_the_period(
    runtime: Runtime, clock: VirtualClock
) -> None:
    set_main(runtime, decay_percent=50, decay_after_days=10)
    seen, scored, idle = (new_contact(runtime, f"{n}@example.com") for n in ("a", "b", "c"))
    for contact in (seen, scored, idle):
        give(runtime, contact, "main", 10)
    clock.advance(timedelta(days=5))
    track(runtime, seen, ("Page Viewed", {}))
    run_worker_round(runtime)  # last_seen_at of `seen` moves to now
    give(runtime, scored, "main", 2)
    clock.advance(timedelta(days=5))
    assert decay(runtime) == 1
    assert scores(runtime, idle) == {"main": 5}
    assert scores(runtime, seen) == {"main": 10} and scores(runtime, scored) == {"main": 12}
    clock.advance(timedelta(days=5))
    assert decay(runtime) == 2
    assert scores(runtime, seen) == {"main": 5} and scores(runtime, scored) == {"main": 6}


def test_named_models_decay_by_their_own_settings_and_small_or_negative_scores_stay(
    runtime: Runtime, clock: VirtualClock
) -> None:
    add_model(runtime, "shoes", decay_percent=10, decay_after_days=7)
    add_model(runtime, "hats")
    ann, bob, cid = (new_contact(runtime, f"{n}@example.com") for n in ("a", "b", "c"))
    give(runtime, ann, "shoes", 55)
    give(runtime, ann, "hats", 55)
    give(runtime, ann, "main", 55)
    give(runtime, bob, "shoes", 9)  # 10 % of 9 is less than a point
    give(runtime, cid, "shoes", -50)
    clock.advance(timedelta(days=7))
    assert decay(runtime) == 1
    assert scores(runtime, ann) == {"main": 55, "shoes": 50, "hats": 55}
    assert scores(runtime, bob)["shoes"] == 9 and scores(runtime, cid)["shoes"] == -50


def test_the_worker_task_runs_daily_at_the_configured_time(
    runtime: Runtime, clock: VirtualClock
) -> None:
    at = runtime.settings.score_decay_time
    assert latest_slot(datetime(2026, 1, 9, 9, 0, tzinfo=UTC), at) == datetime(
        2026, 1, 9, 3, 0, tzinfo=UTC
    )
    assert latest_slot(datetime(2026, 1, 9, 2, 0, tzinfo=UTC), at) == datetime(
        2026, 1, 8, 3, 0, tzinfo=UTC
    )
    clock.set(datetime(2026, 1, 7, 9, 0, tzinfo=UTC))
    ann, bob = new_contact(runtime), new_contact(runtime, "bob@example.com")
    give(runtime, ann, "main", 8)
    give(runtime, bob, "main", 8)
    task = ScoreDecayTask(batch=1)
    clock.set(datetime(2026, 1, 9, 9, 0, tzinfo=UTC))
    assert task.run_due(runtime, clock.now()) == 0  # runs when started: no decay set up
    set_main(runtime, decay_percent=50, decay_after_days=1)
    clock.set(datetime(2026, 1, 10, 2, 59, tzinfo=UTC))
    assert task.run_due(runtime, clock.now()) == 0  # due, but not time yet
    assert scores(runtime, ann) == {"main": 8}
    clock.set(datetime(2026, 1, 10, 3, 0, tzinfo=UTC))
    # A batch at a time until one comes back short; then nothing until tomorrow.
    assert [task.run_due(runtime, clock.now()) for _ in range(4)] == [1, 1, 0, 0]
    assert scores(runtime, ann) == scores(runtime, bob) == {"main": 4}


def test_worker_rounds_run_the_decay(runtime: Runtime, clock: VirtualClock) -> None:
    set_main(runtime, decay_percent=50, decay_after_days=1)
    ann = new_contact(runtime)
    give(runtime, ann, "main", 8)
    clock.advance(timedelta(days=1))
    run_worker_round(runtime)
    assert scores(runtime, ann) == {"main": 4}


# SQLite runs one write transaction at a time; PostgreSQL needs the scoring lock.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_workers_decaying_at_once_decay_each_score_once(
    runtime: Runtime, clock: VirtualClock
) -> None:
    set_main(runtime, decay_percent=50, decay_after_days=1)
    contacts = [new_contact(runtime, f"{n}@example.com") for n in range(5)]
    for contact in contacts:
        give(runtime, contact, "main", 100)
    clock.advance(timedelta(days=1))
    first_done, release = threading.Event(), threading.Event()
    counts: list[int] = []

    def first() -> None:
        with runtime.database.transaction() as session:
            counts.append(runtime.scoring.decay(session, now=clock.now(), limit=1000))
            first_done.set()
            release.wait(timeout=20)  # hold the lock until the second worker waits on it

    def second() -> None:
        counts.append(decay(runtime))

    one = threading.Thread(target=first)
    one.start()
    assert first_done.wait(timeout=20)
    two = threading.Thread(target=second)
    two.start()
    _wait_for_a_lock_waiter(runtime)
    release.set()
    one.join()
    two.join()
    assert counts == [5, 0]
    assert {scores(runtime, c)["main"] for c in contacts} == {50}


def _wait_for_a_lock_waiter(runtime: Runtime) -> None:
    """Until another session waits for an advisory lock (real time: it is another thread)."""
    deadline = time.monotonic() + 20
    query = text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    while time.monotonic() < deadline:
        with runtime.database.transaction(read_only=True) as session:
            if session.scalar(query):
                return
        time.sleep(0.01)
    raise AssertionError("the second worker never waited for the scoring lock")
