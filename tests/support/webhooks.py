"""A real HTTP server on loopback that receives webhook calls (http.server in a thread):
it keeps every call, checks its signature, answers with the statuses it is told to, can
answer slowly, and can be stopped and started again on the same port."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from postillon.automations.webhooks import SIGNATURE_HEADER, verify_signature
from tests.support.smtp import free_port


@dataclass(frozen=True)
class ReceivedCall:
    path: str
    headers: dict[str, str]
    body: str
    # Whether `Postillon-Signature` verified with the receiver's secret.
    signed: bool


class WebhookReceiver:
    def __init__(self, secret: str, *, now: Callable[[], float], port: int | None = None) -> None:
        self.secret = secret
        self.now = now
        self.port = port or free_port()
        self.calls: list[ReceivedCall] = []
        # Statuses to answer with, in turn; 200 once they are used up.
        self.statuses: list[int] = []
        self.delay = 0.0
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                signed = verify_signature(
                    receiver.secret,
                    self.headers.get(SIGNATURE_HEADER, ""),
                    body,
                    now=int(receiver.now()),
                    tolerance=300,
                )
                with receiver.lock:
                    receiver.calls.append(
                        ReceivedCall(self.path, dict(self.headers.items()), body, signed)
                    )
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.delay:
                    time.sleep(receiver.delay)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def received(self) -> list[ReceivedCall]:
        with self.lock:
            return list(self.calls)
