from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import UTCDateTime
from postillon.models.base import Base


class WorkerSchedule(Base):
    """A periodic worker job (the traits refresh …): when it is due next. A worker takes
    a due job by moving `due_at` on, so that of many workers one runs it."""

    __tablename__ = "worker_schedules"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
