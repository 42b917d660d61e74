"""An SMTP sink for the email benchmark, run in a process of its own: it accepts every
message, counts it and throws it away, so its CPU is not mixed up with the sender's."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import time
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from tests.support.smtp import free_port


class _CountingHandler:
    def __init__(self, counter: Synchronized[int]) -> None:
        self.counter = counter

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.counter.get_lock():
            self.counter.value += 1
        return "250 OK"


def _serve(port: int, counter: Synchronized[int], stop: multiprocessing.synchronize.Event) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_CountingHandler(counter), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        stop.wait()
    finally:
        controller.stop()


class SinkProcess:
    """`with SinkProcess() as sink:` — `sink.port`, `sink.count()`."""

    def __init__(self) -> None:
        self.port = free_port()
        context = multiprocessing.get_context("spawn")
        self._counter: Synchronized[int] = context.Value("q", 0)
        self._stop = context.Event()
        self._process = context.Process(
            target=_serve, args=(self.port, self._counter, self._stop), daemon=True
        )

    def __enter__(self) -> SinkProcess:
        self._process.start()
        self._wait_until_listening()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()

    def count(self) -> int:
        return int(self._counter.value)

    def wait_for(self, count: int, *, within: float = 30.0) -> int:
        deadline = time.monotonic() + within
        while self.count() < count and time.monotonic() < deadline:
            time.sleep(0.005)
        return self.count()

    def _wait_until_listening(self) -> None:
        import socket

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("bench: the SMTP sink did not start")
