"""The contact-update actions: tags, attributes, score and stage, for many contacts at once,
through the features that own them (their history and events follow)."""

from __future__ import annotations

from sqlalchemy import func, select

from postillon.automations import model as am
from postillon.models import ScoreChange, StageChange
from postillon.runtime import Runtime
from tests.automations.support import new_contact, publish, targets

RULE = {
    "kind": "rule",
    "key": "hot-leads",
    "name": "Hot leads",
    "trigger": {"event": "demo_requested"},
    "actions": [
        {"tags_add": ["hot", "sales"]},
        {"tags_remove": "cold"},
        {"set": {"plan": "pro", "seats": 5, "trial": None}},
        {"score": 10},
        {"stage": "mql"},
        {"score": 10},
    ],
}


def test_tags_are_added_and_removed_for_every_target_in_one_call(runtime: Runtime) -> None:
    rule = publish(runtime, RULE)
    ann = new_contact(runtime, "ann@example.com", tags=["cold", "newsletter"])
    bob = new_contact(runtime, "bob@example.com", tags=["hot"])
    with runtime.database.transaction() as session:
        add, remove = rule.rule.actions[0], rule.rule.actions[1]
        now = runtime.clock.now()
        added = runtime.actions.run(session, rule, add, targets(rule, ann, bob), now=now)
        removed = runtime.actions.run(session, rule, remove, targets(rule, ann, bob), now=now)
        assert [r.done for r in added + removed] == [True] * 4
        assert removed[1].reason.endswith("(unchanged)")
        assert runtime.contacts.get(session, ann).tags == ["hot", "newsletter", "sales"]
        assert runtime.contacts.get(session, bob).tags == ["hot", "sales"]


def test_tags_removed_through_the_api_take_the_same_path(runtime: Runtime) -> None:
    ann = new_contact(runtime, tags=["a", "b", "c"])
    with runtime.database.transaction() as session:
        assert runtime.contacts.remove_tags(session, ann, ["a", "c", "x"]).tags == ["b"]


def test_attributes_are_typed_like_the_api_does_and_none_removes(runtime: Runtime) -> None:
    rule = publish(runtime, RULE)
    ann = new_contact(runtime, "ann@example.com", attributes={"trial": True, "seats": 1})
    bob = new_contact(runtime, "bob@example.com")
    now = runtime.clock.now()
    with runtime.database.transaction() as session:
        results = runtime.actions.run(
            session, rule, rule.rule.actions[2], targets(rule, ann, bob), now=now
        )
        assert [r.done for r in results] == [True, True]
        wrong = am.SetAttributesAction({"seats": "many"})  # seats is a number
        failed = runtime.actions.run(session, rule, wrong, targets(rule, ann), now=now)
        assert not failed[0].done
        assert "seats" in failed[0].reason and "number" in failed[0].reason
    with runtime.database.transaction(read_only=True) as session:
        assert runtime.contacts.get(session, ann).attributes == {"plan": "pro", "seats": 5}
        assert runtime.contacts.get(session, bob).attributes == {"plan": "pro", "seats": 5}


def test_points_are_given_once_per_target_key_even_when_the_action_runs_again(
    runtime: Runtime,
) -> None:
    rule = publish(runtime, RULE)
    ann, bob = new_contact(runtime), new_contact(runtime, "bob@example.com")
    first, second = rule.rule.actions[3], rule.rule.actions[5]
    assert first == second  # equal actions at different places keep different keys
    now = runtime.clock.now()
    for _ in range(2):  # a replayed batch
        with runtime.database.transaction() as session:
            for action in (first, second):
                results = runtime.actions.run(
                    session, rule, action, targets(rule, ann, bob), now=now
                )
                assert all(r.done for r in results)
    with runtime.database.transaction() as session:
        again = runtime.actions.run(session, rule, first, targets(rule, ann), now=now)
        assert again[0].reason.endswith("given before")
        assert runtime.contacts.get(session, ann).score == 20
        assert runtime.contacts.get(session, bob).score == 20
        changes = session.scalars(select(ScoreChange).where(ScoreChange.contact_id == ann)).all()
        assert sorted(c.note or "" for c in changes) == [
            f"rule:{rule.id}:1:{ann}:score:3",
            f"rule:{rule.id}:1:{ann}:score:5",
        ]
        assert {c.reason for c in changes} == {"automation"}
        # A new event is a new key: points again.
        runtime.actions.run(session, rule, first, targets(rule, ann, event_id=2), now=now)
        assert runtime.contacts.get(session, ann).score == 30


def test_an_unknown_score_model_fails_the_action_for_every_target(runtime: Runtime) -> None:
    rule = publish(runtime, RULE)
    ann = new_contact(runtime)
    with runtime.database.transaction() as session:
        results = runtime.actions.run(
            session, rule, am.ScoreAction(5, "fit"), targets(rule, ann), now=runtime.clock.now()
        )
    assert [(r.done, r.reason) for r in results] == [(False, "no score model 'fit'")]


def test_the_stage_changes_through_the_lifecycle_with_the_automation_as_source(
    runtime: Runtime,
) -> None:
    rule = publish(runtime, RULE)
    ann = new_contact(runtime, "ann@example.com", lifecycle_stage="lead")
    bob = new_contact(runtime, "bob@example.com", lifecycle_stage="mql")
    stage = rule.rule.actions[4]
    with runtime.database.transaction() as session:
        results = runtime.actions.run(
            session, rule, stage, targets(rule, ann, bob), now=runtime.clock.now()
        )
        assert [(r.done, r.reason) for r in results] == [
            (True, "stage lead → mql"),
            (True, "already in stage mql"),
        ]
        change = session.scalars(
            select(StageChange).where(StageChange.contact_id == ann, StageChange.to_stage == "mql")
        ).one()
        assert change.source == "automation:hot-leads"
        unknown = runtime.actions.run(
            session, rule, am.StageAction("vip"), targets(rule, ann), now=runtime.clock.now()
        )
        assert not unknown[0].done and "unknown stage 'vip'" in unknown[0].reason
        count = select(func.count()).select_from(StageChange)
        assert session.scalar(count.where(StageChange.contact_id == ann)) == 2
