"""Recipients into the outbox: audiences, consent, chunks, repeats, races, finishing."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import update
from sqlalchemy.orm import Session

from postillon.broadcasts.tasks import BroadcastTask
from postillon.models import Broadcast
from postillon.runtime import Runtime
from tests.broadcasts.support import (
    broadcast,
    create,
    make_contacts,
    make_segment,
    make_template,
    mark_sent,
    messages_of,
    run_broadcasts,
    set_topic,
)


def test_everyone_means_every_address_with_email_consent(
    runtime: Runtime, session: Session
) -> None:
    template_id = make_template(session, runtime, "news")
    subscribed = make_contacts(session, runtime, 5)
    make_contacts(session, runtime, 2, consent="unsubscribed")
    make_contacts(session, runtime, 1, consent="bounced")
    make_contacts(session, runtime, 1, consent=None)
    make_contacts(session, runtime, 1, with_email=False)
    session.commit()

    create(runtime, key="news", template="news", audience={"everyone": True})
    assert broadcast(runtime, "news").state == "draft"
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "news")
    run_broadcasts(runtime)

    sent = messages_of(runtime, "news")
    b = broadcast(runtime, "news")
    assert sorted(m.contact_id for m in sent) == sorted(subscribed)
    assert {m.dedupe_key for m in sent} == {f"broadcast:{b.id}:{c}" for c in subscribed}
    assert {(m.state, m.template_id, m.variant, m.source, m.due_at) for m in sent} == {
        ("queued", template_id, "A", "broadcast", runtime.clock.now())
    }
    assert (b.state, b.recipient_count, b.phase_done) == ("sending", 5, True)


def test_a_segment_means_its_current_members(runtime: Runtime, session: Session) -> None:
    make_template(session, runtime, "news")
    members = make_contacts(session, runtime, 3)
    former = make_contacts(session, runtime, 2)
    unconsented = make_contacts(session, runtime, 1, consent="unsubscribed")
    make_contacts(session, runtime, 4)  # not in the segment
    make_segment(session, runtime, "vip", [*members, *unconsented], former=former)
    session.commit()

    create(runtime, key="vip-news", template="news", audience={"segment": "vip"})
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "vip-news")
    run_broadcasts(runtime)
    assert sorted(m.contact_id for m in messages_of(runtime, "vip-news")) == sorted(members)


def test_a_topic_means_everyone_who_did_not_leave_it(runtime: Runtime, session: Session) -> None:
    make_template(session, runtime, "offers")
    left = make_contacts(session, runtime, 2)
    stayed = make_contacts(session, runtime, 2)
    silent = make_contacts(session, runtime, 3)
    other_topic_left = make_contacts(session, runtime, 1)
    make_contacts(session, runtime, 2, consent="unsubscribed")
    set_topic(session, runtime, left, "offers", "unsubscribed")
    set_topic(session, runtime, stayed, "offers", "subscribed")
    set_topic(session, runtime, other_topic_left, "product-news", "unsubscribed")
    session.commit()

    create(runtime, key="deals", template="offers", audience={"topic": "offers"})
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "deals")
    run_broadcasts(runtime)
    made = messages_of(runtime, "deals")
    assert {m.contact_id for m in made} == {*stayed, *silent, *other_topic_left}
    # The template is of the newsletter topic; sent to the offers' subscribers, it is offers.
    assert {m.topic for m in made} == {"offers"}


def test_chunks_resume_and_a_second_run_adds_nobody(runtime: Runtime, session: Session) -> None:
    runtime.broadcasts.chunk_size = 3
    make_template(session, runtime, "news")
    everyone = make_contacts(session, runtime, 10)
    session.commit()
    create(runtime, key="news", template="news", audience={"everyone": True})
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "news")

    task = BroadcastTask()
    assert task.run_due(runtime, runtime.clock.now()) == 1
    assert len(messages_of(runtime, "news")) == 3  # one chunk per step
    run_broadcasts(runtime)
    assert len(messages_of(runtime, "news")) == 10

    # The whole materialisation again from the start, as if nothing had been recorded.
    with runtime.database.transaction() as tx:
        tx.execute(
            update(Broadcast).values(phase_done=False, cursor_contact_id=None, state="sending")
        )
    run_broadcasts(runtime)
    counted = Counter(m.contact_id for m in messages_of(runtime, "news"))
    assert sorted(counted) == sorted(everyone)
    assert set(counted.values()) == {1}
    assert broadcast(runtime, "news").recipient_count == 10


def test_two_workers_racing_make_each_message_once(runtime: Runtime, session: Session) -> None:
    runtime.broadcasts.chunk_size = 7
    make_template(session, runtime, "news")
    everyone = make_contacts(session, runtime, 120)
    session.commit()
    create(runtime, key="news", template="news", audience={"everyone": True})
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "news")

    errors: list[BaseException] = []

    def worker() -> None:
        try:
            run_broadcasts(runtime)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors
    run_broadcasts(runtime)
    counted = Counter(m.contact_id for m in messages_of(runtime, "news"))
    assert sorted(counted) == sorted(everyone)
    assert set(counted.values()) == {1}
    assert broadcast(runtime, "news").recipient_count == 120


def test_sent_when_no_message_waits_or_is_in_flight(runtime: Runtime, session: Session) -> None:
    make_template(session, runtime, "news")
    make_contacts(session, runtime, 4)
    session.commit()
    create(runtime, key="news", template="news", audience={"everyone": True})
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "news")
    run_broadcasts(runtime)
    assert run_broadcasts(runtime) == 0  # messages still queued: nothing to do
    assert broadcast(runtime, "news").state == "sending"

    first = messages_of(runtime, "news")[0]
    with runtime.database.transaction() as tx:
        tx.execute(update(type(first)).where(type(first).id == first.id).values(state="unknown"))
    mark_sent(runtime, "news")
    run_broadcasts(runtime)
    done = broadcast(runtime, "news")
    assert (done.state, done.finished_at) == ("sent", runtime.clock.now())
    assert done.final_counts == {"sent": 3, "unknown": 1}
    with runtime.database.transaction(read_only=True) as tx:
        status = runtime.broadcasts.status(tx, "news")
    assert (status.done, status.unknown, status.counts) == (4, 1, {"sent": 3, "unknown": 1})


def test_cancel_keeps_queued_messages_from_going_out(runtime: Runtime, session: Session) -> None:
    make_template(session, runtime, "news")
    make_contacts(session, runtime, 3)
    session.commit()
    create(runtime, key="news", template="news", audience={"everyone": True})
    with runtime.database.transaction() as tx:
        runtime.broadcasts.send_now(tx, "news")
    run_broadcasts(runtime)
    with runtime.database.transaction() as tx:
        runtime.broadcasts.cancel(tx, "news")
    assert {m.state for m in messages_of(runtime, "news")} == {"cancelled"}
    assert broadcast(runtime, "news").state == "cancelled"
    assert run_broadcasts(runtime) == 0
