"""Helpers shared by the feature repositories."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Column,
    ColumnDefault,
    ColumnElement,
    Dialect,
    Result,
    Table,
    any_,
    bindparam,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql import sqltypes

from postillon.models.base import Base

T = TypeVar("T")

# Both dialects accept far more bound parameters; this keeps single statements modest.
IN_CHUNK = 1000


def chunked(values: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def row_dicts(result: Result[Any]) -> list[dict[str, Any]]:
    """The rows of `result` as dicts by column name: zipping the keys with each row costs
    a quarter of `dict(row._mapping)`, which goes through a mapping view per row."""
    keys = tuple(result.keys())
    return [dict(zip(keys, row, strict=True)) for row in result]


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
) -> int | None:
    """An executemany INSERT of rows that all carry the same columns (columns they leave
    out get the model's defaults); with `ignore_conflicts`, rows whose key exists already
    are skipped. Returns the rows inserted as the driver counts them (None if it does
    not say).

    The statement goes to the driver directly, with each value converted once by its
    column type's own bind processor (JSON by orjson): SQLAlchemy's per-row parameter
    handling costs several times more than the database's own work on large batches.
    """
    if not rows:
        return 0
    connection = session.connection()
    table = table_of(model)
    plan = _insert_plan(connection.dialect, table, tuple(rows[0]), ignore_conflicts)
    result = connection.exec_driver_sql(plan.sql, plan.parameters(rows))
    count = result.rowcount
    return count if count >= 0 else None


def copy_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Like `insert_rows`, through PostgreSQL's COPY, several times faster for thousands
    of rows (no conflict handling: a duplicate key fails the transaction). On SQLite, an
    executemany INSERT."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        insert_rows(session, model, rows)
        return
    table = table_of(model)
    keys = tuple(rows[0])
    json_columns = {name for name in keys if _is_json(connection.dialect, table.c[name])}
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(k) for k in keys)}) FROM STDIN"
    convert = [_json_text if key in json_columns else None for key in keys]
    pairs = tuple(zip(keys, convert, strict=True))
    driver = connection.connection.dbapi_connection
    assert driver is not None
    with driver.cursor() as cursor, cursor.copy(statement) as copy:  # type: ignore[attr-defined]
        for row in rows:
            copy.write_row([row[k] if c is None else c(row[k]) for k, c in pairs])


def update_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """An executemany UPDATE by primary key; every row must carry the same columns."""
    if not rows:
        return
    connection = session.connection()
    plan = _update_plan(connection.dialect, table_of(model), tuple(rows[0]))
    connection.exec_driver_sql(plan.sql, plan.parameters(rows))


@dataclass(frozen=True)
class _Plan:
    sql: str
    keys: tuple[str, ...]
    converters: tuple[Callable[[Any], Any] | None, ...]
    defaults: tuple[tuple[int, Callable[[], Any]], ...] = ()

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """Each row's values in the statement's order, converted for the driver."""
        # The values come out of each row in one C call; only the columns that need it
        # are converted. Rows of a batch often share values (the same time, the same
        # contact): each converter remembers its last input, so a repeated one costs one
        # identity test.
        take = itemgetter(*self.keys) if len(self.keys) > 1 else _single(self.keys[0])
        converting = [
            (position, _remembering(convert))
            for position, convert in enumerate(self.converters)
            if convert is not None
        ]
        makers = [make for _, make in self.defaults]
        values: list[tuple[Any, ...]] = []
        append = values.append
        for row in rows:
            value = list(take(row))
            for position, convert in converting:
                value[position] = convert(value[position])
            if makers:
                value += [make() for make in makers]
            append(tuple(value))
        return values


def _single(key: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    return lambda row: (row[key],)


def _remembering(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    last_in: list[Any] = [object()]
    last_out: list[Any] = [None]

    def remembered(value: Any) -> Any:
        if value is last_in[0]:
            return last_out[0]
        last_in[0] = value
        last_out[0] = convert(value)
        return last_out[0]

    return remembered


@lru_cache(maxsize=256)
def _insert_plan(
    dialect: Dialect, table: Table, keys: tuple[str, ...], ignore_conflicts: bool
) -> _Plan:
    defaulted = [
        column for column in table.columns if column.name not in keys and column.default is not None
    ]
    names = [*keys, *(column.name for column in defaulted)]
    quote = dialect.identifier_preparer.quote
    marks = ", ".join(_placeholder(dialect, table.c[name]) for name in names)
    sql = f"INSERT INTO {quote(table.name)} ({', '.join(quote(n) for n in names)}) VALUES ({marks})"
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    defaults = []
    for index, column in enumerate(defaulted, start=len(keys)):
        default = column.default
        assert isinstance(default, ColumnDefault)
        convert = _converter(dialect, column)
        defaults.append((index, _default_maker(default, convert)))
    return _Plan(
        sql,
        keys,
        tuple(_converter(dialect, table.c[name]) for name in keys),
        tuple(defaults),
    )


@lru_cache(maxsize=256)
def _update_plan(dialect: Dialect, table: Table, keys: tuple[str, ...]) -> _Plan:
    primary = [c.name for c in table.primary_key.columns]
    changed = [name for name in keys if name not in primary]
    quote = dialect.identifier_preparer.quote
    assignments = ", ".join(
        f"{quote(name)} = {_placeholder(dialect, table.c[name])}" for name in changed
    )
    condition = " AND ".join(
        f"{quote(name)} = {_placeholder(dialect, table.c[name])}" for name in primary
    )
    ordered = (*changed, *primary)
    return _Plan(
        f"UPDATE {quote(table.name)} SET {assignments} WHERE {condition}",
        ordered,
        tuple(_converter(dialect, table.c[name]) for name in ordered),
    )


def _placeholder(dialect: Dialect, column: Column[Any]) -> str:
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    if dialect.name == "postgresql" and _is_json(dialect, column):
        return f"CAST({mark} AS JSONB)"
    return mark


def _is_json(dialect: Dialect, column: Column[Any]) -> bool:
    return isinstance(column.type.dialect_impl(dialect), sqltypes.JSON)


def _converter(dialect: Dialect, column: Column[Any]) -> Callable[[Any], Any] | None:
    if _is_json(dialect, column):
        return _json_text
    processor = column.type.dialect_impl(dialect).bind_processor(dialect)
    return processor


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value).decode()


def _default_maker(
    default: ColumnDefault, convert: Callable[[Any], Any] | None
) -> Callable[[], Any]:
    if default.is_callable:
        produce = default.arg

        def make() -> Any:
            value = produce(None)
            return value if convert is None else convert(value)

        return make
    constant = default.arg if convert is None else convert(default.arg)
    return lambda: constant
