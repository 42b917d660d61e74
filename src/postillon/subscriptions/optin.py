"""Double opt-in: a subscription from a listed source waits for the contact to confirm.

`contacts/upsert.apply_changes` turns such a "subscribed" into "pending" (every consent
decision passes there) and hands the pending contacts to `DoubleOptIn.request` in the
same transaction: one transactional message each, from the editable system template
`double-opt-in` (created on first use), carrying a signed confirmation link
(`/e/k/<token>`: contact, source, issue time) that expires after
`POSTILLON_DOUBLE_OPT_IN_VALID_FOR` (7 days) by the clock. Following it and pressing the
button sets the consent to "subscribed" with the source `double-opt-in:<source>`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy.orm import Session

from postillon.clock import Clock
from postillon.contacts.changes import ContactChanges
from postillon.contacts.service import ContactService
from postillon.contacts.upsert import Mode
from postillon.messages.links import LinkKind, LinkSigner
from postillon.messages.service import MessageRequest, MessageService
from postillon.settings import Settings
from postillon.subscriptions import repository
from postillon.templates.system import SystemTemplate, system_template_id

TEMPLATE_KEY = "double-opt-in"
_TEMPLATE_BODY = """<p>Hello{% if contact.first_name %} {{ contact.first_name }}{% endif %},</p>
<p>please confirm that you want to receive our emails:</p>
<p><a href="{{ event.confirm_url }}">Yes, subscribe me</a></p>
<p>If you did not ask for this, ignore this message: you will not hear from us again.</p>
"""
_TEMPLATE = SystemTemplate(
    key=TEMPLATE_KEY,
    name="Double opt-in confirmation",
    subject="Please confirm your subscription",
    body=_TEMPLATE_BODY,
    preheader="One click and you are in",
)


class Confirmation(StrEnum):
    confirmed = "confirmed"
    # Subscribed already (the link was followed before, or consent was given otherwise).
    already = "already"
    # The contact's consent is no longer waiting (they unsubscribed, bounced …).
    not_pending = "not_pending"


@dataclass(frozen=True)
class ConfirmationLink:
    contact_id: uuid.UUID
    source: str
    issued_at: datetime
    # Older than `POSTILLON_DOUBLE_OPT_IN_VALID_FOR`: it confirms nothing any more.
    expired: bool


class DoubleOptIn:
    """Mails confirmation links and confirms; the `ConfirmationRequester` of contacts."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        contacts: ContactService,
        links: LinkSigner,
        messages: MessageService,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.contacts = contacts
        self.links = links
        self.messages = messages

    def confirm_url(self, contact_id: uuid.UUID, source: str, issued_at: datetime) -> str:
        return self.links.url(
            LinkKind.confirm, [contact_id.hex, source, int(issued_at.timestamp())]
        )

    def request(
        self, session: Session, pending: Sequence[tuple[uuid.UUID, str]], *, now: datetime
    ) -> None:
        """Queue one confirmation message per (contact, source), in the caller's transaction."""
        template_id = self.template_id(session, now)
        stamp = now.isoformat()
        self.messages.enqueue(
            session,
            [
                MessageRequest(
                    contact_id=contact_id,
                    template_id=template_id,
                    dedupe_key=f"double-opt-in:{contact_id}:{stamp}",
                    source="double-opt-in",
                    context={
                        "confirm_url": self.confirm_url(contact_id, source, now),
                        "source": source,
                    },
                )
                for contact_id, source in pending
            ],
        )

    def template_id(self, session: Session, now: datetime) -> uuid.UUID:
        """The system template, created (transactional, editable) the first time it is needed."""
        return system_template_id(session, _TEMPLATE, now)

    def read_link(self, token: str) -> ConfirmationLink | None:
        """The link's content if we signed it (expired or not), else None."""
        payload = self.links.read(LinkKind.confirm, token)
        if not (isinstance(payload, list) and len(payload) == 3):
            return None
        contact_hex, source, issued = payload
        if not (isinstance(contact_hex, str) and isinstance(source, str)):
            return None
        if not isinstance(issued, int) or isinstance(issued, bool):
            return None
        try:
            contact_id = uuid.UUID(hex=contact_hex)
        except ValueError:
            return None
        issued_at = datetime.fromtimestamp(issued, UTC)
        expired = self.clock.now() > issued_at + self.settings.double_opt_in_valid_for
        return ConfirmationLink(contact_id, source, issued_at, expired)

    def confirm(self, session: Session, link: ConfirmationLink) -> Confirmation:
        """Subscribe the contact if their email consent is still waiting for this."""
        if link.expired:
            return Confirmation.not_pending
        consent = repository.email_consents(session, [link.contact_id]).get(link.contact_id)
        if consent == "subscribed":
            return Confirmation.already
        if consent != "pending":
            return Confirmation.not_pending
        changes = ContactChanges(contact_id=link.contact_id)
        changes.set_consent("email", "subscribed", f"double-opt-in:{link.source}")
        self.contacts.apply(session, [changes], mode=Mode.update, source="double-opt-in")
        return Confirmation.confirmed
