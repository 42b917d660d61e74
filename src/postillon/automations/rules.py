"""Rules: when a trigger event happens to a contact who matches the conditions, run the
actions. Run by the `automations` event consumer as events are processed, and by hand
on a segment or an import.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from postillon.automations.definitions import Definitions, Published
from postillon.models import Event

if TYPE_CHECKING:
    from postillon.automations.actions import ActionRunner
    from postillon.clock import Clock
    from postillon.filters.service import FilterService


class RuleEngine:
    def __init__(self, clock: Clock, filters: FilterService, actions: ActionRunner) -> None:
        self.clock = clock
        self.filters = filters
        self.actions = actions

    def on_events(
        self, session: Session, definitions: Definitions, events: Sequence[Event], *, now: datetime
    ) -> int:
        """Fire the active rules these events trigger; returns how many firings."""
        raise NotImplementedError

    def run_for(
        self, session: Session, rule: Published, contact_ids: Sequence[uuid.UUID], *, now: datetime
    ) -> int:
        """Run a rule by hand for these contacts (a segment's members, an import's
        contacts): its conditions are checked, its trigger is not."""
        raise NotImplementedError
