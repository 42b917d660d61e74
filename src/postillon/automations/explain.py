"""What rules and journeys did to a contact, from `automation_history` and
`journey_runs`: the contact's runs with their steps, the entries refused, rule firings
(`AutomationService.explain`, `GET /api/contacts/{id}/journeys`, `postillon explain`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.automations import repository
from postillon.automations.schemas import (
    ExplainOut,
    HistoryEntryOut,
    HistoryPage,
    JourneyRunOut,
)
from postillon.contacts.fields import FieldError, normalise_email
from postillon.errors import InvalidInput, NotFound
from postillon.kit.pagination import decode_cursor, encode_cursor


def explain(session: Session, contact_id: uuid.UUID, *, limit: int) -> ExplainOut:
    runs = list(reversed(repository.contact_runs(session, contact_id, limit=limit)))
    by_run: dict[uuid.UUID | None, list[HistoryEntryOut]] = {}
    for row in repository.history_of_runs(session, [r.JourneyRun.id for r in runs]):
        by_run.setdefault(row.AutomationHistory.run_id, []).append(entry_out(*row))
    decisions = repository.contact_history(
        session, contact_id, kind="journey", without_run=True, limit=limit * 5
    )
    rules = repository.contact_history(session, contact_id, kind="rule", limit=limit * 5)
    return ExplainOut(
        contact_id=contact_id,
        runs=[run_out(r.JourneyRun, r.key, r.name, by_run.get(r.JourneyRun.id, [])) for r in runs],
        journey_decisions=[entry_out(*row) for row in reversed(decisions)],
        rule_history=[entry_out(*row) for row in reversed(rules)],
    )


def history_page(
    session: Session,
    contact_id: uuid.UUID,
    *,
    automation_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> HistoryPage:
    before = None
    if cursor is not None:
        values = decode_cursor(cursor)
        try:
            before = (datetime.fromisoformat(str(values[0])), uuid.UUID(str(values[1])))
        except (ValueError, IndexError) as error:
            raise InvalidInput.at("cursor", "not a cursor returned by this API") from error
    rows = repository.contact_history(
        session, contact_id, automation_id=automation_id, before=before, limit=limit + 1
    )
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1].AutomationHistory
        next_cursor = encode_cursor(last.at.isoformat(), last.id.hex)
    return HistoryPage(items=[entry_out(*row) for row in page], next_cursor=next_cursor)


def contact_id_for(session: Session, id_or_email: str) -> uuid.UUID:
    try:
        contact_id = uuid.UUID(id_or_email)
    except ValueError:
        try:
            email = normalise_email(id_or_email)
        except FieldError as error:
            raise InvalidInput.at("contact", f"is neither an id nor an email: {error}") from None
        found = repository.contact_id_by_email(session, email)
        if found is None:
            raise NotFound(f"no contact has the email {email}") from None
        return found
    require_contact(session, contact_id)
    return contact_id


def require_contact(session: Session, contact_id: uuid.UUID) -> None:
    if not repository.contact_exists(session, contact_id):
        raise NotFound(f"no contact with id {contact_id}")


def entry_out(row: Any, key: str, name: str, kind: str) -> HistoryEntryOut:
    return HistoryEntryOut(
        id=row.id,
        at=row.at,
        automation=key,
        automation_name=name,
        kind=kind,
        version=row.version,
        run_id=row.run_id,
        step_id=row.step_id,
        outcome=row.outcome,
        reason=row.reason,
        details=row.details or {},
        event_id=row.event_id,
    )


def run_out(run: Any, key: str, name: str, entries: list[HistoryEntryOut]) -> JourneyRunOut:
    return JourneyRunOut(
        id=run.id,
        journey=key,
        journey_name=name,
        version=run.version,
        state=run.state,
        step_id=run.step_id,
        due_at=run.due_at,
        wait_event=run.wait_event,
        source=run.source,
        entered_at=run.entered_at,
        ended_at=run.ended_at,
        end_reason=run.end_reason,
        steps_done=run.steps_done,
        history=entries,
    )
