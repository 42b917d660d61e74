"""Every query about stored events."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Dialect, String, and_, bindparam, delete, func, or_, select, text, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import (
    PreparedRows,
    chunked,
    copy_rows,
    insert_prepared,
    insert_rows,
    one_of,
    prepare_rows,
    update_rows,
)
from postillon.models import Event, EventQueueItem

_NEXT_IDS_SQLITE = text(
    "UPDATE id_sequences SET last_value = last_value + :count "
    "WHERE name = 'events' RETURNING last_value"
)
_NEXT_IDS_POSTGRESQL = text(
    "SELECT nextval(pg_get_serial_sequence('events', 'id')) FROM generate_series(1, :count)"
)


def allocate_ids(session: Session, count: int) -> list[int]:
    """`count` fresh event ids, ascending. On SQLite the write transaction holds the
    database lock, so a counter row is enough; PostgreSQL draws from the id sequence."""
    if count <= 0:
        return []
    if session.get_bind().dialect.name == "sqlite":
        last = int(session.execute(_NEXT_IDS_SQLITE, {"count": count}).scalar_one())
        return list(range(last - count + 1, last + 1))
    return sorted(int(v) for v in session.execute(_NEXT_IDS_POSTGRESQL, {"count": count}).scalars())


def insert_events(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rows carry their allocated `id`; messageIds are checked unique beforehand."""
    copy_rows(session, Event, rows)


def prepare_events(dialect: Dialect, rows: Sequence[dict[str, Any]]) -> PreparedRows:
    """Event rows (every column but `id` and `contact_id`) converted for the driver ahead
    of the transaction that inserts them with `insert_prepared_events`."""
    return prepare_rows(dialect, Event, rows, late=("id", "contact_id"))


def insert_prepared_events(
    session: Session,
    prepared: PreparedRows,
    rows: Sequence[tuple[int, tuple[int, uuid.UUID | None]]],
) -> None:
    """The prepared events at these positions, each with its `(id, contact_id)`. A
    messageId stored since the rows were prepared fails the insert (IntegrityError)."""
    insert_prepared(session, prepared, rows)


