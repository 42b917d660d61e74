"""The durable event queue: stored events handed on to the features that react to them.

Storing events and queueing them happen in the same transaction, so an event is never
stored without being queued, nor queued without being stored. Each consumer has its own
rows (`event_queue.consumer`): one consumer failing or lagging holds up no other. A worker
claims a consumer's due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL), loads their events
and calls the consumer in the same transaction, then deletes the rows; a consumer's
database writes therefore happen exactly once. A failure rolls back and postpones the rows
with a growing delay.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy.orm import Session

from postillon.events import repository
from postillon.models import Event

if TYPE_CHECKING:
    from postillon.runtime import Runtime

logger = logging.getLogger("postillon.events")

# Every consumer that exists; each stored batch of events is queued once for each.
# Adding a consumer means adding its name here and its handler to the worker's tasks.
QUEUE_CONSUMERS: tuple[str, ...] = (
    "contact_activity",
    "lead_scoring",
    "segment_membership",
    "automations",
)

_MAX_BACKOFF = timedelta(hours=1)


class EventConsumer(Protocol):
    name: str

    def handle(self, session: Session, events: Sequence[Event], now: datetime) -> None:
        """React to stored events, in the caller's transaction."""
        ...


@runtime_checkable
class ServiceConsumer(Protocol):
    """A consumer that acts through the runtime's services (the automations: rules and
    journeys are run by the services the runtime built)."""

    name: str

    def handle_with(
        self, runtime: Runtime, session: Session, events: Sequence[Event], now: datetime
    ) -> None:
        """React to stored events, in the caller's transaction."""
        ...


def enqueue(session: Session, event_ids: Sequence[int], *, now: datetime) -> None:
    """Queue the stored events `event_ids` for every consumer."""
    if not event_ids:
        return
    ranges = as_ranges(event_ids)
    repository.enqueue(
        session,
        [
            {
                "consumer": consumer,
                "event_ranges": ranges,
                "event_count": len(event_ids),
                "enqueued_at": now,
                "available_at": now,
                "attempts": 0,
                "last_error": None,
            }
            for consumer in QUEUE_CONSUMERS
        ],
    )


def as_ranges(ids: Sequence[int]) -> list[list[int]]:
    """[1, 2, 3, 7, 8] → [[1, 3], [7, 8]]."""
    ranges: list[list[int]] = []
    for value in sorted(ids):
        if ranges and ranges[-1][1] == value - 1:
            ranges[-1][1] = value
        else:
            ranges.append([value, value])
    return ranges


class EventQueueTask:
    """The worker task that drains the queue, consumer by consumer."""

    name = "event_queue"

    def __init__(
        self,
        consumers: Sequence[EventConsumer | ServiceConsumer],
        *,
        items_per_claim: int = 20,
    ) -> None:
        unknown = {c.name for c in consumers} - set(QUEUE_CONSUMERS)
        if unknown:
            raise ValueError(f"consumers not in QUEUE_CONSUMERS: {sorted(unknown)}")
        self.consumers = list(consumers)
        self.items_per_claim = items_per_claim

    def run_due(self, runtime: Runtime, now: datetime) -> int:
        return sum(self._drain_once(runtime, consumer, now) for consumer in self.consumers)

    def _drain_once(
        self, runtime: Runtime, consumer: EventConsumer | ServiceConsumer, now: datetime
    ) -> int:
        claimed: list[int] = []
        attempts = 0
        try:
            with runtime.database.transaction() as session:
                items = repository.claim_queue_items(
                    session, consumer.name, now=now, limit=self.items_per_claim
                )
                if not items:
                    return 0
                claimed = [item.id for item in items]
                attempts = max(item.attempts for item in items)
                events = repository.events_in_ranges(
                    session, [r for item in items for r in item.event_ranges]
                )
                if isinstance(consumer, ServiceConsumer):
                    consumer.handle_with(runtime, session, events, now)
                else:
                    consumer.handle(session, events, now)
                repository.delete_queue_items(session, claimed)
                return len(events) or len(items)
        except Exception as exc:
            if not claimed:
                raise
            delay = min(timedelta(seconds=5 * 2**attempts), _MAX_BACKOFF)
            logger.exception("consumer %s failed; retrying in %s", consumer.name, delay)
            with runtime.database.transaction() as session:
                repository.postpone_queue_items(
                    session, claimed, until=now + delay, error=f"{type(exc).__name__}: {exc}"
                )
            return 0
