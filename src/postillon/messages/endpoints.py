"""HTTP routes for messages: ask for one, look at one, a contact's, the outbox's states."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from postillon.messages.schemas import MessageOut, MessagePage, MessageStatsOut, SendIn, SendOut
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["messages"], dependencies=[Depends(require_admin)])


@router.post("/messages", status_code=status.HTTP_202_ACCEPTED)
def send_template(data: SendIn, runtime: RuntimeDep, session: WriteSession) -> SendOut:
    """Queue a template for contacts (by id or email); the worker sends it. Marketing or
    transactional as the template says; consent is checked when it is sent."""
    return runtime.messages.send_template(session, data)


@router.get("/messages/stats")
def message_stats(runtime: RuntimeDep, session: ReadSession) -> MessageStatsOut:
    """How many messages are in each state."""
    return runtime.messages.stats(session)


@router.get("/messages/{message_id}")
def get_message(message_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession) -> MessageOut:
    """One message: its state, attempts, last error and times."""
    return runtime.messages.get(session, message_id)


@router.get("/contacts/{contact_id}/messages")
def contact_messages(
    contact_id: uuid.UUID,
    runtime: RuntimeDep,
    session: ReadSession,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
) -> MessagePage:
    """A contact's messages, newest first; follow `next_cursor` for older ones."""
    return runtime.messages.contact_messages(session, contact_id, cursor=cursor, limit=limit)
