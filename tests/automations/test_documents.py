"""Automation documents → trees, and every problem with its line and path (pure: no
database). What documents name is checked by `checks.py` against a `Known` built here."""

from __future__ import annotations

import copy
import textwrap
from datetime import time, timedelta
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from postillon.automations import model as am
from postillon.automations.checks import Known, json_ready, reference_problems
from postillon.automations.documents import (
    parse_automation,
    parse_automation_text,
    parse_duration,
)
from postillon.errors import InvalidInput
from tests.automations.support import ABANDONED_CART, LEAD_RULE


def problems_of(text: str, source: str = "doc.yaml") -> list[tuple[str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse_automation_text(textwrap.dedent(text), source=source)
    return [(p.location, p.message) for p in caught.value.problems]


def test_the_example_journey_becomes_its_tree() -> None:
    tree = parse_automation_text(ABANDONED_CART, source="abandoned-cart.yaml")
    assert isinstance(tree, am.Journey)
    assert tree.key == "abandoned-cart"
    assert tree.trigger == am.EventTrigger("cart_abandoned")
    assert tree.entry == am.Entry(am.EntryPolicy.unlimited, None, ("cart_id",))
    assert tree.goal == am.Goal(event=am.EventTrigger("order_completed"))
    assert tree.exit_when == (am.Goal(event=am.EventTrigger("email_unsubscribed")),)
    assert tree.quiet_hours == am.QuietHours(time(21), time(8), am.OnQuietHours.hold)
    assert tree.exclusive == am.Exclusive(5, am.OnBusy.queue)
    assert [s.id for s in tree.steps] == [
        "wait-1h",
        "reminder",
        "bought",
        "second",
        "check",
        "vip-mail",
        "done",
    ]
    wait, send, bought, second, check, _, done = tree.steps
    assert wait == am.WaitStep("wait-1h", am.WaitKind.duration, duration=timedelta(hours=1))
    assert send == am.SendStep("reminder", am.SendAction("cart-reminder"))
    assert isinstance(bought, am.WaitForEventStep)
    assert (bought.timeout, bought.on_event, bought.on_timeout) == (
        timedelta(hours=23),
        "done",
        None,
    )
    assert second == am.SendStep("second", am.SendAction("cart-reminder-2"))
    assert isinstance(check, am.BranchStep)
    assert (check.cases[0].next, check.otherwise) == ("vip-mail", "done")
    assert done == am.ExitStep("done")
    assert tree.following("check") == "vip-mail"
    assert tree.following("done") is None


def test_the_rule_document_becomes_its_tree() -> None:
    tree = parse_automation_text(LEAD_RULE)
    assert isinstance(tree, am.Rule)
    assert tree.trigger.event == "score_reached"
    assert tree.trigger.where is not None
    assert tree.once_per_contact is True
    assert tree.actions == (
        am.NotifyAction("A lead is ready", (), "sales@example.com", None),
        am.StageAction("mql"),
        am.TagAction(add=("hot",)),
    )


def test_shorthand_triggers_are_events_with_a_property_filter() -> None:
    doc: dict[str, Any] = yaml.safe_load(LEAD_RULE)
    for trigger, event in [
        ({"tag_added": "vip"}, "tag_added"),
        ({"segment_entered": "fans"}, "segment_entered"),
        ({"stage_changed": {"to": "mql", "from": "lead"}}, "stage_changed"),
        ({"attribute_changed": {"attribute": "plan", "to": "pro"}}, "attribute_changed"),
        ({"contact_created": True}, "contact_created"),
        ({"journey_entered": "onboarding"}, "journey_entered"),
        (
            {"event": "Order Completed", "where": {"property": "total", "op": ">", "value": 100}},
            "Order Completed",
        ),
    ]:
        tree = parse_automation({**doc, "trigger": trigger})
        assert isinstance(tree, am.Rule)
        assert tree.trigger.event == event
        assert (tree.trigger.where is None) == (event == "contact_created")


def test_date_schedule_and_wait_kinds() -> None:
    tree = parse_automation_text(
        """
        kind: journey
        key: tips
        name: Tips
        trigger: {schedule: {frequency: monthly, nth: 1, weekday: monday, at: "09:00", local: true}}
        conditions: {tag: tips}
        steps:
          - {id: a, wait: {until: "10:30", weekdays: [monday, friday]}}
          - {id: b, wait: {attribute: birthday, offset_days: -2, until: "08:00"}}
          - {id: c, wait: {duration: 1d12h}}
          - id: d
            split: [{name: A, percent: 45, next: e}, {name: B, percent: 45, next: e}]
          - {id: e, update: [{tags_add: Seen}, {score: {points: 3, model: main}}]}
          - {id: f, move_to: customers}
        """
    )
    assert isinstance(tree, am.Journey)
    assert tree.trigger == am.ScheduleTrigger(am.Frequency.monthly, time(9), (0,), None, 1, True)
    a, b, c, d, e, f = tree.steps
    assert a == am.WaitStep("a", am.WaitKind.time_of_day, at=time(10, 30), weekdays=(0, 4))
    assert b == am.WaitStep("b", am.WaitKind.date, at=time(8), attribute="birthday", offset_days=-2)
    assert c == am.WaitStep("c", am.WaitKind.duration, duration=timedelta(days=1, hours=12))
    assert isinstance(d, am.SplitStep) and sum(v.percent for v in d.variants) == 90
    assert e == am.UpdateStep("e", (am.TagAction(add=("seen",)), am.ScoreAction(3, "main")))
    assert f == am.MoveStep("f", "customers")

    birthday = parse_automation_text(
        """
        kind: journey
        key: birthday
        name: Birthday
        trigger: {date: {attribute: birthday, at: "09:00"}}
        steps: [{id: mail, send: happy-birthday}]
        """
    )
    assert isinstance(birthday, am.Journey)
    assert birthday.trigger == am.DateTrigger("birthday", am.Recurrence.yearly, 0, time(9))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("1h", timedelta(hours=1)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("2w", timedelta(weeks=2)),
        (" 3 d ", timedelta(days=3)),
        (30, timedelta(seconds=30)),
        ("0s", None),
        ("1x", None),
        ("h", None),
        (True, None),
        (-5, None),
        (None, None),
    ],
)
def test_durations(raw: Any, expected: timedelta | None) -> None:
    assert parse_duration(raw) == expected


def test_absurd_durations_are_too_long_not_a_crash() -> None:
    assert parse_duration("99999999999999999999w") == timedelta.max
    assert parse_duration(10**30) == timedelta.max
    problems = problems_of(ABANDONED_CART.replace("wait: 1h", "wait: 99999999999999w"))
    assert problems == [("doc.yaml line 13: steps[0].wait", "must be at most 3 years")]


def test_broken_yaml_names_the_line_and_column() -> None:
    problems = problems_of("kind: journey\nkey: x\nsteps: [\n  {id: a, send: x\n")
    assert len(problems) == 1
    location, _ = problems[0]
    assert location.startswith("doc.yaml line 5, column 1")


def test_problems_name_line_and_path_and_all_are_reported() -> None:
    text = (
        ABANDONED_CART.replace("timeout: 23h", "timeout: soon")
        .replace("priority: 5", "priority: high")
        .replace("timezone: Europe/Berlin", "timezone: Mars/Olympus")
    )
    problems = problems_of(text, "abandoned-cart.yaml")
    assert (
        "abandoned-cart.yaml line 10: exclusive.priority",
        "must be a whole number from -1000 to 1000",
    ) in problems
    assert ("abandoned-cart.yaml line 11: timezone", "unknown time zone 'Mars/Olympus'") in problems
    assert (
        "abandoned-cart.yaml line 16: steps[2].wait_for.timeout",
        "must be a duration such as 30m, 1h, 3d, 2w or 1d12h",
    ) in problems


def test_wrong_types_are_named() -> None:
    doc: dict[str, Any] = yaml.safe_load(ABANDONED_CART)
    doc.update(
        name=["x"], on_cap="later", entry={"policy": "twice"}, steps=[{"id": "a", "wait": True}]
    )
    with pytest.raises(InvalidInput) as caught:
        parse_automation(doc)
    found = {p.location: p.message for p in caught.value.problems}
    assert found["name"] == "must be text of 1 to 200 characters"
    assert found["on_cap"] == "must be one of wait, skip, exit"
    assert found["entry.policy"] == "must be one of once, once_at_a_time, unlimited"
    assert found["steps[0].wait"].startswith("must be a duration")


def test_step_references_ids_and_loops() -> None:
    unknown = problems_of(ABANDONED_CART.replace("then: vip-mail", "then: vip-mial"))
    assert unknown == [
        ("doc.yaml line 19: steps[4].branch[0].next", "no step has the id 'vip-mial'")
    ]

    twice = problems_of(ABANDONED_CART.replace("id: vip-mail", "id: reminder"))
    assert ("doc.yaml line 20: steps[5].id", "'reminder' is the id of steps[1] already") in twice

    loop = problems_of(
        """
        kind: journey
        key: loop
        name: Loop
        trigger: {event: x}
        steps:
          - {id: a, send: t}
          - {id: b, if: {tag: vip}, then: a, else: c}
          - {id: c, exit: {}}
        """
    )
    assert loop == [
        ("doc.yaml line 7: steps[0]", "is part of a loop without a wait: a run would never stop")
    ]

    # A wait in the loop makes it a schedule, not a spin.
    parse_automation_text(
        """
        kind: journey
        key: loop
        name: Loop
        trigger: {event: x}
        steps:
          - {id: a, send: t}
          - {id: pause, wait: 7d}
          - {id: b, if: {tag: vip}, then: a, else: c}
          - {id: c, exit: {}}
        """
    )

    correlation = problems_of(
        """
        kind: journey
        key: c
        name: C
        trigger: {event: x}
        steps:
          - {id: a, wait: 1d}
          - {id: opened, wait_for: {event: email_opened, timeout: 3d, message_step: a}}
        """
    )
    assert correlation == [
        ("doc.yaml line 8: steps[1].wait_for.message_step", "must be the id of a send step")
    ]


def test_rules_cannot_start_on_dates_and_journeys_cannot_send_in_updates() -> None:
    dated = LEAD_RULE.replace("trigger: {score_reached: 50}", "trigger: {date: {attribute: b}}")
    assert problems_of(dated) == [
        ("doc.yaml line 4: trigger.date", "only journeys start on dates and schedules")
    ]
    send_in_update = ABANDONED_CART.replace(
        "{id: reminder, send: cart-reminder}", "{id: reminder, update: [{send: cart-reminder}]}"
    )
    assert problems_of(send_in_update) == [
        ("doc.yaml line 14: steps[1].update[0].send", "use a send step to send in a journey")
    ]


def test_documents_must_be_objects_of_a_kind() -> None:
    for doc, where in [([1, 2], "document"), ({"kind": "flow"}, "kind"), (None, "document")]:
        with pytest.raises(InvalidInput) as caught:
            parse_automation(doc)
        assert caught.value.problems[0].location == where


# --- json_ready: what is checked is what is stored ---


def test_json_ready_makes_yaml_values_json_and_refuses_what_json_cannot_hold() -> None:
    doc = yaml.safe_load("when: 2026-05-01\nat: 2026-05-01 10:00:00\nn: 1.5\n")
    assert json_ready(doc) == ({"when": "2026-05-01", "at": "2026-05-01T10:00:00", "n": 1.5}, [])
    bad = yaml.safe_load('on: x\n2: y\nbig: 100000000000000000000\nnul: "a\\0b"\nnan: .nan\n')
    _, problems = json_ready(bad)
    assert [(p.location, p.message) for p in problems] == [
        ("True", "names must be text (quote yes, no, on, off, numbers)"),
        ("2", "names must be text (quote yes, no, on, off, numbers)"),
        ("big", "is too large a number"),
        ("nul", "must not contain the NUL character"),
        ("nan", "must be a finite number"),
    ]


def test_json_ready_bounds_size_and_depth() -> None:
    # Aliases make a small YAML text a huge document ("billion laughs").
    laughs = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i, name in enumerate("bcdefgh"):
        laughs += f"{name}: &{name} [*{'abcdefgh'[i]}, *{'abcdefgh'[i]}, *{'abcdefgh'[i]}, *{'abcdefgh'[i]}, *{'abcdefgh'[i]}, *{'abcdefgh'[i]}, *{'abcdefgh'[i]}, *{'abcdefgh'[i]}, *{'abcdefgh'[i]}, *{'abcdefgh'[i]}]\n"  # noqa: E501
    _, problems = json_ready(yaml.safe_load(laughs))
    assert [p.message for p in problems] == ["has more than 20,000 values"]
    deep: Any = "x"
    for _ in range(60):
        deep = [deep]
    _, problems = json_ready({"steps": deep})
    assert problems[0].message == "nests deeper than 40"


# --- what documents name ---

KNOWN = Known(
    templates=("cart-reminder", "cart-reminder-2", "vip"),
    automations={
        "onboarding": ("journey", "active"),
        "old": ("journey", "archived"),
        "lead-to-mql": ("rule", "active"),
    },
    attribute_types={"birthday": "date", "plan": "string", "age": "number"},
    stages=("subscriber", "lead", "mql"),
    score_models=("main", "engagement"),
    segments=("fans",),
)


def test_the_example_names_only_what_exists() -> None:
    assert reference_problems(yaml.safe_load(ABANDONED_CART), KNOWN) == []
    assert reference_problems(yaml.safe_load(LEAD_RULE), KNOWN) == []


def test_unknown_names_are_problems_with_paths() -> None:
    doc: dict[str, Any] = yaml.safe_load(ABANDONED_CART)
    doc["steps"][1]["send"] = "cart-remindr"
    doc["steps"][3]["send"] = {"template": "nope"}
    doc["steps"].insert(6, {"id": "move", "move_to": "onbording"})
    doc["steps"].insert(6, {"id": "rule", "move_to": "lead-to-mql"})
    doc["steps"].insert(6, {"id": "gone", "move_to": "old"})
    doc["steps"].insert(6, {"id": "self", "move_to": "abandoned-cart"})
    doc["steps"].insert(
        6,
        {
            "id": "upd",
            "update": [
                {"stage": "mq"},
                {"score": {"points": 1, "model": "fun"}},
                {"journey_add": "onboarding"},
                {"set": {"age": "old", "first_name": "x", "plan": "pro"}},
            ],
        },
    )
    doc["steps"].insert(6, {"id": "w", "wait": {"attribute": "plan", "until": "09:00"}})
    doc["exit_when"].append({"segment_entered": "fams"})
    doc["goal"] = {"stage_changed": {"to": "customer"}}
    found = [(p.location, p.message) for p in reference_problems(doc, KNOWN)]
    assert found == [
        (
            "goal.stage_changed.to",
            "no lifecycle stage has the key 'customer' (stages: subscriber, lead, mql)",
        ),
        ("exit_when[1].segment_entered", "no segment has the key 'fams' (did you mean 'fans'?)"),
        ("steps[1].send", "no template has the key 'cart-remindr' (did you mean 'cart-reminder'?)"),
        ("steps[3].send.template", "no template has the key 'nope'"),
        (
            "steps[6].wait.attribute",
            "attribute 'plan' holds string values; a date attribute is needed",
        ),
        (
            "steps[7].update[0].stage",
            "no lifecycle stage has the key 'mq' (stages: subscriber, lead, mql)",
        ),
        ("steps[7].update[1].score.model", "no score model has the key 'fun'"),
        ("steps[7].update[3].set.age", "expected a number, got 'old'"),
        (
            "steps[7].update[3].set.first_name",
            "'first_name' is a contact field, not a custom attribute",
        ),
        ("steps[9].move_to", "journey 'old' is archived"),
        ("steps[10].move_to", "'lead-to-mql' is a rule, not a journey"),
        ("steps[11].move_to", "no journey has the key 'onbording' (did you mean 'onboarding'?)"),
    ]
    # Journeys saved together may name each other.
    together = Known(**{**KNOWN.__dict__, "also_journeys": ("onbording",)})
    assert "steps[11].move_to" not in {p.location for p in reference_problems(doc, together)}


def test_rule_actions_and_triggers_name_what_exists() -> None:
    doc: dict[str, Any] = yaml.safe_load(LEAD_RULE)
    doc["trigger"] = {"journey_entered": "onboarding2"}
    doc["actions"] += [{"send": "welcome"}, {"journey_remove": "nothing"}, {"stage": "sql"}]
    found = [(p.location, p.message) for p in reference_problems(doc, KNOWN)]
    assert found == [
        (
            "trigger.journey_entered",
            "no journey has the key 'onboarding2' (did you mean 'onboarding'?)",
        ),
        ("actions[3].send", "no template has the key 'welcome'"),
        ("actions[4].journey_remove", "no journey has the key 'nothing'"),
        (
            "actions[5].stage",
            "no lifecycle stage has the key 'sql' (stages: subscriber, lead, mql)",
        ),
    ]


def test_a_date_trigger_needs_a_date_attribute_when_the_attribute_is_known() -> None:
    doc = {
        "kind": "journey",
        "key": "b",
        "name": "B",
        "trigger": {"date": {"attribute": "age"}},
        "steps": [{"id": "a", "send": "vip"}],
    }
    assert [p.location for p in reference_problems(doc, KNOWN)] == ["trigger.date.attribute"]
    doc["trigger"] = {"date": {"attribute": "birthday"}}
    assert reference_problems(doc, KNOWN) == []
    doc["trigger"] = {"date": {"attribute": "not_seen_yet"}}
    assert reference_problems(doc, KNOWN) == []


# --- never anything but InvalidInput, whatever the document ---

_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**25), max_value=10**25),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(
        [
            "",
            "x",
            "1h",
            "09:00",
            "monday",
            "vip",
            "cart-reminder",
            "onboarding",
            "99999999999999w",
            "done",
            "a.b",
        ]
    ),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*at, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*at, index))
    return found


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutated_documents_give_problems_never_crashes(data: st.DataObject) -> None:
    doc: Any = copy.deepcopy(
        yaml.safe_load(data.draw(st.sampled_from([ABANDONED_CART, LEAD_RULE])))
    )
    for _ in range(data.draw(st.integers(1, 4))):
        if not isinstance(doc, dict):
            break
        path = data.draw(st.sampled_from(_paths(doc)))
        value = data.draw(_VALUES)
        if not path:
            doc = value
            continue
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value
    ready, problems = json_ready(doc)
    reference_problems(ready, KNOWN)
    if not problems:
        try:
            parse_automation(ready)
        except InvalidInput as error:
            assert error.problems
