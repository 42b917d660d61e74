from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from postillon.kit.types import UTCDateTime, Uuid
from postillon.models.base import Base


class EmailTemplate(Base):
    """An email as written: subject, preheader and body (MJML or HTML) with Jinja
    placeholders, checked when saved. `compiled_html` is the body after MJML, still with
    its placeholders, so sending renders Jinja only."""

    __tablename__ = "email_templates"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    # What rules, journeys and the CLI call it by; letters, digits, - and _.
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # "mjml" or "html".
    format: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(Text)
    preheader: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    # A hand-written plain-text part; generated from the HTML when empty.
    text_body: Mapped[str | None] = mapped_column(Text)
    compiled_html: Mapped[str] = mapped_column(Text)
    # The sender and reply address; the installation's `email_from` when empty.
    from_address: Mapped[str | None] = mapped_column(String(320))
    reply_to: Mapped[str | None] = mapped_column(String(320))
    # "marketing" (needs email consent and the topic) or "transactional".
    kind: Mapped[str] = mapped_column(String(20))
    # The preference topic marketing mail of this template belongs to.
    topic: Mapped[str | None] = mapped_column(String(100))
    # Raised on every change, so a message records which text it was rendered from.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
