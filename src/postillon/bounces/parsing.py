"""What an inbound report says, read from its bytes (pure: no database, no clock).

Delivery status notifications (RFC 3464, and the looser formats of older MTAs) are read
by flufl.bounce: the addresses that failed permanently or only for now. A DSN whose
`Action: failed` carries only 4.x.x statuses (a mailbox full, given up after retries) is
counted as soft: the address may work again. Complaints are ARF reports (RFC 5965:
`multipart/report; report-type=feedback-report`), read with the standard library.
Either may carry the original message (or its headers), whose Message-ID helps attribute
a report that lost its VERP address.
"""

from __future__ import annotations

import email
import email.policy
from dataclasses import dataclass, field
from email.message import Message
from email.utils import parseaddr
from enum import StrEnum

from flufl.bounce import all_failures


class ReportKind(StrEnum):
    hard = "hard"
    soft = "soft"
    complaint = "complaint"
    # Not a bounce nor a complaint we understand (an auto-reply, spam, a test).
    other = "other"


@dataclass(frozen=True)
class Report:
    kind: ReportKind
    # The recipients the report is about (failed addresses, or Original-Rcpt-To).
    addresses: frozenset[str] = frozenset()
    # The Message-ID of the message that bounced or was complained about, if included.
    original_message_id: str | None = None
    # DSN: the status codes and the remote server's diagnostic.
    statuses: tuple[str, ...] = ()
    diagnostic: str | None = None
    # ARF: abuse, fraud, virus, other …; and who sent the report.
    feedback_type: str | None = None
    reporter: str | None = None
    details: dict[str, str] = field(default_factory=dict)


def read_report(raw: bytes) -> Report:
    """Classify one received message as a hard or soft bounce, a complaint, or other."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    if _is_feedback_report(message):
        return _complaint(message)
    try:
        temporary, permanent = all_failures(message)
    except Exception:
        # A detector tripping over a malformed message: whatever it was, not a bounce we
        # can act on.
        return Report(ReportKind.other)
    statuses, diagnostic = _delivery_status(message)
    original = _original_message_id(message)
    if permanent and not (statuses and all(s.startswith("4.") for s in statuses)):
        return Report(ReportKind.hard, _addresses(permanent), original, statuses, diagnostic)
    if temporary or permanent:
        return Report(
            ReportKind.soft, _addresses(temporary | permanent), original, statuses, diagnostic
        )
    return Report(ReportKind.other, original_message_id=original)


def _addresses(values: frozenset[bytes]) -> frozenset[str]:
    return frozenset(v.decode("ascii", "replace").strip().lower() for v in values if v)


def _is_feedback_report(message: Message) -> bool:
    return (
        message.get_content_type() == "multipart/report"
        and (message.get_param("report-type") or "").__str__().lower() == "feedback-report"
    )


def _complaint(message: Message) -> Report:
    fields: dict[str, str] = {}
    for part in message.walk():
        if part.get_content_type() != "message/feedback-report":
            continue
        # The parser reads a message/* part as a message: the report's fields are the
        # headers of its first (and only) payload.
        payload = part.get_payload()
        block = payload[0] if isinstance(payload, list) and payload else part
        if isinstance(block, Message):
            fields = {key.lower(): str(value) for key, value in block.items()}
        break
    recipients = {
        parseaddr(fields[key])[1].lower()
        for key in ("original-rcpt-to",)
        if key in fields and parseaddr(fields[key])[1]
    }
    return Report(
        ReportKind.complaint,
        frozenset(recipients),
        _original_message_id(message),
        feedback_type=fields.get("feedback-type", "").strip().lower() or None,
        reporter=fields.get("user-agent"),
        details=fields,
    )


def _delivery_status(message: Message) -> tuple[tuple[str, ...], str | None]:
    statuses: list[str] = []
    diagnostic: str | None = None
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        payload = part.get_payload()
        for block in payload if isinstance(payload, list) else []:
            if not isinstance(block, Message):
                continue
            status = str(block.get("status", "")).strip().split(" ")[0]
            if status[:2] in ("2.", "4.", "5."):
                statuses.append(status)
            if diagnostic is None and block.get("diagnostic-code"):
                diagnostic = " ".join(str(block["diagnostic-code"]).split())[:500]
    return tuple(statuses), diagnostic


def _original_message_id(message: Message) -> str | None:
    """The Message-ID of the original message a report includes (whole or headers)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, Message) and inner.get("message-id"):
                return str(inner["message-id"]).strip()
        elif kind == "text/rfc822-headers":
            text = part.get_payload(decode=True)
            if isinstance(text, bytes):
                headers = email.message_from_bytes(text, policy=email.policy.compat32)
                if headers.get("message-id"):
                    return str(headers["message-id"]).strip()
    return None
