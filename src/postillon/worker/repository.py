"""Every query about the schedules of periodic worker jobs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from postillon.kit.repository import insert_rows
from postillon.models import WorkerSchedule


def due_at(session: Session, name: str) -> datetime | None:
    return session.scalar(select(WorkerSchedule.due_at).where(WorkerSchedule.name == name))


def add(session: Session, name: str, *, due_at: datetime) -> None:
    """The job, due at `due_at`, unless it is scheduled already."""
    insert_rows(
        session,
        WorkerSchedule,
        [{"name": name, "due_at": due_at, "last_run_at": None}],
        ignore_conflicts=True,
    )


def advance_if_due(session: Session, name: str, *, now: datetime, next_due: datetime) -> bool:
    """Move a job due at `now` to `next_due`; False if it was not due (or another worker
    moved it first: on PostgreSQL the row lock makes the second one wait and then see it)."""
    result = session.execute(
        update(WorkerSchedule)
        .where(WorkerSchedule.name == name, WorkerSchedule.due_at <= now)
        .values(due_at=next_due, last_run_at=now)
    )
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


def postpone(session: Session, name: str, *, until: datetime) -> None:
    session.execute(update(WorkerSchedule).where(WorkerSchedule.name == name).values(due_at=until))
