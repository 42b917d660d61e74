from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import BigIntId, JSONDocument, UTCDateTime
from postillon.models.base import Base


class Event(Base):
    """Something a contact did, or something that happened to them: their timeline."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_contact_timeline", "contact_id", "occurred_at", "id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    anonymous_id: Mapped[str | None] = mapped_column(String(200), index=True)
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    source: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
