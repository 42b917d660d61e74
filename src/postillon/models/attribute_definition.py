from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import UTCDateTime
from postillon.models.base import Base


class AttributeDefinition(Base):
    """The type of a custom attribute, fixed when it is first seen or declared."""

    __tablename__ = "attribute_definitions"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    type: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
