"""HTTP route to run a rule by hand: `POST /api/automations/{key}/run`."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from postillon.automations.manual import Audience, run_rule
from postillon.web.dependencies import RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["automations"], dependencies=[Depends(require_admin)])


class RuleRunIn(BaseModel):
    """Exactly one of the three."""

    segment: str | None = Field(default=None, description="a segment's key: its members")
    import_id: uuid.UUID | None = Field(
        default=None, description="an import: the contacts it created or updated"
    )
    contact_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)


class RuleRunOut(BaseModel):
    rule: str
    contacts: int = Field(description="contacts the rule was run for")
    fired: int = Field(description="contacts it fired for (conditions, once, cooldown held)")


@router.post("/automations/{key}/run")
def run_rule_by_hand(
    key: str, data: RuleRunIn, runtime: RuntimeDep, session: WriteSession
) -> RuleRunOut:
    """Run a published rule now for a segment's members, an import's contacts or listed
    contacts: its conditions are checked, its trigger is not; the history records each."""
    run = run_rule(
        session,
        definitions=runtime.definitions.load(session),
        rules=runtime.rules,
        key=key,
        audience=Audience(
            segment=data.segment, import_id=data.import_id, contact_ids=tuple(data.contact_ids)
        ),
        now=runtime.clock.now(),
    )
    return RuleRunOut(rule=run.rule, contacts=run.contacts, fired=run.fired)
