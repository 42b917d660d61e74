"""Email sending throughput, in messages per second, beside bare aiosmtplib.

20,000 contacts subscribed on email; a newsletter written in MJML (the contact's name, a
loop over the products in the message's context, a block only VIP contacts get, the
unsubscribe and preference links) is queued for each of them through
`MessageService.enqueue`. Then the real send path runs as the worker runs it
(`messages.sending.send_round` until the outbox is empty): claim a batch, check consent
and suppression, render (Jinja in the sandbox over the compiled MJML, CSS inlined), compose
(tracked links, UTM, the open pixel, MIME), sign when DKIM is configured, hand over over N
persistent SMTP connections, record the outcomes and `email_sent` events.

The SMTP server is an aiosmtpd sink in a separate process that counts and discards. The
baseline, in the same run, is bare aiosmtplib sending the very bytes the real path sent
(captured on the way) over the same number of connections to the same sink. The run is
done twice: without DKIM, then with a 2048-bit RSA key.

    ./dev bench email_send [--messages N] [--connections N] [--batch N] [--no-dkim]
                           [--smtp-process] [--sizes N] [--database-url URL|auto-postgres]

Before the runs, a table of bare aiosmtplib's rate by message size (2 to 30 KB) against
the same sink shows how much of the ceiling is the size of the message.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiosmtplib
from tests.support.dkim_keys import dkim_key_file

from bench.common import (
    add_database_option,
    open_databases,
    people,
    per_second,
    prepare_rows,
    print_heading,
    print_line,
    print_rate,
    ratio_verdict,
    verdict,
)
from bench.email_sink import SinkProcess
from postillon.channels.email.provider import OutgoingEmail, SendOutcome
from postillon.kit import memory
from postillon.kit.repository import insert_rows
from postillon.messages.sending import send_round
from postillon.messages.service import MessageRequest
from postillon.models import Contact, ContactConsent
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.templates.schemas import TemplateIn

TARGET_RATE = 1500.0
TARGET_RATIO = 0.7

NEWSLETTER = """<mjml>
  <mj-head>
    <mj-title>Spring at Postillon Shop</mj-title>
    <mj-preview>New in: {{ event.products[0].name }}</mj-preview>
    <mj-attributes><mj-all font-family="Helvetica, Arial, sans-serif" /></mj-attributes>
    <mj-style inline="inline">.price { color: #b00020; font-weight: bold; }</mj-style>
  </mj-head>
  <mj-body background-color="#f4f4f4">
    <mj-section background-color="#ffffff">
      <mj-column>
        <mj-image width="120px" src="https://shop.example.com/static/logo.png" alt="Shop" />
        <mj-text font-size="20px">Hello {{ contact.first_name | default("there") }},</mj-text>
        <mj-text>Spring is here, and so are new things we think you will like,
          {{ contact.first_name | default("friend") }} from {{ contact.attributes.city }}.</mj-text>
      </mj-column>
    </mj-section>
    <mj-raw>{% for product in event.products %}</mj-raw>
    <mj-section background-color="#ffffff">
      <mj-column width="40%">
        <mj-image src="{{ product.image }}" alt="{{ product.name }}" />
      </mj-column>
      <mj-column width="60%">
        <mj-text font-size="16px">{{ product.name }}</mj-text>
        <mj-text css-class="price">{{ "%.2f" | format(product.price) }} EUR</mj-text>
        <mj-button href="{{ product.url }}" background-color="#1a73e8">Have a look</mj-button>
      </mj-column>
    </mj-section>
    <mj-raw>{% endfor %}</mj-raw>
    <mj-raw>{% if event.vip %}</mj-raw>
    <mj-section background-color="#fff4d6">
      <mj-column>
        <mj-text>As one of our best customers you get 15 % off until Sunday:
          use the code <b>VIP-{{ contact.id[:8] | upper }}</b>.</mj-text>
        <mj-button href="https://shop.example.com/vip?campaign=spring">Shop the VIP sale</mj-button>
      </mj-column>
    </mj-section>
    <mj-raw>{% endif %}</mj-raw>
    <mj-section>
      <mj-column>
        <mj-text font-size="11px" color="#777777">You get this because you subscribed to
          our newsletter. <a href="{{ preferences_url }}">Preferences</a> ·
          <a href="{{ unsubscribe_url }}">Unsubscribe</a> ·
          <a href="https://shop.example.com/imprint">Imprint</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""
_PRODUCTS = [
    ("Linen shirt", 49.9), ("Canvas sneakers", 79.0), ("Straw hat", 24.5),
    ("Rain jacket", 129.0), ("Cotton scarf", 19.99), ("Leather belt", 39.0),
    ("Sunglasses", 89.0), ("Summer dress", 69.9),
]  # fmt: skip


@dataclass
class PathResult:
    seconds: float
    cpu_seconds: float
    sent: int
    rounds: int
    enqueue_seconds: float
    captured: list[OutgoingEmail]


def capture_sent(runtime: Runtime, captured: list[OutgoingEmail]) -> None:
    """Keep every message the send path hands to its provider (signed, as it goes out),
    for the baseline to send again: whether SMTP is spoken on a thread or in a process of
    its own, the bytes pass through `SendingService.submit`."""
    sending = runtime.sending
    submit = sending.submit

    def capturing(emails: Sequence[OutgoingEmail]) -> Future[dict[uuid.UUID, SendOutcome]]:
        captured.extend(emails)
        return submit(emails)

    sending.submit = capturing  # type: ignore[method-assign]


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev bench email_send", description="Email send path against bare aiosmtplib."
    )
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections")
    parser.add_argument("--batch", type=int, default=500, help="messages claimed per round")
    parser.add_argument("--no-dkim", action="store_true", help="skip the run with DKIM")
    parser.add_argument(
        "--smtp-process",
        action="store_true",
        help="speak SMTP from a child process (POSTILLON_SMTP_PROCESS); the CPU per message "
        "then counts the worker only",
    )
    parser.add_argument(
        "--sizes",
        type=int,
        default=4000,
        metavar="N",
        help="messages per size in the bare-aiosmtplib table by message size (0: skip it)",
    )
    add_database_option(parser)
    args = parser.parse_args(argv)
    if args.messages < 1 or args.connections < 1 or args.batch < 1:
        parser.error("--messages, --connections and --batch must be at least 1")
    return args


