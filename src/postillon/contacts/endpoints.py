"""HTTP routes for contacts. Thin: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from postillon.contacts.fields import Channel
from postillon.contacts.merge import merge_contacts
from postillon.contacts.schemas import (
    AttributeDefinitionOut,
    BatchItemOut,
    BatchResultOut,
    ConsentIn,
    ContactBatchIn,
    ContactIn,
    ContactOut,
    ContactPage,
    EventOut,
    EventPage,
    MergeIn,
    TagsIn,
    UpsertResultOut,
)
from postillon.contacts.service import ContactFilter
from postillon.contacts.upsert import Action
from postillon.events import service as events_service
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["contacts"], dependencies=[Depends(require_admin)])

PageLimit = Annotated[int, Query(ge=1, le=500, description="items per page")]


@router.post("/contacts", status_code=status.HTTP_201_CREATED)
def create_contact(data: ContactIn, runtime: RuntimeDep, session: WriteSession) -> ContactOut:
    """Create a contact; 409 if its email or external_id belongs to another one."""
    return runtime.contacts.create(session, data)


@router.get("/contacts")
def list_contacts(
    runtime: RuntimeDep,
    session: ReadSession,
    email: str | None = None,
    external_id: str | None = None,
    tag: str | None = None,
    lifecycle_stage: str | None = None,
    q: Annotated[str | None, Query(description="email or name prefix, or external id")] = None,
    cursor: str | None = None,
    limit: PageLimit = 50,
) -> ContactPage:
    """Contacts in creation order, filtered; follow `next_cursor` for the next page."""
    query = ContactFilter(
        email=email, external_id=external_id, tag=tag, search=q, lifecycle_stage=lifecycle_stage
    )
    page = runtime.contacts.list_contacts(session, query, cursor=cursor, limit=limit)
    return ContactPage(items=page.items, next_cursor=page.next_cursor)


@router.post("/contacts/upsert")
def upsert_contact(
    data: ContactIn, runtime: RuntimeDep, session: WriteSession, response: Response
) -> UpsertResultOut:
    """Find the contact by external_id, then email; change it, or create it (201)."""
    contact, action = runtime.contacts.upsert(session, data)
    if action is Action.created:
        response.status_code = status.HTTP_201_CREATED
    return UpsertResultOut(contact=contact, action=action.value)


@router.post("/contacts/batch")
def upsert_contacts(
    data: ContactBatchIn, runtime: RuntimeDep, session: WriteSession
) -> BatchResultOut:
    """Upsert many contacts at once; if any is invalid, none is written (422 names each)."""
    outcomes = runtime.contacts.upsert_batch(session, data.contacts)
    items = [
        BatchItemOut(index=i, id=o.contact_id, action=o.action.value)
        for i, o in enumerate(outcomes)
        if o.contact_id is not None
    ]
    return BatchResultOut(
        created=sum(o.action is Action.created for o in outcomes),
        updated=sum(o.action is Action.updated for o in outcomes),
        unchanged=sum(o.action is Action.unchanged for o in outcomes),
        items=items,
    )


@router.get("/contacts/{contact_id}")
def get_contact(contact_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession) -> ContactOut:
    return runtime.contacts.get(session, contact_id)


@router.patch("/contacts/{contact_id}")
def update_contact(
    contact_id: uuid.UUID, data: ContactIn, runtime: RuntimeDep, session: WriteSession
) -> ContactOut:
    """Change the fields given; `null` clears one; tags given are added."""
    return runtime.contacts.update(session, contact_id, data)


@router.delete("/contacts/{contact_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_contact(contact_id: uuid.UUID, runtime: RuntimeDep, session: WriteSession) -> None:
    """Delete a contact and its events. To forget a person for good, use `erase`."""
    runtime.contacts.delete(session, contact_id)


@router.post("/contacts/{contact_id}/tags")
def add_tags(
    contact_id: uuid.UUID, data: TagsIn, runtime: RuntimeDep, session: WriteSession
) -> ContactOut:
    return runtime.contacts.add_tags(session, contact_id, data.tags)


@router.delete("/contacts/{contact_id}/tags")
def remove_tags(
    contact_id: uuid.UUID,
    runtime: RuntimeDep,
    session: WriteSession,
    tag: Annotated[list[str], Query(min_length=1, description="a tag to remove; repeatable")],
) -> ContactOut:
    return runtime.contacts.remove_tags(session, contact_id, tag)


@router.put("/contacts/{contact_id}/consent/{channel}")
def set_consent(
    contact_id: uuid.UUID,
    channel: Channel,
    data: ConsentIn,
    runtime: RuntimeDep,
    session: WriteSession,
) -> ContactOut:
    """Record a consent decision for one channel; it also goes to the timeline."""
    return runtime.contacts.set_consent(session, contact_id, channel, data.status, data.source)


@router.get("/contacts/{contact_id}/events")
def contact_events(
    contact_id: uuid.UUID,
    runtime: RuntimeDep,
    session: ReadSession,
    name: str | None = None,
    cursor: str | None = None,
    limit: PageLimit = 50,
) -> EventPage:
    """The contact's timeline, newest first."""
    runtime.contacts.require(session, contact_id)
    page = events_service.timeline(session, contact_id, cursor=cursor, name=name, limit=limit)
    return EventPage(
        items=[EventOut.model_validate(e, from_attributes=True) for e in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("/contacts/{contact_id}/merge")
def merge_contact(
    contact_id: uuid.UUID, data: MergeIn, runtime: RuntimeDep, session: WriteSession
) -> ContactOut:
    """Absorb another contact into this one: newest values win, tags are united, scores
    summed, events moved; the other contact is gone afterwards."""
    merge_contacts(
        session,
        survivor_id=contact_id,
        absorbed_id=data.contact_id,
        reason=data.reason,
        now=runtime.clock.now(),
    )
    return runtime.contacts.get(session, contact_id)


@router.get("/attributes", tags=["attributes"])
def attribute_definitions(
    runtime: RuntimeDep, session: ReadSession
) -> list[AttributeDefinitionOut]:
    """The custom attributes known so far, with their types."""
    return runtime.contacts.attribute_definitions(session)
