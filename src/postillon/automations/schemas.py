"""The automations API's shapes: documents, versions, publishing, and what `explain`
shows of a contact."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Kind = Literal["rule", "journey"]
StatusName = Literal["draft", "active", "paused", "archived"]


class AutomationSummary(BaseModel):
    key: str
    kind: Kind
    name: str
    status: StatusName
    published_version: int | None
    updated_at: datetime
    active_runs: int | None = Field(
        description="journeys: runs that have not ended (active, waiting or queued)"
    )


class AutomationPage(BaseModel):
    items: list[AutomationSummary]
    next_cursor: str | None


class AutomationOut(BaseModel):
    id: uuid.UUID
    key: str
    kind: Kind
    name: str
    status: StatusName
    published_version: int | None
    unpublished_changes: bool = Field(
        description="whether the draft differs from the published version (or none is)"
    )
    draft: dict[str, Any] = Field(description="the draft document, as JSON")
    draft_source: str = Field(description="the draft as written (YAML or JSON text)")
    runs: dict[str, int] | None = Field(
        default=None, description="journeys: how many runs are in each state"
    )
    created_at: datetime
    updated_at: datetime
    paused_at: datetime | None


class VersionOut(BaseModel):
    version: int
    published_at: datetime
    migrated_runs: int
    document: dict[str, Any]
    source: str


class PublishIn(BaseModel):
    migrate: bool = Field(
        default=False,
        description="move active and waiting runs of older versions to this one where "
        "their current step still exists",
    )


class PublishOut(BaseModel):
    key: str
    kind: Kind
    version: int
    new_version: bool = Field(description="false when the draft was published already")
    status: StatusName
    migrated_runs: int
    message: str


class ArchiveIn(BaseModel):
    force: bool = Field(
        default=False, description="end the journey's runs (as exited) instead of refusing"
    )


class ArchiveOut(BaseModel):
    key: str
    status: StatusName
    ended_runs: int
    message: str


class ValidOut(BaseModel):
    valid: bool
    kind: Kind
    key: str


class HistoryEntryOut(BaseModel):
    id: uuid.UUID
    at: datetime
    automation: str = Field(description="the rule's or journey's key")
    automation_name: str
    kind: Kind
    version: int
    run_id: uuid.UUID | None
    step_id: str | None
    outcome: str
    reason: str
    details: dict[str, Any]
    event_id: int | None


class HistoryPage(BaseModel):
    items: list[HistoryEntryOut]
    next_cursor: str | None


class JourneyRunOut(BaseModel):
    id: uuid.UUID
    journey: str
    journey_name: str
    version: int
    state: str
    step_id: str | None
    due_at: datetime | None
    wait_event: str | None
    source: str
    entered_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    steps_done: int
    history: list[HistoryEntryOut] = Field(description="what happened in this run, in order")


class ContactJourneysOut(BaseModel):
    contact_id: uuid.UUID
    runs: list[JourneyRunOut] = Field(description="the contact's runs, oldest first")
    journey_decisions: list[HistoryEntryOut] = Field(
        description="journey decisions that started no run (entries refused), in order"
    )


class ExplainOut(ContactJourneysOut):
    rule_history: list[HistoryEntryOut] = Field(
        description="rule firings and the triggers that did not fire, in order"
    )
