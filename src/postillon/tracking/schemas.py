"""What the tracking API answers, as OpenAPI documents it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class IngestResponse(BaseModel):
    success: bool
    accepted: int
    duplicates: int
    rejected: list[dict[str, Any]] = []


class VisitorOut(BaseModel):
    anonymous_id: str
    state: str = Field(description="anonymous until linked to a contact, then monitored")
    contact_id: uuid.UUID | None
    first_seen_at: datetime
    last_seen_at: datetime
    linked_at: datetime | None
    expires_at: datetime | None
    held_events: int = Field(
        description="events kept for this visitor while anonymous (none once linked)"
    )
