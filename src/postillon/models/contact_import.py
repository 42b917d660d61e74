from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import JSONDocument, UTCDateTime, Uuid
from postillon.models.base import Base


class ContactImport(Base):
    """One run of a CSV import: its options, counts and the first bad rows."""

    __tablename__ = "contact_imports"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    filename: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))
    dry_run: Mapped[bool]
    options: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    rows_total: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    unchanged_count: Mapped[int] = mapped_column(Integer, default=0)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, default=list)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ContactImportTouch(Base):
    """Which contacts an import created or changed, for running automations on them later."""

    __tablename__ = "contact_import_touches"
    __table_args__ = (Index("ix_contact_import_touches_contact", "contact_id"),)

    import_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contact_imports.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True
    )
    action: Mapped[str] = mapped_column(String(10))
