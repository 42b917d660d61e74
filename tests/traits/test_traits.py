"""Computed traits on a crafted dataset: purchase totals, RFM quintiles and cells,
engagement as the clock moves, partial refreshes, and only changed rows rewritten."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from postillon.clock import VirtualClock
from postillon.errors import InvalidInput
from postillon.runtime import Runtime
from postillon.traits.purchases import order_revenue
from tests.traits.support import add_contact, add_event, queued, refresh, traits

DAY = timedelta(days=1)


def test_purchase_traits_and_rfm_on_a_crafted_dataset(
    runtime: Runtime, clock: VirtualClock
) -> None:
    now = clock.now()
    ann = add_contact(runtime, "ann@example.com")
    bob = add_contact(runtime, "bob@example.com")
    cid = add_contact(runtime, "cid@example.com")
    dan = add_contact(runtime, "dan@example.com")
    eve = add_contact(runtime, "eve@example.com")
    fay = add_contact(runtime, "fay@example.com")  # never bought
    for days_ago in (60, 30, 2):
        add_event(runtime, ann, now - days_ago * DAY, revenue=100)
    add_event(runtime, bob, now - 1 * DAY, revenue="a lot", total=50)
    add_event(runtime, cid, now - 45 * DAY, revenue=True, total=20)
    add_event(runtime, cid, now - 40 * DAY, revenue=30.0)
    for days_ago in (50, 40, 30, 20, 10):
        add_event(runtime, dan, now - days_ago * DAY, revenue=40)
    add_event(runtime, eve, now - 200 * DAY)  # no revenue: worth 0
    add_event(runtime, fay, now - 1 * DAY, name="Order Viewed", revenue=999)
    queued(runtime)

    assert refresh(runtime) == {ann, bob, cid, dan, eve, fay}
    assert queued(runtime) == {ann, bob, cid, dan, eve, fay}

    a = traits(runtime, ann)
    assert (a.purchase_count, a.clv, a.average_order_value) == (3, 300.0, 100.0)
    assert a.first_purchase_at == now - 60 * DAY
    assert a.last_purchase_at == now - 2 * DAY
    assert a.purchase_frequency == pytest.approx(1.5)  # 3 in 60 days
    assert traits(runtime, bob).purchase_frequency == pytest.approx(1.0)  # 1 in (at least) 30
    assert traits(runtime, eve).purchase_frequency == pytest.approx(0.15)  # 1 in 200 days
    assert (traits(runtime, cid).clv, traits(runtime, eve).clv) == (50.0, 0.0)

    # Five purchasers: a score is the rank, ties sharing the lowest.
    # count: bob 1, eve 1, cid 2, ann 3, dan 5; clv: eve 0, bob 50, cid 50, dan 200,
    # ann 300; last purchase: eve, cid, dan, ann, bob.
    scores = {
        name: (t.rfm_recency, t.rfm_frequency, t.rfm_monetary, t.rfm_cell)
        for name, t in (
            ("ann", traits(runtime, ann)),
            ("bob", traits(runtime, bob)),
            ("cid", traits(runtime, cid)),
            ("dan", traits(runtime, dan)),
            ("eve", traits(runtime, eve)),
        )
    }
    assert scores == {
        "ann": (4, 4, 5, "champions"),
        "bob": (5, 1, 2, "potential_loyalists"),
        "cid": (2, 3, 2, "at_risk"),
        "dan": (3, 5, 4, "loyal"),
        "eve": (1, 1, 1, "lost"),
    }
    f = traits(runtime, fay)
    assert (f.purchase_count, f.clv, f.average_order_value, f.purchase_frequency) == (
        0,
        0.0,
        None,
        None,
    )
    assert (f.rfm_recency, f.rfm_cell, f.first_purchase_at) == (None, None, None)

    # Nothing changed: nothing is rewritten or queued.
    assert refresh(runtime) == set()
    assert queued(runtime) == set()
    assert traits(runtime, ann).computed_at == now

    # A partial refresh ranks eve's fresh values among everyone else's stored ones.
    add_event(runtime, eve, now, revenue=1000)
    assert refresh(runtime, [eve]) == {eve}
    e = traits(runtime, eve)
    assert (e.purchase_count, e.clv, e.rfm_recency, e.rfm_frequency, e.rfm_monetary) == (
        2,
        1000.0,
        5,
        2,
        5,
    )
    assert e.rfm_cell == "champions"
    assert traits(runtime, ann).rfm_monetary == 5  # until the next full refresh
    assert queued(runtime) == {eve}
    changed = refresh(runtime)
    assert traits(runtime, ann).rfm_monetary == 4
    assert traits(runtime, bob).rfm_recency == 4
    assert eve not in changed and ann in changed


ODD_ORDERS: list[dict[str, Any]] = [
    {"revenue": 0, "total": 5},
    {"revenue": -3.5},
    {"revenue": "12", "total": "13"},
    {"revenue": None, "total": 7},
    {"revenue": [1], "total": {"amount": 2}},
    {"revenue": False, "total": True},
    {"Revenue": 5},
    {"total": 1e15},
    {"revenue": 2**53},
    {"revenue": 0.1},
]


def test_sql_revenue_is_order_revenue(runtime: Runtime, clock: VirtualClock) -> None:
    ann = add_contact(runtime, "ann@example.com")
    for properties in ODD_ORDERS:
        add_event(runtime, ann, clock.now(), **properties)
    refresh(runtime)
    expected = sum(order_revenue(p) for p in ODD_ORDERS)
    assert traits(runtime, ann).clv == pytest.approx(expected)
    assert traits(runtime, ann).purchase_count == len(ODD_ORDERS)


def test_engagement_follows_the_clock(runtime: Runtime, clock: VirtualClock) -> None:
    reader = add_contact(runtime, "reader@example.com")
    browser = add_contact(runtime, "browser@example.com")
    quiet = add_contact(runtime, "quiet@example.com")
    add_event(runtime, reader, clock.now(), name="email_opened", type="internal")
    add_event(runtime, browser, clock.now() - 40 * DAY, name="/pricing", type="page")
    add_event(runtime, quiet, clock.now(), name="consent_changed", type="internal")
    add_event(runtime, quiet, clock.now(), name="email_delivered")  # done to them, not by them
    # A privacy proxy's open and a link scanner's click are machines', not the contact's.
    add_event(runtime, quiet, clock.now(), name="email_opened", machine=True)
    add_event(runtime, quiet, clock.now(), name="email_clicked", machine=True)
    refresh(runtime)
    levels = {c: traits(runtime, c).engagement for c in (reader, browser, quiet)}
    assert levels == {reader: "active", browser: "moderate", quiet: "passive"}

    clock.advance(30 * DAY)
    assert refresh(runtime) == set()  # 30 days to the second still counts
    clock.advance(timedelta(seconds=1))
    assert refresh(runtime) == {reader}
    assert traits(runtime, reader).engagement == "moderate"
    assert traits(runtime, reader).computed_at == clock.now()

    clock.advance(20 * DAY)
    assert refresh(runtime) == {browser}
    assert traits(runtime, browser).engagement == "passive"
    add_event(runtime, browser, clock.now(), name="Signed Up")
    clock.advance(40 * DAY)
    assert refresh(runtime) == {reader, browser}
    assert traits(runtime, reader).engagement == "passive"
    assert traits(runtime, browser).engagement == "moderate"


def test_deleted_contacts_take_their_traits_along(runtime: Runtime, clock: VirtualClock) -> None:
    ann = add_contact(runtime, "ann@example.com")
    bob = add_contact(runtime, "bob@example.com")
    add_event(runtime, ann, clock.now(), revenue=30)
    add_event(runtime, bob, clock.now(), revenue=20)
    refresh(runtime)
    assert traits(runtime, ann).rfm_monetary == 3  # 1 + 5 * (2 - 1) // 2
    with runtime.database.transaction() as session:
        runtime.contacts.delete(session, bob)
    assert refresh(runtime) == {ann}
    assert traits(runtime, ann).rfm_monetary == 1


def test_the_purchase_event_is_a_setting(runtime: Runtime, clock: VirtualClock) -> None:
    ann = add_contact(runtime, "ann@example.com")
    add_event(runtime, ann, clock.now(), name="Checkout", total=12.5)
    runtime.traits.settings = runtime.settings.model_copy(update={"purchase_event": "Checkout"})
    refresh(runtime)
    assert (traits(runtime, ann).purchase_count, traits(runtime, ann).clv) == (1, 12.5)


def test_too_many_ids_are_refused(runtime: Runtime) -> None:
    with runtime.database.transaction() as session, pytest.raises(InvalidInput) as raised:
        runtime.traits.refresh(session, list(range(100_001)))  # type: ignore[arg-type]
    assert raised.value.problems[0].location == "contact_ids"
