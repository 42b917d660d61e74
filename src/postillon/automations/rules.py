"""Rules: when a trigger event happens to a contact who matches the conditions, run the
actions. Run by the `automations` event consumer as events are processed, and by hand
on a segment or an import.

A batch of events is handled rule by rule, each step for all the rule's contacts at once:
the trigger's property filter (in Python, per event), the conditions (`FilterService.
evaluate` for every contact of the batch in one go), once-per-contact and cooldown (one
history query), then each action once for all firing targets. Every decision is written
to `automation_history` (fired, not matched, skipped, with the reason).

A firing is keyed `rule:<automation id>:<event id>:<contact id>`; the keys of what its
actions create (messages, webhook calls, score changes) derive from it, and an event
that has history for a rule already is not handled for it again, so a replayed batch
does nothing twice. An event caused by a rule's own actions (its `automation_chain`,
see `events.service.caused_by`) never fires that rule again.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations import model as am
from postillon.automations import rules_repository as repository
from postillon.automations.actions import ActionResult, ActionTarget, action_name
from postillon.automations.definitions import Definitions, Published
from postillon.automations.history import Entry, Outcome, record
from postillon.events.service import cause_chain
from postillon.filters.evaluate import matches_properties
from postillon.kit.ids import new_id
from postillon.models import Event

if TYPE_CHECKING:
    from postillon.automations.actions import ActionRunner
    from postillon.clock import Clock
    from postillon.filters.service import FilterService

# Events caused through this many automations in a row fire no further rule: whatever
# the rules do to one another, a chain of reactions ends.
MAX_CHAIN = 8


def event_payload(event: Event) -> dict[str, Any]:
    """The triggering event as actions, templates, webhooks and journeys see it."""
    return {
        "id": event.id,
        "name": event.name,
        "message_id": event.message_id,
        "occurred_at": event.occurred_at.isoformat(),
        "properties": event.properties or {},
    }


@dataclass(frozen=True)
class _Trigger:
    """One contact to consider for one rule: by an event, or by hand."""

    contact_id: uuid.UUID
    key: str
    event: dict[str, Any] | None = None

    @property
    def event_id(self) -> int | None:
        return self.event["id"] if self.event is not None else None


class RuleEngine:
    def __init__(self, clock: Clock, filters: FilterService, actions: ActionRunner) -> None:
        self.clock = clock
        self.filters = filters
        self.actions = actions

    def on_events(
        self, session: Session, definitions: Definitions, events: Sequence[Event], *, now: datetime
    ) -> int:
        """Fire the active rules these events trigger; returns how many firings."""
        by_name: dict[str, list[Event]] = {}
        for event in sorted(events, key=lambda e: e.id):
            if event.contact_id is not None:
                by_name.setdefault(event.name, []).append(event)
        fired = 0
        for name, named in by_name.items():
            for rule in definitions.rules_for(name):
                fired += self._on_rule_events(session, rule, named, now)
        return fired

    def run_for(
        self, session: Session, rule: Published, contact_ids: Sequence[uuid.UUID], *, now: datetime
    ) -> int:
        """Run a rule by hand for these contacts (a segment's members, an import's
        contacts): its conditions are checked, its trigger is not. Returns the firings."""
        run = new_id()
        triggers = [
            _Trigger(contact_id, f"rule:{rule.id}:run:{run}:{contact_id}")
            for contact_id in dict.fromkeys(contact_ids)
        ]
        return self._fire(session, rule, triggers, now, by_hand=True)

    def _on_rule_events(
        self, session: Session, rule: Published, events: Sequence[Event], now: datetime
    ) -> int:
        where = rule.rule.trigger.where
        matching = [
            e for e in events if where is None or matches_properties(where, e.properties or {}, now)
        ]
        if not matching:
            return 0
        seen = repository.rule_events_handled(
            session, rule.id, [(e.id, e.contact_id) for e in matching if e.contact_id]
        )
        triggers: list[_Trigger] = []
        guarded: list[Entry] = []
        for event in matching:
            assert event.contact_id is not None
            if (event.id, event.contact_id) in seen:
                continue  # handled before: a replayed batch
            chain = cause_chain(event.properties)
            reason = None
            if rule.key in chain:
                reason = f"not fired: the event was caused by this rule ({' → '.join(chain)})"
            elif len(chain) >= MAX_CHAIN:
                reason = f"not fired: caused by a chain of {len(chain)} automations"
            if reason is not None:
                guarded.append(
                    _entry(rule, event.contact_id, Outcome.skipped, reason, now, event.id)
                )
                continue
            key = f"rule:{rule.id}:{event.id}:{event.contact_id}"
            triggers.append(_Trigger(event.contact_id, key, event_payload(event)))
        record(session, guarded)
        return self._fire(session, rule, triggers, now, by_hand=False)

    def _fire(
        self,
        session: Session,
        rule: Published,
        triggers: Sequence[_Trigger],
        now: datetime,
        *,
        by_hand: bool,
    ) -> int:
        if not triggers:
            return 0
        tree = rule.rule
        # History in the order of the triggers, each trigger's entries together.
        entries: list[list[Entry]] = [[] for _ in triggers]
        contact_ids = {t.contact_id for t in triggers}
        matching = contact_ids
        if tree.conditions is not None:
            matching = self.filters.evaluate(session, tree.conditions, contact_ids)
        last_fired = (
            repository.last_fired(session, rule.id, matching)
            if tree.once_per_contact or tree.cooldown is not None
            else {}
        )
        firing: list[int] = []
        for position, trigger in enumerate(triggers):
            cid = trigger.contact_id
            if cid not in matching:
                reason = "the conditions did not hold"
                entries[position].append(
                    _entry(rule, cid, Outcome.not_matched, reason, now, trigger.event_id)
                )
                continue
            skip = _limited(tree, last_fired.get(cid), now)
            if skip is not None:
                entries[position].append(
                    _entry(rule, cid, Outcome.skipped, skip, now, trigger.event_id)
                )
                continue
            last_fired[cid] = now
            firing.append(position)

        results = self._run_actions(session, rule, [triggers[p] for p in firing], now)
        cause = "run by hand" if by_hand else None
        for index, position in enumerate(firing):
            trigger = triggers[position]
            done = [(i, r[index]) for i, r in enumerate(results)]
            entries[position].append(_fired_entry(rule, trigger, done, now, cause))
            entries[position].extend(
                _entry(
                    rule,
                    trigger.contact_id,
                    Outcome.skipped,
                    f"{action_name(tree.actions[i])}: {result.reason}",
                    now,
                    trigger.event_id,
                    step_id=f"actions[{i}]",
                    details={"key": trigger.key, **result.details},
                )
                for i, result in done
                if not result.done
            )
        record(session, [entry for group in entries for entry in group])
        return len(firing)

    def _run_actions(
        self, session: Session, rule: Published, firing: Sequence[_Trigger], now: datetime
    ) -> list[list[ActionResult]]:
        """Each action once for all firing targets, in the rule's order."""
        if not firing:
            return []
        targets = [ActionTarget(t.contact_id, t.key, t.event) for t in firing]
        return [
            self.actions.run(session, rule, action, targets, now=now, position=i)
            for i, action in enumerate(rule.rule.actions)
        ]


