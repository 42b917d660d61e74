from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import BigIntId, UTCDateTime, Uuid
from postillon.models.base import Base


class LifecycleStage(Base):
    """One stage of the lifecycle pipeline; `position` orders them (0 first)."""

    __tablename__ = "lifecycle_stages"

    key: Mapped[str] = mapped_column(String(50), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer, unique=True)


class StageChange(Base):
    """A contact's move from one lifecycle stage to another: the stage history."""

    __tablename__ = "contact_stage_changes"
    __table_args__ = (Index("ix_contact_stage_changes_contact", "contact_id", "changed_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE")
    )
    from_stage: Mapped[str | None] = mapped_column(String(50))
    to_stage: Mapped[str | None] = mapped_column(String(50))
    source: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
