"""The SQL compiler (both shapes, both databases) and the Python evaluator agree.

Hypothesis draws small populations of contacts whose values sit on the edges the
operators care about (missing, null, empty, text that looks like a number or a date, true
versus 1, lists), and filters over them; all three answers must be the same set.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete
from sqlalchemy.orm import Session

from postillon.errors import InvalidInput
from postillon.filters.evaluate import Evaluator
from postillon.filters.facts import event_names, load_facts
from postillon.filters.parsing import parse_filter
from postillon.filters.sql import Catalog, listed_query, select_members
from postillon.kit.repository import insert_rows
from postillon.models import (
    Contact,
    ContactConsent,
    ContactScore,
    ContactTag,
    ContactTrait,
    Event,
    ScoreModel,
    Segment,
    SegmentMembership,
)
from postillon.runtime import Runtime

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STAGES = ("subscriber", "lead", "mql", "customer")
MODEL_ID = uuid.UUID("00000000-0000-7000-8000-0000000000aa")
SEGMENT_ID = uuid.UUID("00000000-0000-7000-8000-0000000000bb")
EVENTS = ("Product Viewed", "Order Completed", "page_viewed")

texts = st.sampled_from(
    [
        "",
        "a",
        "A",
        "ab",
        "Ab",
        "ba",
        "b",
        "é",
        "É",
        "1",
        "2026-02-28",
        "2026-03-01",
        "1990-02-29",
        "2000-03-01x",
        "2026-03-01T23:59",
        "1990-01-01 noon",
        "1976-02-27",
        "2025-12-31",
    ]
)
numbers = st.sampled_from([-2, -1, 0, 0.5, 1, 1.0, 2, 2.5, 3, 10])
scalars = st.one_of(texts, numbers, st.booleans())
stored = st.one_of(st.none(), scalars, st.lists(scalars, max_size=3), st.just({"x": "a"}))
moments = st.integers(min_value=-200, max_value=24 * 400).map(lambda h: NOW - timedelta(hours=h))


@st.composite
def contacts(draw: st.DrawFn) -> dict[str, Any]:
    attributes = {
        key: value
        for key in ("a", "b", "birthday")
        if (value := draw(st.one_of(st.just(_MISSING), stored))) is not _MISSING
    }
    events = draw(
        st.lists(
            st.tuples(
                st.sampled_from(EVENTS),
                moments,
                st.dictionaries(
                    st.sampled_from(["category", "url", "revenue", "total"]), stored, max_size=3
                ),
            ),
            max_size=6,
        )
    )
    return {
        "first_name": draw(st.one_of(st.none(), texts)),
        "score": draw(st.integers(-3, 3)),
        "lifecycle_stage": draw(st.one_of(st.none(), st.sampled_from([*STAGES, "legacy"]))),
        "last_seen_at": draw(st.one_of(st.none(), moments)),
        "attributes": attributes,
        "tags": draw(st.sets(st.sampled_from(["vip", "new"]))),
        "consent": draw(
            st.one_of(st.none(), st.sampled_from(["subscribed", "pending", "unsubscribed"]))
        ),
        "model_score": draw(st.one_of(st.none(), st.integers(-2, 2))),
        "member": draw(st.booleans()),
        "traits": draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {
                        "rfm_cell": st.one_of(st.none(), st.sampled_from(["champions", "lost"])),
                        "clv": numbers,
                        "last_purchase_at": st.one_of(st.none(), moments),
                    }
                ),
            )
        ),
        "events": events,
    }


_MISSING = object()


def value_tests(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    values = {"json": scalars, "text": texts, "number": numbers, "int": st.integers(-1, 12)}[kind]
    ordered = values.filter(lambda v: not isinstance(v, bool))
    tests = [
        st.builds(lambda o, v: {"op": o, "value": v}, st.sampled_from(["=", "!="]), values),
        st.builds(
            lambda o, v: {"op": o, "value": v}, st.sampled_from(["<", "<=", ">", ">="]), ordered
        ),
        st.builds(
            lambda o, v: {"op": o, "value": v},
            st.sampled_from(["in", "not_in"]),
            st.lists(values, min_size=1, max_size=3),
        ),
        st.builds(lambda o: {"op": o}, st.sampled_from(["exists", "empty"])),
        st.builds(lambda a, b: {"op": "between", "value": sorted([a, b])}, numbers, numbers),
    ]
    if kind in ("json", "text"):
        strings = st.sampled_from(["a", "A", "b", "é", "2026", "-0"])
        tests += [
            st.builds(
                lambda o, v: {"op": o, "value": v},
                st.sampled_from(["contains", "starts_with", "ends_with"]),
                strings,
            ),
            st.builds(
                lambda v: {"op": "matches", "value": v},
                st.sampled_from(["^a", "b$", "a.?b", "[0-9]+", "(?i)^a"]),
            ),
            st.builds(lambda a, b: {"op": "between", "value": sorted([a, b])}, texts, texts),
        ]
    if kind == "json":
        dates = st.sampled_from(["2026-02-28", "2026-03-01", "1990-01-01", "2025-12-31"])
        tests += [
            st.builds(
                lambda o, v: {"op": o, "value": v}, st.sampled_from(["before", "after"]), dates
            ),
            st.builds(
                lambda o, v: {"op": o, "value": v},
                st.sampled_from(
                    ["within_last_days", "more_than_days_ago", "anniversary_within_days"]
                ),
                st.integers(0, 400),
            ),
            st.builds(
                lambda a, b: {"op": "age_between", "value": sorted([a, b])},
                st.integers(0, 60),
                st.integers(0, 60),
            ),
            st.builds(lambda v: {"op": "contains", "value": v}, scalars),
        ]
    return st.one_of(tests)


timestamp_tests = st.one_of(
    st.builds(
        lambda o, v: {"op": o, "value": v},
        st.sampled_from(["before", "after"]),
        st.sampled_from(["2026-02-28", "2026-03-01", "2026-02-01T06:00:00Z"]),
    ),
    st.builds(
        lambda o, v: {"op": o, "value": v},
        st.sampled_from(["within_last_days", "more_than_days_ago"]),
        st.integers(0, 400),
    ),
    st.builds(lambda o: {"op": o}, st.sampled_from(["exists", "empty"])),
    st.just({"op": "between", "value": ["2026-01-01", "2026-02-28"]}),
)
windows = st.one_of(
    st.just({}),
    st.builds(lambda d: {"within_last_days": d}, st.integers(1, 400)),
    st.just({"between": ["2026-01-01", "2026-02-28"]}),
)
times = st.one_of(
    st.integers(0, 3),
    st.builds(
        lambda k, n: {k: n}, st.sampled_from(["at_least", "at_most", "exactly"]), st.integers(0, 3)
    ),
)


def property_filters() -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.builds(
        lambda p, t: {"property": p, **t},
        st.sampled_from(["category", "url", "revenue"]),
        value_tests("json"),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(lambda i: {"all": i}, st.lists(inner, min_size=1, max_size=2)),
            st.builds(lambda i: {"not": i}, inner),
        ),
        max_leaves=3,
    )


def with_where(where: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), st.builds(lambda w: {"where": w}, where))


leaves = st.one_of(
    st.builds(lambda f, t: {"field": f, **t}, st.just("first_name"), value_tests("text")),
    st.builds(lambda t: {"field": "score", **t}, value_tests("number")),
    st.builds(lambda t: {"field": "last_seen_at", **t}, timestamp_tests),
    st.builds(
        lambda o, v: {"field": "lifecycle_stage", "op": o, "value": v},
        st.sampled_from(["=", "!=", "<", ">=", "<="]),
        st.sampled_from(STAGES),
    ),
    st.builds(
        lambda o: {"field": "lifecycle_stage", "op": o}, st.sampled_from(["exists", "empty"])
    ),
    st.builds(
        lambda a, t: {"attribute": a, **t},
        st.sampled_from(["a", "b", "birthday", "a.x"]),
        value_tests("json"),
    ),
    st.builds(lambda t: {"tag": t}, st.sampled_from(["vip", "new", "other"])),
    st.builds(
        lambda s: {"consent": "email", "status": s},
        st.lists(
            st.sampled_from(["subscribed", "pending", "unsubscribed", "unknown"]),
            min_size=1,
            max_size=2,
        ),
    ),
    st.builds(lambda t: {"score": "interest", **t}, value_tests("number")),
    st.just({"in_segment": "vip"}),
    st.builds(lambda t: {"trait": "rfm_cell", **t}, value_tests("text")),
    st.builds(lambda t: {"trait": "clv", **t}, value_tests("number")),
    st.builds(lambda t: {"trait": "last_purchase_at", **t}, timestamp_tests),
    st.builds(lambda t: {"trait": "days_since_last_purchase", **t}, value_tests("int")),
    st.builds(
        lambda e, n, w, wh: {"performed": e, "times": n, **w, **wh},
        st.sampled_from(EVENTS),
        times,
        windows,
        with_where(property_filters()),
    ),
    st.builds(lambda e, w: {"never_performed": e, **w}, st.sampled_from(EVENTS), windows),
    st.builds(
        lambda k, e, t, wh: {k: e, **t, **wh},
        st.sampled_from(["first_performed", "last_performed"]),
        st.sampled_from(EVENTS),
        timestamp_tests,
        with_where(property_filters()),
    ),
    st.builds(
        lambda v, n, w: {"visited": v, "times": n, **w},
        st.sampled_from(["a", "/B"]),
        times,
        windows,
    ),
    st.builds(
        lambda m, t, w: {"purchases": m, **t, **w},
        st.sampled_from(["revenue", "count", "average_order_value"]),
        value_tests("number"),
        windows,
    ),
)

filters = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda i: {"all": i}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda i: {"any": i}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda i: {"not": i}, inner),
    ),
    max_leaves=4,
)

CATALOG = Catalog(
    now=NOW,
    stages=STAGES,
    score_models={"interest": MODEL_ID},
    segments={"vip": SEGMENT_ID},
)


def _store(session: Session, population: list[dict[str, Any]]) -> list[uuid.UUID]:
    for model in (
        Event,
        ContactTag,
        ContactConsent,
        ContactScore,
        ContactTrait,
        SegmentMembership,
        Contact,
    ):
        session.execute(delete(model))
    ids = [uuid.UUID(int=i + 1) for i in range(len(population))]
    insert_rows(
        session,
        Contact,
        [
            {
                "id": id_,
                "email": f"c{i}@example.com",
                "first_name": c["first_name"],
                "score": c["score"],
                "lifecycle_stage": c["lifecycle_stage"],
                "last_seen_at": c["last_seen_at"],
                "attributes": c["attributes"],
                "created_at": NOW,
                "updated_at": NOW,
            }
            for i, (id_, c) in enumerate(zip(ids, population, strict=True))
        ],
    )
    rows = {name: [] for name in ("tags", "consents", "scores", "members", "traits", "events")}
    serial = 0
    for id_, c in zip(ids, population, strict=True):
        rows["tags"] += [{"contact_id": id_, "tag": t, "added_at": NOW} for t in sorted(c["tags"])]
        if c["consent"]:
            rows["consents"].append(
                {
                    "contact_id": id_,
                    "channel": "email",
                    "status": c["consent"],
                    "changed_at": NOW,
                    "source": "test",
                }
            )
        if c["model_score"] is not None:
            rows["scores"].append(
                {"contact_id": id_, "model_id": MODEL_ID, "score": c["model_score"]}
            )
        if c["member"]:
            rows["members"].append(
                {"segment_id": SEGMENT_ID, "contact_id": id_, "entered_at": NOW, "exited_at": None}
            )
        if c["traits"] is not None:
            rows["traits"].append(
                {
                    "contact_id": id_,
                    "engagement": "passive",
                    "purchase_count": 0,
                    "computed_at": NOW,
                    **c["traits"],
                }
            )
        for name, moment, properties in c["events"]:
            serial += 1
            rows["events"].append(
                {
                    "id": serial,
                    "contact_id": id_,
                    "message_id": f"m{serial}",
                    "type": "track",
                    "name": name,
                    "properties": properties,
                    "context": {},
                    "source": "test",
                    "occurred_at": moment,
                    "received_at": moment,
                }
            )
    for model, key in (
        (ContactTag, "tags"),
        (ContactConsent, "consents"),
        (ContactScore, "scores"),
        (SegmentMembership, "members"),
        (ContactTrait, "traits"),
        (Event, "events"),
    ):
        insert_rows(session, model, rows[key])
    return ids


@pytest.fixture
def prepared(runtime: Runtime) -> Runtime:
    with runtime.database.transaction() as session:
        insert_rows(
            session,
            ScoreModel,
            [
                {
                    "id": MODEL_ID,
                    "key": "interest",
                    "name": "Interest",
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            ],
        )
        insert_rows(
            session,
            Segment,
            [
                {
                    "id": SEGMENT_ID,
                    "key": "vip",
                    "name": "VIP",
                    "filter": {"tag": "vip"},
                    "created_at": NOW,
                    "updated_at": NOW,
                }
            ],
        )
    return runtime


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    population=st.lists(contacts(), min_size=1, max_size=6),
    docs=st.lists(filters, min_size=1, max_size=6),
)
def test_sql_and_python_agree(
    prepared: Runtime, population: list[dict[str, Any]], docs: list[Any]
) -> None:
    parsed = []
    for doc in docs:
        try:
            parsed.append((doc, parse_filter(doc)))
        except InvalidInput:
            continue
    assume(parsed)
    with prepared.database.transaction() as session:
        ids = _store(session, population)
        dialect = session.get_bind().dialect.name
        evaluator = Evaluator(CATALOG)
        for doc, node in parsed:
            everyone = set(session.scalars(select_members(node, CATALOG, dialect)))
            listed = set(session.scalars(select_members(node, CATALOG, dialect, contact_ids=ids)))
            # Built at another time, run with the parameters of NOW.
            built = listed_query(node, replace(CATALOG, now=NOW - timedelta(days=400)), dialect)
            later = set(session.scalars(built.statement, built.parameters(NOW, ids)))
            facts = load_facts(
                session, ids, catalog=CATALOG, event_names=event_names(node, CATALOG)
            )
            in_python = {i for i, one in facts.items() if evaluator.matches(node, one)}
            assert everyone == in_python, doc
            assert listed == in_python, doc
            assert later == in_python, doc
        session.rollback()
