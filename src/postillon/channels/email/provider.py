"""What an email provider does: take finished messages and say, for each, what became of it.

A provider gets bytes ready to go (composed, signed) and an envelope; it never sees the
outbox. Outcomes are values, not exceptions, so the sender records a whole batch in one
transaction whatever happened to each message.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class OutgoingEmail:
    """One message as it goes on the wire: the envelope and the signed RFC 5322 bytes."""

    message_id: uuid.UUID
    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes


@dataclass(frozen=True)
class Delivered:
    """The server took responsibility for the message (250 after DATA)."""

    response: str = ""


@dataclass(frozen=True)
class TemporaryFailure:
    """Not sent, may be tried again: a 4xx reply, or the connection failed before DATA."""

    reason: str


@dataclass(frozen=True)
class PermanentFailure:
    """Refused for good (5xx). `address_refused`: the recipient's address itself was
    refused (a hard bounce at submission); otherwise the message was (its content)."""

    code: int
    reason: str
    address_refused: bool = True


@dataclass(frozen=True)
class AmbiguousFailure:
    """The message data was on its way when the connection or the wait for the final
    reply failed: the server may have accepted it. Never sent again blindly."""

    reason: str


SendOutcome = Delivered | TemporaryFailure | PermanentFailure | AmbiguousFailure


class EmailProvider(Protocol):
    """A way out for email. Implementations keep their connections between batches."""

    async def open(self) -> None:
        """Prepare connections (a provider may also connect lazily on the first send)."""
        ...

    async def send(self, emails: Sequence[OutgoingEmail]) -> dict[uuid.UUID, SendOutcome]:
        """Hand over a batch, concurrently as the provider allows; an outcome for each."""
        ...

    async def close(self) -> None:
        """Close every connection; the provider may be opened again later."""
        ...
