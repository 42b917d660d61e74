"""A journey interrupted by kill -9 resumes: a real `postillon worker` runs a two-mail
journey into a real SMTP server on loopback, is killed in the middle, and a new worker
finishes it. Every run completes, every contact has exactly one message per send step,
none arrives twice; the few in flight at the kill are `unknown`, never re-sent."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from postillon.automations.journeys.engine import Entrant
from postillon.models import JourneyRun, Message
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.templates.schemas import TemplateIn
from tests.automations.journeys.support import make_contacts, publish
from tests.support.cli import POSTILLON, base_env
from tests.support.smtp import SmtpSink

CONTACTS = 300

JOURNEY = """
kind: journey
key: two-mails
name: Two mails
trigger: {event: signed_up}
steps:
  - {id: one, send: mail-one}
  - {id: pause, wait: 2s}
  - {id: two, send: mail-two}
"""


def _start_worker(
    settings: Settings, sink: SmtpSink, tmp_path: Path, name: str
) -> subprocess.Popen[bytes]:
    assert settings.database_url is not None
    env = {
        **base_env(tmp_path),
        "POSTILLON_DATABASE_URL": settings.database_url,
        "POSTILLON_SECRET_KEY": settings.secret_key,
        "POSTILLON_SMTP_PORT": str(sink.port),
        "POSTILLON_SMTP_CONNECTIONS": "2",
        # Slow enough that mails are being handed over most of the time.
        "POSTILLON_SMTP_RATE_PER_SECOND": "150",
        "POSTILLON_SEND_BATCH_SIZE": "30",
        "POSTILLON_SEND_LEASE": "PT2S",
        "POSTILLON_WORKER_POLL_SECONDS": "0.2",
        "POSTILLON_DEMO_DATA": "false",
    }
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [str(POSTILLON), "worker", "--name", name],
        env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip


def _wait(condition: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _count(runtime: Runtime, *where: object) -> int:
    with runtime.database.transaction(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(Message).where(*where)) or 0)  # type: ignore[arg-type]


def _runs_ended(runtime: Runtime) -> bool:
    with runtime.database.transaction(read_only=True) as session:
        states = session.scalars(select(JourneyRun.state)).all()
    return len(states) == CONTACTS and set(states) == {"completed"}


@pytest.mark.e2e
def test_a_journey_killed_mid_way_resumes_without_doubles_or_gaps(
    runtime: Runtime, settings: Settings, sink: SmtpSink, tmp_path: Path
) -> None:
    with runtime.database.transaction() as session:
        for key in ("mail-one", "mail-two"):
            runtime.templates.save(
                session,
                TemplateIn.model_validate(
                    {"key": key, "format": "html", "subject": key, "kind": "marketing",
                     "body": "<p>Hello</p><p><a href=\"{{ unsubscribe_url }}\">Leave</a></p>"}
                ),
            )  # fmt: skip
        people = make_contacts(session, runtime, CONTACTS)
    publish(runtime, JOURNEY)
    with runtime.database.transaction() as session:
        definitions = runtime.definitions.load(session)
        runtime.journeys.enter(
            session, definitions, definitions.by_key["two-mails"],
            [Entrant(c, f"signup-{c}", "event") for c in people], now=datetime.now(UTC),
        )  # fmt: skip

    first = _start_worker(settings, sink, tmp_path, "first")
    try:
        _wait(lambda: len(sink.messages()) >= CONTACTS // 2, within=300, what="half of one sent")
        # The server now takes data and never answers: the mails being handed over stay
        # in flight, whenever the kill comes.
        sink.data_stall.set()
        # In flight for sure: the server holds the data of at least one message.
        _wait(lambda: sink.stalled > 0, within=120, what="a message's data held by the server")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    delivered_at_kill = len(sink.messages())
    assert delivered_at_kill < 2 * CONTACTS, "the worker finished before it was killed"

    sink.data_stall.clear()
    second = _start_worker(settings, sink, tmp_path, "second")
    try:
        _wait(lambda: _runs_ended(runtime), within=300, what="every run to complete")
        _wait(
            lambda: _count(runtime, Message.state.in_(["queued", "sending"])) == 0,
            within=180,
            what="the outbox to empty",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    deliveries = Counter((mail.recipients, _subject(mail.data)) for mail in sink.messages())
    with runtime.database.transaction(read_only=True) as session:
        rows = session.execute(select(Message.to_address, Message.step, Message.state)).all()
        steps_done = set(session.scalars(select(JourneyRun.steps_done)))
    # One message per contact and send step; nothing delivered twice.
    assert Counter(step for _, step, _ in rows) == {"one": CONTACTS, "two": CONTACTS}
    assert max(deliveries.values()) == 1
    assert {state for _, _, state in rows} <= {"sent", "unknown"}
    sent = [(address, step) for address, step, state in rows if state == "sent"]
    assert all(deliveries[((address,), f"mail-{step}")] == 1 for address, step in sent)
    unknown = [row for row in rows if row[2] == "unknown"]
    assert unknown, "the kill should have caught mails in flight"
    assert steps_done == {3}
    print(f"killed after {delivered_at_kill} deliveries; {len(unknown)} unknown")


def _subject(data: bytes) -> str:
    for line in data.decode(errors="replace").splitlines():
        if line.lower().startswith("subject:"):
            return line.split(":", 1)[1].strip()
    return ""