def _settings(url: str, data_dir: Path, args: argparse.Namespace, sink_port: int) -> Settings:
    return Settings(
        database_url=url,
        data_dir=data_dir,
        secret_key="bench-secret",
        run_worker=False,
        public_url="https://news.example.com",
        email_from="Postillon Shop <news@shop.example.com>",
        bounce_domain="bounces.shop.example.com",
        smtp_port=sink_port,
        smtp_connections=args.connections,
        smtp_rate_per_second=1_000_000.0,
        send_batch_size=args.batch,
        smtp_process=args.smtp_process,
    )


def seed(runtime: Runtime, count: int) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """Subscribed contacts and the newsletter template."""
    now = runtime.clock.now()
    rows = prepare_rows(list(people(count)), now)
    consents = [
        {"contact_id": row["id"], "channel": "email", "status": "subscribed",
         "changed_at": now, "source": "bench"}
        for row in rows.contacts
    ]  # fmt: skip
    with runtime.database.transaction() as session:
        insert_rows(session, Contact, rows.contacts)
        insert_rows(session, ContactConsent, consents)
        template = runtime.templates.save(
            session,
            TemplateIn(
                key="spring-newsletter",
                subject="{{ contact.first_name | default('Hello') }}, spring is here",
                preheader="New in: {{ event.products[0].name }}",
                body=NEWSLETTER,
                kind="marketing",
                topic="newsletter",
            ),
        )[0]
    return template.id, [row["id"] for row in rows.contacts]


