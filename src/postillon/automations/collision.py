"""Collision control for sends: frequency caps per channel across every journey, rule and
broadcast, and quiet hours in the contact's time zone.

`SendGate.decide` takes a batch of candidate sends and answers for each: allowed, or
held until a moment (the cap's next local day or week, the end of the quiet hours), with
the reason in words and the numbers behind it. Transactional sends are always allowed.
Sends allowed earlier in the same batch count towards the caps of later ones, so two
journeys acting on the same contact in one batch cannot both pass a cap of one.
What a journey then does with a held send (wait, skip, exit) is its own policy.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations import model as am

if TYPE_CHECKING:
    from postillon.clock import Clock


@dataclass(frozen=True)
class SendCandidate:
    # The caller's handle for the answer (a run id, a target index).
    key: Hashable
    contact_id: uuid.UUID
    channel: str = "email"
    marketing: bool = True
    quiet_hours: am.QuietHours | None = None


@dataclass(frozen=True)
class SendDecision:
    allowed: bool
    # When not allowed: the earliest moment the send may be tried again (None: the
    # quiet hours say skip, so there is none).
    retry_at: datetime | None = None
    # "cap_day", "cap_week", "quiet_hours" or "" when allowed.
    rule: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


class SendGate:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def decide(
        self, session: Session, candidates: Sequence[SendCandidate], *, now: datetime
    ) -> dict[Hashable, SendDecision]:
        """One decision per candidate, in a fixed number of queries for the batch."""
        # No caps and no quiet hours are applied yet: every send is allowed.
        return {candidate.key: SendDecision(allowed=True) for candidate in candidates}
