"""Recipients' pages under `/e/` (unsubscribe, preferences, opt-in confirmation; public,
the signed token is the credential) and the admin API for topics."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData

from postillon.errors import NotFound
from postillon.messages.links import LinkKind
from postillon.runtime import Runtime
from postillon.subscriptions.optin import Confirmation
from postillon.subscriptions.pages import render
from postillon.subscriptions.schemas import TopicIn, TopicOut, TopicPatch
from postillon.subscriptions.service import Preferences
from postillon.web.dependencies import AdminKey, ReadSession, RuntimeDep, WriteSession

pages = APIRouter(tags=["email preferences"], include_in_schema=False)
router = APIRouter(prefix="/api/topics", tags=["topics"])

_NO_STORE = {"Cache-Control": "no-store"}


async def _form(request: Request) -> FormData:
    return await request.form()


Form = Annotated[FormData, Depends(_form)]


def _page(page: str, status_code: int = 200, **values: object) -> HTMLResponse:
    return HTMLResponse(render(page, **values), status_code=status_code, headers=_NO_STORE)


def _gone(title: str, text: str, status_code: int = 404) -> HTMLResponse:
    return _page("done", status_code, title=title, text=text, preferences_url=None)


_UNKNOWN_LINK = ("Link not found", "This link is not valid. It may have been mistyped or cut.")


@pages.get("/e/u/{token}")
def unsubscribe_page(
    token: str, request: Request, runtime: RuntimeDep, session: ReadSession
) -> HTMLResponse:
    """Ask before unsubscribing: link scanners follow GET links, only a POST unsubscribes."""
    message_id = runtime.links.read_message_id(LinkKind.unsubscribe, token)
    if message_id is None:
        return _gone(*_UNKNOWN_LINK)
    try:
        offer = runtime.subscriptions.unsubscribe_offer(session, message_id)
    except NotFound:
        return _gone(*_UNKNOWN_LINK)
    return _page(
        "unsubscribe",
        title="Unsubscribe",
        email=offer.address,
        topic_name=offer.topic_name,
        action=request.url.path,
        preferences_url=runtime.links.preferences_url(offer.contact_id),
    )


@pages.post("/e/u/{token}")
def unsubscribe(token: str, form: Form, runtime: RuntimeDep, session: WriteSession) -> HTMLResponse:
    """One-click unsubscribe (RFC 8058: the body `List-Unsubscribe=One-Click`, no cookie
    needed), also what the button of the page posts."""
    message_id = runtime.links.read_message_id(LinkKind.unsubscribe, token)
    if message_id is None:
        return _gone(*_UNKNOWN_LINK)
    if form.get("List-Unsubscribe") != "One-Click":
        return _gone(
            "Not understood",
            "An unsubscribe request carries List-Unsubscribe=One-Click (RFC 8058).",
            status.HTTP_400_BAD_REQUEST,
        )
    try:
        done = runtime.subscriptions.unsubscribe(session, message_id, source="unsubscribe-link")
    except NotFound:
        return _gone(*_UNKNOWN_LINK)
    what = f"{done.topic_name} emails" if done.topic_name else "marketing emails"
    return _page(
        "done",
        title="Unsubscribed",
        text=f"You are unsubscribed: {done.address} will receive no more {what}.",
        preferences_url=runtime.links.preferences_url(done.contact_id),
    )


@pages.get("/e/p/{token}")
def preferences_page(
    token: str, request: Request, runtime: RuntimeDep, session: ReadSession
) -> HTMLResponse:
    """The hosted preference page: topics, and unsubscribe from all."""
    contact_id = runtime.links.read_message_id(LinkKind.preferences, token)
    if contact_id is None:
        return _gone(*_UNKNOWN_LINK)
    try:
        preferences = runtime.subscriptions.preferences(session, contact_id)
    except NotFound:
        return _gone(*_UNKNOWN_LINK)
    return _preferences_page(request, runtime, contact_id, preferences, saved=False)


@pages.post("/e/p/{token}")
def save_preferences(
    token: str, request: Request, form: Form, runtime: RuntimeDep, session: WriteSession
) -> HTMLResponse:
    """Save the preference form; refused (403) without this contact's form token."""
    contact_id = runtime.links.read_message_id(LinkKind.preferences, token)
    if contact_id is None:
        return _gone(*_UNKNOWN_LINK)
    token_value = form.get("form_token")
    problem = runtime.form_tokens.problem(
        token_value if isinstance(token_value, str) else None, contact_id
    )
    if problem is not None:
        return _gone("Not saved", f"Nothing was changed: {problem}.", status.HTTP_403_FORBIDDEN)
    topics = [value for value in form.getlist("topic") if isinstance(value, str)]
    try:
        preferences = runtime.subscriptions.save_preferences(
            session,
            contact_id,
            subscribed_topics=topics,
            unsubscribe_all=form.get("unsubscribe_all") == "1",
        )
    except NotFound:
        return _gone(*_UNKNOWN_LINK)
    return _preferences_page(request, runtime, contact_id, preferences, saved=True)


