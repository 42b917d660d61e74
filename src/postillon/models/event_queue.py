from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import BigIntId, JSONDocument, UTCDateTime
from postillon.models.base import Base


class EventQueueItem(Base):
    """A batch of stored events waiting for one consumer (one row per consumer and batch).

    `event_ranges` lists inclusive `[first_id, last_id]` ranges of `events.id`: a batch of
    2,500 events is usually one range, so handing events on costs one small row.
    """

    __tablename__ = "event_queue"
    __table_args__ = (Index("ix_event_queue_due", "consumer", "available_at", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(50))
    event_ranges: Mapped[list[list[int]]] = mapped_column(JSONDocument)
    event_count: Mapped[int] = mapped_column(Integer)
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    available_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class IdSequence(Base):
    """Id counters for SQLite, which has no sequences (PostgreSQL uses its own)."""

    __tablename__ = "id_sequences"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    last_value: Mapped[int] = mapped_column(BigInteger)
