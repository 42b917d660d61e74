"""Every query of journey runs (and what the steps read about contacts and templates)."""

from __future__ import annotations

import uuid
import zlib
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Select, case, func, select, text
from sqlalchemy.orm import Session

from postillon.automations.journeys.runs import CONTEXT_POSITION, LIVE, RUNNING, Run, RunState
from postillon.kit.repository import chunked, insert_rows, one_of, update_rows
from postillon.models import Automation, Contact, EmailTemplate, Event, JourneyRun
from postillon.models.automation import RUNNING_CONDITION

_RUN_COLUMNS = tuple(JourneyRun.__table__.columns)
# `Run.from_row` takes the columns by position.
assert [c.name for c in _RUN_COLUMNS] == [f.name for f in fields(Run)], "journey_runs columns"
assert fields(Run)[CONTEXT_POSITION].name == "context"
# Any numbers, the same in every process: the keys of the journey locks.
_EXCLUSIVE_LOCK = 0x6A657863  # "jexc"


@dataclass(frozen=True)
class SeenEvent:
    """An event as waits, goals and exits read it."""

    id: int
    contact_id: uuid.UUID
    name: str
    message_id: str
    occurred_at: datetime
    properties: dict[str, Any]


@dataclass(frozen=True)
class EntryStats:
    runs: int
    live: int
    last_entered: datetime | None


@dataclass(frozen=True)
class TemplateRef:
    id: uuid.UUID
    key: str
    kind: str


def _runs() -> Select[Any]:
    return select(*_RUN_COLUMNS)


# --- locks ---


