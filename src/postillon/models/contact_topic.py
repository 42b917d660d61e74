from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from postillon.models.base import Base


class ContactTopic(Base):
    """A contact's choice about one email topic. No row means subscribed, as long as the
    contact's email consent is (the compliance feature owns the writes)."""

    __tablename__ = "contact_topics"

    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    topic: Mapped[str] = mapped_column(String(100), primary_key=True)
    # "subscribed" or "unsubscribed".
    status: Mapped[str] = mapped_column(String(20))
