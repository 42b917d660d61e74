"""The bounce server: an SMTP endpoint (aiosmtpd) that receives DSNs and ARF complaint
reports sent to `bounce+…@<bounce_domain>` and hands them to `BounceService`.

Other recipients are refused at RCPT with 550, so the server is no relay and no inbox.
Each accepted message is parsed and applied in a worker thread (`asyncio.to_thread`): the
SMTP loop keeps serving while the database works. A report we cannot store now (the
database is down) is answered 451, so the sending MTA tries again later; one we cannot
understand is accepted and dropped (refusing it would only make it bounce back and forth).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from postillon.bounces.parsing import read_report
from postillon.bounces.service import Handled

if TYPE_CHECKING:
    from postillon.runtime import Runtime

logger = logging.getLogger("postillon.bounces")

# DSNs carry at most the original message; anything far larger is not a report.
MAX_REPORT_BYTES = 10 * 1024 * 1024


class BounceHandler:
    """aiosmtpd handler: accept bounce addresses, store what the reports say."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def handle_RCPT(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if not self.runtime.bounces.accepts(address):
            return "550 5.1.1 No such mailbox: this server only takes bounces"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode("utf-8", "replace")
        try:
            await asyncio.to_thread(self.receive, list(envelope.rcpt_tos), raw)
        except Exception:
            logger.exception("a report could not be stored; the sender will retry")
            return "451 4.3.0 Temporary failure, try again later"
        return "250 OK"

    def receive(self, recipients: Sequence[str], raw: bytes) -> Handled:
        """Parse one message and apply it in its own transaction."""
        report = read_report(raw)
        with self.runtime.database.transaction() as session:
            handled = self.runtime.bounces.handle(session, recipients, report)
        logger.info("report for %s: %s", handled.message_id, handled.outcome)
        return handled


def bounce_server(runtime: Runtime, *, host: str | None = None, port: int | None = None) -> Any:
    """An aiosmtpd Controller (its own thread and loop): `.start()`, `.stop()`."""
    settings = runtime.settings
    return Controller(
        BounceHandler(runtime),
        hostname=host or settings.bounce_server_host,
        port=port if port is not None else settings.bounce_server_port,
        data_size_limit=MAX_REPORT_BYTES,
        server_hostname=settings.bounce_domain,
    )