def _preferences_page(
    request: Request,
    runtime: Runtime,
    contact_id: uuid.UUID,
    preferences: Preferences,
    *,
    saved: bool,
) -> HTMLResponse:
    """The preference form, with a fresh form token bound to the contact."""
    return _page(
        "preferences",
        title="Email preferences",
        preferences=preferences,
        saved=saved,
        action=request.url.path,
        form_token=runtime.form_tokens.issue(contact_id),
    )


_EXPIRED = (
    "Link expired",
    "This confirmation link has expired. Subscribe again and we will send you a new one.",
    status.HTTP_410_GONE,
)


@pages.get("/e/k/{token}")
def confirmation_page(
    token: str, request: Request, runtime: RuntimeDep, session: ReadSession
) -> HTMLResponse:
    """Double opt-in: ask for the click that confirms (scanners follow GET links)."""
    link = runtime.opt_in.read_link(token)
    if link is None:
        return _gone(*_UNKNOWN_LINK)
    if link.expired:
        return _gone(*_EXPIRED)
    try:
        preferences = runtime.subscriptions.preferences(session, link.contact_id)
    except NotFound:
        return _gone(*_UNKNOWN_LINK)
    return _page(
        "confirm",
        title="Confirm your subscription",
        email=preferences.email,
        action=request.url.path,
    )


@pages.post("/e/k/{token}")
def confirm(token: str, runtime: RuntimeDep, session: WriteSession) -> HTMLResponse:
    """Confirm the subscription the link was mailed for."""
    link = runtime.opt_in.read_link(token)
    if link is None:
        return _gone(*_UNKNOWN_LINK)
    if link.expired:
        return _gone(*_EXPIRED)
    outcome = runtime.opt_in.confirm(session, link)
    if outcome is Confirmation.not_pending:
        return _gone(
            "Nothing to confirm",
            "This subscription is no longer waiting for a confirmation.",
            status.HTTP_410_GONE,
        )
    return _page(
        "done",
        title="Subscribed",
        text="Thank you: your subscription is confirmed.",
        preferences_url=runtime.links.preferences_url(link.contact_id),
    )


@router.get("")
def list_topics(_: AdminKey, runtime: RuntimeDep, session: ReadSession) -> list[TopicOut]:
    """Every topic, in preference-page order."""
    return runtime.subscriptions.topics.list(session)


@router.post("", status_code=status.HTTP_201_CREATED)
def create_topic(
    data: TopicIn, _: AdminKey, runtime: RuntimeDep, session: WriteSession
) -> TopicOut:
    """Add a topic (its key never changes)."""
    return runtime.subscriptions.topics.create(session, data)


@router.get("/{key}")
def get_topic(key: str, _: AdminKey, runtime: RuntimeDep, session: ReadSession) -> TopicOut:
    """One topic."""
    return runtime.subscriptions.topics.get(session, key)


@router.patch("/{key}")
def update_topic(
    key: str, data: TopicPatch, _: AdminKey, runtime: RuntimeDep, session: WriteSession
) -> TopicOut:
    """Rename, describe or move a topic."""
    return runtime.subscriptions.topics.update(session, key, data)


@router.delete("/{key}", status_code=status.HTTP_204_NO_CONTENT)
def delete_topic(key: str, _: AdminKey, runtime: RuntimeDep, session: WriteSession) -> Response:
    """Remove a topic no template is on."""
    runtime.subscriptions.topics.delete(session, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
