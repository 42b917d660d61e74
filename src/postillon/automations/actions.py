"""Running actions on sets of contacts: what rules do, and a journey's `update` steps.

`ActionRunner.run(session, automation, action, targets, now=…)` runs one action for many
contacts at once (one set-based call per action, never one per contact) and returns one
`ActionResult` per target. Every effect goes through the feature that owns it, so its
events, history and segment refresh follow: tags and attributes through the contacts
upsert (`tag_added`, `attribute_changed` …), score through `scoring.ledger`, stage
through the lifecycle service, messages through `MessageService.enqueue` behind the
`SendGate` (caps), journeys through the `JourneyEngine`, webhooks through the
`webhook_deliveries` outbox.

Each target carries `key`, the deterministic prefix of everything the action creates
("rule:<automation>:<event id>:<contact>" or "journey:<run>:<step>"), so an action that is
run again after a crash creates no second message, webhook call or score change.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations import model as am
from postillon.automations.definitions import Published

if TYPE_CHECKING:
    from postillon.automations.collision import SendGate
    from postillon.automations.journeys.engine import JourneyEngine
    from postillon.clock import Clock
    from postillon.contacts.service import ContactService
    from postillon.lifecycle.service import LifecycleService
    from postillon.messages.service import MessageService
    from postillon.settings import Settings


@dataclass(frozen=True)
class ActionTarget:
    contact_id: uuid.UUID
    # The deterministic prefix of dedupe keys (see the module's docstring).
    key: str
    # The triggering event: {"id", "name", "message_id", "occurred_at", "properties"}.
    event: dict[str, Any] | None = None
    # The journey run acting (None for rules).
    run_id: uuid.UUID | None = None
    step_id: str | None = None


@dataclass(frozen=True)
class ActionResult:
    contact_id: uuid.UUID
    # True: done (or had been done before); False: not done, `reason` says why.
    done: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class ActionRunner:
    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        contacts: ContactService,
        lifecycle: LifecycleService,
        messages: MessageService,
        send_gate: SendGate,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.contacts = contacts
        self.lifecycle = lifecycle
        self.messages = messages
        self.send_gate = send_gate
        # Set by the runtime once the engine exists (the engine runs actions too).
        self.journeys: JourneyEngine | None = None

    def run(
        self,
        session: Session,
        automation: Published,
        action: am.Action,
        targets: Sequence[ActionTarget],
        *,
        now: datetime,
    ) -> list[ActionResult]:
        """Run `action` for every target, in the caller's transaction; one result each,
        in the order of `targets`."""
        raise NotImplementedError(type(action).__name__)
