"""The durable event queue: stored and queued together, consumed once per consumer,
retried with a delay when a consumer fails, shared by concurrent workers."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from postillon.clock import VirtualClock
from postillon.events import repository
from postillon.events.queue import EventQueueTask, as_ranges
from postillon.events.service import store_events
from postillon.models import Event, EventQueueItem
from postillon.runtime import Runtime


def rows(count: int, now: datetime, prefix: str = "m") -> list[dict[str, Any]]:
    return [
        {
            "contact_id": None,
            "anonymous_id": "a",
            "user_id": None,
            "message_id": f"{prefix}-{i}",
            "type": "track",
            "name": "Clicked",
            "properties": {"i": i},
            "context": {},
            "integrations": None,
            "source": "test",
            "occurred_at": now,
            "received_at": now,
        }
        for i in range(count)
    ]


class Recorder:
    """A consumer that records what it was given and can be told to fail."""

    name = "contact_activity"

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.failures = 0

    def handle(self, session: Session, events: Sequence[Event], now: datetime) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("downstream is down")
        self.seen.extend(e.message_id for e in events)


def queue_items(runtime: Runtime, consumer: str = "contact_activity") -> list[EventQueueItem]:
    """One consumer's items (every stored batch is queued once for each consumer)."""
    with runtime.database.transaction(read_only=True) as session:
        query = select(EventQueueItem).where(EventQueueItem.consumer == consumer)
        return list(session.scalars(query.order_by(EventQueueItem.id)))


def test_as_ranges() -> None:
    assert as_ranges([]) == []
    assert as_ranges([7, 1, 2, 3, 8, 10]) == [[1, 3], [7, 8], [10, 10]]


def test_stored_events_are_queued_in_the_same_transaction(
    runtime: Runtime, clock: VirtualClock
) -> None:
    with runtime.database.transaction() as session:
        first = store_events(session, rows(3, clock.now()), now=clock.now())
    with pytest.raises(RuntimeError), runtime.database.transaction() as session:
        store_events(session, rows(2, clock.now(), prefix="lost"), now=clock.now())
        raise RuntimeError("the request failed after storing")
    with runtime.database.transaction() as session:
        second = store_events(session, rows(2, clock.now(), prefix="n"), now=clock.now())
    [one, two] = queue_items(runtime)
    assert one.event_ranges == [[first[0], first[-1]]] and one.event_count == 3
    assert two.event_ranges == [[second[0], second[-1]]]
    assert second[0] > first[-1]
    with runtime.database.transaction(read_only=True) as session:
        assert session.scalar(select(func.count()).select_from(Event)) == 5


def test_a_consumer_gets_each_event_once_and_a_failure_is_retried_later(
    runtime: Runtime, clock: VirtualClock
) -> None:
    recorder = Recorder()
    task = EventQueueTask([recorder])
    with runtime.database.transaction() as session:
        store_events(session, rows(3, clock.now()), now=clock.now())

    recorder.failures = 1
    assert task.run_due(runtime, clock.now()) == 0
    [item] = queue_items(runtime)
    assert (item.attempts, item.last_error) == (1, "RuntimeError: downstream is down")
    assert item.available_at == clock.now() + timedelta(seconds=5)
    assert task.run_due(runtime, clock.now()) == 0  # not due yet

    clock.advance(timedelta(seconds=5))
    assert task.run_due(runtime, clock.now()) == 3
    assert recorder.seen == ["m-0", "m-1", "m-2"]
    assert queue_items(runtime) == []
    assert task.run_due(runtime, clock.now()) == 0


def test_unknown_consumers_are_refused() -> None:
    class Stranger(Recorder):
        name = "stranger"

    with pytest.raises(ValueError, match="stranger"):
        EventQueueTask([Stranger()])


# SQLite has one writer at a time, so there is nothing to skip-lock there.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_concurrent_workers_claim_disjoint_items(runtime: Runtime, clock: VirtualClock) -> None:
    with runtime.database.transaction() as session:
        for batch in range(4):
            store_events(session, rows(1, clock.now(), prefix=f"b{batch}"), now=clock.now())
    claimed: list[list[int]] = []
    both_claimed = threading.Barrier(2)

    def claim() -> None:
        with runtime.database.transaction() as session:
            items = repository.claim_queue_items(
                session, "contact_activity", now=clock.now(), limit=2
            )
            claimed.append([item.id for item in items])
            both_claimed.wait(timeout=10)  # hold the locks until the other has claimed

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = claimed
    assert len(first) == len(second) == 2
    assert not set(first) & set(second)