def _limited(rule: am.Rule, last: datetime | None, now: datetime) -> str | None:
    """Why once-per-contact or the cooldown keeps the rule from firing, if they do."""
    if last is None:
        return None
    if rule.once_per_contact:
        return f"once per contact: fired before, at {last:%Y-%m-%d %H:%M} UTC"
    if rule.cooldown is not None and last + rule.cooldown > now:
        until = last + rule.cooldown
        return (
            f"cooldown: fired at {last:%Y-%m-%d %H:%M} UTC, "
            f"not again before {until:%Y-%m-%d %H:%M} UTC"
        )
    return None


def _fired_entry(
    rule: Published,
    trigger: _Trigger,
    results: Sequence[tuple[int, ActionResult]],
    now: datetime,
    cause: str | None,
) -> Entry:
    actions = rule.rule.actions
    done = sum(1 for _, r in results if r.done)
    if trigger.event is not None:
        why = f"{trigger.event['name']} (event {trigger.event['id']})"
    else:
        why = cause or "by hand"
    summary = "; ".join(f"{action_name(actions[i])}: {r.reason}" for i, r in results)
    return _entry(
        rule,
        trigger.contact_id,
        Outcome.fired,
        f"{why}: {done} of {len(actions)} actions done — {summary}",
        now,
        trigger.event_id,
        details={
            "key": trigger.key,
            "actions": [
                {"action": action_name(actions[i]), "done": r.done, "reason": r.reason, **r.details}
                for i, r in results
            ],
        },
    )


def _entry(
    rule: Published,
    contact_id: uuid.UUID,
    outcome: Outcome,
    reason: str,
    now: datetime,
    event_id: int | None,
    *,
    step_id: str | None = None,
    details: dict[str, Any] | None = None,
) -> Entry:
    return Entry(
        contact_id=contact_id,
        automation_id=rule.id,
        version=rule.version,
        outcome=outcome,
        reason=reason,
        at=now,
        step_id=step_id,
        details=details or {},
        event_id=event_id,
    )
