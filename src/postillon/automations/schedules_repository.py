"""Every query of the date and schedule triggers: their marks in `worker_schedules`, the
zones contacts live in, and the contacts whose date attribute falls on given days."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import ColumnElement, false, func, or_, select, update
from sqlalchemy.orm import Session

from postillon.filters.json_path import JsonPath
from postillon.kit.repository import insert_rows, table_of
from postillon.models import AutomationVersion, Contact, WorkerSchedule


def marks(session: Session, prefix: str) -> dict[str, datetime]:
    """name → due_at of every mark whose name starts with `prefix`."""
    query = select(WorkerSchedule.name, WorkerSchedule.due_at).where(
        WorkerSchedule.name.startswith(prefix, autoescape=True)
    )
    return {name: due_at for name, due_at in session.execute(query)}


def lock_mark(session: Session, name: str, *, now: datetime) -> tuple[bool, datetime | None]:
    """Take the mark if it is due at `now` (creating it, due, if it does not exist): True
    and the moment up to which its triggers were handled (None: never). On PostgreSQL the
    row stays locked until the transaction ends, and a mark another worker holds is not
    due (`SKIP LOCKED`); SQLite's write lock does the same."""
    insert_rows(
        session,
        WorkerSchedule,
        [{"name": name, "due_at": now, "last_run_at": None}],
        ignore_conflicts=True,
    )
    query = select(WorkerSchedule.due_at, WorkerSchedule.last_run_at).where(
        WorkerSchedule.name == name
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = session.execute(query).one_or_none()
    if row is None or row.due_at > now:
        return False, None
    return True, row.last_run_at


def advance_mark(
    session: Session, name: str, *, handled_until: datetime, next_due: datetime
) -> None:
    session.execute(
        update(WorkerSchedule)
        .where(WorkerSchedule.name == name)
        .values(due_at=next_due, last_run_at=handled_until)
    )


def postpone_mark(session: Session, name: str, *, until: datetime) -> None:
    """After a failure: due again at `until`; what was handled stays as it was."""
    insert_rows(
        session,
        WorkerSchedule,
        [{"name": name, "due_at": until, "last_run_at": None}],
        ignore_conflicts=True,
    )
    session.execute(update(WorkerSchedule).where(WorkerSchedule.name == name).values(due_at=until))


def published_at(session: Session, automation_id: uuid.UUID, version: int) -> datetime | None:
    return session.scalar(
        select(AutomationVersion.published_at).where(
            AutomationVersion.automation_id == automation_id, AutomationVersion.version == version
        )
    )


def contact_zones(session: Session) -> list[str | None]:
    """The time zones contacts have (None for contacts without one)."""
    return list(session.scalars(select(Contact.timezone).distinct()))


def dated_contacts(
    session: Session,
    attribute: str,
    *,
    month_days: Collection[str],
    zones: Collection[str],
    without_zone: bool,
) -> list[tuple[uuid.UUID, str | None, str]]:
    """(id, timezone, attribute text) of the contacts in `zones` (and without a zone, if
    `without_zone`) whose date attribute is text starting with YYYY-MM-DD whose MM-DD is
    one of `month_days`: one scan of the contacts."""
    if not month_days or not (zones or without_zone):
        return []
    dialect = session.get_bind().dialect.name
    value = JsonPath(dialect, table_of(Contact).c.attributes, [attribute]).text()
    if dialect == "sqlite":
        shaped = value.op("GLOB")("[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]*")
    else:
        shaped = value.op("~")("^[0-9]{4}-[0-9]{2}-[0-9]{2}")
    in_zones: list[ColumnElement[bool]] = []
    if zones:
        in_zones.append(Contact.timezone.in_(sorted(zones)))
    if without_zone:
        in_zones.append(Contact.timezone.is_(None))
    query = select(Contact.id, Contact.timezone, value).where(
        func.substr(value, 6, 5).in_(sorted(month_days)),
        shaped,
        or_(false(), *in_zones),
    )
    return [(contact_id, zone, text) for contact_id, zone, text in session.execute(query)]