def serialize_entry(session: Session, journey_id: uuid.UUID) -> None:
    """One entering transaction per journey at a time on PostgreSQL (SQLite's write lock
    does this): the entry policy is read from the runs, and two workers reading them at
    once would both let a contact in."""
    if session.get_bind().dialect.name == "postgresql":
        key = zlib.crc32(b"postillon.journey_entry:" + journey_id.bytes)
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def serialize_exclusive(session: Session) -> None:
    """Entering an exclusive journey and promoting queued runs one transaction at a time:
    both decide from who is in an exclusive journey now."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _EXCLUSIVE_LOCK})


# --- claiming and writing ---


def claim_due(session: Session, now: datetime, limit: int) -> list[Run]:
    """Up to `limit` runs whose step is due (active) or whose wait timed out (waiting),
    of journeys that are active (a paused journey's runs hold), oldest due first. On
    PostgreSQL rows another worker holds are skipped; SQLite's write lock serialises."""
    query = (
        _runs()
        .join(Automation, Automation.id == JourneyRun.journey_id)
        .where(
            text(RUNNING_CONDITION),  # in the words of the partial due index
            JourneyRun.due_at <= now,
            Automation.status == "active",
        )
        .order_by(JourneyRun.due_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=JourneyRun)
    )
    return [Run.from_row(row) for row in session.execute(query)]


def insert_runs(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """New runs; one whose (journey, entry key) exists already is skipped."""
    insert_rows(session, JourneyRun, rows, ignore_conflicts=True)


def update_runs(session: Session, runs: Sequence[Run]) -> None:
    update_rows(session, JourneyRun, [run.written() for run in runs])


def existing_ids(session: Session, ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    found: set[uuid.UUID] = set()
    for chunk in chunked(list(ids)):
        found.update(
            session.scalars(select(JourneyRun.id).where(one_of(session, JourneyRun.id, chunk)))
        )
    return found


def states_of(session: Session, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    found: dict[uuid.UUID, str] = {}
    for chunk in chunked(list(ids)):
        rows = session.execute(
            select(JourneyRun.id, JourneyRun.state).where(one_of(session, JourneyRun.id, chunk))
        )
        found.update({row.id: row.state for row in rows})
    return found


def runs_by_id(session: Session, ids: Sequence[uuid.UUID]) -> list[Run]:
    found: list[Run] = []
    for chunk in chunked(list(ids)):
        query = _runs().where(one_of(session, JourneyRun.id, chunk)).order_by(JourneyRun.entered_at)
        found += [Run.from_row(row) for row in session.execute(query)]
    return found


# --- entering ---


def used_entry_keys(session: Session, journey_id: uuid.UUID, keys: Collection[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunked(list(keys)):
        found.update(
            session.scalars(
                select(JourneyRun.entry_key).where(
                    JourneyRun.journey_id == journey_id,
                    one_of(session, JourneyRun.entry_key, chunk),
                )
            )
        )
    return found


def entry_stats(
    session: Session, journey_id: uuid.UUID, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, EntryStats]:
    """Per contact: runs of this journey ever, runs not ended, the last entry."""
    found: dict[uuid.UUID, EntryStats] = {}
    live = func.sum(case((JourneyRun.state.in_(LIVE), 1), else_=0))
    for chunk in chunked(list(contact_ids)):
        rows = session.execute(
            select(
                JourneyRun.contact_id,
                func.count().label("runs"),
                live.label("live"),
                func.max(JourneyRun.entered_at).label("last_entered"),
            )
            .where(
                JourneyRun.journey_id == journey_id, one_of(session, JourneyRun.contact_id, chunk)
            )
            .group_by(JourneyRun.contact_id)
        )
        for row in rows:
            found[row.contact_id] = EntryStats(int(row.runs), int(row.live or 0), row.last_entered)
    return found


def running_exclusive(session: Session, contact_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, Run]:
    """Each contact's run in an exclusive journey that holds their place (active or
    waiting; the highest priority if, against the rules, there are several), locked: a
    worker executing it is waited for, so a take-over is not undone by its write."""
    found: dict[uuid.UUID, Run] = {}
    for chunk in chunked(list(contact_ids)):
        query = (
            _runs()
            .where(
                one_of(session, JourneyRun.contact_id, chunk),
                JourneyRun.state.in_(RUNNING),
                JourneyRun.priority.is_not(None),
            )
            .order_by(JourneyRun.priority, JourneyRun.entered_at)
            .with_for_update()
        )
        for row in session.execute(query):
            found[row.contact_id] = Run.from_row(row)
    return found


def queued_runs(session: Session, contact_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, list[Run]]:
    """Each contact's queued runs, in the order they start: priority first, then oldest."""
    found: dict[uuid.UUID, list[Run]] = defaultdict(list)
    for chunk in chunked(list(contact_ids)):
        query = (
            _runs()
            .where(
                one_of(session, JourneyRun.contact_id, chunk),
                JourneyRun.state == RunState.queued,
            )
            .order_by(JourneyRun.priority.desc(), JourneyRun.entered_at, JourneyRun.id)
            .with_for_update()
        )
        for row in session.execute(query):
            found[row.contact_id].append(Run.from_row(row))
    return found


# --- events, removals ---


def live_runs(
    session: Session,
    contact_ids: Collection[uuid.UUID],
    *,
    journey_id: uuid.UUID | None = None,
) -> list[Run]:
    """The runs not ended of these contacts (in one journey, or all), locked until the
    transaction ends: a worker executing one of them is waited for, then its new state
    is read."""
    found: list[Run] = []
    for chunk in chunked(list(contact_ids)):
        query = _runs().where(
            one_of(session, JourneyRun.contact_id, chunk), JourneyRun.state.in_(LIVE)
        )
        if journey_id is not None:
            query = query.where(JourneyRun.journey_id == journey_id)
        query = query.order_by(JourneyRun.id).with_for_update()
        found += [Run.from_row(row) for row in session.execute(query)]
    return found


def events_of(
    session: Session,
    contact_ids: Collection[uuid.UUID],
    names: Collection[str],
    *,
    since: datetime,
    until: datetime | None,
) -> dict[uuid.UUID, list[SeenEvent]]:
    """The contacts' events of these names since a moment (up to another), oldest first."""
    found: dict[uuid.UUID, list[SeenEvent]] = defaultdict(list)
    if not names:
        return found
    for chunk in chunked(list(contact_ids)):
        query = (
            select(
                Event.id,
                Event.contact_id,
                Event.name,
                Event.message_id,
                Event.occurred_at,
                Event.properties,
            )
            .where(
                one_of(session, Event.contact_id, chunk),
                Event.name.in_(sorted(names)),
                Event.occurred_at >= since,
            )
            .order_by(Event.occurred_at, Event.id)
        )
        if until is not None:
            query = query.where(Event.occurred_at <= until)
        for row in session.execute(query):
            found[row.contact_id].append(
                SeenEvent(
                    row.id,
                    row.contact_id,
                    row.name,
                    row.message_id,
                    row.occurred_at,
                    row.properties or {},
                )
            )
    return found


# --- what steps read ---


def contact_times(
    session: Session, contact_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[str | None, dict[str, Any]]]:
    """Each contact's time zone and attributes (local times, date waits)."""
    found: dict[uuid.UUID, tuple[str | None, dict[str, Any]]] = {}
    for chunk in chunked(list(contact_ids)):
        rows = session.execute(
            select(Contact.id, Contact.timezone, Contact.attributes).where(
                one_of(session, Contact.id, chunk)
            )
        )
        found.update({row.id: (row.timezone, row.attributes or {}) for row in rows})
    return found


def templates_by_key(session: Session, keys: Collection[str]) -> dict[str, TemplateRef]:
    if not keys:
        return {}
    rows = session.execute(
        select(EmailTemplate.id, EmailTemplate.key, EmailTemplate.kind).where(
            EmailTemplate.key.in_(sorted(keys))
        )
    )
    return {row.key: TemplateRef(row.id, row.key, row.kind) for row in rows}
