"""A broadcast interrupted by kill -9 resumes: a real `postillon worker` sends it to a real
SMTP server on loopback, is killed in the middle, and a new worker finishes it. Nobody
gets it twice, nobody is skipped; the few in flight at the kill are `unknown`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select

from postillon.models import Message
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.templates.schemas import TemplateIn
from tests.broadcasts.support import broadcast, create, make_contacts
from tests.support.cli import POSTILLON, base_env
from tests.support.smtp import SmtpSink

RECIPIENTS = 400


def _worker_env(settings: Settings, sink: SmtpSink, tmp_path: Path) -> dict[str, str]:
    assert settings.database_url is not None
    return {
        **base_env(tmp_path),
        "POSTILLON_DATABASE_URL": settings.database_url,
        "POSTILLON_SECRET_KEY": settings.secret_key,
        "POSTILLON_SMTP_PORT": str(sink.port),
        "POSTILLON_SMTP_CONNECTIONS": "2",
        # Slow enough that a batch is being handed over most of the time.
        "POSTILLON_SMTP_RATE_PER_SECOND": "150",
        "POSTILLON_SEND_BATCH_SIZE": "30",
        "POSTILLON_SEND_LEASE": "PT2S",
        # Materialisation and sending interleave: the kill can hit either.
        "POSTILLON_BROADCAST_CHUNK_SIZE": "60",
        "POSTILLON_WORKER_POLL_SECONDS": "0.2",
        "POSTILLON_DEMO_DATA": "false",
    }


def _start_worker(env: dict[str, str], tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    log = (tmp_path / f"{name}.log").open("wb")
    return subprocess.Popen(
        [str(POSTILLON), "worker", "--name", name],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _wait(condition: Callable[[], bool], *, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _count(runtime: Runtime, state: str) -> int:
    with runtime.database.transaction(read_only=True) as session:
        return len(session.scalars(select(Message.id).where(Message.state == state)).all())


@pytest.mark.e2e
def test_a_broadcast_killed_mid_send_resumes_without_doubles_or_gaps(
    runtime: Runtime, settings: Settings, sink: SmtpSink, tmp_path: Path
) -> None:
    with runtime.database.transaction() as session:
        runtime.templates.save(
            session,
            TemplateIn.model_validate(
                {"key": "news", "format": "html", "subject": "News", "kind": "marketing",
                 "body": "<p>Hello</p><p><a href=\"{{ unsubscribe_url }}\">Leave</a></p>"}
            ),
        )  # fmt: skip
        make_contacts(session, runtime, RECIPIENTS)
    create(runtime, key="news", template="news", audience={"everyone": True})
    with runtime.database.transaction() as session:
        runtime.broadcasts.send_now(session, "news")

    env = _worker_env(settings, sink, tmp_path)
    first = _start_worker(env, tmp_path, "first")
    try:
        _wait(lambda: len(sink.messages()) >= RECIPIENTS // 3, within=120, what="a third sent")
        # The server now takes data and never answers: the batch being handed over stays
        # in flight, whenever the kill comes.
        sink.data_stall.set()
        # In flight for sure: the server holds the data of at least one message.
        _wait(lambda: sink.stalled > 0, within=60, what="a message's data held by the server")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    delivered_at_kill = len(sink.messages())
    assert delivered_at_kill < RECIPIENTS, "the worker finished before it was killed"

    sink.data_stall.clear()
    second = _start_worker(env, tmp_path, "second")
    try:
        _wait(
            lambda: broadcast(runtime, "news").state == "sent",
            within=180,
            what="the broadcast to finish",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    deliveries = Counter(r for mail in sink.messages() for r in mail.recipients)
    with runtime.database.transaction(read_only=True) as session:
        rows = session.execute(select(Message.to_address, Message.state))
        states = {address: state for address, state in rows}
        status = runtime.broadcasts.status(session, "news")
    # Nobody twice; nobody skipped: everyone has a message, sent once or reported unknown.
    assert max(deliveries.values()) == 1
    assert len(states) == RECIPIENTS
    assert set(states.values()) <= {"sent", "unknown"}
    assert all(deliveries[address] == 1 for address, state in states.items() if state == "sent")
    unknown = [address for address, state in states.items() if state == "unknown"]
    assert unknown, "the kill should have caught a batch in flight"
    assert status.unknown == len(unknown)
    assert status.counts == dict(Counter(states.values()))
    print(
        f"killed after {delivered_at_kill} deliveries; {len(unknown)} unknown, "
        f"of which {sum(deliveries[a] for a in unknown)} had reached the server"
    )
