"""Reports as MTAs and mailbox providers send them: DSNs (RFC 3464) and ARF (RFC 5965)."""

from __future__ import annotations

import email.message
import email.policy
from email.headerregistry import Address


def dsn(
    recipient: str,
    *,
    action: str = "failed",
    status: str = "5.1.1",
    diagnostic: str = "smtp; 550 5.1.1 User unknown",
    original_message_id: str = "<orig@postillon.test>",
    to: str = "bounce@localhost",
) -> bytes:
    """A delivery status notification from a remote MTA."""
    boundary = "dsn-boundary-42"
    text = f"""From: Mail Delivery System <MAILER-DAEMON@mx.example.com>
To: {to}
Subject: Undelivered Mail Returned to Sender
Date: Mon, 5 Jan 2026 09:00:00 +0000
Message-ID: <dsn-{recipient}-{status}@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.example.com. Your message could not be delivered.

--{boundary}
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com
Arrival-Date: Mon, 5 Jan 2026 08:59:58 +0000

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822; {recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; mailbox.example.com
Diagnostic-Code: {diagnostic}

--{boundary}
Content-Type: text/rfc822-headers

From: Shop <news@shop.example>
To: {recipient}
Subject: Our sencha is back
Message-ID: {original_message_id}

--{boundary}--
"""
    return text.replace("\n", "\r\n").encode()


def arf(recipient: str, *, original_message_id: str = "<orig@postillon.test>") -> bytes:
    """An abuse report from a mailbox provider's feedback loop."""
    report = email.message.EmailMessage(policy=email.policy.SMTP)
    report["From"] = Address("Feedback Loop", "fbl", "isp.example.net")
    report["To"] = "bounce@localhost"
    report["Subject"] = "Complaint about message"
    report.set_content("This is an email abuse report for an email message received.")
    report.make_mixed()
    fields = email.message.Message()
    for name, value in (
        ("Feedback-Type", "abuse"),
        ("User-Agent", "ISP-FBL/1.0"),
        ("Version", "1"),
        ("Original-Rcpt-To", recipient),
        ("Original-Mail-From", "bounce@localhost"),
    ):
        fields[name] = value
    report.attach(_part("message/feedback-report", fields))
    original = email.message.EmailMessage()
    original["From"] = "news@shop.example"
    original["To"] = recipient
    original["Subject"] = "Our sencha is back"
    original["Message-ID"] = original_message_id
    original.set_content("Hello")
    report.attach(_part("message/rfc822", original))
    report.replace_header(
        "Content-Type", 'multipart/report; report-type=feedback-report; boundary="arf-7"'
    )
    report.set_boundary("arf-7")
    return report.as_bytes()


def _part(content_type: str, inner: email.message.Message) -> email.message.Message:
    part = email.message.Message()
    part["Content-Type"] = content_type
    part.set_payload([inner])
    return part


def plain_mail(to: str) -> bytes:
    return (
        f"From: someone@example.org\r\nTo: {to}\r\nSubject: Thanks!\r\n"
        "Message-ID: <hi@example.org>\r\n\r\nJust saying thanks.\r\n"
    ).encode()
