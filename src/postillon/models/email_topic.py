from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import UTCDateTime, Uuid
from postillon.models.base import Base


class EmailTopic(Base):
    """A kind of marketing mail a contact can leave on its own (newsletter, offers …),
    listed on the preference page in `position` order."""

    __tablename__ = "email_topics"

    # What templates and broadcasts name it by; letters, digits, - and _.
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ContactTopic(Base):
    """A contact's own choice on one topic. No row means subscribed, as long as the
    contact has email consent: topics narrow consent, they never grant it."""

    __tablename__ = "contact_topics"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(
        String(100), ForeignKey("email_topics.key", ondelete="CASCADE"), primary_key=True
    )
    # "subscribed" or "unsubscribed".
    status: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # preferences, unsubscribe-link, one-click, api …
    source: Mapped[str | None] = mapped_column(String(200))
