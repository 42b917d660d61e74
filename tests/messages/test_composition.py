"""Composition: the headers, the MIME parts, tracked links, UTM, the pixel, DKIM."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import dkim
import pytest

from postillon.channels.email.dkim import DkimSigner
from postillon.messages.composition import Composer, Envelope, UtmOptions
from postillon.messages.links import LinkSigner
from postillon.templates.rendering import RenderedEmail
from tests.support.dkim_keys import dkim_key_file, dns_answering

PUBLIC = "https://mail.example.com"
NOW = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
HTML = """<html><head><link href="https://fonts.example.com/a.css" rel="stylesheet"></head>
<body><p>Hello</p>
<a href="https://shop.example.com/p?id=1&amp;ref=mail">Product</a>
<a class="b" href='https://shop.example.com/sale'>Sale</a>
<A HREF=https://shop.example.com/bare>Bare</A>
<a href="https://shop.example.com/tagged?utm_source=own">Tagged</a>
<a href="mailto:help@example.com">Mail us</a> <a href="tel:+4912345">Call</a>
<a href="#top">Top</a>
<a href="https://mail.example.com/e/u/token">Unsubscribe</a>
<img src="https://cdn.example.com/logo.png">
</body></html>"""
TEXT = "Hello\nSee https://shop.example.com/p?id=1&ref=mail.\nUnsubscribe: https://mail.example.com/e/u/token\n"


def _composer(links: LinkSigner, signer: DkimSigner | None = None, utm: bool = True) -> Composer:
    return Composer(
        links=links,
        public_url=PUBLIC,
        bounce_domain="bounces.example.com",
        utm=UtmOptions(enabled=utm, source="postillon", medium="email"),
        signer=signer,
    )


def _envelope(marketing: bool = True, **changes: object) -> Envelope:
    values: dict[str, object] = {
        "message_id": uuid.UUID("0193e0c8-0000-7000-8000-000000000001"),
        "to_address": "ada@example.com",
        "marketing": marketing,
        "campaign": "spring-news",
        "from_address": "Shöp Team <news@shop.example.com>",
        "reply_to": "help@shop.example.com",
        "feedback_id": "spring-news:marketing:postillon",
    }
    values.update(changes)
    return Envelope(**values)  # type: ignore[arg-type]


def _content(subject: str = "Grüße, Ada") -> RenderedEmail:
    return RenderedEmail(subject=subject, preheader="", html=HTML, text=TEXT)


def _parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _parts(parsed: EmailMessage) -> tuple[str, str]:
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


@pytest.fixture
def links() -> LinkSigner:
    return LinkSigner("a test secret that is long enough", PUBLIC)


def test_headers_and_parts(links: LinkSigner) -> None:
    envelope = _envelope()
    outgoing = _composer(links).compose(envelope, _content(), NOW)
    parsed = _parse(outgoing.data)
    assert parsed["From"] == "Shöp Team <news@shop.example.com>"
    assert parsed["To"] == "ada@example.com"
    assert parsed["Subject"] == "Grüße, Ada"
    assert parsed["Date"] == "Sun, 01 Mar 2026 12:30:00 +0000"
    assert parsed["Message-ID"] == f"<{envelope.message_id.hex}@shop.example.com>"
    assert parsed["Reply-To"] == "help@shop.example.com"
    assert parsed["List-Unsubscribe"] == f"<{links.unsubscribe_url(envelope.message_id)}>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Feedback-ID"] == "spring-news:marketing:postillon"
    assert parsed.get_content_type() == "multipart/alternative"
    assert all(line.__len__() <= 998 for line in outgoing.data.split(b"\r\n"))
    assert b"\n" not in outgoing.data.replace(b"\r\n", b"")
    # VERP: the envelope sender names the message.
    local, _, domain = outgoing.envelope_from.partition("@")
    assert domain == "bounces.example.com"
    assert links.read_verp_local_part(local) == envelope.message_id
    assert outgoing.recipients == ("ada@example.com",)


def test_transactional_messages_carry_no_list_headers_nor_utm(links: LinkSigner) -> None:
    envelope = _envelope(marketing=False)
    parsed = _parse(_composer(links).compose(envelope, _content(), NOW).data)
    assert parsed["List-Unsubscribe"] is None and parsed["List-Unsubscribe-Post"] is None
    _, html = _parts(parsed)
    targets = _click_targets(links, html)
    assert len(targets) == 4
    assert [t for t in targets if "utm_" in t] == ["https://shop.example.com/tagged?utm_source=own"]


def _click_targets(links: LinkSigner, html: str) -> list[str]:
    found = []
    for token in re.findall(r'href="https://mail\.example\.com/e/c/([^"]+)"', html, re.I):
        read = links.read_click(token)
        assert read is not None
        found.append(read[1])
    return found


def test_links_are_tracked_with_utm_where_it_belongs(links: LinkSigner) -> None:
    envelope = _envelope()
    parsed = _parse(_composer(links).compose(envelope, _content(), NOW).data)
    text, html = _parts(parsed)
    targets = _click_targets(links, html)
    assert [urlsplit(t).path for t in targets] == ["/p", "/sale", "/bare", "/tagged"]
    product = parse_qs(urlsplit(targets[0]).query)
    assert product == {
        "id": ["1"], "ref": ["mail"], "utm_source": ["postillon"], "utm_medium": ["email"],
        "utm_campaign": ["spring-news"], "utm_content": ["link-1"],
    }  # fmt: skip
    # A link the author tagged keeps its own parameters only.
    assert parse_qs(urlsplit(targets[3]).query) == {"utm_source": ["own"]}
    # Not followed through Postillon: stylesheets, images, mailto, tel, anchors, own links.
    for kept in (
        'href="https://fonts.example.com/a.css"',
        'src="https://cdn.example.com/logo.png"',
        'href="mailto:help@example.com"',
        'href="tel:+4912345"',
        'href="#top"',
        'href="https://mail.example.com/e/u/token"',
    ):
        assert kept in html
    # The open pixel, last in the body.
    pixel = links.open_pixel_url(envelope.message_id)
    pixel_tag = (
        f'<img src="{pixel}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    assert html.rstrip().endswith(pixel_tag + "</body></html>")
    # The text part: the same rewriting, the sentence's full stop left outside.
    [tracked] = re.findall(r"https://mail\.example\.com/e/c/(\S+)\.\r?\n", text)
    read = links.read_click(tracked)
    assert read is not None and read[1].startswith("https://shop.example.com/p?id=1&ref=mail&utm_")
    assert "Unsubscribe: https://mail.example.com/e/u/token" in text


def test_utm_can_be_switched_off(links: LinkSigner) -> None:
    parsed = _parse(_composer(links, utm=False).compose(_envelope(), _content(), NOW).data)
    targets = _click_targets(links, _parts(parsed)[1])
    assert [t for t in targets if "utm_" in t] == ["https://shop.example.com/tagged?utm_source=own"]


def test_rendered_text_cannot_add_header_lines(links: LinkSigner) -> None:
    content = _content(subject="Hi\r\nBcc: everyone@example.com")
    parsed = _parse(_composer(links).compose(_envelope(), content, NOW).data)
    assert parsed["Bcc"] is None
    assert parsed["Subject"] == "Hi Bcc: everyone@example.com"


@pytest.mark.parametrize(
    "subject",
    [
        "Grüße",
        "Ünïcødé and a long " + "x" * 200,
        "🎉 Summer sale: 30 % off everything, 🌞 today only, for Zoë and Łukasz " * 3,
        "日本語の件名" * 20,
    ],
)
def test_subjects_outside_ascii_fold_into_encoded_words(links: LinkSigner, subject: str) -> None:
    data = _composer(links).compose(_envelope(), _content(subject), NOW).data
    head = data.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in data.replace(b"\r\n", b"")  # no bare line feed, folded or not
    subject_lines = re.search(rb"^Subject: .*?(?=\r\n\S)", head, re.S | re.M)
    assert subject_lines is not None
    assert all(len(line) <= 78 for line in subject_lines.group(0).split(b"\r\n"))
    assert _parse(data)["Subject"] == subject.strip()  # as every subject is trimmed


@pytest.mark.parametrize("subject", ["Plain ASCII subject", "Ünïcødé and a long " + "x" * 200])
def test_dkim_signature_verifies(links: LinkSigner, tmp_path: Path, subject: str) -> None:
    key_file, record = dkim_key_file(tmp_path)
    signer = DkimSigner.from_file(domain="shop.example.com", selector="pst", key_file=key_file)
    data = _composer(links, signer).compose(_envelope(), _content(subject), NOW).data
    assert data.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    dns = dns_answering(b"pst._domainkey.shop.example.com.", record)
    assert dkim.verify(data, dnsfunc=dns)
    tags = dict(
        part.strip().split("=", 1)
        for part in _parse(data)["DKIM-Signature"].replace("\r\n", "").split(";")
    )
    assert tags["h"].split(":") == [
        "from", "to", "subject", "date", "message-id", "reply-to", "list-unsubscribe",
        "list-unsubscribe-post", "mime-version", "content-type",
    ]  # fmt: skip
    # Changing a signed header or the body breaks it.
    assert not dkim.verify(data.replace(b"To: ada@", b"To: eve@"), dnsfunc=dns)
    assert not dkim.verify(data.replace(b"Hello", b"Hallo", 1), dnsfunc=dns)


def _transfer_encodings(data: bytes) -> list[bytes]:
    return re.findall(rb"Content-Transfer-Encoding: (\S+)", data)


def test_parts_go_as_7bit_when_they_can(links: LinkSigner, tmp_path: Path) -> None:
    key_file, record = dkim_key_file(tmp_path)
    signer = DkimSigner.from_file(domain="shop.example.com", selector="pst", key_file=key_file)
    html = HTML.replace("<p>Hello</p>", "<p title='Grüße'>Grüße · Hello</p>")
    content = RenderedEmail(subject="Hi", preheader="", html=html, text=TEXT)
    data = _composer(links, signer).compose(_envelope(), content, NOW).data
    # ASCII text: as it is; HTML outside ASCII: character references, so 7bit too.
    assert _transfer_encodings(data) == [b"7bit", b"7bit"]
    assert b"Gr&#252;&#223;e &#183; Hello" in data
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    assert dkim.verify(data, dnsfunc=dns_answering(b"pst._domainkey.shop.example.com.", record))
    text, html_part = _parts(_parse(data))
    assert text.replace("\r\n", "\n").startswith("Hello\n")
    assert "<p title='Gr&#252;&#223;e'>" in html_part


@pytest.mark.parametrize(
    ("html", "text"),
    [
        # A character reference would show as written in a style, a script or a comment.
        ("<html><style>p::after{content:'·'}</style><body>é</body></html>", TEXT),
        ("<html><body><!-- © --><p>é</p></body></html>", TEXT),
        # A line longer than SMTP allows; text outside ASCII.
        ("<html><body><p>" + "x" * 1200 + "</p></body></html>", "Grüße\n"),
    ],
)
def test_quoted_printable_where_7bit_would_change_the_part(
    links: LinkSigner, html: str, text: str
) -> None:
    content = RenderedEmail(subject="Hi", preheader="", html=html, text=text)
    data = _composer(links).compose(_envelope(), content, NOW).data
    encodings = _transfer_encodings(data)
    assert b"quoted-printable" in encodings
    text_part, html_part = _parts(_parse(data))
    assert text_part.replace("\r\n", "\n").startswith(text.split("\n")[0])
    assert html.split("</body>")[0].split("<body>")[1][:40] in html_part
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
