"""Owner notifications: a rule (or a journey's update step) mails a summary of the contact
card to the people who should act on it.

Recipients: the action's fixed `to` addresses if it names any; else the contact's owner
(`contacts.owner_id` → `users.email`); else the action's `fallback` (a sales address).
A contact with none of them is not notified, and the history says so.

Each notification is one message in the outbox, from the system template
`owner-notification` (transactional, created on first use, editable like any template),
with the card, the subject, the rule's note and the trigger in its context (`event.*`).
The message is *about* the contact (its `contact_id`) but goes to the recipient's
address (`MessageRequest.to_address`), as a `notification`: the send check looks only at
the recipient's address (suppressions), never at the contact's consent — it is not mail
to the contact; no open pixel or click tracking is added, since the owner's reading is
not the contact's engagement. Its key, `<target key>:notify:<action>:<address hash>`,
makes a replayed action no second mail.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from postillon.automations import model as am
from postillon.automations.cards import contact_cards
from postillon.automations.definitions import Published
from postillon.messages.service import MessageRequest, MessageService
from postillon.templates.system import SystemTemplate, system_template_id

if TYPE_CHECKING:
    from postillon.automations.actions import ActionTarget

TEMPLATE_KEY = "owner-notification"
_TEMPLATE_BODY = """<p>{{ event.subject }}</p>
{% if event.note %}<p>{{ event.note }}</p>{% endif %}
{% set card = event.card %}
<h2>{{ card.name or card.email or "A contact" }}</h2>
<table>
<tr><td>Email</td><td>{{ card.email or "-" }}</td></tr>
<tr><td>Phone</td><td>{{ card.phone or "-" }}</td></tr>
<tr><td>Stage</td><td>{{ card.lifecycle_stage or "-" }}</td></tr>
<tr><td>Score</td><td>{{ card.score }}</td></tr>
<tr><td>Owner</td><td>
{%- if card.owner %}{{ card.owner.name or card.owner.email }}{% else %}-{% endif -%}
</td></tr>
<tr><td>Tags</td><td>{{ card.tags | join(", ") or "-" }}</td></tr>
{% for name, value in card.attributes | dictsort %}{% if loop.index <= 20 -%}
<tr><td>{{ name }}</td><td>{{ value }}</td></tr>
{% endif %}{% endfor %}</table>
<p>Latest activity:</p>
<ul>
{% for e in card.events %}<li>{{ e.occurred_at[:16] | replace("T", " ") }} UTC: {{ e.name }}</li>
{% else %}<li>none yet</li>
{% endfor %}</ul>
<p>Sent by the automation {{ event.automation }}
{%- if event.trigger %}, on {{ event.trigger }}{% endif %}.</p>
<p><a href="{{ card.url }}">{{ card.url }}</a></p>
"""
_TEMPLATE = SystemTemplate(
    key=TEMPLATE_KEY,
    name="Owner notification",
    subject="{{ event.subject }}",
    body=_TEMPLATE_BODY,
    preheader=None,
)


class OwnerNotifier:
    def __init__(self, messages: MessageService, *, public_url: str) -> None:
        self.messages = messages
        self.public_url = public_url

    def notify(
        self,
        session: Session,
        automation: Published,
        action: am.NotifyAction,
        targets: Sequence[ActionTarget],
        *,
        now: datetime,
        index: int,
    ) -> list[tuple[list[str], list[str]]]:
        """Queue the notifications; for each target, (the addresses, the message ids) —
        no addresses: nobody to notify."""
        cards = contact_cards(session, {t.contact_id for t in targets}, public_url=self.public_url)
        template_id = self.template_id(session, now)
        requests: list[MessageRequest] = []
        planned: list[list[tuple[str, str]]] = []
        for target in targets:
            card = cards.get(target.contact_id)
            recipients = _recipients(action, card)
            keys: list[tuple[str, str]] = []
            for address in recipients:
                digest = hashlib.sha256(address.encode()).hexdigest()[:16]
                key = f"{target.key}:notify:{index}:{digest}"
                keys.append((address, key))
                assert card is not None
                requests.append(
                    MessageRequest(
                        contact_id=target.contact_id,
                        template_id=template_id,
                        dedupe_key=key,
                        source="notify",
                        context={
                            "subject": action.subject,
                            "note": action.note,
                            "automation": automation.key,
                            "trigger": (target.event or {}).get("name"),
                            "card": card,
                        },
                        automation_id=automation.id,
                        step=target.step_id,
                        to_address=address,
                    )
                )
            planned.append(keys)
        result = self.messages.enqueue(session, requests) if requests else None
        ids = result.message_ids if result is not None else {}
        return [
            ([address for address, _ in keys], [str(ids[key]) for _, key in keys if key in ids])
            for keys in planned
        ]

    def template_id(self, session: Session, now: datetime) -> uuid.UUID:
        """The system template, created (transactional, editable) the first time it is needed."""
        return system_template_id(session, _TEMPLATE, now)


def _recipients(action: am.NotifyAction, card: dict[str, object] | None) -> list[str]:
    if card is None:
        return []
    if action.to:
        return list(dict.fromkeys(action.to))
    owner = card.get("owner")
    if isinstance(owner, dict) and owner.get("email"):
        return [str(owner["email"])]
    return [action.fallback] if action.fallback else []
