"""The messages API's input and output shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SendIn(BaseModel):
    """A template to send to contacts, named by id or by email address."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(description="the template's key")
    contact_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    emails: list[str] = Field(default_factory=list, max_length=1000)
    context: dict[str, Any] = Field(
        default_factory=dict, description="data for the template beside the contact (`event`)"
    )
    dedupe_key: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="the same key for the same contact never sends a second message",
    )


class QueuedMessageOut(BaseModel):
    contact_id: uuid.UUID
    message_id: uuid.UUID
    # True when the dedupe key had been used already: this is the earlier message.
    duplicate: bool


class SendOut(BaseModel):
    messages: list[QueuedMessageOut]
    kind: str


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    contact_id: uuid.UUID
    channel: str
    kind: str
    topic: str | None
    template_id: uuid.UUID | None
    template_version: int | None
    broadcast_id: uuid.UUID | None
    variant: str | None
    source: str
    to_address: str
    subject: str | None
    state: str
    attempts: int
    last_error: str | None
    queued_at: datetime
    due_at: datetime
    claimed_at: datetime | None
    sent_at: datetime | None
    smtp_message_id: str | None
    bounced_at: datetime | None
    bounce_kind: str | None
    complained_at: datetime | None
    opened_at: datetime | None
    clicked_at: datetime | None
    unsubscribed_at: datetime | None


class MessagePage(BaseModel):
    items: list[MessageOut]
    next_cursor: str | None


class MessageStatsOut(BaseModel):
    """How many messages are in each state; `unknown` ones need a look (see
    `last_error`): they may or may not have gone out and are never re-sent."""

    states: dict[str, int]
