"""Merging two contacts found to be one person."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.contacts import repository as contacts_repository
from postillon.errors import InvalidInput, NotFound
from postillon.events import repository as events_repository
from postillon.events.service import InternalEvent, record_internal
from postillon.kit.ids import new_id
from postillon.lifecycle import repository as lifecycle_repository
from postillon.lifecycle.history import StageMove, pipeline_positions, record_stage_changes
from postillon.models import ContactMerge
from postillon.scoring.merge import fold_scores

# Columns where the value of the more recently updated contact wins, if it has one.
_NEWEST_WINS = (
    "external_id", "email", "phone", "first_name", "last_name", "lifecycle_stage", "owner_id",
    "timezone", "locale",
)  # fmt: skip


def merge_contacts(
    session: Session,
    *,
    survivor_id: uuid.UUID,
    absorbed_id: uuid.UUID,
    reason: str,
    now: datetime,
) -> None:
    """Fold `absorbed_id` into `survivor_id`, which keeps its id.

    Newest values win (by each contact's last update), attributes key by key; tags are
    united; scores are summed; for each channel the most recent consent decision holds;
    events, import records and stage history move over; the merge is recorded with a
    snapshot of the absorbed contact, and the absorbed contact is deleted. If the
    survivor's stage changes, that is a stage change like any other (source `merge`).
    """
    if survivor_id == absorbed_id:
        raise InvalidInput.at("contact_id", "a contact cannot be merged into itself")
    found = contacts_repository.rows_by_ids(session, [survivor_id, absorbed_id])
    rows = {row["id"]: row for row in found}
    for contact_id in (survivor_id, absorbed_id):
        if contact_id not in rows:
            raise NotFound(f"no contact with id {contact_id}")
    survivor, absorbed = rows[survivor_id], rows[absorbed_id]
    newer, older = (
        (survivor, absorbed)
        if survivor["updated_at"] >= absorbed["updated_at"]
        else (absorbed, survivor)
    )
    merged: dict[str, Any] = {"id": survivor_id, "updated_at": now}
    for column in _NEWEST_WINS:
        merged[column] = newer[column] if newer[column] is not None else older[column]
    merged["attributes"] = {**(older["attributes"] or {}), **(newer["attributes"] or {})}
    merged["created_at"] = min(survivor["created_at"], absorbed["created_at"])
    monitored = [r["monitored_at"] for r in (survivor, absorbed) if r["monitored_at"]]
    merged["state"] = "monitored" if monitored else survivor["state"]
    merged["monitored_at"] = min(monitored) if monitored else None
    latest = max((survivor, absorbed), key=lambda r: r["last_seen_at"] or r["created_at"])
    merged["last_seen_at"] = latest["last_seen_at"]
    merged["last_seen"] = latest["last_seen"]

    consents = contacts_repository.consents_of(session, [survivor_id, absorbed_id])
    snapshot = _snapshot(absorbed, consents.get(absorbed_id, {}))
    absorbed_tags = contacts_repository.tags_of(session, [absorbed_id]).get(absorbed_id, set())
    snapshot["tags"] = sorted(absorbed_tags)

    events_repository.move_to_contact(session, source=absorbed_id, target=survivor_id)
    # Scores are summed in every model, main (`contacts.score`) included.
    fold_scores(session, survivor_id=survivor_id, absorbed_id=absorbed_id, now=now)
    contacts_repository.move_tags(session, source=absorbed_id, target=survivor_id, now=now)
    contacts_repository.move_import_touches(session, source=absorbed_id, target=survivor_id)
    contacts_repository.move_visitors(session, source=absorbed_id, target=survivor_id)
    lifecycle_repository.move_history(session, source=absorbed_id, target=survivor_id)
    _merge_consents(
        session, survivor_id, consents.get(survivor_id, {}), consents.get(absorbed_id, {})
    )
    # The absorbed contact goes first: its email and external_id are unique and may move.
    contacts_repository.delete_contact(session, absorbed_id)
    contacts_repository.update_contacts(session, [merged])
    session.add(
        ContactMerge(
            id=new_id(),
            contact_id=survivor_id,
            merged_contact_id=absorbed_id,
            merged_snapshot=snapshot,
            reason=reason,
            merged_at=now,
        )
    )
    record_internal(
        session,
        [
            InternalEvent(
                contact_id=survivor_id,
                name="contact_merged",
                properties={"merged_contact_id": str(absorbed_id), "reason": reason},
            )
        ],
        now=now,
    )
    if merged["lifecycle_stage"] != survivor["lifecycle_stage"]:
        record_stage_changes(
            session,
            [StageMove(survivor_id, survivor["lifecycle_stage"], merged["lifecycle_stage"])],
            positions=pipeline_positions(session),
            source="merge",
            now=now,
        )
    session.flush()


def _merge_consents(
    session: Session,
    survivor_id: uuid.UUID,
    kept: dict[str, dict[str, Any]],
    absorbed: dict[str, dict[str, Any]],
) -> None:
    inserts, updates = [], []
    for channel, consent in absorbed.items():
        current = kept.get(channel)
        row = {**consent, "contact_id": survivor_id}
        if current is None:
            inserts.append(row)
        elif consent["changed_at"] > current["changed_at"]:
            updates.append(row)
    contacts_repository.insert_consents(session, inserts)
    contacts_repository.update_consents(session, updates)


def _snapshot(row: dict[str, Any], consents: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A JSON-safe copy of a contact row and its consents."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        out[key] = (
            value.isoformat()
            if isinstance(value, datetime)
            else (str(value) if isinstance(value, uuid.UUID) else value)
        )
    out["consent"] = {
        channel: {
            "status": c["status"],
            "changed_at": c["changed_at"].isoformat(),
            "source": c["source"],
        }
        for channel, c in consents.items()
    }
    return out
