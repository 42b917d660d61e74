from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import UTCDateTime, Uuid
from postillon.models.base import Base


class Visitor(Base):
    """A browser or device known by its anonymous id (a first-party cookie).

    Unlinked visitors live only as long as their events (the anonymous retention window);
    once linked to a contact, everything the visitor does is attributed to that contact.
    """

    __tablename__ = "visitors"

    anonymous_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    contact_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE"), index=True
    )
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
