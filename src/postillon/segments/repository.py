"""Every query of the segments feature."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    column,
    delete,
    func,
    insert,
    literal,
    select,
    table,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from postillon.kit.ids import sorted_ids
from postillon.kit.repository import chunked, insert_rows, one_of, row_dicts, table_of
from postillon.kit.types import UTCDateTime, Uuid
from postillon.models import Contact, ContactRefresh, Segment, SegmentMembership

memberships = table_of(SegmentMembership)
contacts = table_of(Contact)


def all_segments(session: Session) -> list[Segment]:
    return list(session.scalars(select(Segment).order_by(Segment.key)))


def by_key(session: Session, key: str, *, lock: bool = False) -> Segment | None:
    query = select(Segment).where(Segment.key == key)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def add(session: Session, segment: Segment) -> None:
    session.add(segment)
    session.flush()


def remove(session: Session, segment: Segment) -> None:
    session.delete(segment)
    session.flush()


def claim_due_segment(session: Session, *, refreshed_before: datetime) -> Segment | None:
    """A segment not refreshed since `refreshed_before` (never refreshed first), locked;
    one another worker holds is skipped."""
    query = (
        select(Segment)
        .where((Segment.refreshed_at.is_(None)) | (Segment.refreshed_at < refreshed_before))
        .order_by(Segment.refreshed_at.is_not(None), Segment.refreshed_at, Segment.key)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return session.scalars(query).first()


def allow_large_set_operations(session: Session) -> None:
    """On PostgreSQL, room for `NOT IN (a million ids)` to stay a hashed lookup."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '256MB'"))


# --- membership, for everyone ---


@dataclass(frozen=True)
class FullRefresh:
    entered: list[uuid.UUID]
    exited: list[uuid.UUID]
    member_count: int


def refresh_all(
    session: Session, segment_id: uuid.UUID, matching: Select[uuid.UUID], now: datetime
) -> FullRefresh:
    """Members no longer in `matching` leave and everyone in it who is not a member
    enters, the query run once: on PostgreSQL one statement (the ids a materialised
    CTE that an UPDATE and an INSERT both read), on SQLite through a temporary table."""
    if session.get_bind().dialect.name == "postgresql":
        return _refresh_all_postgresql(session, segment_id, matching, now)
    return _refresh_all_sqlite(session, segment_id, matching, now)


def _current(segment_id: uuid.UUID) -> Select[uuid.UUID]:
    return select(memberships.c.contact_id).where(
        memberships.c.segment_id == segment_id, memberships.c.exited_at.is_(None)
    )


def _leave_unless(segment_id: uuid.UUID, ids: Select[Any], now: datetime) -> Any:
    return (
        update(memberships)
        .where(
            memberships.c.segment_id == segment_id,
            memberships.c.exited_at.is_(None),
            memberships.c.contact_id.not_in(ids),
        )
        .values(exited_at=now)
        .returning(memberships.c.contact_id)
    )


def _enter_from(segment_id: uuid.UUID, ids: Any, now: datetime) -> Any:
    return (
        insert(memberships)
        .from_select(
            ["segment_id", "contact_id", "entered_at"],
            select(literal(segment_id, Uuid), ids.c.id, literal(now, UTCDateTime)).where(
                ids.c.id.not_in(_current(segment_id))
            ),
        )
        .returning(memberships.c.contact_id)
    )


def _refresh_all_postgresql(
    session: Session, segment_id: uuid.UUID, matching: Select[uuid.UUID], now: datetime
) -> FullRefresh:
    # Sub-statements of one statement see the same snapshot: the INSERT compares with
    # the members as they were, which is right, as those who leave do not match.
    found = matching.cte("matching").prefix_with("MATERIALIZED")
    exited = _leave_unless(segment_id, select(found.c.id), now).cte("exited")
    entered = _enter_from(segment_id, found, now).cte("entered")
    statement = select(
        select(func.count()).select_from(found).scalar_subquery(),
        select(_ordered_ids(entered.c.contact_id)).scalar_subquery(),
        select(_ordered_ids(exited.c.contact_id)).scalar_subquery(),
    )
    count, entered_ids, exited_ids = session.execute(statement).one()
    return FullRefresh(list(entered_ids or ()), list(exited_ids or ()), int(count))


