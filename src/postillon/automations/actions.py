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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from postillon.automations import model as am
from postillon.automations.definitions import Published
from postillon.contacts.changes import ContactChanges
from postillon.contacts.upsert import Action, Mode
from postillon.errors import PostillonError
from postillon.scoring import repository as scoring_repository
from postillon.scoring.ledger import Change, Reason, apply_changes

if TYPE_CHECKING:
    from postillon.automations.collision import SendGate
    from postillon.automations.journeys.engine import JourneyEngine
    from postillon.clock import Clock
    from postillon.contacts.service import ContactService
    from postillon.lifecycle.service import LifecycleService
    from postillon.messages.service import MessageService
    from postillon.settings import Settings

# `contact_stage_changes.source` and consent sources hold at most 100 characters.
_SOURCE_LENGTH = 100


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


def change_source(automation: Published) -> str:
    """The source recorded with the changes an automation makes (`automation:<key>`)."""
    return f"automation:{automation.key}"[:_SOURCE_LENGTH]


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
        position: int | None = None,
    ) -> list[ActionResult]:
        """Run `action` for every target, in the caller's transaction; one result each,
        in the order of `targets`.

        `position` is the action's index among its rule's (or update step's) actions,
        part of the keys of what it creates; by default it is found in the tree."""
        if not targets:
            return []
        index = position if position is not None else action_position(automation, action, targets)
        handler = self._handler(action)
        return handler(session, automation, action, targets, now, index)

    def _handler(self, action: am.Action) -> Callable[..., list[ActionResult]]:
        if isinstance(action, am.TagAction):
            return self._tags
        if isinstance(action, am.SetAttributesAction):
            return self._attributes
        if isinstance(action, am.ScoreAction):
            return self._score
        if isinstance(action, am.StageAction):
            return self._stage
        raise NotImplementedError(type(action).__name__)

    # --- contact updates ---

    def _tags(
        self,
        session: Session,
        automation: Published,
        action: am.TagAction,
        targets: Sequence[ActionTarget],
        now: datetime,
        index: int,
    ) -> list[ActionResult]:
        def changes(target: ActionTarget) -> ContactChanges:
            item = ContactChanges(contact_id=target.contact_id)
            for tag in action.add:
                item.add_tag(tag)
            for tag in action.remove:
                item.remove_tag(tag)
            return item

        words = [f"+{t}" for t in action.add] + [f"-{t}" for t in action.remove]
        return self._update_contacts(
            session, automation, targets, changes, done=f"tags {' '.join(words)}"
        )

    def _attributes(
        self,
        session: Session,
        automation: Published,
        action: am.SetAttributesAction,
        targets: Sequence[ActionTarget],
        now: datetime,
        index: int,
    ) -> list[ActionResult]:
        def changes(target: ActionTarget) -> ContactChanges:
            item = ContactChanges(contact_id=target.contact_id)
            for name, value in action.values.items():
                item.set_attribute(name, value)
            return item

        return self._update_contacts(
            session,
            automation,
            targets,
            changes,
            done=f"attributes set: {', '.join(sorted(action.values))}",
        )

    def _update_contacts(
        self,
        session: Session,
        automation: Published,
        targets: Sequence[ActionTarget],
        changes: Callable[[ActionTarget], ContactChanges],
        *,
        done: str,
    ) -> list[ActionResult]:
        """One `apply_changes` for all targets: the contacts upsert records the events
        (`tag_added`, `attribute_changed` …) and queues the segment refresh."""
        outcomes = self.contacts.apply(
            session,
            [changes(t) for t in targets],
            mode=Mode.update,
            source=change_source(automation),
            all_or_nothing=False,
        )
        results: list[ActionResult] = []
        for target, outcome in zip(targets, outcomes, strict=True):
            if outcome.error is not None:
                results.append(ActionResult(target.contact_id, False, outcome.error.message))
            elif outcome.action is Action.unchanged:
                results.append(ActionResult(target.contact_id, True, f"{done} (unchanged)"))
            else:
                results.append(ActionResult(target.contact_id, True, done))
        return results

    def _score(
        self,
        session: Session,
        automation: Published,
        action: am.ScoreAction,
        targets: Sequence[ActionTarget],
        now: datetime,
        index: int,
    ) -> list[ActionResult]:
        """Points through the ledger; each change's note is its key, so an action run
        again for the same target (a replayed batch) gives nothing twice."""
        model = scoring_repository.model_by_key(session, action.model)
        if model is None:
            return _all_failed(targets, f"no score model {action.model!r}")
        keys = [f"{t.key}:score:{index}" for t in targets]
        given = scoring_repository.automation_notes_present(session, keys)
        changes: list[Change] = []
        fresh: set[str] = set()
        for target, key in zip(targets, keys, strict=True):
            if key in given or key in fresh:
                continue
            fresh.add(key)
            changes.append(
                Change(
                    contact_id=target.contact_id,
                    model=model,
                    delta=action.points,
                    reason=Reason.automation,
                    event_id=_event_id(target),
                    note=key,
                )
            )
        applied = apply_changes(session, changes, now=now)
        words = f"{action.points:+d} points ({model.key})"
        results: list[ActionResult] = []
        for target, key in zip(targets, keys, strict=True):
            score = applied.scores.get((model.key, target.contact_id))
            if key in given:
                results.append(ActionResult(target.contact_id, True, f"{words} given before"))
            elif action.points == 0:
                results.append(ActionResult(target.contact_id, True, "0 points: nothing to do"))
            elif score is None:
                results.append(ActionResult(target.contact_id, False, "no such contact"))
            else:
                results.append(
                    ActionResult(target.contact_id, True, words, {"score": score, "key": key})
                )
        return results

    def _stage(
        self,
        session: Session,
        automation: Published,
        action: am.StageAction,
        targets: Sequence[ActionTarget],
        now: datetime,
        index: int,
    ) -> list[ActionResult]:
        contact_ids = {t.contact_id for t in targets}
        try:
            moves = self.lifecycle.change_stage(
                session, contact_ids, action.stage, change_source(automation)
            )
        except PostillonError as exc:
            return _all_failed(targets, exc.message)
        moved = {m.contact_id: m for m in moves}
        present = (
            scoring_repository.existing_contacts(session, contact_ids - moved.keys()) | moved.keys()
        )
        results: list[ActionResult] = []
        for target in targets:
            move = moved.get(target.contact_id)
            if move is not None:
                reason = f"stage {move.from_stage or 'none'} → {move.to_stage}"
                results.append(
                    ActionResult(
                        target.contact_id,
                        True,
                        reason,
                        {"from": move.from_stage, "to": move.to_stage},
                    )
                )
            elif target.contact_id in present:
                results.append(
                    ActionResult(target.contact_id, True, f"already in stage {action.stage}")
                )
            else:
                results.append(ActionResult(target.contact_id, False, "no such contact"))
        return results


def action_position(
    automation: Published, action: am.Action, targets: Sequence[ActionTarget]
) -> int:
    """The index of `action` among its rule's actions or its update step's actions (by
    identity first, so two equal actions keep different keys)."""
    tree = automation.tree
    actions: tuple[am.Action, ...] = ()
    if isinstance(tree, am.Rule):
        actions = tree.actions
    else:
        step_id = targets[0].step_id
        step = next((s for s in tree.steps if s.id == step_id), None)
        if isinstance(step, am.UpdateStep):
            actions = step.actions
    for i, candidate in enumerate(actions):
        if candidate is action:
            return i
    for i, candidate in enumerate(actions):
        if candidate == action:
            return i
    return 0


def _event_id(target: ActionTarget) -> int | None:
    value = (target.event or {}).get("id")
    return value if isinstance(value, int) else None


def _all_failed(targets: Sequence[ActionTarget], reason: str) -> list[ActionResult]:
    return [ActionResult(t.contact_id, False, reason) for t in targets]
