"""A provider that keeps what it is given instead of delivering it: for `postillon
simulate`, where the whole engine runs (rendering, composing, the outbox states) and
nothing may leave the machine."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

from postillon.channels.email.provider import Delivered, OutgoingEmail, SendOutcome


class RecordingProvider:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.kept: list[OutgoingEmail] = []

    async def open(self) -> None:
        return None

    async def send(self, emails: Sequence[OutgoingEmail]) -> dict[uuid.UUID, SendOutcome]:
        with self._lock:
            self.kept.extend(emails)
        return {email.message_id: Delivered("250 kept by the simulation") for email in emails}

    async def close(self) -> None:
        return None