def _ordered_ids(column: Any) -> Any:
    """The ids in one array, in order (the events recorded for them then go into the
    contact index in its order; sorting 38,000 UUIDs took Python 0.6 s)."""
    return func.array_agg(aggregate_order_by(column, column))


_MATCHING_SQLITE = table("segment_refresh_matching", column("id", Uuid()), schema="temp")


def _refresh_all_sqlite(
    session: Session, segment_id: uuid.UUID, matching: Select[uuid.UUID], now: datetime
) -> FullRefresh:
    found = _MATCHING_SQLITE
    session.execute(
        text("CREATE TEMP TABLE IF NOT EXISTS segment_refresh_matching (id PRIMARY KEY)")
    )
    session.execute(delete(found))  # (its rows go with a rollback, as do the others)
    session.execute(insert(found).from_select(["id"], matching))
    exited = list(session.scalars(_leave_unless(segment_id, select(found.c.id), now)))
    entered = list(session.scalars(_enter_from(segment_id, found, now)))
    count = int(session.scalar(select(func.count()).select_from(found)) or 0)
    session.execute(delete(found))
    return FullRefresh(sorted(entered, key=_bytes), sorted(exited, key=_bytes), count)


def _bytes(id_: uuid.UUID) -> bytes:
    return id_.bytes


# --- membership, for listed contacts ---


