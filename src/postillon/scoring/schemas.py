"""The shapes of score models, rules and scores on the API (pydantic). Semantics (keys,
filters, limits, references) are checked in `service.py`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from postillon.errors import FieldProblem, InvalidInput

Frequency = Literal["once", "repeatable"]


class ScoreModelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(description="what rules and filters call it by: a-z, 0-9, - and _")
    name: str
    description: str | None = None
    decay_percent: int | None = Field(
        default=None, description="the score loses this % after decay_after_days without activity"
    )
    decay_after_days: int | None = None
    thresholds: list[int] = Field(
        default_factory=list, description="crossing one upwards emits `score_reached`"
    )


class ScoreModelPatch(BaseModel):
    """The fields to change; `null` clears description and decay."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    decay_percent: int | None = None
    decay_after_days: int | None = None
    thresholds: list[int] | None = None


class ScoreModelOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    description: str | None
    decay_percent: int | None
    decay_after_days: int | None
    thresholds: list[int]
    created_at: datetime
    updated_at: datetime


class ScoringRuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    model: str = Field(default="main", description="the key of the score model")
    event: str = Field(description="the event name, e.g. `Order Completed` or `score_reached`")
    where: dict[str, Any] | None = Field(
        default=None, description="a property filter on the event, e.g. "
        '{"property": "category", "op": "=", "value": "shoes"}'
    )  # fmt: skip
    points: int = Field(description="added (or, if negative, taken) per matching event")
    frequency: Frequency = "repeatable"
    daily_limit: int | None = Field(
        default=None, description="the most points this rule gives one contact per UTC day"
    )
    enabled: bool = True


class ScoringRulePatch(BaseModel):
    """The fields to change; `null` clears `where` and `daily_limit`."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    model: str | None = None
    event: str | None = None
    where: dict[str, Any] | None = None
    points: int | None = None
    frequency: Frequency | None = None
    daily_limit: int | None = None
    enabled: bool | None = None


class ScoringRuleOut(BaseModel):
    id: uuid.UUID
    name: str
    model: str
    event: str
    where: dict[str, Any] | None
    points: int
    frequency: Frequency
    daily_limit: int | None
    enabled: bool
    created_at: datetime
    updated_at: datetime


class ScoreAdjustIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = "main"
    delta: int = Field(description="points to add (negative: to take)")
    reason: str | None = Field(default=None, max_length=200, description="kept in the history")


class ContactScoreOut(BaseModel):
    model: str
    name: str
    score: int


class ScoreChangeOut(BaseModel):
    id: int
    model: str
    delta: int
    score: int = Field(description="the score after this change")
    reason: str = Field(description="rule, decay, api, merge or automation")
    note: str | None
    rule_id: uuid.UUID | None
    event_id: int | None
    changed_at: datetime


class ScoreChangePage(BaseModel):
    items: list[ScoreChangeOut]
    next_cursor: str | None


def rule_from_document(doc: Any) -> ScoringRuleIn:
    """A rule read from a file (YAML or JSON), or InvalidInput naming each bad field."""
    try:
        return ScoringRuleIn.model_validate(doc)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in item["loc"]
            ).lstrip(".")
            message = "is required" if item["type"] == "missing" else item["msg"]
            problems.append(FieldProblem(location or "rule", message))
        raise InvalidInput.of(problems) from None
