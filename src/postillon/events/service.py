"""Recording and reading timeline events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.errors import InvalidInput
from postillon.events import queue, repository
from postillon.kit.ids import new_id
from postillon.kit.pagination import Page, decode_cursor, encode_cursor
from postillon.kit.repository import PreparedRows
from postillon.models import Event

INTERNAL = "internal"
# Tracked events that happen to the contact rather than being done by them: no sign that
# they are active (last seen, engagement).
DONE_TO_CONTACT = frozenset({"email_sent", "email_delivered", "email_bounced"})

# The automations whose actions are running in a transaction (`session.info`), oldest
# cause first; `record_internal` stamps them on the events those actions cause.
_CAUSE = "postillon.automation_chain"
# Event properties naming the automation that caused an event, and the whole chain.
CAUSED_BY = "automation"
CAUSE_CHAIN = "automation_chain"


@dataclass(frozen=True)
class InternalEvent:
    """Something Postillon itself did to a contact (consent changed, contacts merged…)."""

    contact_id: uuid.UUID
    name: str
    properties: dict[str, Any]
    source: str = "postillon"


def store_events(
    session: Session, rows: Sequence[dict[str, Any]], *, now: datetime, queue_them: bool = True
) -> list[int]:
    """Store events (every column but `id`) and queue them for the consumers, in the
    caller's transaction. Returns their ids, in the order of `rows`.

    `queue_them=False` is for history no consumer should react to (the demo data): the
    caller then brings what the consumers derive up to date itself."""
    if not rows:
        return []
    ids = repository.allocate_ids(session, len(rows))
    repository.insert_events(
        session, [{**row, "id": id_} for row, id_ in zip(rows, ids, strict=True)]
    )
    if queue_them:
        queue.enqueue(session, ids, now=now)
    return ids


def store_prepared_events(
    session: Session,
    prepared: PreparedRows,
    contacts: Sequence[tuple[int, uuid.UUID | None]],
    *,
    now: datetime,
) -> list[int]:
    """Store the prepared events (`events.repository.prepare_events`) at these positions
    with these contacts, and queue them, in the caller's transaction. Returns their ids, in
    the order of `contacts`."""
    if not contacts:
        return []
    ids = repository.allocate_ids(session, len(contacts))
    repository.insert_prepared_events(
        session,
        prepared,
        [
            (position, (id_, contact))
            for (position, contact), id_ in zip(contacts, ids, strict=True)
        ],
    )
    queue.enqueue(session, ids, now=now)
    return ids


@contextmanager
def caused_by(session: Session, chain: Sequence[str]) -> Iterator[None]:
    """Within the block, every internal event recorded in this session was caused by the
    automation `chain[-1]` (itself acting on an event caused by the ones before it): the
    events carry `properties.automation` and `properties.automation_chain`, so that a
    rule never fires on an event its own firing caused, however the change came about
    (tags, attributes, score thresholds, stages, journeys entered)."""
    previous = session.info.get(_CAUSE)
    session.info[_CAUSE] = tuple(chain)
    try:
        yield
    finally:
        if previous is None:
            session.info.pop(_CAUSE, None)
        else:
            session.info[_CAUSE] = previous


def cause_chain(properties: dict[str, Any] | None) -> tuple[str, ...]:
    """The automations that caused an event (empty: none did)."""
    chain = (properties or {}).get(CAUSE_CHAIN)
    if isinstance(chain, list) and all(isinstance(key, str) for key in chain):
        return tuple(chain)
    return ()


def record_internal(session: Session, events: Sequence[InternalEvent], *, now: datetime) -> None:
    """Append Postillon's own events to the contacts' timelines (stamped with the
    automations causing them, see `caused_by`)."""
    chain: tuple[str, ...] | None = session.info.get(_CAUSE)
    stamp = {CAUSED_BY: chain[-1], CAUSE_CHAIN: list(chain)} if chain else {}
    store_events(
        session,
        [
            {
                "contact_id": e.contact_id,
                "anonymous_id": None,
                "user_id": None,
                "message_id": f"postillon-{new_id()}",
                "type": INTERNAL,
                "name": e.name,
                "properties": {**e.properties, **stamp} if stamp else e.properties,
                "context": {},
                "integrations": None,
                "source": e.source,
                "occurred_at": now,
                "received_at": now,
            }
            for e in events
        ],
        now=now,
    )


def timeline(
    session: Session,
    contact_id: uuid.UUID,
    *,
    cursor: str | None,
    name: str | None,
    limit: int,
) -> Page[Event]:
    """One page of a contact's timeline, newest first."""
    before: tuple[datetime, int] | None = None
    if cursor:
        values = decode_cursor(cursor)
        try:
            before = (datetime.fromisoformat(str(values[0])), int(values[1]))
        except (IndexError, ValueError):
            raise InvalidInput.at("cursor", "not a cursor returned by this API") from None
    events = repository.timeline_page(
        session, contact_id, before=before, name=name, limit=limit + 1
    )
    next_cursor = None
    if len(events) > limit:
        events = events[:limit]
        last = events[-1]
        next_cursor = encode_cursor(last.occurred_at.isoformat(), last.id)
    return Page(events, next_cursor)
