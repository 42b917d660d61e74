"""Helpers shared by the feature repositories."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
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
from sqlalchemy.exc import DBAPIError
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
    convert = _copy_converters(connection.dialect, table, keys)
    pairs = tuple(zip(keys, convert, strict=True))
    _copy(
        connection,
        table,
        keys,
        ([row[k] if c is None else c(row[k]) for k, c in pairs] for row in rows),
    )


@dataclass(frozen=True)
class PreparedRows:
    """Rows for one table, converted for the driver before the transaction that inserts
    them, so that the conversion happens outside a write lock. The `late` columns (an id
    allocated in the transaction, say) get their values when the rows are inserted."""

    table: Table
    late: tuple[str, ...]
    early: tuple[str, ...]
    values: list[tuple[Any, ...]]  # per row, the early columns' converted values
    late_converters: tuple[Callable[[Any], Any] | None, ...]
    copy: bool  # PostgreSQL's COPY rather than an executemany INSERT
    sql: str = ""


def prepare_rows(
    dialect: Dialect, model: type[Base], rows: Sequence[dict[str, Any]], *, late: tuple[str, ...]
) -> PreparedRows:
    """`rows` (every column but the `late` ones, the same in each row) converted now."""
    table = table_of(model)
    early = tuple(rows[0]) if rows else ()
    keys = (*late, *early)
    if not rows:
        return PreparedRows(table, late, early, [], (), copy=False)
    if dialect.name == "postgresql":
        converters = _copy_converters(dialect, table, keys)
        early_plan = _Plan("", early, converters[len(late) :])
        return PreparedRows(
            table, late, early, early_plan.parameters(rows), converters[: len(late)], copy=True
        )
    plan = _insert_plan(dialect, table, keys, False)
    # The columns the rows leave out get their defaults among the early values.
    early_plan = _Plan("", early, plan.converters[len(late) :], plan.defaults)
    return PreparedRows(
        table,
        late,
        early,
        early_plan.parameters(rows),
        plan.converters[: len(late)],
        copy=False,
        sql=plan.sql,
    )


def insert_prepared(
    session: Session, prepared: PreparedRows, late: Sequence[tuple[int, tuple[Any, ...]]]
) -> None:
    """Insert the prepared rows at the given positions, each with its `late` values (in
    the order of `prepared.late`): `(position, late values)` pairs."""
    if not late:
        return
    converting = [
        (position, _remembering(convert))
        for position, convert in enumerate(prepared.late_converters)
        if convert is not None
    ]
    values = prepared.values

    def row_of(position: int, late_values: tuple[Any, ...]) -> tuple[Any, ...]:
        if converting:
            converted = list(late_values)
            for index, convert in converting:
                converted[index] = convert(converted[index])
            late_values = tuple(converted)
        return late_values + values[position]

    connection = session.connection()
    rows = [row_of(position, late_values) for position, late_values in late]
    if prepared.copy:
        _copy(connection, prepared.table, (*prepared.late, *prepared.early), rows)
    else:
        connection.exec_driver_sql(prepared.sql, rows)


def _copy_converters(
    dialect: Dialect, table: Table, keys: tuple[str, ...]
) -> tuple[Callable[[Any], Any] | None, ...]:
    """What COPY needs converted by hand: JSON to text (psycopg adapts the rest)."""
    return tuple(_json_text if _is_json(dialect, table.c[key]) else None for key in keys)


def _copy(
    connection: Any, table: Table, keys: tuple[str, ...], rows: Iterable[Sequence[Any]]
) -> None:
    quote = connection.dialect.identifier_preparer.quote
    statement = f"COPY {quote(table.name)} ({', '.join(quote(k) for k in keys)}) FROM STDIN"
    driver = connection.connection.dbapi_connection
    assert driver is not None
    dbapi = connection.dialect.loaded_dbapi
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except dbapi.Error as error:  # raised as SQLAlchemy raises the driver's errors
        raise DBAPIError.instance(statement, None, error, dbapi.Error) from error


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
