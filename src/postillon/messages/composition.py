"""The email as it goes out: tracked links, the open pixel, headers, MIME, the signature.

Composition is pure and per message: the sender gives it the rendered content and what
the outbox knows, and gets back the envelope and the bytes. The MIME text is written
directly (two parts in a multipart/alternative, 7bit where that is possible, else
quoted-printable) rather than through
`email.message`, whose policy machinery costs more than the rest of composing together.
"""

from __future__ import annotations

import binascii
import html
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from postillon.channels.email.dkim import DkimSigner
from postillon.channels.email.provider import OutgoingEmail
from postillon.messages.links import LinkSigner
from postillon.templates.rendering import RenderedEmail

# `<a … href=…>` and `<area … href=…>`, the value in double, single or no quotes. Only
# links a reader follows: stylesheets (`<link href>`) and images stay as they are.
_ANCHOR_HREF = re.compile(
    r"""(<(?:a|area)\b[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""",
    re.IGNORECASE,
)
# A web address in plain text, without the punctuation that usually ends a sentence.
_TEXT_URL = re.compile(r"""https?://[^\s<>"'\]\)]*[^\s<>"'\]\).,;:!?]""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_LINE_BREAKS = re.compile(r"[\r\n\t]+")
_UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")


@dataclass(frozen=True)
class Envelope:
    """What the outbox knows about one message, for its headers and links."""

    message_id: uuid.UUID
    to_address: str
    marketing: bool
    # utm_campaign: the template's key, or what a broadcast names its campaign.
    campaign: str
    from_address: str
    reply_to: str | None = None
    # Feedback-ID (a campaign identifier mailbox providers report complaints by).
    feedback_id: str | None = None
    # Open pixel and click links; off for notifications to someone other than the
    # contact (their opens are not the contact's).
    tracked: bool = True


@dataclass(frozen=True)
class UnsignedEmail:
    """A composed message before its signature: headers as (name, value) pairs, the body
    as it goes out."""

    message_id: uuid.UUID
    envelope_from: str
    recipients: tuple[str, ...]
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    date: datetime


@dataclass(frozen=True)
class UtmOptions:
    enabled: bool
    source: str
    medium: str


class Composer:
    """Turns rendered content into an `OutgoingEmail` for the provider."""

    def __init__(
        self,
        *,
        links: LinkSigner,
        public_url: str,
        bounce_domain: str,
        utm: UtmOptions,
        signer: DkimSigner | None = None,
    ) -> None:
        self.links = links
        self.bounce_domain = bounce_domain
        self.utm = utm
        self.signer = signer
        # Postillon's own links (unsubscribe, preferences, vouchers) are never wrapped.
        self._own_prefix = public_url.rstrip("/") + "/e/"

    def compose(self, envelope: Envelope, content: RenderedEmail, now: datetime) -> OutgoingEmail:
        """Rewrite the links, add the pixel, write the headers and sign."""
        return self.sign(self.compose_unsigned(envelope, content, now))

    def compose_unsigned(
        self, envelope: Envelope, content: RenderedEmail, now: datetime
    ) -> UnsignedEmail:
        """All of `compose` but the signature, which `sign` adds (the sender signs on
        another thread while it composes the next messages)."""
        message_id = envelope.message_id
        html_part, text_part = content.html, content.text
        if envelope.tracked:
            rewrite = _LinkRewriter(self, envelope)
            html_part = _ANCHOR_HREF.sub(rewrite.html_link, html_part)
            html_part = _with_pixel(html_part, self.links.open_pixel_url(message_id))
            text_part = _TEXT_URL.sub(rewrite.text_link, text_part)
        html_part = _ascii_html(html_part)
        boundary = f"=_{message_id.hex}"
        body = b"".join(
            (
                f"--{boundary}\r\n".encode("ascii"),
                b"Content-Type: text/plain; charset=utf-8\r\n",
                *_encoded_part(text_part),
                f"\r\n--{boundary}\r\n".encode("ascii"),
                b"Content-Type: text/html; charset=utf-8\r\n",
                *_encoded_part(html_part),
                f"\r\n--{boundary}--\r\n".encode("ascii"),
            )
        )
        from_header = _address_header(envelope.from_address)
        headers: list[tuple[bytes, bytes]] = [
            (b"From", from_header),
            (b"To", _address_header(envelope.to_address)),
            (b"Subject", _subject_header(content.subject)),
            (b"Date", format_datetime(now).encode("ascii")),
            (b"Message-ID", smtp_message_id(message_id, envelope.from_address).encode("ascii")),
        ]
        if envelope.reply_to:
            headers.append((b"Reply-To", _address_header(envelope.reply_to)))
        if envelope.marketing:
            # RFC 8058 one-click: mailbox providers POST to the signed link themselves.
            unsubscribe = self.links.unsubscribe_url(message_id)
            headers.append((b"List-Unsubscribe", f"<{unsubscribe}>".encode("ascii")))
            headers.append((b"List-Unsubscribe-Post", b"List-Unsubscribe=One-Click"))
        if envelope.feedback_id:
            headers.append((b"Feedback-ID", _header_text(envelope.feedback_id).encode("ascii")))
        headers.append((b"MIME-Version", b"1.0"))
        headers.append(
            (
                b"Content-Type",
                f'multipart/alternative; boundary="{boundary}"'.encode("ascii"),
            )
        )
        return UnsignedEmail(
            message_id=message_id,
            envelope_from=self.envelope_sender(message_id),
            recipients=(envelope.to_address,),
            headers=tuple(headers),
            body=body,
            date=now,
        )

    def sign(self, unsigned: UnsignedEmail) -> OutgoingEmail:
        """The message as it goes out, with its DKIM signature when one is configured.
        Thread-safe: the RSA signature runs without the GIL."""
        head = b"".join(name + b": " + value + b"\r\n" for name, value in unsigned.headers)
        if self.signer is not None:
            head = (
                self.signer.signature_header(unsigned.headers, unsigned.body, unsigned.date) + head
            )
        return OutgoingEmail(
            message_id=unsigned.message_id,
            envelope_from=unsigned.envelope_from,
            recipients=unsigned.recipients,
            data=head + b"\r\n" + unsigned.body,
        )

    def envelope_sender(self, message_id: uuid.UUID) -> str:
        """The VERP address bounces come back to; it names the message."""
        return f"{self.links.verp_local_part(message_id)}@{self.bounce_domain}"

    def tracked_url(self, envelope: Envelope, target: str, position: int) -> str:
        """The click link for `target`, with UTM parameters where they belong."""
        if envelope.marketing and self.utm.enabled:
            target = _with_utm(
                target, self.utm.source, self.utm.medium, envelope.campaign, f"link-{position}"
            )
        return self.links.click_url(envelope.message_id, target)

    def is_tracked(self, url: str) -> bool:
        lowered = url[:8].lower()
        return (lowered.startswith("http://") or lowered.startswith("https://")) and (
            not url.startswith(self._own_prefix)
        )


class _LinkRewriter:
    """Replaces one message's links, numbering them for `utm_content`."""

    def __init__(self, composer: Composer, envelope: Envelope) -> None:
        self.composer = composer
        self.envelope = envelope
        self.count = 0

    def html_link(self, match: re.Match[str]) -> str:
        raw = match.group(2) if match.group(2) is not None else match.group(3)
        if raw is None:
            raw = match.group(4)
        # Attribute values carry entities (&amp;): the address is the unescaped text.
        target = html.unescape(raw).strip()
        if not self.composer.is_tracked(target):
            return match.group(0)
        self.count += 1
        url = self.composer.tracked_url(self.envelope, target, self.count)
        return f'{match.group(1)}"{html.escape(url, quote=True)}"'

    def text_link(self, match: re.Match[str]) -> str:
        target = match.group(0)
        if not self.composer.is_tracked(target):
            return target
        self.count += 1
        return self.composer.tracked_url(self.envelope, target, self.count)


def smtp_message_id(message_id: uuid.UUID, from_address: str) -> str:
    """`<hex@domain>`, the domain of the sender's address."""
    return f"<{message_id.hex}@{_domain_of(from_address)}>"


@lru_cache(maxsize=256)
def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2] or "localhost"


