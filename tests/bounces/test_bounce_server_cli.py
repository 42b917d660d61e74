"""`postillon bounce-server` as a user runs it: in the foreground, stopped by SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from pathlib import Path

import aiosmtplib

from postillon.runtime import Runtime
from postillon.settings import Settings
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
