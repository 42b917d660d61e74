"""GDPR: everything stored about a contact, and erasing it for good."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts import repository as contacts_repository
from postillon.contacts.service import ContactService
from postillon.events import repository as events_repository
from postillon.privacy import repository as privacy_repository
from postillon.privacy.suppression import SuppressionReason, address_digest
from postillon.settings import Settings


class PrivacyService:
    def __init__(self, settings: Settings, clock: Clock, contacts: ContactService) -> None:
        self.settings = settings
        self.clock = clock
        self.contacts = contacts

    def export(self, session: Session, contact_id: uuid.UUID) -> dict[str, Any]:
        """Everything Postillon stores about one contact, as JSON-ready data."""
        contact = self.contacts.get(session, contact_id)
        events = [
            {
                "id": e.id,
                "type": e.type,
                "name": e.name,
                "properties": e.properties,
                "context": e.context,
                "source": e.source,
                "anonymous_id": e.anonymous_id,
                "user_id": e.user_id,
                "message_id": e.message_id,
                "integrations": e.integrations,
                "occurred_at": e.occurred_at.isoformat(),
                "received_at": e.received_at.isoformat(),
            }
            for e in events_repository.iter_for_contact(session, contact_id)
        ]
        merges = [
            {
                "merged_contact_id": str(m.merged_contact_id),
                "merged_snapshot": m.merged_snapshot,
                "reason": m.reason,
                "merged_at": m.merged_at.isoformat(),
            }
            for m in privacy_repository.merges_of(session, contact_id)
        ]
        imports = [
            {"import_id": str(import_id), "filename": filename, "action": action}
            for import_id, filename, action in privacy_repository.imports_of(session, contact_id)
        ]
        visitors = [
            {
                "anonymous_id": v.anonymous_id,
                "first_seen_at": v.first_seen_at.isoformat(),
                "last_seen_at": v.last_seen_at.isoformat(),
                "linked_at": v.linked_at.isoformat() if v.linked_at else None,
            }
            for v in privacy_repository.visitors_of(session, contact_id)
        ]
        return {
            "exported_at": self.clock.now().isoformat(),
            "contact": contact.model_dump(mode="json"),
            "visitors": visitors,
            "events": events,
            "merges": merges,
            "imports": imports,
            "email_topics": [
                {
                    "topic": t.topic,
                    "status": t.status,
                    "changed_at": t.changed_at.isoformat(),
                    "source": t.source,
                }
                for t in privacy_repository.topic_choices_of(session, contact_id)
            ],
        }

    def erase(self, session: Session, contact_id: uuid.UUID) -> None:
        """Remove the contact, its events and merge records; keep only keyed hashes of its
        email and phone on the suppression list, so the address is not taken in again."""
        rows = contacts_repository.rows_by_ids(session, [contact_id])
        if not rows:
            self.contacts.require(session, contact_id)
        row = rows[0]
        now: datetime = self.clock.now()
        for channel, address in (("email", row["email"]), ("sms", row["phone"])):
            if address:
                privacy_repository.suppress(
                    session,
                    digest=address_digest(self.settings.secret_key, channel, address),
                    channel=channel,
                    reason=SuppressionReason.erased.value,
                    now=now,
                )
        privacy_repository.delete_merges_of(session, contact_id)
        contacts_repository.delete_contact(session, contact_id)
