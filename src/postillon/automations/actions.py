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

from postillon.automations import actions_repository
from postillon.automations import model as am
from postillon.automations.collision import SendCandidate, SendGate
from postillon.automations.definitions import DefinitionStore, Published
from postillon.automations.notify import OwnerNotifier
from postillon.automations.webhooks import WebhookOutbox
from postillon.contacts.changes import ContactChanges
from postillon.contacts.upsert import Action, Mode
from postillon.errors import PostillonError
from postillon.events.service import cause_chain, caused_by
from postillon.messages.service import MessageRequest
from postillon.scoring import repository as scoring_repository
from postillon.scoring.ledger import Change, Reason, apply_changes

if TYPE_CHECKING:
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
        # Set by the runtime once the engine exists (the engine runs actions too), and
        # the published definitions (journey actions name journeys by key).
        self.journeys: JourneyEngine | None = None
        self.definitions: DefinitionStore | None = None
        self.notifier = OwnerNotifier(messages, public_url=settings.public_url)
        self.webhooks = WebhookOutbox(settings)

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
        # What the action causes carries the chain of automations that led to it (see
        # `events.service.caused_by`): targets are grouped by their event's chain.
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, target in enumerate(targets):
            chain = cause_chain((target.event or {}).get("properties"))
            groups.setdefault(chain, []).append(i)
        results: list[ActionResult | None] = [None] * len(targets)
        for chain, indexes in groups.items():
            with caused_by(session, (*chain, automation.key)):
                done = handler(
                    session, automation, action, [targets[i] for i in indexes], now, index
                )
            for i, result in zip(indexes, done, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _handler(self, action: am.Action) -> Callable[..., list[ActionResult]]:
        if isinstance(action, am.TagAction):
            return self._tags
        if isinstance(action, am.SetAttributesAction):
            return self._attributes
        if isinstance(action, am.ScoreAction):
            return self._score
        if isinstance(action, am.StageAction):
            return self._stage
        if isinstance(action, am.SendAction):
            return self._send
        if isinstance(action, am.JourneyAction):
            return self._journey
        if isinstance(action, am.NotifyAction):
            return self._notify
        return self._webhook

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

    # --- messages, journeys, notifications, webhooks ---

    def _send(
        self,
        session: Session,
        automation: Published,
        action: am.SendAction,
        targets: Sequence[ActionTarget],
        now: datetime,
        index: int,
    ) -> list[ActionResult]:
        """A message per target behind the send gate (caps, quiet hours): a held send is
        not made (a rule does not wait; a journey's send step has its own policy)."""
        template = actions_repository.template_by_key(session, action.template)
        if template is None:
            return _all_failed(targets, f"no template {action.template!r}")
        transactional = getattr(automation.tree, "transactional", False)
        marketing = template.kind == "marketing" and not transactional
        decisions = self.send_gate.decide(
            session,
            [
                SendCandidate(
                    key=i, contact_id=t.contact_id, channel=action.channel, marketing=marketing
                )
                for i, t in enumerate(targets)
            ],
            now=now,
        )
        requests: dict[int, MessageRequest] = {}
        results: dict[int, ActionResult] = {}
        for i, target in enumerate(targets):
            decision = decisions[i]
            if not decision.allowed:
                details = {"rule": decision.rule, **_json_safe(decision.details)}
                if decision.retry_at is not None:
                    details["retry_at"] = decision.retry_at.isoformat()
                results[i] = ActionResult(
                    target.contact_id, False, f"held: {decision.reason}", details
                )
                continue
            properties = (target.event or {}).get("properties") or {}
            requests[i] = MessageRequest(
                contact_id=target.contact_id,
                template_id=template.id,
                dedupe_key=f"{target.key}:send:{index}",
                source="journey" if target.run_id is not None else "rule",
                context={**properties, **action.context},
                automation_id=automation.id,
                step=target.step_id,
            )
        enqueued = self.messages.enqueue(session, list(requests.values()))
        without = set(enqueued.without_address)
        for i, request in requests.items():
            message_id = enqueued.message_ids.get(request.dedupe_key)
            if message_id is None or request.contact_id in without:
                results[i] = ActionResult(
                    request.contact_id, False, "the contact has no email address"
                )
            else:
                results[i] = ActionResult(
                    request.contact_id,
                    True,
                    f"{template.key} queued",
                    {"message_id": str(message_id), "template": template.key},
                )
        return [results[i] for i in range(len(targets))]

    def _journey(
        self,
        session: Session,
        automation: Published,
        action: am.JourneyAction,
        targets: Sequence[ActionTarget],
        now: datetime,
        index: int,
    ) -> list[ActionResult]:
        """Add to a journey (it enters as by its trigger, under its entry policy; the
        entry key is the target's key, so a replayed firing enters nothing twice), or
        remove from it (the run ends as exited)."""
        from postillon.automations.journeys.engine import Entrant

        assert self.journeys is not None and self.definitions is not None, "set by the runtime"
        definitions = self.definitions.load(session)
        journey = definitions.by_key.get(action.journey)
        if journey is None or not isinstance(journey.tree, am.Journey):
            return _all_failed(targets, f"no published journey {action.journey!r}")
        if action.remove:
            removed = self.journeys.remove(
                session,
                journey,
                list(dict.fromkeys(t.contact_id for t in targets)),
                now=now,
                reason=f"removed by {automation.key}",
            )
            reason = f"removed from journey {journey.key}"
            return [
                ActionResult(t.contact_id, True, reason, {"removed_runs": removed}) for t in targets
            ]
        kind = "rule" if isinstance(automation.tree, am.Rule) else "journey"
        source = f"{kind}:{automation.key}"[:_SOURCE_LENGTH]
        entrants = [
            Entrant(contact_id=t.contact_id, entry_key=t.key, source=source, event=t.event)
            for t in targets
        ]
        entry = self.journeys.enter(session, definitions, journey, entrants, now=now)
        return [
            ActionResult(
                t.contact_id, False, f"not added to {journey.key}: {entry.refused[t.contact_id]}"
            )
            if t.contact_id in entry.refused
            else ActionResult(t.contact_id, True, f"added to journey {journey.key}")
            for t in targets
        ]

    def _notify(
        self,
        session: Session,
        automation: Published,
        action: am.NotifyAction,
        targets: Sequence[ActionTarget],
        now: datetime,
        index: int,
    ) -> list[ActionResult]:
        sent = self.notifier.notify(session, automation, action, targets, now=now, index=index)
        return [
            ActionResult(
                t.contact_id, True, f"notified {', '.join(to)}", {"to": to, "messages": ids}
            )
            if to
            else ActionResult(
                t.contact_id, False, "nobody to notify: no owner and no fallback address"
            )
            for t, (to, ids) in zip(targets, sent, strict=True)
        ]

    def _webhook(
        self,
        session: Session,
        automation: Published,
        action: am.WebhookAction,
        targets: Sequence[ActionTarget],
        now: datetime,
        index: int,
    ) -> list[ActionResult]:
        ids = self.webhooks.queue(session, automation, action, targets, now=now, index=index)
        return [
            ActionResult(
                t.contact_id, True, f"webhook to {action.url} queued", {"delivery_id": str(d)}
            )
            if d is not None
            else ActionResult(t.contact_id, False, "no such contact")
            for t, d in zip(targets, ids, strict=True)
        ]


_ACTION_NAMES: dict[type, str] = {
    am.SendAction: "send",
    am.TagAction: "tags",
    am.SetAttributesAction: "set",
    am.ScoreAction: "score",
    am.StageAction: "stage",
    am.JourneyAction: "journey",
    am.NotifyAction: "notify",
    am.WebhookAction: "webhook",
}


def action_name(action: am.Action) -> str:
    """A short name of the action's kind for history and explain."""
    return _ACTION_NAMES[type(action)]


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


def _json_safe(details: dict[str, Any]) -> dict[str, Any]:
    """Details as history can store them (times as text)."""
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in details.items()}


def _all_failed(targets: Sequence[ActionTarget], reason: str) -> list[ActionResult]:
    return [ActionResult(t.contact_id, False, reason) for t in targets]
