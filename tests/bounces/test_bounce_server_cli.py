"""`postillon bounce-server` as a user runs it: in the foreground, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from pathlib import Path

import aiosmtplib

from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.web.app import create_app
from tests.bounces.reports import dsn
from tests.messages.email_support import create_contact, create_template, message_row, sent_message
from tests.support.cli import POSTILLON, command_for


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[str], deadline: float) -> None:
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)  # polling a real socket, with a deadline
    raise AssertionError("the bounce server did not start listening")


def test_the_command_receives_bounces_until_stopped(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    with runtime.database.transaction() as session:
        contact_id = create_contact(session, runtime)
        template_id = create_template(session, runtime)
        message_id = sent_message(session, runtime, contact_id, template_id)
    port = _free_port()
    cli = command_for(settings, tmp_path)
    process = subprocess.Popen(
        [str(POSTILLON), "bounce-server", "--port", str(port)],
        env=cli.env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_port(port, process, time.monotonic() + 60)

        async def deliver() -> None:
            async with aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30) as client:
                verp = f"{runtime.links.verp_local_part(message_id)}@localhost"
                await client.sendmail("", [verp], dsn("ada@example.com"))

        asyncio.run(deliver())
        assert message_row(runtime, message_id).state == "bounced"
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "bounce server on 127.0.0.1" in out
    assert "Traceback" not in err


def test_serve_runs_it_with_its_worker_when_enabled(
    settings: Settings, clock: VirtualClock
) -> None:
    port = _free_port()
    enabled = settings.model_copy(
        update={"bounce_server_enabled": True, "bounce_server_port": port}
    )
    runtime = Runtime.build(enabled, clock=clock)
    app = create_app(runtime, run_worker=True)

    async def refused_while_serving() -> int:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, timeout=30)
        async with app.router.lifespan_context(app), client:
            try:
                await client.sendmail("x@example.org", ["ada@localhost"], b"Hi")
            except aiosmtplib.SMTPRecipientsRefused as exc:
                return exc.recipients[0].code
        return 250

    try:
        assert asyncio.run(refused_while_serving()) == 550
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0  # stopped with the app
    finally:
        runtime.close()
