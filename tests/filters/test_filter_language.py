"""The filter language on worked examples: what marketers write and what it means."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from postillon.contacts.schemas import ContactIn
from postillon.errors import InvalidInput
from postillon.filters import values
from postillon.filters.evaluate import Evaluator, matches_properties
from postillon.filters.facts import ContactFacts
from postillon.filters.model import Kind, Op
from postillon.filters.model import Test as ValueTest
from postillon.filters.parsing import References, parse_filter, parse_property_filter
from postillon.filters.sql import Catalog
from postillon.runtime import Runtime

NOW = datetime(2026, 12, 30, 10, 0, tzinfo=UTC)
STAGES = ("subscriber", "lead", "mql", "sql", "customer")


def problems(doc: Any, references: References | None = None) -> dict[str, str]:
    with pytest.raises(InvalidInput) as caught:
        parse_filter(doc, references=references)
    return {p.location: p.message for p in caught.value.problems}


def matches(doc: Any, **contact: Any) -> bool:
    facts = ContactFacts(contact={"attributes": {}, "score": 0, **contact})
    catalog = Catalog(now=NOW, stages=STAGES)
    return Evaluator(catalog).matches(parse_filter(doc), facts)


def test_every_problem_is_reported_with_its_path() -> None:
    found = problems(
        {
            "all": [
                {"tag": ""},
                {"attribute": "age", "op": "bigger", "value": 3},
                {"any": []},
                {"performed": "Order Completed", "times": {"at_least": -1}},
                {"field": "email", "op": "=", "value": 5},
                {"attribute": "city", "op": "=", "value": "Berlin", "extra": 1},
                {"attribute": "name", "op": "matches", "value": "(?P<x>a)"},
                {"visited": "/shoes", "between": ["2026-02-01", "2026-01-01"]},
            ]
        }
    )
    assert set(found) == {
        "filter.all[0].tag",
        "filter.all[1].op",
        "filter.all[2].any",
        "filter.all[3].times",
        "filter.all[4].value",
        "filter.all[5].extra",
        "filter.all[6].value",
        "filter.all[7].between",
    }
    assert "must be one of =" in found["filter.all[1].op"]


def test_references_must_exist() -> None:
    references = References(stages=STAGES, score_models=("main",), segments=("vip",))
    found = problems(
        {
            "all": [
                {"in_segment": "gone"},
                {"score": "interest", "op": ">", "value": 1},
                {"field": "lifecycle_stage", "op": ">=", "value": "champion"},
            ]
        },
        references,
    )
    assert found == {
        "filter.all[0].in_segment": "no segment 'gone'",
        "filter.all[1].score": "no score model 'interest'",
        "filter.all[2].value": (
            "no stage 'champion'; stages are subscriber, lead, mql, sql, customer"
        ),
    }


def test_size_limits() -> None:
    deep: dict[str, Any] = {"tag": "a"}
    for _ in range(20):
        deep = {"not": deep}
    assert "nest at most" in next(iter(problems(deep).values()))
    wide = {"any": [{"tag": f"t{i}"} for i in range(300)]}
    assert "at most 200 conditions" in next(iter(problems(wide).values()))


def test_birthdays_across_the_new_year_and_29_february() -> None:
    soon = {"attribute": "birthday", "op": "anniversary_within_days", "value": 7}
    assert matches(soon, attributes={"birthday": "1990-01-03"})  # after New Year
    assert matches(soon, attributes={"birthday": "1990-12-30"})  # today
    assert not matches(soon, attributes={"birthday": "1990-12-29"})  # yesterday
    assert not matches(soon, attributes={"birthday": "not a date"})
    days = values.anniversary_days(date(2027, 2, 27), 1)
    assert days == ["02-27", "02-28", "02-29"]  # no 29th in 2027: celebrated on the 28th


def test_age_between_counts_whole_years() -> None:
    twenties = {"attribute": "birthday", "op": "age_between", "value": [20, 29]}
    assert matches(twenties, attributes={"birthday": "2006-12-30"})  # 20 today
    assert not matches(twenties, attributes={"birthday": "2006-12-31"})  # 20 tomorrow
    assert matches(twenties, attributes={"birthday": "1996-12-31"})  # 29 until tomorrow
    assert not matches(twenties, attributes={"birthday": "1996-12-30"})  # 30 today


def test_typing_is_strict_and_missing_values_match_only_empty() -> None:
    assert not matches({"attribute": "age", "op": "=", "value": 30}, attributes={"age": "30"})
    assert not matches({"attribute": "vip", "op": "=", "value": 1}, attributes={"vip": True})
    assert not matches({"attribute": "city", "op": "!=", "value": "Berlin"})
    assert matches({"not": {"attribute": "city", "op": "=", "value": "Berlin"}})
    assert matches({"attribute": "city", "op": "empty"}, attributes={"city": ""})
    assert matches(
        {"attribute": "topics", "op": "contains", "value": "offers"},
        attributes={"topics": ["news", "offers"]},
    )
    assert not matches(
        {"attribute": "topics", "op": "contains", "value": "off"}, attributes={"topics": ["offers"]}
    )
    assert matches({"field": "first_name", "op": "contains", "value": "ANN"}, first_name="Joanna")
    assert not matches({"field": "first_name", "op": "=", "value": "joanna"}, first_name="Joanna")


def test_stages_compare_by_pipeline_position() -> None:
    qualified = {"field": "lifecycle_stage", "op": ">=", "value": "mql"}
    assert matches(qualified, lifecycle_stage="customer")
    assert not matches(qualified, lifecycle_stage="lead")
    assert not matches(qualified, lifecycle_stage="retired")  # not in the pipeline
    assert not matches(qualified)


def test_days_since_last_purchase_counts_whole_days() -> None:
    test = ValueTest(Op.ge, 30)
    assert values.test_subject(test, Kind.days_since, NOW - timedelta(days=30), now=NOW, stages=())
    assert not values.test_subject(
        test, Kind.days_since, NOW - timedelta(days=29, hours=23), now=NOW, stages=()
    )


def test_property_filters() -> None:
    where = parse_property_filter(
        {"all": [{"property": "category", "op": "in", "value": ["shoes", "running"]},
                 {"not": {"property": "price", "op": "<", "value": 50}}]}
    )  # fmt: skip
    assert matches_properties(where, {"category": "shoes", "price": 80}, NOW)
    assert not matches_properties(where, {"category": "shoes", "price": 20}, NOW)
    assert matches_properties(where, {"category": "running"}, NOW)
    with pytest.raises(InvalidInput) as caught:
        parse_property_filter(
            {"all": [{"property": "", "op": "=", "value": 1}]}, where="rule.where"
        )
    assert caught.value.problems[0].location == "rule.where.all[0].property"


def test_a_contact_is_judged_the_same_by_the_service(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        contact = ContactIn(email="city@example.com", attributes={"city": "Berlin"})
        [outcome] = runtime.contacts.upsert_batch(session, [contact])
        contact_id = outcome.contact_id
        assert contact_id is not None
        doc = {"attribute": "city", "op": "starts_with", "value": "ber"}
        node = runtime.filters.parse(session, doc)
        assert runtime.filters.matches(session, node, contact_id)
        assert runtime.filters.members(session, node) == {contact_id}
        assert runtime.filters.count(session, node) == 1


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"attribute": "topics", "op": "contains", "value": "offers"}, True),
        ({"attribute": "topics", "op": "contains", "value": "off"}, False),
        ({"attribute": "size", "op": "=", "value": 42}, True),
        ({"attribute": "size", "op": "=", "value": "42"}, False),
        ({"attribute": "size", "op": "in", "value": [41.5, 42.0]}, True),
        ({"attribute": "vip", "op": "=", "value": True}, True),
        ({"attribute": "vip", "op": "=", "value": 1}, False),
        ({"field": "score", "op": "in", "value": [2.5, 7]}, False),
        ({"attribute": "birthday", "op": "age_between", "value": [20, 30]}, True),
    ],
)
def test_sql_and_python_agree_on_typed_values(runtime: Runtime, doc: Any, expected: bool) -> None:
    """Cases random data rarely hits: list items, numbers against text and true."""
    attributes = {"topics": ["news", "offers"], "size": 42, "vip": True, "birthday": "2000-01-01"}
    with runtime.database.transaction() as session:
        contact = ContactIn(email="typed@example.com", score=3, attributes=attributes)
        [outcome] = runtime.contacts.upsert_batch(session, [contact])
        assert outcome.contact_id is not None
        node = runtime.filters.parse(session, doc)
        in_sql = outcome.contact_id in runtime.filters.members(session, node)
        in_python = runtime.filters.matches(session, node, outcome.contact_id)
        assert (in_sql, in_python) == (expected, expected)


def test_kept_statements_keep_true_and_one_apart(runtime: Runtime) -> None:
    """Statements for listed contacts are built once and kept by their filters. In Python
    `True == 1` (with the same hash), but `= true` and `= 1` are different tests: asking
    one after the other must not reuse the first one's statement."""
    with runtime.database.transaction() as session:
        contact = ContactIn(email="kept@example.com", attributes={"vip": True, "size": 1})
        [outcome] = runtime.contacts.upsert_batch(session, [contact])
        contact_id = outcome.contact_id
        assert contact_id is not None
        nodes = [
            runtime.filters.parse(session, {"attribute": key, "op": "=", "value": value})
            for key, value in (("vip", True), ("vip", 1), ("size", 1), ("size", True))
        ]
        assert [runtime.filters.matches(session, node, contact_id) for node in nodes] == [
            True, False, True, False
        ]  # fmt: skip
        both = runtime.filters.evaluate_each(session, nodes, [contact_id])
        assert both == [{contact_id}, set(), {contact_id}, set()]
