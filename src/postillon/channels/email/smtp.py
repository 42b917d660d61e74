"""SMTP delivery over a pool of persistent aiosmtplib connections.

Each connection carries one message at a time (MAIL, RCPT, DATA); `smtp_connections` of
them work through a batch together. Connections stay open between batches and are opened
again when the server dropped them. What a failure means depends on where it happened:
a reply code is definite (4xx temporary, 5xx permanent), a broken connection before DATA
is temporary (nothing was handed over), and a broken connection or timeout after DATA was
started is ambiguous: the server may have queued the message, so it is never re-sent.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import aiosmtplib

from postillon.channels.email.provider import (
    AmbiguousFailure,
    Delivered,
    OutgoingEmail,
    PermanentFailure,
    SendOutcome,
    TemporaryFailure,
)

logger = logging.getLogger("postillon.smtp")


@dataclass(frozen=True)
class SmtpOptions:
    """Where and how to connect; built from the Settings (`smtp_*`)."""

    host: str
    port: int
    security: str = "none"  # none, starttls or tls
    username: str | None = None
    password: str | None = None
    timeout_seconds: float = 30.0
    connections: int = 4
    # For servers with a self-signed certificate (tests, a relay on the same host).
    tls_context: ssl.SSLContext | None = None


class _ServerDown(Exception):
    """Connecting failed: the rest of the batch is not tried against a dead server."""


class SmtpProvider:
    """An `EmailProvider` speaking SMTP; use it from one event loop at a time."""

    def __init__(self, options: SmtpOptions) -> None:
        self.options = options
        self._idle: list[aiosmtplib.SMTP] = []
        # One slot per connection: batches sent at the same time share the pool.
        self._slots: asyncio.Semaphore | None = None

    async def open(self) -> None:
        """Connections are opened as the first batch needs them."""

    async def send(self, emails: Sequence[OutgoingEmail]) -> dict[uuid.UUID, SendOutcome]:
        """Send the batch over up to `connections` connections at once (fewer while
        another batch is using some)."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.options.connections)
        outcomes: dict[uuid.UUID, SendOutcome] = {}
        pending = list(reversed(emails))
        workers = min(self.options.connections, len(emails))
        down: list[str] = []
        await asyncio.gather(
            *(self._work(self._slots, pending, outcomes, down) for _ in range(workers))
        )
        return outcomes

    async def close(self) -> None:
        """Say QUIT on every idle connection (best effort) and forget them."""
        idle, self._idle = self._idle, []
        for connection in idle:
            try:
                await connection.quit()
            except (aiosmtplib.SMTPException, OSError):
                connection.close()

    async def _work(
        self,
        slots: asyncio.Semaphore,
        pending: list[OutgoingEmail],
        outcomes: dict[uuid.UUID, SendOutcome],
        down: list[str],
    ) -> None:
        async with slots:
            await self._work_on_slot(pending, outcomes, down)

    async def _work_on_slot(
        self,
        pending: list[OutgoingEmail],
        outcomes: dict[uuid.UUID, SendOutcome],
        down: list[str],
    ) -> None:
        connection: aiosmtplib.SMTP | None = None
        try:
            while pending:
                if down:
                    # Another connection found the server down: the rest waits for a retry.
                    email = pending.pop()
                    outcomes[email.message_id] = TemporaryFailure(down[0])
                    continue
                email = pending.pop()
                try:
                    if connection is None or not connection.is_connected:
                        connection = await self._connection()
                    outcomes[email.message_id] = await self._send_one(connection, email)
                except _ServerDown as error:
                    down.append(str(error))
                    outcomes[email.message_id] = TemporaryFailure(str(error))
                    connection = None
        finally:
            if connection is not None and connection.is_connected:
                self._idle.append(connection)

    async def _connection(self) -> aiosmtplib.SMTP:
        while self._idle:
            connection = self._idle.pop()
            if connection.is_connected:
                return connection
        options = self.options
        connection = aiosmtplib.SMTP(
            hostname=options.host,
            port=options.port,
            username=options.username,
            password=options.password,
            timeout=options.timeout_seconds,
            use_tls=options.security == "tls",
            start_tls=options.security == "starttls",
            tls_context=options.tls_context,
        )
        try:
            await connection.connect()
        except aiosmtplib.SMTPAuthenticationError as error:
            raise _ServerDown(f"SMTP login refused: {error.code} {error.message}") from error
        except (aiosmtplib.SMTPException, OSError) as error:
            where = f"{options.host}:{options.port}"
            raise _ServerDown(f"cannot connect to {where}: {error}") from error
        return connection

    async def _send_one(self, connection: aiosmtplib.SMTP, email: OutgoingEmail) -> SendOutcome:
        try:
            await connection.mail(email.envelope_from)
        except aiosmtplib.SMTPResponseException as error:
            # Our sender or session was refused (not logged in, no TLS, a bad VERP
            # domain): a problem of ours, never the recipient's, so retried, not bounced.
            await _reset(connection)
            return TemporaryFailure(f"sender refused: {error.code} {error.message}")
        except (aiosmtplib.SMTPException, OSError) as error:
            connection.close()
            return TemporaryFailure(f"connection lost before DATA: {error}")
        try:
            for recipient in email.recipients:
                await connection.rcpt(recipient)
        except aiosmtplib.SMTPResponseException as error:
            await _reset(connection)
            return _refused(error, address=True)
        except (aiosmtplib.SMTPException, OSError) as error:
            connection.close()
            return TemporaryFailure(f"connection lost before DATA: {error}")
        try:
            response = await connection.data(email.data)
        except aiosmtplib.SMTPResponseException as error:
            await _reset(connection)
            return _refused(error, address=False)
        except (aiosmtplib.SMTPException, OSError) as error:
            connection.close()
            return AmbiguousFailure(f"connection lost during DATA: {error}")
        return Delivered(f"{response.code} {response.message}")


def _refused(error: aiosmtplib.SMTPResponseException, *, address: bool) -> SendOutcome:
    reason = f"{error.code} {error.message}"
    if 500 <= error.code < 600:
        return PermanentFailure(error.code, reason, address_refused=address)
    return TemporaryFailure(reason)


async def _reset(connection: aiosmtplib.SMTP) -> None:
    """After a refusal the transaction is reset, so the connection can carry the next."""
    try:
        await connection.rset()
    except (aiosmtplib.SMTPException, OSError):
        connection.close()
