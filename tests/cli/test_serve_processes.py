"""`postillon serve --processes N`: several web processes on one port and one SQLite file,
the worker in a process of its own; every message stored once; all stop on SIGTERM."""

from __future__ import annotations

import base64
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from postillon.auth.service import Scope
from postillon.kit import migrate
from postillon.runtime import Runtime
from postillon.settings import Settings
from tests.cli.test_run_command import _free_port


def _write_key(data_dir: Path) -> str:
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'postillon.db'}",
        secret_key="test-secret",
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    runtime = Runtime.build(settings)
    try:
        migrate.upgrade(runtime.database)
        with runtime.database.transaction() as session:
            _, secret = runtime.api_keys.create(session, scope=Scope.write, name="test")
        return secret
    finally:
        runtime.close()


def _batch(client: int, number: int) -> dict[str, object]:
    return {
        "batch": [
            {
                "type": "track",
                "event": "Product Viewed",
                "userId": f"user-{n % 7}",
                "messageId": f"m-{client}-{number}-{n}",
            }
            for n in range(50)
        ]
    }


@pytest.mark.e2e
def test_serve_in_two_processes_stores_every_message_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    secret = _write_key(data_dir)
    port = _free_port()
    env = {
        **os.environ,
        "POSTILLON_DATA_DIR": str(data_dir),
        "POSTILLON_SECRET_KEY": "test-secret",
        "POSTILLON_DEMO_DATA": "false",
    }
    env.pop("POSTILLON_DATABASE_URL", None)
    command = [sys.executable, "-m", "postillon", "serve", "--processes", "2", "--port", str(port)]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(process.stdout or []), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while sum("Application startup complete" in line for line in lines) < 2:
            assert process.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "the processes did not start:\n" + "".join(lines)
            time.sleep(0.2)

        credentials = base64.b64encode(f"{secret}:".encode()).decode()
        headers = {"Authorization": f"Basic {credentials}"}

        def send(client: int) -> list[int]:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers) as http:
                batches = [_batch(client, number) for number in range(3)]
                answers = [http.post("/v1/batch", json=batch) for batch in batches]
                answers.append(http.post("/v1/batch", json=batches[0]))  # sent again
                return [answer.status_code for answer in answers]

        with ThreadPoolExecutor(4) as pool:
            statuses = [status for run in pool.map(send, range(4)) for status in run]
        assert statuses == [200] * 16

        database = data_dir / "postillon.db"
        with sqlite3.connect(database) as connection:
            count, distinct = connection.execute(
                "SELECT count(*), count(DISTINCT message_id) FROM events WHERE type = 'track'"
            ).fetchone()
        assert (count, distinct) == (4 * 3 * 50, 4 * 3 * 50)
        # The worker, in its own process, hands the events to their consumers.
        while True:
            with sqlite3.connect(database) as connection:
                (queued,) = connection.execute("SELECT count(*) FROM event_queue").fetchone()
            if queued == 0:
                break
            assert time.monotonic() < deadline + 60, f"{queued} queue items left"
            time.sleep(0.2)

        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        reader.join(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    output = "".join(lines)
    assert "Traceback" not in output
    assert output.count("Finished server process") == 2
    assert "worker serve stopped" in output
