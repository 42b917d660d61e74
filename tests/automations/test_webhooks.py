"""Webhooks against a real HTTP server on loopback: signed calls with the contact card and
the event, retries with backoff (server down then up: delivered exactly once), failures,
and calls a stopped worker left open (unknown, never repeated)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from postillon.automations.definitions import Published
from postillon.automations.webhooks import WebhookTask, webhook_secret
from postillon.clock import VirtualClock
from postillon.models import WebhookDelivery
from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.automations.rules_support import new_contact, publish, run_until_idle, targets
from tests.conftest import TEST_SECRET
from tests.scoring.support import track
from tests.support.webhooks import WebhookReceiver


@pytest.fixture
def receiver(clock: VirtualClock) -> Iterator[WebhookReceiver]:
    server = WebhookReceiver(
        webhook_secret(TEST_SECRET), now=lambda: clock.now().timestamp()
    ).start()
    yield server
    server.stop()


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_max_attempts": 3, "webhook_timeout_seconds": 2.0})


def hook_rule(runtime: Runtime, url: str) -> Published:
    return publish(
        runtime,
        {
            "kind": "rule",
            "key": "crm-sync",
            "name": "CRM sync",
            "trigger": {"event": "order_completed"},
            "actions": [{"webhook": {"url": url, "headers": {"X-Crm": "acme"}}}],
        },
    )


def deliveries(runtime: Runtime) -> list[WebhookDelivery]:
    with runtime.database.transaction(read_only=True) as session:
        rows = list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.queued_at)))
        session.expunge_all()
        return rows


def fire(runtime: Runtime, rule: Published, contact_id: uuid.UUID, *, event_id: int = 1) -> None:
    with runtime.database.transaction() as session:
        action = rule.rule.actions[0]
        [result] = runtime.actions.run(
            session,
            rule,
            action,
            targets(rule, contact_id, event_id=event_id),
            now=runtime.clock.now(),
        )
        assert result.done, result.reason


def test_a_rule_calls_its_webhook_signed_with_the_contact_and_the_event(
    runtime: Runtime, receiver: WebhookReceiver, clock: VirtualClock
) -> None:
    hook_rule(runtime, receiver.url)
    ann = new_contact(runtime, "ann@example.com", first_name="Ann", tags=["vip"])
    [event_id] = track(runtime, ann, ("order_completed", {"order_id": "o-1", "total": 99.5}))
    run_until_idle(runtime)

    [call] = receiver.received()
    assert call.signed
    assert call.headers["Content-Type"] == "application/json"
    assert call.headers["X-Crm"] == "acme"
    body = json.loads(call.body)
    [delivery] = deliveries(runtime)
    assert call.headers["Postillon-Delivery"] == body["id"] == str(delivery.id)
    assert body["automation"] == "crm-sync"
    assert body["sent_at"] == clock.now().isoformat()
    assert body["event"]["id"] == event_id
    assert body["event"]["name"] == "order_completed"
    assert body["event"]["properties"] == {"order_id": "o-1", "total": 99.5}
    contact = body["contact"]
    assert (contact["id"], contact["email"], contact["name"], contact["tags"]) == (
        str(ann),
        "ann@example.com",
        "Ann",
        ["vip"],
    )
    assert contact["events"][0]["name"] == "order_completed"
    assert (delivery.state, delivery.response_status, delivery.attempts) == ("delivered", 200, 1)
    assert delivery.delivered_at == clock.now()
    # A signature made with another secret does not verify.
    other = WebhookReceiver("not-the-secret", now=lambda: clock.now().timestamp()).start()
    try:
        fire(runtime, hook_rule(runtime, other.url), ann, event_id=99)
        WebhookTask().run_due(runtime, clock.now())
        assert [c.signed for c in other.received()] == [False]
    finally:
        other.stop()


def test_a_replayed_action_queues_no_second_call(
    runtime: Runtime, receiver: WebhookReceiver, clock: VirtualClock
) -> None:
    rule = hook_rule(runtime, receiver.url)
    ann = new_contact(runtime)
    fire(runtime, rule, ann)
    fire(runtime, rule, ann)
    assert WebhookTask().run_due(runtime, clock.now()) == 1
    assert len(receiver.received()) == 1


def test_a_server_down_then_up_gets_the_call_exactly_once(
    runtime: Runtime, receiver: WebhookReceiver, clock: VirtualClock
) -> None:
    rule = hook_rule(runtime, receiver.url)
    ann = new_contact(runtime)
    fire(runtime, rule, ann)
    receiver.stop()
    task = WebhookTask()
    assert task.run_due(runtime, clock.now()) == 1
    [delivery] = deliveries(runtime)
    assert (delivery.state, delivery.attempts) == ("queued", 1)
    assert delivery.due_at == clock.now() + timedelta(seconds=30)
    assert "ConnectError" in (delivery.last_error or "")
    assert task.run_due(runtime, clock.now()) == 0  # not due yet

    receiver.start()
    clock.advance(timedelta(seconds=30))
    assert task.run_due(runtime, clock.now()) == 1
    for _ in range(3):
        clock.advance(timedelta(hours=1))
        assert task.run_due(runtime, clock.now()) == 0
    assert len(receiver.received()) == 1
    [delivery] = deliveries(runtime)
    assert (delivery.state, delivery.attempts) == ("delivered", 2)


def test_server_errors_are_retried_with_backoff_until_the_attempts_run_out(
    runtime: Runtime, receiver: WebhookReceiver, clock: VirtualClock
) -> None:
    rule = hook_rule(runtime, receiver.url)
    fire(runtime, rule, new_contact(runtime))
    receiver.statuses = [503, 429, 500]
    task = WebhookTask()
    delays = []
    for _ in range(3):
        task.run_due(runtime, clock.now())
        [delivery] = deliveries(runtime)
        delays.append(delivery.due_at - clock.now())
        clock.set(delivery.due_at)
    assert delays[:2] == [timedelta(seconds=30), timedelta(minutes=1)]
    [delivery] = deliveries(runtime)
    assert (delivery.state, delivery.attempts, delivery.response_status) == ("failed", 3, 500)
    assert delivery.last_error == "HTTP 500: ok (after 3 attempts)"
    assert task.run_due(runtime, clock.now() + timedelta(days=1)) == 0
    assert len(receiver.received()) == 3


def test_a_client_error_fails_at_once_and_a_slow_server_is_a_timeout(
    runtime: Runtime, receiver: WebhookReceiver, clock: VirtualClock
) -> None:
    rule = hook_rule(runtime, receiver.url)
    ann, bob = new_contact(runtime), new_contact(runtime, "bob@example.com")
    fire(runtime, rule, ann)
    receiver.statuses = [410]
    WebhookTask().run_due(runtime, clock.now())
    [gone] = deliveries(runtime)
    assert (gone.state, gone.last_error) == ("failed", "HTTP 410: ok")

    fire(runtime, rule, bob, event_id=2)
    receiver.delay = 3.0  # longer than the 2 s timeout
    WebhookTask().run_due(runtime, clock.now())
    slow = deliveries(runtime)[1]
    assert (slow.state, slow.attempts) == ("queued", 1)
    assert (slow.last_error or "").startswith("timed out")


def test_a_call_a_stopped_worker_left_open_is_unknown_and_not_repeated(
    runtime: Runtime, receiver: WebhookReceiver, clock: VirtualClock
) -> None:
    rule = hook_rule(runtime, receiver.url)
    fire(runtime, rule, new_contact(runtime))
    with runtime.database.transaction() as session:
        # What a worker killed during the call leaves behind.
        session.execute(
            update(WebhookDelivery).values(state="sending", claimed_at=clock.now(), attempts=1)
        )
    task = WebhookTask()
    clock.advance(timedelta(minutes=4))
    assert task.run_due(runtime, clock.now()) == 0  # still within its lease
    clock.advance(timedelta(minutes=2))
    assert task.run_due(runtime, clock.now()) == 1
    [delivery] = deliveries(runtime)
    assert delivery.state == "unknown"
    assert "not repeated" in (delivery.last_error or "")
    clock.advance(timedelta(days=1))
    assert task.run_due(runtime, clock.now()) == 0
    assert receiver.received() == []