def enqueue(runtime: Runtime, template_id: uuid.UUID, contacts: list[uuid.UUID], run: str) -> None:
    rng = random.Random(run)
    for start in range(0, len(contacts), 2000):
        requests = []
        for contact_id in contacts[start : start + 2000]:
            picked = rng.sample(_PRODUCTS, 3)
            products = [
                {"name": name, "price": price,
                 "url": f"https://shop.example.com/p/{name.lower().replace(' ', '-')}?ref=news",
                 "image": f"https://shop.example.com/img/{name.lower().replace(' ', '-')}.jpg"}
                for name, price in picked
            ]  # fmt: skip
            requests.append(
                MessageRequest(
                    contact_id=contact_id,
                    template_id=template_id,
                    dedupe_key=f"bench:{run}:{contact_id}",
                    source="bench",
                    context={"products": products, "vip": rng.random() < 0.2},
                )
            )
        with runtime.database.transaction() as session:
            runtime.messages.enqueue(session, requests)


def run_real_path(
    runtime: Runtime, template_id: uuid.UUID, contacts: list[uuid.UUID], run: str
) -> PathResult:
    captured: list[OutgoingEmail] = []
    capture_sent(runtime, captured)
    started = time.perf_counter()
    enqueue(runtime, template_id, contacts, run)
    enqueue_seconds = time.perf_counter() - started
    sent = rounds = 0
    started, cpu_started = time.perf_counter(), time.process_time()
    while True:
        report = send_round(runtime, datetime.now(UTC))
        rounds += 1
        sent += report.outcomes.sent
        if report.claimed == 0:
            break
    seconds = time.perf_counter() - started
    cpu_seconds = time.process_time() - cpu_started
    runtime.sending.close()
    return PathResult(seconds, cpu_seconds, sent, rounds, enqueue_seconds, captured)


def run_bare(emails: Sequence[OutgoingEmail], port: int, connections: int) -> tuple[float, float]:
    """Seconds (wall, CPU) for bare aiosmtplib to send `emails` over `connections`
    connections."""

    async def main() -> tuple[float, float]:
        clients = [aiosmtplib.SMTP(hostname="127.0.0.1", port=port) for _ in range(connections)]
        await asyncio.gather(*(client.connect() for client in clients))
        pending = list(reversed(emails))

        async def work(client: aiosmtplib.SMTP) -> None:
            while pending:
                email = pending.pop()
                await client.sendmail(email.envelope_from, list(email.recipients), email.data)

        started, cpu_started = time.perf_counter(), time.process_time()
        await asyncio.gather(*(work(client) for client in clients))
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
        await asyncio.gather(*(client.quit() for client in clients))
        return seconds, cpu_seconds

    return asyncio.run(main())


BARE_SIZES_KB = (2, 5, 10, 20, 30)


def synthetic_emails(count: int, size_kb: int) -> list[OutgoingEmail]:
    """Messages of about `size_kb` KB shaped like ours: a few headers, then lines of up to
    76 characters of quoted-printable HTML."""
    rng = random.Random(size_kb)
    words = [
        "<td", 'style=3D"padding:0;', "font-size:16px;", "</td>", "<a", 'href=3D"https://',
        "shop.example.com/p/linen-shirt", "spring", "news", "</div>", "<tr>", "hello",
    ]  # fmt: skip
    body_lines: list[bytes] = []
    length = 0
    while length < size_kb * 1024 - 600:
        line = " ".join(rng.choice(words) for _ in range(8))[:75] + "="
        body_lines.append(line.encode("ascii"))
        length += len(line) + 2
    body = b"\r\n".join(body_lines) + b"\r\n"
    emails = []
    for _ in range(count):
        message_id = uuid.uuid4()
        head = (
            b"From: news@shop.example.com\r\nTo: someone@example.org\r\n"
            b"Subject: Spring is here\r\nMessage-ID: <"
            + message_id.hex.encode("ascii")
            + b"@shop.example.com>\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: text/html; charset=utf-8\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        emails.append(
            OutgoingEmail(
                message_id=message_id,
                envelope_from="bounce@bounces.shop.example.com",
                recipients=("someone@example.org",),
                data=head + body,
            )
        )
    return emails


