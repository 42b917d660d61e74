"""The shapes of templates and previews on the API (pydantic). Semantics (keys, Jinja,
MJML) are checked in `service.py`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TemplateFormat = Literal["mjml", "html"]
TemplateKind = Literal["marketing", "transactional"]


class TemplateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="what rules, journeys and the CLI call it by: a-z, 0-9, - and _")
    name: str | None = Field(default=None, description="the key when empty")
    format: TemplateFormat = "mjml"
    subject: str
    preheader: str | None = None
    body: str = Field(description="MJML or HTML with Jinja placeholders")
    text_body: str | None = Field(default=None, description="generated from the HTML when empty")
    from_address: str | None = None
    reply_to: str | None = None
    kind: TemplateKind = "marketing"
    topic: str | None = None


class TemplatePatch(BaseModel):
    """The fields to change; the others stay."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    format: TemplateFormat | None = None
    subject: str | None = None
    preheader: str | None = None
    body: str | None = None
    text_body: str | None = None
    from_address: str | None = None
    reply_to: str | None = None
    kind: TemplateKind | None = None
    topic: str | None = None


class TemplateOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    format: str
    subject: str
    preheader: str | None
    body: str
    text_body: str | None
    compiled_html: str
    from_address: str | None
    reply_to: str | None
    kind: str
    topic: str | None
    version: int
    created_at: datetime
    updated_at: datetime


class TemplateSummary(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    format: str
    subject: str
    kind: str
    topic: str | None
    version: int
    updated_at: datetime


class PreviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: uuid.UUID | None = None
    email: str | None = None
    context: dict[str, Any] = Field(
        default_factory=dict, description="what `event` holds: the triggering event's properties"
    )


class PreviewOut(BaseModel):
    subject: str
    preheader: str
    html: str
    text: str
