"""A/B tests: shares, reproducible assignment, the winner after the set time, the rest."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from postillon.broadcasts import planning
from postillon.clock import VirtualClock
from postillon.models import Message
from postillon.runtime import Runtime
from tests.broadcasts.support import (
    broadcast,
    create,
    make_contacts,
    make_template,
    mark_sent,
    messages_of,
    run_broadcasts,
)

AUDIENCE = 1000


def _start_test(runtime: Runtime, session: Session, metric: str = "opens") -> dict[str, uuid.UUID]:
    templates = {
        "A": make_template(session, runtime, "subject-a", "Our news"),
        "B": make_template(session, runtime, "subject-b", "You will not believe our news"),
    }
    make_contacts(session, runtime, AUDIENCE)
    session.commit()
    create(
        runtime,
        key="ab",
        variants=[{"name": "A", "template": "subject-a"}, {"name": "B", "template": "subject-b"}],
        audience={"everyone": True},
        ab_test={"share_percent": 10, "duration_minutes": 240, "metric": metric},
    )
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "ab")
    run_broadcasts(runtime)
    return templates


def _engage(runtime: Runtime, variant: str, count: int, column: str) -> None:
    """`count` of the variant's messages opened (or clicked) by a person."""
    ids = [m.id for m in messages_of(runtime, "ab") if m.variant == variant][:count]
    with runtime.database.transaction() as tx:
        tx.execute(update(Message).where(Message.id.in_(ids)).values({column: runtime.clock.now()}))


def test_each_variant_is_tested_on_its_share_chosen_reproducibly(
    runtime: Runtime, session: Session
) -> None:
    templates = _start_test(runtime, session)
    b = broadcast(runtime, "ab")
    tested = messages_of(runtime, "ab")
    assert b.state == "testing"
    shares = Counter(m.variant for m in tested)
    # 10 % each of 1,000, as drawn by the hash: binomially about 100 ± 30.
    assert set(shares) == {"A", "B"}
    assert all(70 <= n <= 130 for n in shares.values()), shares
    for message in tested:
        assert message.variant == planning.test_variant(b.id, message.contact_id, ["A", "B"], 10)
        assert message.template_id == templates[str(message.variant)]
    # Nothing in the remaining 80 % is sent before the winner is known.
    assert b.recipient_count == len(tested)


def test_the_winner_by_opens_goes_to_the_rest_after_the_set_time(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    templates = _start_test(runtime, session)
    mark_sent(runtime, "ab")
    tested = {m.contact_id for m in messages_of(runtime, "ab")}
    _engage(runtime, "A", 10, "opened_at")
    _engage(runtime, "B", 30, "opened_at")
    _engage(runtime, "A", 20, "clicked_at")  # clicks do not decide here

    clock.advance(timedelta(minutes=239))
    assert run_broadcasts(runtime) == 0
    assert broadcast(runtime, "ab").winner_variant is None
    clock.advance(timedelta(minutes=1))
    run_broadcasts(runtime)

    b = broadcast(runtime, "ab")
    assert (b.state, b.winner_variant) == ("sending", "B")
    results = b.test_results
    assert results is not None
    assert results["metric"] == "opens"
    figures = results["variants"]
    assert (figures["A"]["unique_opens"], figures["B"]["unique_opens"]) == (10, 30)
    assert figures["B"]["rate"] == round(30 / figures["B"]["sent"], 6)

    everyone = messages_of(runtime, "ab")
    assert len(everyone) == AUDIENCE
    assert broadcast(runtime, "ab").recipient_count == AUDIENCE
    assert len({m.contact_id for m in everyone}) == AUDIENCE
    rest = [m for m in everyone if m.contact_id not in tested]
    assert len(rest) == AUDIENCE - len(tested)
    assert {(m.variant, m.template_id, m.state) for m in rest} == {("B", templates["B"], "queued")}
    assert {m.due_at for m in rest} == {clock.now()}


def test_the_winner_by_clicks(runtime: Runtime, session: Session, clock: VirtualClock) -> None:
    _start_test(runtime, session, metric="clicks")
    mark_sent(runtime, "ab")
    _engage(runtime, "A", 5, "clicked_at")
    _engage(runtime, "B", 50, "opened_at")
    clock.advance(timedelta(hours=4))
    run_broadcasts(runtime)
    assert broadcast(runtime, "ab").winner_variant == "A"


def test_a_tie_goes_to_the_first_variant(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    _start_test(runtime, session)
    mark_sent(runtime, "ab")
    clock.advance(timedelta(hours=4))
    run_broadcasts(runtime)
    b = broadcast(runtime, "ab")
    assert b.winner_variant == "A"
    assert b.test_results is not None
    assert {v["unique_opens"] for v in b.test_results["variants"].values()} == {0}


def test_the_assignment_is_a_function_of_broadcast_and_contact() -> None:
    broadcast_id, contact_id = uuid.uuid4(), uuid.uuid4()
    first = planning.bucket(broadcast_id, contact_id)
    assert planning.bucket(broadcast_id, contact_id) == first
    assert 0 <= first < 1
    contacts = [uuid.uuid4() for _ in range(4000)]
    drawn = Counter(planning.test_variant(broadcast_id, c, ["A", "B", "C"], 5) for c in contacts)
    assert all(140 <= drawn[v] <= 260 for v in "ABC"), drawn
    assert drawn[None] == 4000 - sum(drawn[v] for v in "ABC")


def test_the_rest_is_throttled_without_gaps_for_the_test_share(
    runtime: Runtime, session: Session, clock: VirtualClock
) -> None:
    make_template(session, runtime, "subject-a")
    make_template(session, runtime, "subject-b")
    make_contacts(session, runtime, 200)
    session.commit()
    create(
        runtime,
        key="ab",
        variants=[{"name": "A", "template": "subject-a"}, {"name": "B", "template": "subject-b"}],
        audience={"everyone": True},
        ab_test={"share_percent": 10, "duration_minutes": 60},
        rate_per_minute=60,
    )
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "ab")
    run_broadcasts(runtime)
    tested = {m.contact_id for m in messages_of(runtime, "ab")}
    mark_sent(runtime, "ab")
    clock.set(broadcast(runtime, "ab").test_ends_at or clock.now())
    winner_at = clock.now()
    run_broadcasts(runtime)
    rest = sorted(m.due_at for m in messages_of(runtime, "ab") if m.contact_id not in tested)
    assert rest == [winner_at + timedelta(seconds=n) for n in range(200 - len(tested))]
