"""The shapes of contacts on the API (pydantic). Semantics are checked in `changes.py`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from postillon.contacts.fields import Channel, ConsentStatus


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: ConsentStatus
    source: str | None = Field(default=None, max_length=200)


class ContactIn(BaseModel):
    """A contact, or the fields to change on one. Fields left out are left alone;
    `null` clears a field or an attribute; `tags` are added (remove them with DELETE)."""

    model_config = ConfigDict(extra="forbid")

    external_id: str | None = Field(default=None, max_length=255)
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    consent: dict[Channel, ConsentIn | ConsentStatus] = Field(default_factory=dict)
    score: int | None = None
    lifecycle_stage: str | None = None
    owner: str | None = Field(default=None, description="email of the responsible user")
    timezone: str | None = None
    locale: str | None = None


class ContactBatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contacts: list[ContactIn]


class ConsentOut(BaseModel):
    status: ConsentStatus
    changed_at: datetime
    source: str | None


class ContactOut(BaseModel):
    id: uuid.UUID
    external_id: str | None
    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    attributes: dict[str, Any]
    tags: list[str]
    consent: dict[Channel, ConsentOut]
    score: int
    lifecycle_stage: str | None
    owner: str | None
    timezone: str | None
    locale: str | None
    state: Literal["identified", "monitored"] = Field(
        description="identified: known by email or external id; monitored: their browsing "
        "(tracking cookie, tracked clicks) is attributed to them too"
    )
    monitored_at: datetime | None
    last_seen_at: datetime | None
    last_seen: dict[str, Any] | None = Field(
        description="device, os, browser and country of the last tracked activity"
    )
    created_at: datetime
    updated_at: datetime


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class UpsertResultOut(BaseModel):
    contact: ContactOut
    action: Literal["created", "updated", "unchanged"]


class BatchItemOut(BaseModel):
    index: int
    id: uuid.UUID
    action: Literal["created", "updated", "unchanged"]


class BatchResultOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    items: list[BatchItemOut]


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(min_length=1)


class MergeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_id: uuid.UUID = Field(description="the contact to absorb into this one")
    reason: str = Field(default="merged through the API", max_length=200)


class EventOut(BaseModel):
    id: int
    type: str
    name: str
    properties: dict[str, Any]
    context: dict[str, Any]
    source: str
    occurred_at: datetime
    received_at: datetime


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


class AttributeDefinitionOut(BaseModel):
    name: str
    type: str
    created_at: datetime