# Targets repeat from message to message (the same products, the same footer).
@lru_cache(maxsize=8192)
def _with_utm(url: str, source: str, medium: str, campaign: str, content: str) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(key.lower() in _UTM_KEYS for key, _ in query):
        return url  # the author chose their own tagging
    added = urlencode(
        {
            "utm_source": source,
            "utm_medium": medium,
            "utm_campaign": campaign,
            "utm_content": content,
        }
    )
    return urlunsplit(parts._replace(query=f"{parts.query}&{added}" if parts.query else added))


def _with_pixel(html_part: str, pixel_url: str) -> str:
    pixel = (
        f'<img src="{html.escape(pixel_url, quote=True)}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    ends = list(_BODY_END.finditer(html_part))
    if not ends:
        return html_part + pixel
    at = ends[-1].start()
    return html_part[:at] + pixel + html_part[at:]


# The longest line SMTP allows: 998 octets without the line end.
_MAX_LINE = 998


# Where a character reference is not read as the character: raw text and comments.
_RAW_TEXT = re.compile(r"<!--.*?-->|<(style|script)\b.*?</\1\s*>", re.IGNORECASE | re.DOTALL)


def _ascii_html(html_part: str) -> str:
    """`html_part` in ASCII where that means the same page: a letter outside ASCII becomes
    a character reference (`&#233;`), which HTML reads as the letter in text and attribute
    values, so the part can go as 7bit. Not when one is in a `<style>`, a `<script>` or a
    comment, where a reference stays as written."""
    if html_part.isascii():
        return html_part
    if any(not raw.group(0).isascii() for raw in _RAW_TEXT.finditer(html_part)):
        return html_part
    return html_part.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _encoded_part(text: str) -> tuple[bytes, bytes]:
    """The Content-Transfer-Encoding header and blank line, and the part's body.

    ASCII with short lines (most HTML once the template's indentation is collapsed, and
    most English text) goes as it is, `7bit`: nothing to encode, and quoted-printable
    would add a third to HTML (every `=` of an attribute becomes `=3D`, and a soft break
    every 76 characters). Anything else is quoted-printable."""
    normalised = text.replace("\r\n", "\n").replace("\r", "\n")
    if normalised.isascii() and "\x00" not in normalised and not _has_long_line(normalised):
        body = normalised.replace("\n", "\r\n").encode("ascii")
        return b"Content-Transfer-Encoding: 7bit\r\n\r\n", body
    return b"Content-Transfer-Encoding: quoted-printable\r\n\r\n", _quoted_printable(normalised)


def _has_long_line(text: str) -> bool:
    """Whether a line of (ASCII) `text` is longer than SMTP allows. Splitting is one C
    pass; a regular expression anchored at line starts still tries every position."""
    return len(text) > _MAX_LINE and max(map(len, text.split("\n"))) > _MAX_LINE


def _quoted_printable(text: str) -> bytes:
    normalised = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    return binascii.b2a_qp(normalised, istext=True).replace(b"\n", b"\r\n")


def _header_text(value: str) -> str:
    """One line: rendered text must never add header lines (header injection)."""
    return _LINE_BREAKS.sub(" ", value).strip()


def _subject_header(subject: str) -> bytes:
    subject = _header_text(subject)
    if subject.isascii() and len(subject) < 900:
        return subject.encode("ascii")
    return _encoded_words(subject)


# UTF-8 bytes per RFC 2047 encoded-word: 39 make 52 characters of base64, a word of 64,
# so that "Subject: " and the first word keep to the 78 characters a line should.
_WORD_BYTES = 39


def _encoded_words(text: str) -> bytes:
    """`text` as base64 encoded-words of UTF-8, one per folded line (CRLF and a space):
    never a character split between two words, and the space between words is not part
    of the text (RFC 2047 section 6.2), so it reads back exactly."""
    data = text.encode("utf-8")
    words = []
    start = 0
    while start < len(data):
        end = min(start + _WORD_BYTES, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # inside a character
            end -= 1
        words.append(b"=?utf-8?b?" + binascii.b2a_base64(data[start:end], newline=False) + b"?=")
        start = end
    return b"\r\n ".join(words)


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")


def _address_header(address: str) -> bytes:
    """An address as a header value; a display name outside ASCII is RFC 2047 encoded."""
    if _PLAIN_ADDRESS.fullmatch(address):
        return address.encode("ascii")  # most recipients: nothing to parse or encode
    return _named_address_header(address)


@lru_cache(maxsize=1024)
def _named_address_header(address: str) -> bytes:
    name, email_address = parseaddr(_header_text(address))
    return formataddr((name, email_address), charset="utf-8").encode("ascii")
