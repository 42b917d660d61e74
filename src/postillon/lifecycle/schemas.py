"""The shapes of the lifecycle API (pydantic). Semantics are checked in the service."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class StageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="lowercase letters, digits, - and _; what contacts store")
    name: str = Field(description="what people read")


class PipelineIn(BaseModel):
    """The whole pipeline, first stage first."""

    model_config = ConfigDict(extra="forbid")

    stages: list[StageIn]


class StageOut(BaseModel):
    key: str
    name: str
    position: int
    contacts: int = Field(description="how many contacts are in this stage")


class PipelineOut(BaseModel):
    stages: list[StageOut]


class ContactStageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str | None = Field(description="a stage key; null takes the contact out")
    source: str = Field(default="api", min_length=1, max_length=100)


class StageChangeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    contact_id: uuid.UUID
    from_stage: str | None
    to_stage: str | None
    source: str
    changed_at: datetime


class StageHistoryPage(BaseModel):
    items: list[StageChangeOut]
    next_cursor: str | None