def bare_by_size(sink: SinkProcess, connections: int, count: int) -> None:
    """Where bare aiosmtplib's rate comes from: the same sink and connections, message
    sizes from a short transactional mail to a long newsletter."""
    print(f"\n  bare aiosmtplib by message size ({count:,} messages each)")
    for size_kb in BARE_SIZES_KB:
        emails = synthetic_emails(count, size_kb)
        before = sink.count()
        seconds, cpu = run_bare(emails, sink.port, connections)
        arrived = sink.wait_for(before + count) - before
        size = sum(len(e.data) for e in emails) / count
        print_line(
            f"{size / 1024:5.1f} KB",
            f"{per_second(count, seconds):8,.0f} msg/s; sender CPU "
            f"{cpu / count * 1000:.3f} ms a message; {arrived:,} arrived",
        )


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    failed = False
    with (
        tempfile.TemporaryDirectory(prefix="postillon-bench-") as tmp,
        open_databases(Path(tmp), args.database_url) as databases,
        SinkProcess() as sink,
    ):
        print_heading(
            f"email send: {args.messages:,} MJML newsletters over {args.connections} SMTP "
            f"connections ({'in a process of their own' if args.smtp_process else 'on a thread'})"
            f", batches of {args.batch}, on {databases.backend}"
        )
        if args.sizes:
            bare_by_size(sink, args.connections, args.sizes)
        url = databases.fresh("email")
        settings = _settings(url, Path(tmp) / "data", args, sink.port)
        runs = [("without DKIM", settings)]
        if not args.no_dkim:
            key_file, _ = dkim_key_file(Path(tmp))
            runs.append(
                (
                    "with DKIM (RSA 2048)",
                    settings.model_copy(
                        update={
                            "dkim_domain": "shop.example.com",
                            "dkim_selector": "pst",
                            "dkim_private_key_file": key_file,
                        }
                    ),
                )
            )
        template_id: uuid.UUID | None = None
        contacts: list[uuid.UUID] = []
        for number, (label, run_settings) in enumerate(runs):
            runtime = Runtime.build(run_settings)
            try:
                if template_id is None:
                    template_id, contacts = seed(runtime, args.messages)
                memory.tune_for_batches()  # as `postillon worker` does once it is set up
                before = sink.count()
                real = run_real_path(runtime, template_id, contacts, f"run{number}")
                arrived = sink.wait_for(before + real.sent) - before
            finally:
                runtime.close()
            before = sink.count()
            bare_seconds, bare_cpu = run_bare(real.captured, sink.port, args.connections)
            bare_arrived = sink.wait_for(before + len(real.captured)) - before
            size = sum(len(e.data) for e in real.captured) / max(1, len(real.captured))
            print(f"\n  {label}")
            print_rate("enqueue (MessageService)", args.messages, real.enqueue_seconds, "msg/s")
            print_rate("send path (claim → record)", real.sent, real.seconds, "msg/s")
            print_rate("bare aiosmtplib, same bytes", len(real.captured), bare_seconds, "msg/s")
            rate = per_second(real.sent, real.seconds)
            ratio = rate / per_second(len(real.captured), bare_seconds)
            print_line("message size", f"{size / 1024:.1f} KB on average; {real.rounds} rounds")
            print_line(
                "sender CPU per message",
                f"{real.cpu_seconds / max(1, real.sent) * 1000:.3f} ms (path), "
                f"{bare_cpu / max(1, len(real.captured)) * 1000:.3f} ms (bare)",
            )
            print_line("arrived at the sink", f"{arrived:,} (path), {bare_arrived:,} (bare)")
            print_line("rate", verdict(rate, TARGET_RATE, "msg/s"))
            print_line("ratio", ratio_verdict(ratio, TARGET_RATIO))
            if real.sent != args.messages or arrived != real.sent:
                print_line("ERROR", f"sent {real.sent:,} of {args.messages:,}, {arrived:,} arrived")
                failed = True
    return 1 if failed else 0
