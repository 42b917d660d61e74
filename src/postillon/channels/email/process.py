"""SMTP sending in a process of its own (`POSTILLON_SMTP_PROCESS=true`).

Rendering and composing a message is Python work, and so is speaking SMTP with aiosmtplib:
in one process they take turns on the GIL, and the client's share of a message costs
about as much as preparing it. With this setting a worker hands each prepared slice to a
child process that owns the SMTP connections and an event loop, and prepares the next
slice on another core meanwhile. Slices go over as bytes; the outcome of each message
comes back.

What stays the same: the messages of a slice are `sending` (committed) before the slice
is handed over, and recorded when the outcomes come back. If the child dies (killed, out
of memory) the slice it held has no outcomes, so its messages are recorded `unknown` —
they may have gone out — and the next slice starts a new child. If the worker itself is
killed, the child notices its parent's pipe close and ends; what it was sending is found
`sending` past the lease and reported `unknown`, as in one process.

The child is started with `spawn` (the worker has threads, which `fork` would copy in an
unknown state) the first time something is sent, and stopped with the worker.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import signal
import threading
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from postillon.channels.email.provider import OutgoingEmail, SendOutcome
from postillon.channels.email.smtp import SmtpOptions, SmtpProvider

logger = logging.getLogger("postillon.smtp")

# In the child: its provider and loop, made once when it starts.
_child_loop: asyncio.AbstractEventLoop | None = None
_child_provider: SmtpProvider | None = None


def _start_child(options: SmtpOptions) -> None:
    global _child_loop, _child_provider
    # Ctrl-C reaches the whole process group: the worker decides when the child stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _child_loop = asyncio.new_event_loop()
    _child_provider = SmtpProvider(options)


def _send_in_child(emails: Sequence[OutgoingEmail]) -> dict[uuid.UUID, SendOutcome]:
    assert _child_loop is not None and _child_provider is not None
    return _child_loop.run_until_complete(_child_provider.send(emails))


def _close_in_child() -> None:
    if _child_loop is not None and _child_provider is not None:
        _child_loop.run_until_complete(_child_provider.close())


class ProviderProcess:
    """An SMTP provider in a child process: `submit` a slice, get a future of its
    outcomes. Slices are sent one after the other, each over the provider's connections."""

    def __init__(self, options: SmtpOptions) -> None:
        if options.tls_context is not None:
            raise ValueError("a TLS context cannot be handed to another process")
        self.options = options
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, emails: Sequence[OutgoingEmail]) -> Future[dict[uuid.UUID, SendOutcome]]:
        with self._lock:
            try:
                return self._pool().submit(_send_in_child, list(emails))
            except BrokenProcessPool:
                # The child died since the last slice (its slice was recorded unknown).
                logger.warning("the SMTP process had stopped; starting a new one")
                self._executor = None
                return self._pool().submit(_send_in_child, list(emails))

    def stop(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            executor.submit(_close_in_child).result(timeout=10)
        except Exception:
            logger.warning("closing the SMTP connections failed", exc_info=True)
        executor.shutdown(wait=True, cancel_futures=True)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_child,
                initargs=(self.options,),
            )
        return self._executor
