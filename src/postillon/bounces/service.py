"""What a bounce or complaint does, in one transaction.

Attribution: the VERP address the report was sent to names the message
(`LinkSigner.read_verp_local_part`); without one, the original message's Message-ID
(`messages.smtp_message_id`), else the last message sent to the failed address.

- hard bounce: the message `bounced` (`bounced_at`, `bounce_kind` hard), the contact's
  email consent `bounced`, the address suppressed (reason bounced), an `email_bounced`
  event (`kind: hard`);
- soft bounce: the message keeps its state, `bounce_kind` soft and `bounced_at` record
  it, an `email_bounced` event (`kind: soft`). The third soft bounce in a row — messages
  of the contact that soft-bounced since its last human open or click (we hear of no
  successful delivery, so reading is the proof the mailbox works) — counts as hard;
- complaint: `complained_at`, consent `complained`, the address suppressed (reason
  complained), an `email_complained` event.

Reports about a message already marked so (the same DSN twice) change nothing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from postillon.bounces import repository
from postillon.bounces.parsing import Report, ReportKind
from postillon.clock import Clock
from postillon.contacts.changes import ContactChanges
from postillon.contacts.service import ContactService
from postillon.contacts.upsert import Mode
from postillon.events.service import store_events
from postillon.messages.links import LinkSigner
from postillon.messages.tracking import email_event_row
from postillon.models import Message
from postillon.privacy import repository as privacy_repository
from postillon.privacy.suppression import SuppressionReason, address_digest
from postillon.settings import Settings

logger = logging.getLogger("postillon.bounces")

SOFT_BOUNCES_FOR_HARD = 3


@dataclass(frozen=True)
class Handled:
    message_id: uuid.UUID | None
    # What was done: hard, soft, complaint, or ignored (unattributed, duplicate, other).
    outcome: str


class BounceService:
    def __init__(
        self, settings: Settings, clock: Clock, contacts: ContactService, links: LinkSigner
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.contacts = contacts
        self.links = links

    def accepts(self, address: str) -> bool:
        """Whether the server takes mail for this recipient: `bounce` or `bounce+…` at the
        bounce domain (a forged `bounce+…` is taken, then ignored)."""
        local, _, domain = address.strip().strip("<>").rpartition("@")
        local = local.lower()
        return domain.lower() == self.settings.bounce_domain.lower() and (
            local == "bounce" or local.startswith("bounce+")
        )

    def attribute(
        self, session: Session, recipients: Sequence[str], report: Report
    ) -> uuid.UUID | None:
        """The message a report is about (see the module), or None."""
        for recipient in recipients:
            local = recipient.strip().strip("<>").rpartition("@")[0]
            message_id = self.links.read_verp_local_part(local)
            if message_id is not None:
                return message_id
        if report.original_message_id:
            found = repository.message_id_by_smtp_id(session, report.original_message_id)
            if found is not None:
                return found
        for address in sorted(report.addresses):
            found = repository.last_message_to(session, address)
            if found is not None:
                return found
        return None

    def handle(self, session: Session, recipients: Sequence[str], report: Report) -> Handled:
        """Apply one received report in the caller's transaction."""
        if report.kind is ReportKind.other:
            return Handled(None, "ignored")
        message_id = self.attribute(session, recipients, report)
        found = None if message_id is None else repository.message_with_email(session, message_id)
        if found is None:
            logger.info("a %s report names no message of ours; ignored", report.kind)
            return Handled(None, "ignored")
        message, current_email = found
        now = self.clock.now()
        if report.kind is ReportKind.complaint:
            return self._complaint(session, message, current_email, report, now)
        if message.bounce_kind == "hard" or (
            report.kind is ReportKind.soft and message.bounce_kind == "soft"
        ):
            return Handled(message.id, "ignored")
        details = {"status": ",".join(report.statuses) or None, "diagnostic": report.diagnostic}
        if report.kind is ReportKind.soft:
            repository.update_message(
                session, message.id, {"bounce_kind": "soft", "bounced_at": now}
            )
            in_a_row = repository.soft_bounces_in_a_row(session, message.contact_id)
            if in_a_row < SOFT_BOUNCES_FOR_HARD:
                self._event(session, message, "email_bounced", {"kind": "soft", **details}, now)
                return Handled(message.id, "soft")
            details["reason"] = f"{in_a_row} soft bounces in a row"
        repository.update_message(
            session, message.id, {"state": "bounced", "bounce_kind": "hard", "bounced_at": now}
        )
        self._close_address(
            session, message, current_email, "bounced", SuppressionReason.bounced, now
        )
        self._event(session, message, "email_bounced", {"kind": "hard", **details}, now)
        return Handled(message.id, "hard")

    def _complaint(
        self,
        session: Session,
        message: Message,
        current_email: str | None,
        report: Report,
        now: datetime,
    ) -> Handled:
        if message.complained_at is not None:
            return Handled(message.id, "ignored")
        repository.update_message(session, message.id, {"complained_at": now})
        self._close_address(
            session, message, current_email, "complained", SuppressionReason.complained, now
        )
        properties = {"feedback_type": report.feedback_type, "reporter": report.reporter}
        self._event(session, message, "email_complained", properties, now)
        return Handled(message.id, "complaint")

    def _close_address(
        self,
        session: Session,
        message: Message,
        current_email: str | None,
        consent: str,
        reason: SuppressionReason,
        now: datetime,
    ) -> None:
        """Suppress the address the message went to; the contact's consent follows only
        if that is still their address."""
        privacy_repository.suppress(
            session,
            digest=address_digest(self.settings.secret_key, "email", message.to_address),
            channel="email",
            reason=reason.value,
            now=now,
        )
        if current_email == message.to_address:
            changes = ContactChanges(contact_id=message.contact_id)
            changes.set_consent("email", consent, "bounce")
            self.contacts.apply(session, [changes], mode=Mode.update, source="bounce")

    def _event(
        self,
        session: Session,
        message: Message,
        name: str,
        properties: dict[str, Any],
        now: datetime,
    ) -> None:
        properties = {"message_id": str(message.id), **properties}
        store_events(session, [email_event_row(message.contact_id, name, properties, now)], now=now)
