"""Rules run by the `automations` event consumer: trigger and property filter, conditions,
once per contact and cooldown, actions for all targets at once, history with reasons,
replayed batches and loops."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from postillon.clock import VirtualClock
from postillon.events.repository import events_in_ranges
from postillon.models import Automation, AutomationHistory, Event
from postillon.runtime import Runtime
from tests.automations.rules_support import history, new_contact, publish, run_until_idle
from tests.scoring.support import track

DEMO = {
    "kind": "rule",
    "key": "demo-request",
    "name": "Demo requested",
    "trigger": {
        "event": "demo_requested",
        "where": {"property": "plan", "op": "=", "value": "pro"},
    },
    "conditions": {"tag": "lead"},
    "actions": [{"tags_add": "hot"}, {"score": 5}],
}

ANYONE = {k: v for k, v in DEMO.items() if k != "conditions"}


def outcomes(runtime: Runtime, contact_id: uuid.UUID) -> list[tuple[str, str]]:
    with runtime.database.transaction(read_only=True) as session:
        return [(h.outcome, h.reason) for h in history(session, contact_id)]


def tags(runtime: Runtime, contact_id: uuid.UUID) -> list[str]:
    with runtime.database.transaction(read_only=True) as session:
        return runtime.contacts.get(session, contact_id).tags


def score(runtime: Runtime, contact_id: uuid.UUID) -> int:
    with runtime.database.transaction(read_only=True) as session:
        return runtime.contacts.get(session, contact_id).score


def test_a_rule_fires_for_matching_events_of_contacts_who_meet_its_conditions(
    runtime: Runtime,
) -> None:
    publish(runtime, DEMO)
    ann = new_contact(runtime, "ann@example.com", tags=["lead"])
    bob = new_contact(runtime, "bob@example.com")  # not a lead
    carl = new_contact(runtime, "carl@example.com", tags=["lead"])
    run_until_idle(runtime)
    [event_id] = track(runtime, ann, ("demo_requested", {"plan": "pro"}))
    track(runtime, bob, ("demo_requested", {"plan": "pro"}))
    track(runtime, carl, ("demo_requested", {"plan": "free"}))  # the trigger's filter
    track(runtime, None, ("demo_requested", {"plan": "pro"}))  # anonymous: skipped
    run_until_idle(runtime)

    assert tags(runtime, ann) == ["hot", "lead"] and score(runtime, ann) == 5
    assert tags(runtime, bob) == [] and score(runtime, bob) == 0
    assert tags(runtime, carl) == ["lead"]
    [(outcome, reason)] = outcomes(runtime, ann)
    assert outcome == "fired"
    assert reason.startswith(f"demo_requested (event {event_id}): 2 of 2 actions done")
    assert outcomes(runtime, bob) == [("not_matched", "the conditions did not hold")]
    assert outcomes(runtime, carl) == []
    with runtime.database.transaction(read_only=True) as session:
        [fired] = history(session, ann)
        assert fired.event_id == event_id
        rule_id = fired.automation_id
        assert fired.details["key"] == f"rule:{rule_id}:{event_id}:{ann}"
        assert [a["action"] for a in fired.details["actions"]] == ["tags", "score"]
        # The tag it added is on the timeline, caused by the rule.
        [(added,)] = session.execute(
            select(Event.properties)
            .where(Event.contact_id == ann, Event.name == "tag_added")
            .where(Event.properties["tag"].as_string() == "hot")
        ).all()
        assert added["automation"] == "demo-request"
        assert added["automation_chain"] == ["demo-request"]


def test_once_per_contact_fires_for_the_first_event_only(runtime: Runtime) -> None:
    publish(runtime, {**ANYONE, "once_per_contact": True})
    ann = new_contact(runtime)
    track(runtime, ann, ("demo_requested", {"plan": "pro"}), ("demo_requested", {"plan": "pro"}))
    run_until_idle(runtime)
    track(runtime, ann, ("demo_requested", {"plan": "pro"}))
    run_until_idle(runtime)
    assert score(runtime, ann) == 5
    found = outcomes(runtime, ann)
    assert [o for o, _ in found] == ["fired", "skipped", "skipped"]
    assert found[1][1].startswith("once per contact: fired before, at 2026-01-05 09:00 UTC")


def test_a_cooldown_keeps_the_rule_quiet_for_a_while(runtime: Runtime, clock: VirtualClock) -> None:
    publish(runtime, {**ANYONE, "cooldown": "1d"})
    ann = new_contact(runtime)
    for hours in (0, 2, 23, 1):  # at 0 h, 2 h, 25 h, 26 h
        clock.advance(timedelta(hours=hours))
        track(runtime, ann, ("demo_requested", {"plan": "pro"}))
        run_until_idle(runtime)
    found = outcomes(runtime, ann)
    assert [o for o, _ in found] == ["fired", "skipped", "fired", "skipped"]
    assert found[1][1] == (
        "cooldown: fired at 2026-01-05 09:00 UTC, not again before 2026-01-06 09:00 UTC"
    )
    assert score(runtime, ann) == 10


def test_a_replayed_batch_does_nothing_twice(runtime: Runtime) -> None:
    publish(runtime, ANYONE)
    ann = new_contact(runtime)
    ids = track(runtime, ann, ("demo_requested", {"plan": "pro"}))
    run_until_idle(runtime)
    with runtime.database.transaction() as session:
        events = events_in_ranges(session, [[ids[0], ids[0]]])
        definitions = runtime.definitions.load(session)
        assert runtime.rules.on_events(session, definitions, events, now=runtime.clock.now()) == 0
        count = select(func.count()).select_from(AutomationHistory)
        assert session.scalar(count) == 1
    assert score(runtime, ann) == 5


def test_a_paused_rule_does_not_fire(runtime: Runtime) -> None:
    publish(runtime, ANYONE, status="paused")
    ann = new_contact(runtime)
    track(runtime, ann, ("demo_requested", {"plan": "pro"}))
    run_until_idle(runtime)
    assert outcomes(runtime, ann) == []


def test_rules_that_trigger_one_another_stop_when_the_chain_comes_back(
    runtime: Runtime,
) -> None:
    # a → b → a …: each rule's tag change triggers the other.
    publish(
        runtime,
        {
            "kind": "rule",
            "key": "a-to-b",
            "name": "a to b",
            "trigger": {"tag_added": "a"},
            "actions": [{"tags_remove": "a"}, {"tags_add": "b"}],
        },
    )
    publish(
        runtime,
        {
            "kind": "rule",
            "key": "b-to-a",
            "name": "b to a",
            "trigger": {"tag_added": "b"},
            "actions": [{"tags_remove": "b"}, {"tags_add": "a"}],
        },
    )
    # A rule reacting to every tag, adding one itself, does not fire on its own tag.
    publish(
        runtime,
        {
            "kind": "rule",
            "key": "touch",
            "name": "touch",
            "trigger": {"event": "tag_added"},
            "actions": [{"tags_add": "touched"}],
        },
    )
    ann = new_contact(runtime, tags=["a"])
    run_until_idle(runtime)
    assert tags(runtime, ann) == ["a", "touched"]
    with runtime.database.transaction(read_only=True) as session:
        rows = session.execute(
            select(Automation.key, AutomationHistory.outcome, AutomationHistory.reason)
            .join(Automation, Automation.id == AutomationHistory.automation_id)
            .where(AutomationHistory.contact_id == ann, AutomationHistory.step_id.is_(None))
        ).all()
    by_rule: dict[str, list[str]] = {}
    for key, outcome, reason in rows:
        by_rule.setdefault(key, []).append(outcome if outcome == "fired" else reason)
    # a → b → a: the second a is not a-to-b's business any more.
    assert sorted(by_rule["a-to-b"]) == [
        "fired",
        "not fired: the event was caused by this rule (a-to-b → b-to-a)",
    ]
    assert by_rule["b-to-a"] == ["fired"]
    # touch reacts to the tags the others add (a, b, a), never to its own.
    assert sorted(by_rule["touch"]) == [
        "fired",
        "fired",
        "fired",
        "not fired: the event was caused by this rule (touch)",
    ]


def test_a_rule_run_by_hand_checks_its_conditions_not_its_trigger(runtime: Runtime) -> None:
    rule = publish(runtime, DEMO)
    ann = new_contact(runtime, "ann@example.com", tags=["lead"])
    bob = new_contact(runtime, "bob@example.com")
    with runtime.database.transaction() as session:
        assert runtime.rules.run_for(session, rule, [ann, bob, ann], now=runtime.clock.now()) == 1
    assert tags(runtime, ann) == ["hot", "lead"]
    [(outcome, reason)] = outcomes(runtime, ann)
    assert (outcome, reason.split(":")[0]) == ("fired", "run by hand")
    assert outcomes(runtime, bob) == [("not_matched", "the conditions did not hold")]
