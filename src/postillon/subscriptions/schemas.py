"""The admin API's topic documents."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TopicIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=100)
    name: str = Field(min_length=1, max_length=200)
    description: str | None = None
    # Where it appears on the preference page; after the others when left out.
    position: int | None = None


class TopicPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = None
    position: int | None = None


class TopicOut(BaseModel):
    key: str
    name: str
    description: str | None
    position: int
    created_at: datetime
    updated_at: datetime
