"""The README's run command, end to end: it starts, answers, and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _readme_run_command() -> list[str]:
    """The first command in the README's first code block is the run command."""
    text = (ROOT / "README.md").read_text()
    block = text.split("```", 2)[1]
    lines = [line.strip() for line in block.splitlines()[1:] if line.strip()]
    run = lines[0].split("#")[0].split()
    assert run == ["./dev", "run"], f"the README opens with {run}"
    return run


@pytest.mark.e2e
def test_the_run_command_serves_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "POSTILLON_DATA_DIR": str(tmp_path / "data"),
        "POSTILLON_PORT": str(port),
    }
    env.pop("POSTILLON_DATABASE_URL", None)
    process = subprocess.Popen(
        _readme_run_command(),
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.communicate()[0]
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not come up"
                time.sleep(0.2)
        assert response.status_code == 200
        assert (tmp_path / "data" / "postillon.db").exists()
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    # After a complete shutdown uvicorn re-raises the signal, so the exit status is the
    # conventional "terminated by SIGTERM" (or 0); what matters is that shutdown finished.
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
    assert "pst_admin_" in output  # the first start shows its admin key once
    assert "Postillon stopped" in output