def existing_message_ids(session: Session, message_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for part in chunked(message_ids):
        found.update(
            session.scalars(select(Event.message_id).where(one_of(session, Event.message_id, part)))
        )
    return found


def contacts_with_event(
    session: Session, name: str, contact_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these contacts have an event of this name on their timeline."""
    found: set[uuid.UUID] = set()
    for part in chunked(sorted_ids(contact_ids)):
        query = select(Event.contact_id).where(
            one_of(session, Event.contact_id, part), Event.name == name
        )
        found.update(c for c in session.scalars(query.distinct()) if c is not None)
    return found


def latest_of_contacts(
    session: Session, contact_ids: Sequence[uuid.UUID], *, per_contact: int
) -> dict[uuid.UUID, list[Event]]:
    """Each contact's `per_contact` most recent events, newest first, in one query per
    chunk of contacts (a window over the timeline index)."""
    found: dict[uuid.UUID, list[Event]] = {}
    for part in chunked(sorted_ids(contact_ids)):
        ranked = (
            select(
                Event.id,
                func.row_number()
                .over(
                    partition_by=Event.contact_id,
                    order_by=(Event.occurred_at.desc(), Event.id.desc()),
                )
                .label("rank"),
            )
            .where(one_of(session, Event.contact_id, part))
            .subquery()
        )
        query = (
            select(Event)
            .join(ranked, ranked.c.id == Event.id)
            .where(ranked.c.rank <= per_contact)
            .order_by(Event.contact_id, Event.occurred_at.desc(), Event.id.desc())
        )
        for event in session.scalars(query):
            if event.contact_id is not None:
                found.setdefault(event.contact_id, []).append(event)
    return found


def events_in_ranges(session: Session, ranges: Sequence[Sequence[int]]) -> list[Event]:
    events: list[Event] = []
    for first, last in ranges:
        query = select(Event).where(Event.id.between(first, last)).order_by(Event.id)
        events.extend(session.scalars(query))
    return events


def by_message_ids(session: Session, message_ids: Sequence[str]) -> list[Event]:
    events: list[Event] = []
    for part in chunked(message_ids):
        events.extend(session.scalars(select(Event).where(one_of(session, Event.message_id, part))))
    return events


def set_properties(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Rows of `{"id", "properties"}`."""
    update_rows(session, Event, rows)


def attribute_anonymous(session: Session, links: dict[str, uuid.UUID], *, since: datetime) -> int:
    """Give each visitor's unattributed events received since `since` to its contact
    (`links`: anonymous id → contact id)."""
    if not links:
        return 0
    visitors = sorted(links)
    if session.get_bind().dialect.name == "postgresql":
        return _attribute_anonymous_joined(session, links, visitors, since)
    statement = (
        update(Event)
        .where(
            Event.anonymous_id == bindparam("visitor"),
            Event.contact_id.is_(None),
            Event.received_at >= since,
        )
        .values(contact_id=bindparam("contact"))
    )
    rows = [{"visitor": visitor, "contact": links[visitor]} for visitor in visitors]
    result = session.connection().execute(statement, rows)
    return max(0, int(result.rowcount))


# The links join in as two arrays. The repeated `= ANY(:visitors)` matters while the
# table has no statistics yet (a fresh database, the first minute of heavy tracking):
# PostgreSQL then takes the unattributed events to be few and may scan all of them by
# age; with the condition it does so once per batch, keeping only these visitors' rows,
# instead of once per link (4 to 10 ms a link at 30,000 unattributed events).
_ATTRIBUTE_JOINED = text(
    "UPDATE events SET contact_id = links.contact"
    " FROM unnest(:visitors, :contacts) AS links(visitor, contact)"
    " WHERE events.anonymous_id = links.visitor"
    " AND events.anonymous_id = ANY(:visitors)"
    " AND events.contact_id IS NULL AND events.received_at >= :since"
).bindparams(
    bindparam("visitors", type_=postgresql.ARRAY(String)),
    bindparam("contacts", type_=postgresql.ARRAY(postgresql.UUID(as_uuid=True))),
)


def _attribute_anonymous_joined(
    session: Session, links: dict[str, uuid.UUID], visitors: list[str], since: datetime
) -> int:
    attributed = 0
    for part in chunked(visitors):
        result = session.execute(
            _ATTRIBUTE_JOINED,
            {"visitors": list(part), "contacts": [links[v] for v in part], "since": since},
        )
        attributed += int(result.rowcount)  # type: ignore[attr-defined]
    return attributed


def purge_unattributed(session: Session, *, received_before: datetime, limit: int) -> int:
    """Delete up to `limit` anonymous events received before the cut-off."""
    doomed = (
        select(Event.id)
        .where(Event.contact_id.is_(None), Event.received_at < received_before)
        .order_by(Event.received_at)
        .limit(limit)
        .scalar_subquery()
    )
    result = session.execute(delete(Event).where(Event.id.in_(doomed)))
    return int(result.rowcount)  # type: ignore[attr-defined]


def count_unattributed(session: Session, anonymous_id: str) -> int:
    query = (
        select(func.count())
        .select_from(Event)
        .where(Event.anonymous_id == anonymous_id, Event.contact_id.is_(None))
    )
    return int(session.scalar(query) or 0)


def enqueue(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, EventQueueItem, rows)


def claim_queue_items(
    session: Session, consumer: str, *, now: datetime, limit: int
) -> list[EventQueueItem]:
    """The next due items of one consumer, locked for this transaction; items another
    worker holds are skipped (on SQLite the write transaction already excludes others)."""
    query = (
        select(EventQueueItem)
        .where(EventQueueItem.consumer == consumer, EventQueueItem.available_at <= now)
        .order_by(EventQueueItem.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(query))


def delete_queue_items(session: Session, ids: Sequence[int]) -> None:
    session.execute(delete(EventQueueItem).where(EventQueueItem.id.in_(ids)))


def postpone_queue_items(
    session: Session, ids: Sequence[int], *, until: datetime, error: str
) -> None:
    session.execute(
        update(EventQueueItem)
        .where(EventQueueItem.id.in_(ids))
        .values(
            attempts=EventQueueItem.attempts + 1,
            available_at=until,
            last_error=error[:2000],
        )
    )


def queue_backlog(session: Session) -> dict[str, int]:
    query = select(EventQueueItem.consumer, func.sum(EventQueueItem.event_count)).group_by(
        EventQueueItem.consumer
    )
    return {consumer: int(total or 0) for consumer, total in session.execute(query)}


def timeline_page(
    session: Session,
    contact_id: uuid.UUID,
    *,
    before: tuple[datetime, int] | None,
    name: str | None,
    limit: int,
) -> list[Event]:
    """A contact's events newest first; `before` is the (occurred_at, id) of the last one seen."""
    query = (
        select(Event)
        .where(Event.contact_id == contact_id)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(limit)
    )
    if name is not None:
        query = query.where(Event.name == name)
    if before is not None:
        occurred_at, event_id = before
        query = query.where(
            or_(
                Event.occurred_at < occurred_at,
                and_(Event.occurred_at == occurred_at, Event.id < event_id),
            )
        )
    return list(session.scalars(query))


def iter_for_contact(session: Session, contact_id: uuid.UUID) -> Iterator[Event]:
    query = (
        select(Event)
        .where(Event.contact_id == contact_id)
        .order_by(Event.occurred_at, Event.id)
        .execution_options(yield_per=1000)
    )
    yield from session.scalars(query)


def move_to_contact(session: Session, *, source: uuid.UUID, target: uuid.UUID) -> int:
    result = session.execute(
        update(Event).where(Event.contact_id == source).values(contact_id=target)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
