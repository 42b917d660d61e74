"""HTTP routes for rules and journeys (`/api/automations`) and what they did to a contact
(`/api/contacts/{id}/journeys`, `/automation-history`). Thin: read, call the service."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Depends, Query, Request, Response, status

from postillon.automations.schemas import (
    ArchiveIn,
    ArchiveOut,
    AutomationOut,
    AutomationPage,
    ContactJourneysOut,
    HistoryPage,
    PublishIn,
    PublishOut,
    ValidOut,
    VersionOut,
)
from postillon.automations.service import MAX_SOURCE_CHARACTERS
from postillon.errors import FieldProblem, InvalidInput, PayloadTooLarge
from postillon.web.dependencies import ReadSession, RuntimeDep, WriteSession, require_admin

router = APIRouter(prefix="/api", tags=["automations"], dependencies=[Depends(require_admin)])

_YAML_TYPES = frozenset(
    {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain"}
)
_MAX_BODY_BYTES = 4 * MAX_SOURCE_CHARACTERS
# The body is read by `document_body`, so FastAPI does not describe it by itself.
_DOCUMENT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "the document: JSON, or YAML text with Content-Type application/yaml",
        "content": {
            "application/json": {"schema": {"type": "object"}},
            "application/yaml": {"schema": {"type": "string"}},
        },
    }
}


@dataclass(frozen=True)
class DocumentBody:
    """A document as sent: YAML text, or parsed JSON with its text (for line numbers)."""

    document: str | dict[str, Any]
    text: str | None


async def document_body(request: Request) -> DocumentBody:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > _MAX_BODY_BYTES:
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    raw = b"".join(chunks)
    media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if media in _YAML_TYPES:
        try:
            return DocumentBody(raw.decode("utf-8"), None)
        except UnicodeDecodeError:
            raise InvalidInput.at("body", "is not UTF-8 text") from None
    if media != "application/json" and not media.endswith("+json"):
        raise InvalidInput.at(
            "Content-Type", "must be application/json, or application/yaml for YAML text"
        )
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInput.at("body", f"is not valid JSON ({error})") from None
    if not isinstance(document, dict):
        raise InvalidInput.at("body", "must be a JSON object: the rule or journey document")
    return DocumentBody(document, raw.decode("utf-8"))


DocumentDep = Annotated[DocumentBody, Depends(document_body)]


def _too_large() -> PayloadTooLarge:
    message = f"a document has at most {_MAX_BODY_BYTES // 1_000_000} MB"
    return PayloadTooLarge(message, [FieldProblem("body", message)])


@router.get("/automations")
def list_automations(
    runtime: RuntimeDep,
    session: ReadSession,
    kind: Literal["rule", "journey"] | None = None,
    status: Literal["draft", "active", "paused", "archived"] | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
) -> AutomationPage:
    """Rules and journeys in key order; follow `next_cursor` for more."""
    return runtime.automations.list_automations(
        session, kind=kind, status=status, cursor=cursor, limit=limit
    )


@router.post("/automations/validate", openapi_extra=_DOCUMENT_BODY)
def validate_automation(body: DocumentDep, runtime: RuntimeDep, session: ReadSession) -> ValidOut:
    """Check a document without saving it: 200 `{"valid": true}`, or 422 naming every
    problem with its line and path."""
    return runtime.automations.validate(
        session, body.document, source_text=body.text, source_name="document"
    )


@router.put("/automations/{key}", openapi_extra=_DOCUMENT_BODY)
def put_automation(
    key: str, body: DocumentDep, runtime: RuntimeDep, session: WriteSession, response: Response
) -> AutomationOut:
    """Save the draft of `key` (201 when new); 422 names every problem with its line and
    path; 409 if `key` is an automation of the other kind. Publishing is separate."""
    saved, created = runtime.automations.save(
        session, body.document, source_text=body.text, source_name="document", key=key
    )
    if created:
        response.status_code = status.HTTP_201_CREATED
    return saved


@router.get("/automations/{key}")
def get_automation(key: str, runtime: RuntimeDep, session: ReadSession) -> AutomationOut:
    """The draft, the published version, the status and, for journeys, runs by state."""
    return runtime.automations.get(session, key)


@router.get("/automations/{key}/versions")
def automation_versions(key: str, runtime: RuntimeDep, session: ReadSession) -> list[VersionOut]:
    """Every published version, newest first."""
    return runtime.automations.versions(session, key)


@router.post("/automations/{key}/publish")
def publish_automation(
    key: str,
    runtime: RuntimeDep,
    session: WriteSession,
    data: Annotated[PublishIn | None, Body()] = None,
) -> PublishOut:
    """Publish the draft as a new version and make it active (no new version if the
    draft is published already); `migrate` moves runs of older versions onto it."""
    return runtime.automations.publish(session, key, migrate=bool(data and data.migrate))


@router.post("/automations/{key}/pause")
def pause_automation(key: str, runtime: RuntimeDep, session: WriteSession) -> AutomationOut:
    """Hold a journey's runs where they are; stop a rule firing."""
    return runtime.automations.pause(session, key)


@router.post("/automations/{key}/resume")
def resume_automation(key: str, runtime: RuntimeDep, session: WriteSession) -> AutomationOut:
    return runtime.automations.resume(session, key)


@router.post("/automations/{key}/archive")
def archive_automation(
    key: str,
    runtime: RuntimeDep,
    session: WriteSession,
    data: Annotated[ArchiveIn | None, Body()] = None,
) -> ArchiveOut:
    """Retire it; 409 while runs are in the journey, unless `force` ends them (exited)."""
    return runtime.automations.archive(session, key, force=bool(data and data.force))


@router.get("/contacts/{contact_id}/journeys")
def contact_journeys(
    contact_id: uuid.UUID, runtime: RuntimeDep, session: ReadSession
) -> ContactJourneysOut:
    """The contact's journey runs, oldest first, each with what happened in it."""
    explained = runtime.automations.explain(session, contact_id)
    return ContactJourneysOut(
        contact_id=explained.contact_id,
        runs=explained.runs,
        journey_decisions=explained.journey_decisions,
    )


@router.get("/contacts/{contact_id}/automation-history")
def contact_automation_history(
    contact_id: uuid.UUID,
    runtime: RuntimeDep,
    session: ReadSession,
    automation: Annotated[str | None, Query(description="only this rule or journey")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 50,
) -> HistoryPage:
    """Every rule firing and journey step of the contact, newest first."""
    return runtime.automations.history(
        session, contact_id, cursor=cursor, limit=limit, automation=automation
    )
