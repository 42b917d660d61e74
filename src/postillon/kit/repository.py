"""Helpers shared by the feature repositories."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Insert, Table, any_, bindparam, insert, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from postillon.models.base import Base

T = TypeVar("T")

# Both dialects accept far more bound parameters; this keeps single statements modest.
IN_CHUNK = 1000


def chunked(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def one_of(session: Session, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN (values)`. On PostgreSQL as `column = ANY(:array)`: one parameter, so the
    plan psycopg prepares after a few runs stays an index lookup (a prepared generic plan
    for a long IN list turns into a scan that tests every value on every row)."""
    if session.get_bind().dialect.name == "postgresql":
        array = bindparam(None, list(values), type_=postgresql.ARRAY(column.type))
        return column == any_(array)  # type: ignore[no-any-return]
    return column.in_(values)  # type: ignore[no-any-return]


def table_of(model: type[Base]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)
    return table


def insert_rows(
    session: Session,
    model: type[Base],
    rows: Sequence[dict[str, Any]],
    *,
    ignore_conflicts: bool = False,
) -> None:
    """A Core executemany INSERT (the ORM's bulk path costs several times more per row);
    with `ignore_conflicts`, rows whose key exists already are skipped."""
    if not rows:
        return
    table = table_of(model)
    statement: Insert = insert(table)
    if ignore_conflicts:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = dialect.insert(table).on_conflict_do_nothing()
    session.execute(statement, rows)


def update_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """A Core executemany UPDATE by primary key; every row must carry the same columns."""
    if not rows:
        return
    table = table_of(model)
    keys = [c.name for c in table.primary_key.columns]
    changed = [name for name in rows[0] if name not in keys]
    statement = (
        update(table)
        .where(*(table.c[k] == bindparam(f"key_{k}") for k in keys))
        .values({name: bindparam(name) for name in changed})
    )
    session.execute(statement, [{**row, **{f"key_{k}": row[k] for k in keys}} for row in rows])
