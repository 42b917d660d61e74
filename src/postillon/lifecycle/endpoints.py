"""HTTP routes for the lifecycle pipeline and contacts' stages. Thin: parse, call the
service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from postillon.contacts.schemas import ContactOut
from postillon.lifecycle.schemas import (
    ContactStageIn,
    PipelineIn,
    PipelineOut,
    StageChangeOut,
    StageHistoryPage,
)
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["lifecycle"], dependencies=[Depends(require_admin)])


@router.get("/lifecycle/stages")
def pipeline(runtime: RuntimeDep, session: ReadSession) -> PipelineOut:
    """The lifecycle pipeline, first stage first, with how many contacts are in each."""
    return runtime.lifecycle.pipeline(session)


@router.put("/lifecycle/stages")
def replace_pipeline(data: PipelineIn, runtime: RuntimeDep, session: WriteSession) -> PipelineOut:
    """Replace the pipeline with these stages, in this order. A stage that contacts are
    in cannot be left out (409)."""
    return runtime.lifecycle.replace_pipeline(session, data.stages)


@router.put("/contacts/{contact_id}/stage")
def set_contact_stage(
    contact_id: uuid.UUID, data: ContactStageIn, runtime: RuntimeDep, session: WriteSession
) -> ContactOut:
    """Move a contact to a stage (`null`: out of the pipeline); the change is recorded in
    its stage history and timeline (`stage_changed`)."""
    runtime.lifecycle.set_contact_stage(session, contact_id, data.stage, data.source)
    return runtime.contacts.get(session, contact_id)


@router.get("/contacts/{contact_id}/stage-history")
def stage_history(
    contact_id: uuid.UUID,
    runtime: RuntimeDep,
    session: ReadSession,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
) -> StageHistoryPage:
    """The contact's stage changes, newest first."""
    page = runtime.lifecycle.history(session, contact_id, cursor=cursor, limit=limit)
    return StageHistoryPage(
        items=[StageChangeOut.model_validate(change) for change in page.items],
        next_cursor=page.next_cursor,
    )
