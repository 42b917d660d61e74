"""Periodic worker jobs (the traits refresh …), scheduled in the database so that of any
number of workers one runs each job once per period. A job is due when its row says so,
or when it has no row yet (it then runs at the first worker round)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from postillon.worker import repository


def is_due(session: Session, name: str, now: datetime) -> bool:
    """A cheap read, to skip the write transaction when the job is not due."""
    due = repository.due_at(session, name)
    return due is None or due <= now


def claim(session: Session, name: str, *, now: datetime, every: timedelta) -> bool:
    """Take the job if it is due at `now` and make it due again `every` later; the
    caller runs it in the same transaction (a failure rolls the claim back too)."""
    repository.add(session, name, due_at=now)
    return repository.advance_if_due(session, name, now=now, next_due=now + every)


def postpone(session: Session, name: str, *, until: datetime) -> None:
    """After a failure: try again at `until`, not at every round."""
    repository.add(session, name, due_at=until)
    repository.postpone(session, name, until=until)
