from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import BigIntId, JSONDocument, UTCDateTime, Uuid
from postillon.models.base import Base


class Event(Base):
    """Something a contact did, or something that happened to them: their timeline.

    `contact_id` is empty while an event belongs to an anonymous visitor only; such events
    are attributed when the visitor identifies, or purged after the retention window.
    Ids are allocated before the insert (`events/repository.allocate_ids`), so that the
    queue can name the events it hands on.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_contact_timeline", "contact_id", "occurred_at", "id"),
        # Behaviour filters over everyone ("viewed X three times in 30 days"): the events
        # of one name in a time window, and whose they are, without reading the rows.
        Index("ix_events_name_time", "name", "occurred_at", "contact_id"),
        # Events nobody has been attributed yet (only those: most events have a contact):
        # what the purge scans by age, and what a visitor's identification claims.
        Index(
            "ix_events_unattributed",
            "received_at",
            sqlite_where=text("contact_id IS NULL"),
            postgresql_where=text("contact_id IS NULL"),
        ),
        Index(
            "ix_events_unattributed_visitor",
            "anonymous_id",
            "received_at",
            sqlite_where=text("contact_id IS NULL"),
            postgresql_where=text("contact_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    anonymous_id: Mapped[str | None] = mapped_column(String(200))
    user_id: Mapped[str | None] = mapped_column(String(255))
    message_id: Mapped[str] = mapped_column(String(200), unique=True)
    type: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    context: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    integrations: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    source: Mapped[str] = mapped_column(String(50))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
