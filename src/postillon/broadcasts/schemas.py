"""The broadcasts API's shapes (and the YAML files of `postillon broadcasts create`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from postillon.messages.stats import FiguresOut

_NAME = r"^[A-Za-z0-9_-]{1,50}$"


def _within_reason(moment: datetime) -> datetime:
    # Far years cannot be moved between zones (year 1 at +05:00 is before datetime.min).
    if not 2000 <= moment.year <= 2999:
        raise ValueError("must be a time between the years 2000 and 2999")
    return moment


Moment = Annotated[datetime, AfterValidator(_within_reason)]


class AudienceIn(BaseModel):
    """Exactly one of: a segment's current members, a topic's subscribers, or everyone
    (always among the contacts whose email consent is subscribed)."""

    model_config = ConfigDict(extra="forbid")

    segment: str | None = Field(default=None, max_length=100)
    topic: str | None = Field(default=None, max_length=100)
    everyone: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> AudienceIn:
        chosen = [self.segment is not None, self.topic is not None, self.everyone]
        if sum(chosen) != 1:
            raise ValueError("give exactly one of segment, topic or everyone: true")
        return self


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME, description='what messages.variant carries: "A", "B" …')
    template: str = Field(max_length=100, description="the template's key")


class AbTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    share_percent: int = Field(
        ge=1, le=49, description="the share of the audience each variant is tested on"
    )
    duration_minutes: int = Field(
        ge=1,
        le=30 * 24 * 60,
        description="how long after the last test message is due the winner is picked",
    )
    metric: Literal["opens", "clicks"] = "opens"


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    send_at: datetime | None = Field(default=None, description="a moment (without an offset: UTC)")
    local_send_time: datetime | None = Field(
        default=None,
        description="a wall-clock time (no offset) in each recipient's time zone",
    )
    timezone: str | None = Field(
        default=None, max_length=64, description="for contacts without a time zone"
    )

    @model_validator(mode="after")
    def _one_time(self) -> ScheduleIn:
        if (self.send_at is None) == (self.local_send_time is None):
            raise ValueError("give exactly one of send_at or local_send_time")
        if self.local_send_time is not None and self.local_send_time.tzinfo is not None:
            raise ValueError("local_send_time is a wall-clock time: leave the offset out")
        return self


class BroadcastIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(max_length=100, description="letters, digits, - and _")
    name: str = Field(max_length=200)
    template: str | None = Field(default=None, max_length=100, description="one template")
    variants: list[VariantIn] | None = Field(
        default=None, max_length=10, description="or variants (an A/B test needs two or more)"
    )
    audience: AudienceIn
    ab_test: AbTestIn | None = None
    send_at: Moment | None = None
    local_send_time: Moment | None = None
    timezone: str = Field(default="UTC", max_length=64)
    rate_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _consistent(self) -> BroadcastIn:
        if (self.template is None) == (self.variants is None):
            raise ValueError("give either template or variants")
        if self.send_at is not None and self.local_send_time is not None:
            raise ValueError("give send_at or local_send_time, not both")
        if self.local_send_time is not None and self.local_send_time.tzinfo is not None:
            raise ValueError("local_send_time is a wall-clock time: leave the offset out")
        return self


class VariantOut(BaseModel):
    name: str
    template: str


class BroadcastOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    state: str
    audience: dict[str, Any]
    variants: list[VariantOut]
    ab_test: AbTestIn | None
    send_at: datetime | None
    local_send_time: str | None
    timezone: str
    start_at: datetime | None
    rate_per_minute: int | None
    test_ends_at: datetime | None
    winner_variant: str | None
    test_results: dict[str, Any] | None
    recipient_count: int
    last_error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class BroadcastStatus(BroadcastOut):
    # Messages of the broadcast by state (queued, sending, sent, unknown …).
    counts: dict[str, int]
    # Messages no longer waiting or in flight, of all made so far.
    done: int
    # In flight when a worker died: may or may not have gone out, never re-sent.
    unknown: int


class BroadcastStats(BaseModel):
    broadcast: str
    since: datetime | None
    until: datetime | None
    totals: FiguresOut
    variants: dict[str, FiguresOut]
