"""The segments API's shapes."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class SegmentIn(BaseModel):
    key: str = Field(
        description='what filters call it by ({"in_segment": KEY}): letters, digits, - and _',
        max_length=100,
    )
    name: str = Field(max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    filter: dict[str, Any] = Field(description="a filter document (see the filter language)")


class SegmentPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=5000)
    filter: dict[str, Any] | None = None


class SegmentOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    filter: dict[str, Any]
    member_count: int
    refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class PreviewIn(BaseModel):
    filter: dict[str, Any]
    sample_size: int = Field(default=10, ge=0, le=100)


class ContactBrief(BaseModel):
    id: uuid.UUID
    email: str | None
    external_id: str | None
    first_name: str | None
    last_name: str | None


class PreviewOut(BaseModel):
    count: int
    sample: list[ContactBrief]


class RefreshOut(BaseModel):
    segment: str
    entered: int
    exited: int
    member_count: int


class MemberOut(ContactBrief):
    entered_at: datetime


class MemberPage(BaseModel):
    items: list[MemberOut]
    next_cursor: str | None


class MembershipOut(BaseModel):
    segment: str
    segment_name: str
    entered_at: datetime
    exited_at: datetime | None
