"""SMTP spoken from a child process (`smtp_process`): the same outcomes as on a thread,
and a child that dies costs at most the slice it held, reported, never re-sent."""

from __future__ import annotations

import multiprocessing
import os
import signal

import pytest

from postillon.messages.sending import send_round
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.templates.schemas import TemplateIn
from tests.messages.sending_support import SIMPLE_HTML, messages, subscribe
from tests.support.smtp import SmtpSink
from tests.templates.support import add_contact, queue_messages


@pytest.fixture
def settings(settings: Settings, sink: SmtpSink) -> Settings:
    return settings.model_copy(
        update={
            "smtp_port": sink.port,
            "smtp_connections": 2,
            "smtp_rate_per_second": 1000.0,
            "smtp_process": True,
            "public_url": "https://mail.example.com",
            "bounce_domain": "bounces.example.com",
            "email_from": "Shop <news@shop.example.com>",
        }
    )


def _queue(runtime: Runtime, addresses: list[str], key: str) -> None:
    with runtime.database.transaction() as session:
        data = TemplateIn.model_validate(
            {"key": f"t-{key}", "format": "html", "subject": "Hi {{ contact.first_name }}",
             "body": SIMPLE_HTML, "kind": "marketing"}
        )  # fmt: skip
        template_id = runtime.templates.save(session, data)[0].id
        contacts = []
        for address in addresses:
            contact_id = add_contact(session, runtime, email=address, first_name="Ada")
            subscribe(session, runtime, contact_id, "subscribed")
            contacts.append(contact_id)
        queue_messages(session, runtime, template_id, contacts, key=key)


def _children() -> set[int]:
    return {child.pid for child in multiprocessing.active_children() if child.pid is not None}


def test_messages_go_out_through_the_child_and_are_recorded(
    runtime: Runtime, sink: SmtpSink
) -> None:
    before = _children()
    _queue(runtime, [f"reader{n}@example.com" for n in range(5)], "first")
    report = send_round(runtime, runtime.clock.now())
    assert (report.claimed, report.outcomes.sent) == (5, 5)
    assert sorted(m.recipients[0] for m in sink.wait_for(5)) == [
        f"reader{n}@example.com" for n in range(5)
    ]
    assert {m.state for m in messages(runtime).values()} == {"sent"}
    assert len(_children() - before) == 1  # the SMTP process, kept for the next round
    runtime.sending.close()
    assert _children() - before == set()


def test_a_child_that_dies_costs_at_most_a_slice_reported_unknown(
    runtime: Runtime, sink: SmtpSink
) -> None:
    before = _children()
    _queue(runtime, ["one@example.com"], "one")
    assert send_round(runtime, runtime.clock.now()).outcomes.sent == 1
    [child] = _children() - before
    os.kill(child, signal.SIGKILL)
    # The next slice finds the child gone: sent by a new one, or, if it was handed to the
    # dead one, `unknown` (it may have gone out) — never queued again, never lost.
    _queue(runtime, ["two@example.com"], "two")
    send_round(runtime, runtime.clock.now())
    assert messages(runtime)["two@example.com"].state in ("sent", "unknown")
    _queue(runtime, ["three@example.com"], "three")
    assert send_round(runtime, runtime.clock.now()).outcomes.sent == 1
    assert messages(runtime)["three@example.com"].state == "sent"
    received = {m.recipients[0] for m in sink.wait_for(2)}
    assert {"one@example.com", "three@example.com"} <= received
    runtime.sending.close()
