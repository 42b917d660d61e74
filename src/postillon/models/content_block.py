from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import JSONDocument, UTCDateTime, Uuid
from postillon.models.base import Base


class ContentBlock(Base):
    """Conditional content: a pool of variants (offers …) a template shows by recipient.

    `variants` is a list of `{key, priority, filter, content}`: `filter` a document in the
    filter language (null: everyone), `content` HTML with Jinja placeholders. A template's
    `content("key")` shows the matching variant of highest priority.
    """

    __tablename__ = "content_blocks"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument, default=list)
    # Raised on every change, so compiled variants are cached per version.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
