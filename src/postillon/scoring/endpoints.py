"""HTTP routes for lead scoring. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from postillon.scoring.schemas import (
    ContactScoreOut,
    ScoreAdjustIn,
    ScoreChangePage,
    ScoreModelIn,
    ScoreModelOut,
    ScoreModelPatch,
    ScoringRuleIn,
    ScoringRuleOut,
    ScoringRulePatch,
)
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["scoring"], dependencies=[Depends(require_admin)])

PageLimit = Annotated[int, Query(ge=1, le=500, description="items per page")]


@router.get("/scoring/models")
def list_models(runtime: RuntimeDep, session: ReadSession) -> list[ScoreModelOut]:
    """The score models; `main` is the contact's own `score`."""
    return runtime.scoring.list_models(session)


@router.post("/scoring/models", status_code=status.HTTP_201_CREATED)
def create_model(data: ScoreModelIn, runtime: RuntimeDep, session: WriteSession) -> ScoreModelOut:
    """A named score beside the main one; 409 if its key is taken."""
    return runtime.scoring.create_model(session, data)


@router.get("/scoring/models/{key}")
def get_model(key: str, runtime: RuntimeDep, session: ReadSession) -> ScoreModelOut:
    return runtime.scoring.get_model(session, key)


@router.patch("/scoring/models/{key}")
def update_model(
    key: str, data: ScoreModelPatch, runtime: RuntimeDep, session: WriteSession
) -> ScoreModelOut:
    """Change name, description, decay or thresholds; the key stays."""
    return runtime.scoring.update_model(session, key, data)


@router.delete("/scoring/models/{key}", status_code=status.HTTP_204_NO_CONTENT)
def delete_model(key: str, runtime: RuntimeDep, session: WriteSession) -> None:
    """Delete a model with its rules, values and history; `main` cannot be deleted (409)."""
    runtime.scoring.delete_model(session, key)


@router.get("/scoring/rules")
def list_rules(
    runtime: RuntimeDep,
    session: ReadSession,
    event: str | None = None,
    model: str | None = None,
) -> list[ScoringRuleOut]:
    return runtime.scoring.list_rules(session, event=event, model=model)


@router.post("/scoring/rules", status_code=status.HTTP_201_CREATED)
def create_rule(data: ScoringRuleIn, runtime: RuntimeDep, session: WriteSession) -> ScoringRuleOut:
    """An event (with a property filter) that gives or takes points; applies to events
    stored from now on."""
    return runtime.scoring.create_rule(session, data)


@router.get("/scoring/rules/{rule_id}")
def get_rule(rule_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession) -> ScoringRuleOut:
    return runtime.scoring.get_rule(session, rule_id)


@router.patch("/scoring/rules/{rule_id}")
def update_rule(
    rule_id: uuid.UUID, data: ScoringRulePatch, runtime: RuntimeDep, session: WriteSession
) -> ScoringRuleOut:
    return runtime.scoring.update_rule(session, rule_id, data)


@router.delete("/scoring/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_rule(rule_id: uuid.UUID, runtime: RuntimeDep, session: WriteSession) -> None:
    """Delete a rule; the history it wrote stays."""
    runtime.scoring.delete_rule(session, rule_id)


@router.get("/contacts/{contact_id}/scores")
def contact_scores(
    contact_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession
) -> list[ContactScoreOut]:
    """The contact's value in every score model."""
    return runtime.scoring.scores_of(session, contact_id)


@router.post("/contacts/{contact_id}/scores")
def adjust_score(
    contact_id: uuid.UUID, data: ScoreAdjustIn, runtime: RuntimeDep, session: WriteSession
) -> list[ContactScoreOut]:
    """Add (or take) points in one model by hand; kept in the history with the reason."""
    runtime.contacts.require(session, contact_id)
    runtime.scoring.adjust(session, [contact_id], data.model, data.delta, note=data.reason)
    return runtime.scoring.scores_of(session, contact_id)


@router.get("/contacts/{contact_id}/score-history")
def score_history(
    contact_id: uuid.UUID,
    runtime: RuntimeDep,
    session: ReadSession,
    model: str | None = None,
    cursor: str | None = None,
    limit: PageLimit = 50,
) -> ScoreChangePage:
    """The contact's score changes, newest first; follow `next_cursor` for the next page."""
    page = runtime.scoring.history(session, contact_id, model=model, cursor=cursor, limit=limit)
    return ScoreChangePage(items=page.items, next_cursor=page.next_cursor)
