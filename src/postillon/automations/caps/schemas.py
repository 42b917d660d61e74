"""The shapes of the frequency caps API (pydantic). Semantics are checked in the service."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, StrictInt


class FrequencyCapIn(BaseModel):
    """A channel's caps; null (or left out) removes that cap, both null the channel's."""

    model_config = ConfigDict(extra="forbid")

    per_day: StrictInt | None = Field(
        default=None, description="marketing messages per contact and local day"
    )
    per_week: StrictInt | None = Field(
        default=None, description="marketing messages per contact and local week (Monday first)"
    )


class FrequencyCapOut(BaseModel):
    channel: str
    per_day: int | None
    per_week: int | None
    updated_at: datetime | None = Field(description="null when the channel has no caps")
