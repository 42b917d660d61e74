"""Helpers shared by the feature repositories."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import Insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postillon.models.base import Base

T = TypeVar("T")

# Both dialects accept far more bound parameters; this keeps single statements modest.
IN_CHUNK = 1000


def chunked(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def insert_ignoring_conflicts(session: Session, model: type[Base]) -> Insert:
    """`INSERT ... ON CONFLICT DO NOTHING` in the session's dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model).on_conflict_do_nothing()
    return sqlite.insert(model).on_conflict_do_nothing()


def execute_many(session: Session, statement: Any, rows: Iterable[dict[str, Any]]) -> None:
    """Run one statement for many parameter sets (executemany), skipping when there are none."""
    batch = list(rows)
    if batch:
        session.execute(statement, batch)
