"""Postillon's web app served by `postillon serve --no-worker --processes N`, in processes
of their own, for the benchmarks that measure the HTTP API as it is deployed."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import TracebackType

import httpx

_PROBLEM = re.compile(r"\b(WARNING|ERROR|CRITICAL|Traceback)\b")


class ServedApp:
    """`postillon serve` on a free loopback port, its output kept in `log_path`."""

    def __init__(
        self,
        *,
        database_url: str,
        data_dir: Path,
        processes: int,
        log_path: Path,
        settings: dict[str, str] | None = None,
    ) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.processes = processes
        self.log_path = log_path
        self.environment = {
            **os.environ,
            "POSTILLON_DATABASE_URL": database_url,
            "POSTILLON_DATA_DIR": str(data_dir),
            "POSTILLON_SECRET_KEY": "bench-secret",
            "POSTILLON_DEMO_DATA": "false",
            **(settings or {}),
        }
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServedApp:
        command = [sys.executable, "-m", "postillon", "serve", "--no-worker", "--host"]
        command += ["127.0.0.1", "--port", str(self.port), "--processes", str(self.processes)]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                command, env=self.environment, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while self._started() < self.processes:  # each process logs its startup
            if self._process.poll() is not None:
                raise SystemExit(f"bench: postillon serve exited:\n{self.log_path.read_text()}")
            if time.monotonic() > deadline:
                raise SystemExit("bench: postillon serve did not start within 60 s")
            time.sleep(0.2)
        httpx.get(f"{self.url}/healthz", timeout=10).raise_for_status()
        return self

    def _started(self) -> int:
        return self.log_path.read_text(errors="replace").count("Application startup complete")

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _error: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def problems(self) -> list[str]:
        """The warnings and errors the server logged, counted by line."""
        kinds: Counter[str] = Counter()
        for line in self.log_path.read_text(errors="replace").splitlines():
            if _PROBLEM.search(line):
                kinds[re.sub(r"^\S+ \S+ ", "", line)[:200]] += 1
        return [f"{n} {'time' if n == 1 else 'times'}: {kind}" for kind, n in kinds.most_common()]
