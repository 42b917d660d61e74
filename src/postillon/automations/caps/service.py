"""Frequency caps as the marketer sets them: one row per channel, read by the `SendGate`."""

from __future__ import annotations

from sqlalchemy.orm import Session

from postillon.automations.caps import repository
from postillon.automations.caps.schemas import FrequencyCapOut
from postillon.clock import Clock
from postillon.errors import FieldProblem, InvalidInput

# The channels a message can go through (email now; sms and push are planned).
CHANNELS = ("email", "sms", "push")
# A cap above this is a typo, not a policy.
LARGEST_CAP = 1000


class FrequencyCapService:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def list(self, session: Session) -> list[FrequencyCapOut]:
        """The channels with caps, by name."""
        return [
            FrequencyCapOut(
                channel=cap.channel,
                per_day=cap.per_day,
                per_week=cap.per_week,
                updated_at=cap.updated_at,
            )
            for cap in repository.all_caps(session)
        ]

    def set(
        self, session: Session, channel: str, *, per_day: int | None, per_week: int | None
    ) -> FrequencyCapOut:
        """Replace the channel's caps; None removes a cap (both: the channel has none)."""
        problems: list[FieldProblem] = []
        if channel not in CHANNELS:
            problems.append(FieldProblem("channel", f"must be one of {', '.join(CHANNELS)}"))
        for name, value in (("per_day", per_day), ("per_week", per_week)):
            if value is not None and not 1 <= value <= LARGEST_CAP:
                problems.append(
                    FieldProblem(name, f"must be 1 to {LARGEST_CAP}, or null for no cap")
                )
        if not problems and per_day is not None and per_week is not None and per_day > per_week:
            problems.append(FieldProblem("per_day", "must not be more than per_week"))
        if problems:
            raise InvalidInput.of(problems)
        if per_day is None and per_week is None:
            repository.delete_cap(session, channel)
            return FrequencyCapOut(channel=channel, per_day=None, per_week=None, updated_at=None)
        now = self.clock.now()
        repository.save_cap(session, channel, per_day=per_day, per_week=per_week, now=now)
        return FrequencyCapOut(channel=channel, per_day=per_day, per_week=per_week, updated_at=now)
