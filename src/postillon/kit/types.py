"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer
from sqlalchemy import Uuid as _SqlAlchemyUuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from postillon.clock import ensure_utc
from postillon.kit.ids import uuid_from_hex

# JSONB on PostgreSQL (indexable, compact); JSON text on SQLite.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware UTC datetimes, on every dialect."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = ensure_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # The text SQLAlchemy's SQLite DATETIME writes (`YYYY-MM-DD HH:MM:SS.ffffff`), made
        # by isoformat in a quarter of the time: bulk inserts convert millions of these.
        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is not UTC:
                value = ensure_utc(value)
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")

        return process

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        # The stored text parsed by fromisoformat (C) instead of SQLAlchemy's regular
        # expression: the engine reads thousands of runs and messages a second.
        def process(value: Any) -> datetime | None:
            if value is None:
                return None
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=UTC)
            return parsed.astimezone(UTC)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return ensure_utc(value)


class Uuid(_SqlAlchemyUuid[uuid.UUID]):
    """SQLAlchemy's `Uuid` (native on PostgreSQL, 32 hex characters on SQLite), read
    back on SQLite without `uuid.UUID`'s parsing: every id of every row read passes
    here, a hundred thousand a second in the engine and the send path."""

    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        processor: Callable[[Any], Any] | None = super().result_processor(  # type: ignore[no-untyped-call]
            dialect, coltype
        )
        if processor is None or not self.as_uuid:
            return processor

        def process(value: Any) -> uuid.UUID | None:
            if isinstance(value, str):
                return uuid_from_hex(value)  # which reads any other form as uuid.UUID does
            return processor(value)  # type: ignore[no-any-return]

        return process
