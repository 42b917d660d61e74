from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import UTCDateTime
from postillon.models.base import Base


class Suppression(Base):
    """An address Postillon must not take in or write to, kept only as a keyed hash."""

    __tablename__ = "suppressions"

    address_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
