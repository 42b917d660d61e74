"""The shapes of the traits API (pydantic)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TraitsOut(BaseModel):
    """A contact's computed traits; all empty (`computed_at` null) until first computed."""

    model_config = ConfigDict(from_attributes=True)

    contact_id: uuid.UUID
    purchase_count: int | None = Field(description="purchases (`purchase_event` events)")
    clv: float | None = Field(description="the sum of the revenue of all purchases")
    average_order_value: float | None
    purchase_frequency: float | None = Field(
        description="purchases per 30 days since the first one (over at least 30 days)"
    )
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    rfm_recency: int | None = Field(description="1 (worst) to 5 (best) among purchasers")
    rfm_frequency: int | None
    rfm_monetary: int | None
    rfm_cell: str | None = Field(description="champions, loyal, … lost; see the docs")
    engagement: str | None = Field(description="active (30 days), moderate (90), passive")
    computed_at: datetime | None = Field(description="when these values were last changed")


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    contact_ids: list[uuid.UUID] | None = Field(
        default=None, description="only these contacts; all when left out"
    )


class RefreshOut(BaseModel):
    changed: int = Field(description="contacts whose traits changed")