def current_memberships(
    session: Session, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """The segments each of `contact_ids` is in now, by segment: one query a batch, by
    contact (the index on `contact_id`), whatever the number of segments."""
    found: dict[uuid.UUID, set[uuid.UUID]] = {}
    for part in chunked(sorted_ids(contact_ids)):
        rows = session.execute(
            select(memberships.c.segment_id, memberships.c.contact_id).where(
                one_of(session, memberships.c.contact_id, part),
                memberships.c.exited_at.is_(None),
            )
        )
        for segment_id, contact_id in rows:
            found.setdefault(segment_id, set()).add(contact_id)
    return found


def listed_query(
    conditions: Sequence[tuple[uuid.UUID, ColumnElement[bool]]],
    is_listed: Callable[[Any], ColumnElement[bool]],
    *,
    with_current: bool,
) -> Any:
    """One statement for listed contacts: rows (current, segment id, contact id) of the
    segments the contacts are in now (`with_current`) and of the contacts meeting each
    segment's condition, as `read_listed` takes them."""
    parts: list[Select[Any]] = []
    if with_current:
        parts.append(
            select(
                literal(True).label("current"), memberships.c.segment_id, memberships.c.contact_id
            ).where(is_listed(memberships.c.contact_id), memberships.c.exited_at.is_(None))
        )
    for segment_id, condition in conditions:
        parts.append(
            select(literal(False).label("current"), literal(segment_id, Uuid), contacts.c.id).where(
                condition, is_listed(contacts.c.id)
            )
        )
    return parts[0] if len(parts) == 1 else union_all(*parts)


def read_listed(
    session: Session, statement: Any, parameters: dict[str, Any]
) -> tuple[dict[uuid.UUID, set[uuid.UUID]], dict[uuid.UUID, set[uuid.UUID]]]:
    """Run a `listed_query`: the current members and the matching contacts, by segment."""
    current: dict[uuid.UUID, set[uuid.UUID]] = {}
    matching: dict[uuid.UUID, set[uuid.UUID]] = {}
    for is_current, segment_id, contact_id in session.execute(statement, parameters):
        (current if is_current else matching).setdefault(segment_id, set()).add(contact_id)
    return current, matching


def enter(
    session: Session, segment_id: uuid.UUID, contact_ids: Collection[uuid.UUID], now: datetime
) -> None:
    insert_rows(
        session,
        SegmentMembership,
        [
            {"segment_id": segment_id, "contact_id": id_, "entered_at": now, "exited_at": None}
            for id_ in sorted_ids(contact_ids)
        ],
    )


def leave(
    session: Session, segment_id: uuid.UUID, contact_ids: Collection[uuid.UUID], now: datetime
) -> None:
    for part in chunked(sorted_ids(contact_ids)):
        session.execute(
            update(memberships)
            .where(
                memberships.c.segment_id == segment_id,
                memberships.c.exited_at.is_(None),
                one_of(session, memberships.c.contact_id, part),
            )
            .values(exited_at=now)
        )


def adjust_member_count(session: Session, segment_id: uuid.UUID, delta: int) -> None:
    if delta:
        session.execute(
            update(Segment)
            .where(Segment.id == segment_id)
            .values(member_count=Segment.member_count + delta)
        )


def member_page(
    session: Session, segment_id: uuid.UUID, *, after: uuid.UUID | None, limit: int
) -> list[tuple[Contact, datetime]]:
    query = (
        select(Contact, SegmentMembership.entered_at)
        .join(SegmentMembership, SegmentMembership.contact_id == Contact.id)
        .where(SegmentMembership.segment_id == segment_id, SegmentMembership.exited_at.is_(None))
        .order_by(Contact.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(Contact.id > after)
    return [(contact, entered_at) for contact, entered_at in session.execute(query)]


def iter_members(
    session: Session, segment_id: uuid.UUID, columns: Sequence[str], *, batch: int = 5000
) -> Iterator[list[dict[str, Any]]]:
    """Members' contact columns in batches, by contact id (for exports)."""
    after: uuid.UUID | None = None
    selected = [contacts.c[name] for name in columns]
    while True:
        query = (
            select(*selected, memberships.c.entered_at)
            .join(memberships, memberships.c.contact_id == contacts.c.id)
            .where(memberships.c.segment_id == segment_id, memberships.c.exited_at.is_(None))
            .order_by(contacts.c.id)
            .limit(batch)
        )
        if after is not None:
            query = query.where(contacts.c.id > after)
        rows = row_dicts(session.execute(query))
        if not rows:
            return
        yield rows
        after = rows[-1]["id"]


def history_of_contact(
    session: Session, contact_id: uuid.UUID, *, limit: int
) -> list[tuple[str, str, datetime, datetime | None]]:
    query = (
        select(Segment.key, Segment.name, SegmentMembership.entered_at, SegmentMembership.exited_at)
        .join(Segment, Segment.id == SegmentMembership.segment_id)
        .where(SegmentMembership.contact_id == contact_id)
        .order_by(SegmentMembership.entered_at.desc(), SegmentMembership.id.desc())
        .limit(limit)
    )
    return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def sample_contacts(session: Session, ids_query: Select[uuid.UUID], limit: int) -> list[Contact]:
    found = ids_query.subquery()
    query = (
        select(Contact)
        .where(Contact.id.in_(select(found.c.id)))
        .order_by(Contact.created_at.desc(), Contact.id)
        .limit(limit)
    )
    return list(session.scalars(query))


# --- the refresh queue ---


def claim_refreshes(session: Session, *, limit: int) -> list[uuid.UUID]:
    """The oldest queued contacts, taken off the queue (in this transaction); rows
    another worker holds are skipped."""
    query = (
        select(ContactRefresh.contact_id)
        .order_by(ContactRefresh.queued_at, ContactRefresh.contact_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list(session.scalars(query))
    for part in chunked(ids):
        session.execute(
            delete(ContactRefresh).where(one_of(session, ContactRefresh.contact_id, part))
        )
    return ids


def refresh_backlog(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(ContactRefresh)) or 0)
