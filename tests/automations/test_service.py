"""Rules and journeys as documents: drafts checked against what exists, versions,
statuses, run migration and archiving, and what `explain` tells about a contact."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from postillon.automations import history
from postillon.automations import model as am
from postillon.clock import VirtualClock
from postillon.errors import Conflict, InvalidInput, NotFound
from postillon.models import AutomationHistory, AutomationVersion
from postillon.runtime import Runtime
from tests.automations.support import (
    ABANDONED_CART,
    LEAD_RULE,
    add_contact,
    add_run,
    add_segment,
    add_templates,
    automation_id,
    record,
    runs_of,
)

# Version 2 of the abandoned cart: the second reminder is gone, a final step is new.
ABANDONED_CART_V2 = (
    ABANDONED_CART.replace("  - {id: second, send: {template: cart-reminder-2}}\n", "")
    .replace("name: Abandoned cart", "name: Abandoned cart (shorter)")
    .replace("  - {id: done, exit: {}}\n", "  - {id: done, exit: {}}\n  - {id: last, exit: {}}\n")
)


def problems(error: pytest.ExceptionInfo[InvalidInput]) -> list[tuple[str, str]]:
    return [(p.location, p.message) for p in error.value.problems]


def test_a_draft_is_saved_as_written_and_saved_again_in_place(runtime: Runtime) -> None:
    add_templates(runtime)
    with runtime.database.transaction() as session:
        saved, created = runtime.automations.save(
            session, ABANDONED_CART, source_name="abandoned-cart.yaml"
        )
    assert created
    assert (saved.key, saved.kind, saved.status, saved.published_version) == (
        "abandoned-cart",
        "journey",
        "draft",
        None,
    )
    assert saved.draft_source == ABANDONED_CART
    assert saved.draft == yaml.safe_load(ABANDONED_CART)
    assert saved.unpublished_changes
    assert saved.runs == {}

    with runtime.database.transaction() as session:
        again, created = runtime.automations.save(session, ABANDONED_CART_V2)
        assert not created
        assert again.id == saved.id
        assert again.name == "Abandoned cart (shorter)"
        assert runtime.automations.get(session, "abandoned-cart").draft_source == ABANDONED_CART_V2


def test_json_documents_are_kept_as_readable_json(runtime: Runtime) -> None:
    add_templates(runtime)
    doc = yaml.safe_load(LEAD_RULE)
    with runtime.database.transaction() as session:
        saved, _ = runtime.automations.save(session, doc)
    assert saved.draft == doc
    assert yaml.safe_load(saved.draft_source) == doc
    assert saved.draft_source.startswith('{\n  "kind": "rule"')


def test_names_that_do_not_exist_are_problems_with_line_and_path(runtime: Runtime) -> None:
    add_templates(runtime)
    text = ABANDONED_CART.replace("send: cart-reminder}", "send: cart-remindr}").replace(
        "if: {tag: vip}", "if: {in_segment: vips}"
    )
    with runtime.database.transaction() as session, pytest.raises(InvalidInput) as caught:
        runtime.automations.save(session, text, source_name="abandoned-cart.yaml")
    assert problems(caught) == [
        (
            "abandoned-cart.yaml line 14: steps[1].send",
            "no template has the key 'cart-remindr' (did you mean 'cart-reminder'?)",
        ),
        ("abandoned-cart.yaml line 19: steps[4].if.in_segment", "no segment 'vips'"),
    ]
    with runtime.database.transaction() as session:
        assert runtime.automations.list_automations(session).items == []

    add_segment(runtime, "vips")
    with runtime.database.transaction() as session:
        runtime.automations.save(
            session, text.replace("cart-remindr", "cart-reminder"), source_name="x.yaml"
        )


def test_stages_score_models_journeys_and_date_attributes_are_checked(runtime: Runtime) -> None:
    add_templates(runtime)
    add_contact(runtime, attributes={"birthday": "1990-04-01", "plan": "pro"})
    rule = LEAD_RULE.replace("stage: mql", "stage: marketing-qualified") + (
        "  - {score: {points: 5, model: loyalty}}\n  - {journey_add: onboarding}\n"
    )
    with runtime.database.transaction() as session, pytest.raises(InvalidInput) as caught:
        runtime.automations.save(session, rule, source_name="rule.yaml")
    assert [location for location, _ in problems(caught)] == [
        "rule.yaml line 9: actions[1].stage",
        "rule.yaml line 11: actions[3].score.model",
        "rule.yaml line 12: actions[4].journey_add",
    ]
    birthday = (
        "kind: journey\nkey: birthday\nname: Birthday\n"
        "trigger: {date: {attribute: plan}}\nsteps: [{id: mail, send: vip}]\n"
    )
    with runtime.database.transaction() as session, pytest.raises(InvalidInput) as caught:
        runtime.automations.save(session, birthday, source_name="birthday.yaml")
    assert problems(caught) == [
        (
            "birthday.yaml line 4: trigger.date.attribute",
            "attribute 'plan' holds string values; a date attribute is needed",
        )
    ]
    with runtime.database.transaction() as session:
        runtime.automations.save(session, birthday.replace("plan", "birthday"))


def test_a_journey_may_name_itself_and_journeys_saved_with_it(runtime: Runtime) -> None:
    add_templates(runtime)
    text = ABANDONED_CART.replace(
        "  - {id: done, exit: {}}",
        "  - {id: done, move_to: customers}\n  - {id: again, move_to: abandoned-cart}",
    )
    with runtime.database.transaction() as session, pytest.raises(InvalidInput) as caught:
        runtime.automations.save(session, text)
    assert problems(caught) == [
        ("document line 21: steps[6].move_to", "no journey has the key 'customers'")
    ]
    with runtime.database.transaction() as session:
        runtime.automations.save(session, text, also_journeys={"customers"})


def test_the_kind_of_a_key_cannot_change(runtime: Runtime) -> None:
    add_templates(runtime)
    with runtime.database.transaction() as session:
        runtime.automations.save(session, LEAD_RULE)
    as_journey = ABANDONED_CART.replace("key: abandoned-cart", "key: lead-to-mql")
    with runtime.database.transaction() as session, pytest.raises(Conflict) as caught:
        runtime.automations.save(session, as_journey)
    assert "'lead-to-mql' is the key of a rule; a journey needs another key" in caught.value.message
    with runtime.database.transaction() as session, pytest.raises(Conflict):
        runtime.automations.validate(session, as_journey)


def test_the_key_given_beside_a_document_must_be_its_key(runtime: Runtime) -> None:
    add_templates(runtime)
    doc = yaml.safe_load(LEAD_RULE)
    with runtime.database.transaction() as session, pytest.raises(InvalidInput) as caught:
        runtime.automations.save(session, doc, key="other")
    assert problems(caught) == [("key", "must be 'other', the key in the address")]
    del doc["key"]
    with runtime.database.transaction() as session:
        saved, _ = runtime.automations.save(session, doc, key="from-the-address")
    assert saved.key == "from-the-address"
    assert saved.draft["key"] == "from-the-address"


def test_publishing_makes_versions_that_the_engine_loads(runtime: Runtime) -> None:
    add_templates(runtime)
    with runtime.database.transaction() as session:
        runtime.automations.save(session, ABANDONED_CART)
        assert runtime.definitions.load(session).by_key == {}
        first = runtime.automations.publish(session, "abandoned-cart")
    assert (first.version, first.new_version, first.status) == (1, True, "active")
    assert first.message == "journey abandoned-cart: version 1 published"

    with runtime.database.transaction() as session:
        published = runtime.definitions.load(session).by_key["abandoned-cart"]
        assert (published.version, published.status) == (1, "active")
        assert [
            p.key for p in runtime.definitions.load(session).journeys_for("cart_abandoned")
        ] == ["abandoned-cart"]
        again = runtime.automations.publish(session, "abandoned-cart")
    assert (again.version, again.new_version) == (1, False)
    assert "no new version" in again.message

    with runtime.database.transaction() as session:
        runtime.automations.save(session, ABANDONED_CART_V2)
        assert runtime.automations.get(session, "abandoned-cart").unpublished_changes
        second = runtime.automations.publish(session, "abandoned-cart")
        assert not runtime.automations.get(session, "abandoned-cart").unpublished_changes
    assert (second.version, second.new_version, second.migrated_runs) == (2, True, 0)

    with runtime.database.transaction() as session:
        definitions = runtime.definitions.load(session)
        current = definitions.by_key["abandoned-cart"]
        assert current.version == 2
        assert current.journey.name == "Abandoned cart (shorter)"
        older = definitions.version(session, current.id, 1)
        assert isinstance(older, am.Journey)
        assert "second" in [s.id for s in older.steps]
        versions = runtime.automations.versions(session, "abandoned-cart")
    assert [v.version for v in versions] == [2, 1]
    assert versions[1].source == ABANDONED_CART


def test_publish_with_migrate_moves_runs_whose_step_still_exists(
    runtime: Runtime, clock: VirtualClock
) -> None:
    add_templates(runtime)
    contacts = [add_contact(runtime, f"c{i}@example.com") for i in range(5)]
    now = clock.now()
    with runtime.database.transaction() as session:
        runtime.automations.save(session, ABANDONED_CART)
        runtime.automations.publish(session, "abandoned-cart")
        journey = automation_id(session, "abandoned-cart")
        common: dict[str, Any] = {"journey_id": journey, "version": 1, "entered_at": now}
        on_reminder = add_run(session, contact_id=contacts[0], step_id="reminder", **common)
        on_second = add_run(session, contact_id=contacts[1], step_id="second", **common)
        waiting = add_run(
            session, contact_id=contacts[2], step_id="bought", state="waiting", **common
        )
        queued = add_run(
            session, contact_id=contacts[3], step_id="wait-1h", state="queued", **common
        )
        ended = add_run(
            session,
            contact_id=contacts[4],
            step_id=None,
            state="completed",
            ended_at=now,
            **common,
        )
    clock.advance(timedelta(hours=1))
    with runtime.database.transaction() as session:
        runtime.automations.save(session, ABANDONED_CART_V2)
        result = runtime.automations.publish(session, "abandoned-cart", migrate=True)
    assert (result.version, result.migrated_runs) == (2, 2)
    assert result.message.endswith("2 run(s) moved to version 2")
    with runtime.database.transaction() as session:
        versions = {r.id: r.version for r in runs_of(session, journey)}
        assert versions == {on_reminder: 2, waiting: 2, on_second: 1, queued: 1, ended: 1}
        entries = session.scalars(
            select(AutomationHistory).where(AutomationHistory.automation_id == journey)
        ).all()
        assert {(e.run_id, e.outcome, e.reason, e.version) for e in entries} == {
            (on_reminder, "updated", "moved to version 2", 2),
            (waiting, "updated", "moved to version 2", 2),
        }
        assert all(e.details == {"from_version": 1, "to_version": 2} for e in entries)
        assert all(e.at == clock.now() for e in entries)
        stored = session.scalars(
            select(AutomationVersion.migrated_runs).order_by(AutomationVersion.version)
        ).all()
        assert stored == [0, 2]


def test_publishing_checks_the_draft_again(runtime: Runtime) -> None:
    add_templates(runtime)
    with runtime.database.transaction() as session:
        runtime.automations.save(session, ABANDONED_CART)
        runtime.templates.delete(session, "vip")
    with runtime.database.transaction() as session, pytest.raises(InvalidInput) as caught:
        runtime.automations.publish(session, "abandoned-cart")
    assert problems(caught) == [
        ("abandoned-cart line 20: steps[5].send", "no template has the key 'vip'")
    ]
    with runtime.database.transaction() as session:
        assert runtime.automations.get(session, "abandoned-cart").published_version is None


def test_pause_and_resume(runtime: Runtime) -> None:
    add_templates(runtime)
    with runtime.database.transaction() as session:
        runtime.automations.save(session, LEAD_RULE)
        with pytest.raises(Conflict, match="not published yet"):
            runtime.automations.pause(session, "lead-to-mql")
        runtime.automations.publish(session, "lead-to-mql")
    with runtime.database.transaction() as session:
        assert [p.key for p in runtime.definitions.load(session).rules_for("score_reached")] == [
            "lead-to-mql"
        ]
        paused = runtime.automations.pause(session, "lead-to-mql")
        assert (paused.status, paused.paused_at) == ("paused", runtime.clock.now())
        assert runtime.automations.pause(session, "lead-to-mql").status == "paused"
    with runtime.database.transaction() as session:
        definitions = runtime.definitions.load(session)
        assert definitions.rules_for("score_reached") == []
        assert definitions.by_key["lead-to-mql"].status == "paused"
        resumed = runtime.automations.resume(session, "lead-to-mql")
        assert (resumed.status, resumed.paused_at) == ("active", None)
    with runtime.database.transaction() as session:
        assert len(runtime.definitions.load(session).rules_for("score_reached")) == 1
        with pytest.raises(NotFound):
            runtime.automations.pause(session, "nothing")


def test_archive_refuses_while_runs_are_in_the_journey_unless_forced(
    runtime: Runtime, clock: VirtualClock
) -> None:
    add_templates(runtime)
    ann, bob = add_contact(runtime, "ann@example.com"), add_contact(runtime, "bob@example.com")
    with runtime.database.transaction() as session:
        runtime.automations.save(session, ABANDONED_CART)
        runtime.automations.publish(session, "abandoned-cart")
        journey = automation_id(session, "abandoned-cart")
        running = add_run(
            session,
            journey_id=journey,
            contact_id=ann,
            version=1,
            step_id="bought",
            state="waiting",
            entered_at=clock.now(),
            due_at=clock.now() + timedelta(hours=23),
        )
        done = add_run(
            session,
            journey_id=journey,
            contact_id=bob,
            version=1,
            step_id=None,
            state="converted",
            entered_at=clock.now(),
            ended_at=clock.now(),
            end_reason="goal reached",
        )
    with runtime.database.transaction() as session, pytest.raises(Conflict) as caught:
        runtime.automations.archive(session, "abandoned-cart")
    assert "1 run(s) are still in journey 'abandoned-cart'" in caught.value.message

    clock.advance(timedelta(minutes=5))
    with runtime.database.transaction() as session:
        result = runtime.automations.archive(session, "abandoned-cart", force=True)
        assert (result.status, result.ended_runs) == ("archived", 1)
        runs = {r.id: r for r in runs_of(session, journey)}
        assert (runs[running].state, runs[running].end_reason) == ("exited", "journey archived")
        assert (runs[running].ended_at, runs[running].due_at) == (clock.now(), None)
        assert (runs[done].state, runs[done].end_reason) == ("converted", "goal reached")
        explained = runtime.automations.explain(session, ann)
        assert [(e.outcome, e.reason) for e in explained.runs[0].history] == [
            ("exited", "journey archived")
        ]
        assert runtime.definitions.load(session).by_key == {}
        with pytest.raises(Conflict, match="archived"):
            runtime.automations.resume(session, "abandoned-cart")
    with runtime.database.transaction() as session:
        again = runtime.automations.publish(session, "abandoned-cart")
        assert (again.status, again.new_version) == ("active", False)
        assert "it was archived and is active again" in again.message


def test_list_filters_and_pages(runtime: Runtime, clock: VirtualClock) -> None:
    add_templates(runtime)
    ann = add_contact(runtime)
    with runtime.database.transaction() as session:
        runtime.automations.save(session, ABANDONED_CART)
        runtime.automations.publish(session, "abandoned-cart")
        runtime.automations.save(session, LEAD_RULE)
        runtime.automations.save(session, LEAD_RULE.replace("key: lead-to-mql", "key: a-rule"))
        journey = automation_id(session, "abandoned-cart")
        for state in ("active", "waiting", "completed"):
            add_run(
                session,
                journey_id=journey,
                contact_id=ann,
                version=1,
                step_id="reminder",
                state=state,
                entered_at=clock.now(),
            )
    with runtime.database.transaction() as session:
        everything = runtime.automations.list_automations(session)
        assert [
            (a.key, a.kind, a.status, a.published_version, a.active_runs) for a in everything.items
        ] == [
            ("a-rule", "rule", "draft", None, None),
            ("abandoned-cart", "journey", "active", 1, 2),
            ("lead-to-mql", "rule", "draft", None, None),
        ]
        assert everything.next_cursor is None
        rules = runtime.automations.list_automations(session, kind="rule", limit=1)
        assert [a.key for a in rules.items] == ["a-rule"]
        assert rules.next_cursor is not None
        rest = runtime.automations.list_automations(session, kind="rule", cursor=rules.next_cursor)
        assert [a.key for a in rest.items] == ["lead-to-mql"]
        active = runtime.automations.list_automations(session, status="active")
        assert [a.key for a in active.items] == ["abandoned-cart"]
        assert runtime.automations.get(session, "abandoned-cart").runs == {
            "active": 1,
            "waiting": 1,
            "completed": 1,
        }
        with pytest.raises(InvalidInput):
            runtime.automations.list_automations(session, cursor="garbage")


def test_explain_tells_runs_steps_refusals_and_rule_firings_in_order(
    runtime: Runtime, clock: VirtualClock
) -> None:
    add_templates(runtime)
    ann, bob = add_contact(runtime, "ann@example.com"), add_contact(runtime, "bob@example.com")
    with runtime.database.transaction() as session:
        runtime.automations.save(session, ABANDONED_CART)
        runtime.automations.publish(session, "abandoned-cart")
        runtime.automations.save(session, LEAD_RULE)
        runtime.automations.publish(session, "lead-to-mql")
        journey = automation_id(session, "abandoned-cart")
        rule = automation_id(session, "lead-to-mql")
    start = clock.now()
    with runtime.database.transaction() as session:
        first = add_run(
            session,
            journey_id=journey,
            contact_id=ann,
            version=1,
            step_id=None,
            state="converted",
            entered_at=start,
            ended_at=start + timedelta(minutes=30),
            end_reason="goal: order_completed",
        )
        second = add_run(
            session,
            journey_id=journey,
            contact_id=ann,
            version=1,
            step_id="bought",
            state="waiting",
            entered_at=start + timedelta(days=1),
            due_at=start + timedelta(days=2),
        )
        other = add_run(
            session,
            journey_id=journey,
            contact_id=bob,
            version=1,
            step_id="reminder",
            entered_at=start,
        )
        steps = [
            (first, None, history.Outcome.entered, "entered by event cart_abandoned", 0),
            (first, "wait-1h", history.Outcome.waited, "waiting 1h", 0),
            (first, None, history.Outcome.converted, "goal: order_completed", 30),
            (second, None, history.Outcome.entered, "entered by event cart_abandoned", 1440),
            (second, "reminder", history.Outcome.sent, "sent cart-reminder", 1500),
            (second, "bought", history.Outcome.waited, "waiting for order_completed", 1500),
            (other, None, history.Outcome.entered, "entered by event cart_abandoned", 0),
        ]
        for run, step, outcome, reason, minutes in steps:
            record(
                session,
                contact_id=bob if run == other else ann,
                automation=journey,
                outcome=outcome,
                reason=reason,
                at=start + timedelta(minutes=minutes),
                run_id=run,
                step_id=step,
            )
        record(
            session,
            contact_id=ann,
            automation=journey,
            outcome=history.Outcome.refused,
            reason="once at a time: already in the journey",
            at=start + timedelta(days=1, minutes=10),
        )
        record(
            session,
            contact_id=ann,
            automation=rule,
            outcome=history.Outcome.fired,
            reason="score reached 50",
            at=start + timedelta(hours=3),
            details={"actions": 3},
        )
    with runtime.database.transaction(read_only=True) as session:
        explained = runtime.automations.explain(session, ann)
        assert [(r.id, r.state, r.journey, r.version) for r in explained.runs] == [
            (first, "converted", "abandoned-cart", 1),
            (second, "waiting", "abandoned-cart", 1),
        ]
        assert explained.runs[0].end_reason == "goal: order_completed"
        assert [(e.step_id, e.outcome, e.reason) for e in explained.runs[0].history] == [
            (None, "entered", "entered by event cart_abandoned"),
            ("wait-1h", "waited", "waiting 1h"),
            (None, "converted", "goal: order_completed"),
        ]
        assert [e.outcome for e in explained.runs[1].history] == ["entered", "sent", "waited"]
        assert [(e.automation, e.outcome) for e in explained.journey_decisions] == [
            ("abandoned-cart", "refused")
        ]
        assert [(e.automation, e.kind, e.outcome, e.details) for e in explained.rule_history] == [
            ("lead-to-mql", "rule", "fired", {"actions": 3})
        ]

        newest = runtime.automations.history(session, ann, limit=4)
        assert [e.reason for e in newest.items] == [
            "waiting for order_completed",
            "sent cart-reminder",
            "once at a time: already in the journey",
            "entered by event cart_abandoned",
        ]
        assert newest.next_cursor is not None
        older = runtime.automations.history(session, ann, cursor=newest.next_cursor, limit=4)
        assert [e.outcome for e in older.items] == ["fired", "converted", "waited", "entered"]
        assert older.next_cursor is None
        only_rule = runtime.automations.history(session, ann, automation="lead-to-mql")
        assert [e.outcome for e in only_rule.items] == ["fired"]

        assert runtime.automations.contact_id_for(session, "ANN@example.com") == ann
        assert runtime.automations.contact_id_for(session, str(bob)) == bob
        with pytest.raises(NotFound):
            runtime.automations.contact_id_for(session, "nobody@example.com")
        with pytest.raises(InvalidInput):
            runtime.automations.contact_id_for(session, "not an address")
        with pytest.raises(NotFound):
            runtime.automations.explain(session, journey)


def test_bad_documents_are_refused_never_crash(runtime: Runtime) -> None:
    cases = [
        ("kind: journey\nkey: [", "document line 2, column 7"),
        ("- just\n- a list\n", "document line 1: document"),
        (
            "kind: rule\nkey: x\nname: X\ntrigger: {tag_added: vip}\nactions: [{set: {n: .nan}}]\n",
            "document line 5: actions[0].set.n",
        ),
        ('kind: rule\nkey: x\nname: "\\0"\n', "document line 3: name"),
        ("[" * 5000, "document"),
        (
            "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
            + "".join(
                f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
                for p, c in zip("abcdef", "bcdefg", strict=True)
            ),
            "document",
        ),
    ]
    for text, location in cases:
        with runtime.database.transaction() as session, pytest.raises(InvalidInput) as caught:
            runtime.automations.save(session, text)
        assert caught.value.problems[0].location.startswith(location), (text[:40], caught.value)
    with runtime.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(AutomationHistory)) == 0
        assert runtime.automations.list_automations(session).items == []
