"""The journey engine: steps per second, and emails per second beside bare aiosmtplib.

100,000 subscribed contacts enter a 5-step journey (send the welcome mail, wait 1 day,
branch on a tag, send the follow-up, exit) under the virtual clock, through the real
engine (`JourneyEngine.enter`, then `run_due` in batches as the worker's journey task
runs it) and the real send path (`send_round`, as the worker's send task) over N
persistent SMTP connections into an aiosmtpd sink in a separate process. The baseline, in
the same run, is bare aiosmtplib sending the very bytes the send path sent, over the same
number of connections to the same sink.

    ./dev bench journey_run [--contacts N] [--batch N] [--connections N] [--smtp-process]
                            [--database-url URL|auto-postgres]

Figures: entries/s; each engine pass: all steps/s over the whole pass, and non-send
steps/s — the wait, branch and exit steps' own time (the step groups are timed by kind)
plus their share, by count, of the time around the steps (claiming runs, writing runs
and history, committing); the send steps are measured by emails/s. Then emails/s of the
send path and end to end (engine passes and sending); the ratio to bare aiosmtplib (run
twice, the faster run counts). The
garbage collector is tuned as `postillon worker` tunes it (`kit.memory`).

Targets (2 cores): ≥ 10,000 non-send steps/s; ≥ 1,500 emails/s end to end or ≥ 0.7 of
the bare rate.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

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
from bench.email_send import capture_sent, run_bare
from bench.email_sink import SinkProcess
from postillon.automations import model as am
from postillon.automations.journeys import steps
from postillon.automations.journeys.engine import Entrant
from postillon.channels.email.provider import OutgoingEmail
from postillon.clock import VirtualClock
from postillon.kit import memory
from postillon.kit.repository import insert_rows
from postillon.messages.sending import send_round
from postillon.models import Contact, ContactConsent, ContactTag, Message
from postillon.runtime import Runtime
from postillon.settings import Settings
from postillon.templates.schemas import TemplateIn

TARGET_STEPS = 10_000.0
TARGET_EMAILS = 1_500.0
TARGET_RATIO = 0.7

JOURNEY = """
kind: journey
key: welcome-series
name: Welcome series
trigger: {contact_created: true}
entry: {policy: once}
steps:
  - {id: welcome, send: welcome}
  - {id: a-day-later, wait: 1d}
  - {id: engaged, if: {tag: newsletter}, then: follow-up, else: done}
  - {id: follow-up, send: follow-up}
  - {id: done, exit: {}}
"""

_MAIL = """<mjml>
  <mj-head><mj-preview>{preview}</mj-preview></mj-head>
  <mj-body background-color="#f4f4f4">
    <mj-section background-color="#ffffff">
      <mj-column>
        <mj-text font-size="20px">Hello {{{{ contact.first_name | default("there") }}}},</mj-text>
        <mj-text>{text} {{{{ contact.attributes.city | default("your city") }}}}.</mj-text>
        <mj-button href="https://shop.example.com/{path}?c={{{{ contact.id[:8] }}}}">
          {button}</mj-button>
        <mj-text font-size="11px" color="#777777">
          <a href="{{{{ unsubscribe_url }}}}">Unsubscribe</a></mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""
TEMPLATES = {
    "welcome": ("Welcome, {{ contact.first_name | default('friend') }}", _MAIL.format(
        preview="Good to have you", text="Thank you for signing up, we ship to",
        path="start", button="Start shopping")),
    "follow-up": ("{{ contact.first_name | default('Hello') }}, a tip for you", _MAIL.format(
        preview="A tip", text="Here is what people like in", path="tips",
        button="See the tips")),
}  # fmt: skip


@dataclass
class Pass:
    seconds: float
    steps: int
    sends: int
    # Time inside the step groups (`steps.execute`): send steps, and every other kind.
    send_seconds: float = 0.0
    other_seconds: float = 0.0

    @property
    def non_send(self) -> int:
        return self.steps - self.sends

    @property
    def non_send_seconds(self) -> float:
        """The non-send steps' own time plus their share, by count, of what the pass
        spends around the steps (claiming the runs, goals and exits, writing runs and
        history, committing)."""
        around = max(0.0, self.seconds - self.send_seconds - self.other_seconds)
        return self.other_seconds + around * self.non_send / max(1, self.steps)


class StepTimer:
    """Times `steps.execute` by the kind of step, around the real function (the executor
    calls it through the module, so the wrapper sees every group)."""

    def __init__(self) -> None:
        self.send = 0.0
        self.other = 0.0
        self._real = steps.execute

    def __enter__(self) -> StepTimer:
        def timed(batch: Any, published: Any, step_id: Any, runs: Any) -> None:
            started = time.perf_counter()
            try:
                self._real(batch, published, step_id, runs)
            finally:
                spent = time.perf_counter() - started
                kind = published.journey.step(step_id) if step_id is not None else None
                if isinstance(kind, am.SendStep):
                    self.send += spent
                else:
                    self.other += spent

        steps.execute = timed
        return self

    def __exit__(self, *exc: object) -> None:
        steps.execute = self._real


@dataclass
class Sending:
    seconds: float
    sent: int


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev bench journey_run", description="Journey engine steps/s and emails/s."
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000, help="runs claimed per batch")
    parser.add_argument("--connections", type=int, default=4, help="SMTP connections")
    parser.add_argument(
        "--smtp-process",
        action="store_true",
        help="speak SMTP from a child process (POSTILLON_SMTP_PROCESS)",
    )
    add_database_option(parser)
    args = parser.parse_args(argv)
    if args.contacts < 1 or args.batch < 1 or args.connections < 1:
        parser.error("--contacts, --batch and --connections must be at least 1")
    return args


def seed(runtime: Runtime, count: int) -> list[uuid.UUID]:
    now = runtime.clock.now()
    rows = prepare_rows(list(people(count)), now)
    with runtime.database.transaction() as session:
        insert_rows(session, Contact, rows.contacts)
        insert_rows(session, ContactTag, [tag for tags in rows.tags for tag in tags])
        insert_rows(
            session,
            ContactConsent,
            [
                {
                    "contact_id": row["id"],
                    "channel": "email",
                    "status": "subscribed",
                    "changed_at": now,
                    "source": "bench",
                }
                for row in rows.contacts
            ],
        )
        for key, (subject, body) in TEMPLATES.items():
            runtime.templates.save(
                session, TemplateIn(key=key, subject=subject, body=body, kind="marketing")
            )
        runtime.automations.save(session, JOURNEY, source_name="welcome-series.yaml")
        runtime.automations.publish(session, "welcome-series")
    return [row["id"] for row in rows.contacts]


def enter(runtime: Runtime, contacts: list[uuid.UUID]) -> float:
    started = time.perf_counter()
    now = runtime.clock.now()
    for start in range(0, len(contacts), 5000):
        with runtime.database.transaction() as session:
            definitions = runtime.definitions.load(session)
            journey = definitions.by_key["welcome-series"]
            entrants = [
                Entrant(contact_id, entry_key=f"bench:{contact_id}", source="bench")
                for contact_id in contacts[start : start + 5000]
            ]
            runtime.journeys.enter(session, definitions, journey, entrants, now=now)
    return time.perf_counter() - started


def engine_pass(runtime: Runtime, batch: int) -> Pass:
    before = _messages(runtime)
    executed = 0
    with StepTimer() as timer:
        started = time.perf_counter()
        while True:
            with runtime.database.transaction() as session:
                definitions = runtime.definitions.load(session)
                done = runtime.journeys.run_due(
                    session, definitions, now=runtime.clock.now(), limit=batch
                )
            if not done:
                break
            executed += done
        seconds = time.perf_counter() - started
    return Pass(seconds, executed, _messages(runtime) - before, timer.send, timer.other)


def send_all(runtime: Runtime, clock: VirtualClock) -> Sending:
    sent = 0
    started = time.perf_counter()
    while True:
        clock.advance(timedelta(seconds=1))  # the throttle's tokens come with the clock
        report = send_round(runtime, clock.now())
        sent += report.outcomes.sent
        if report.claimed == 0:
            break
    return Sending(time.perf_counter() - started, sent)


def _messages(runtime: Runtime) -> int:
    with runtime.database.transaction(read_only=True) as session:
        return int(session.scalar(select(func.count()).select_from(Message)) or 0)


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    with (
        tempfile.TemporaryDirectory(prefix="postillon-bench-") as tmp,
        open_databases(Path(tmp), args.database_url) as databases,
        SinkProcess() as sink,
    ):
        print_heading(
            f"journey run: {args.contacts:,} contacts through a 5-step journey, batches of "
            f"{args.batch}, {args.connections} SMTP connections "
            f"({'in a process of their own' if args.smtp_process else 'on a thread'}), "
            f"on {databases.backend}"
        )
        settings = Settings(
            database_url=databases.fresh("journey"),
            data_dir=Path(tmp) / "data",
            secret_key="bench-secret",
            run_worker=False,
            public_url="https://news.example.com",
            email_from="Postillon Shop <news@shop.example.com>",
            bounce_domain="bounces.shop.example.com",
            smtp_port=sink.port,
            smtp_connections=args.connections,
            smtp_rate_per_second=1_000_000.0,
            smtp_process=args.smtp_process,
        )
        clock = VirtualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
        runtime = Runtime.build(settings, clock=clock)
        captured: list[OutgoingEmail] = []
        capture_sent(runtime, captured)
        try:
            contacts = seed(runtime, args.contacts)
            memory.tune_for_batches()  # as `postillon worker` does once it is set up
            entry_seconds = enter(runtime, contacts)
            first = engine_pass(runtime, args.batch)
            first_sending = send_all(runtime, clock)
            clock.advance(timedelta(days=1, minutes=1))
            second = engine_pass(runtime, args.batch)
            second_sending = send_all(runtime, clock)
        finally:
            runtime.close()
        arrived = sink.wait_for(len(captured))
        # The baseline twice, the faster counting: its rate varies from run to run by a
        # fifth on a busy two-core machine, and the ratio is not to flatter the send path.
        bare_runs = []
        for _ in range(2):
            before = sink.count()
            bare_runs.append(run_bare(captured, sink.port, args.connections)[0])
            sink.wait_for(before + len(captured))
        bare_seconds = min(bare_runs)

    print_rate("entries (JourneyEngine.enter)", args.contacts, entry_seconds, "runs/s")
    for label, engine in (("day 0: send, wait", first), ("day 1: branch, send, exit", second)):
        print_rate(f"{label}: all steps", engine.steps, engine.seconds, "steps/s")
        print_line(
            f"{label}: non-send steps",
            f"{engine.non_send:,} in {engine.non_send_seconds:.2f} s → "
            f"{per_second(engine.non_send, engine.non_send_seconds):,.0f}/s  "
            f"(sends {engine.send_seconds:.2f} s, others {engine.other_seconds:.2f} s, "
            f"around them {engine.seconds - engine.send_seconds - engine.other_seconds:.2f} s)",
        )
    non_send = first.non_send + second.non_send
    non_send_seconds = first.non_send_seconds + second.non_send_seconds
    engine_seconds = first.seconds + second.seconds
    sent = first_sending.sent + second_sending.sent
    send_seconds = first_sending.seconds + second_sending.seconds
    print_rate("send path (claim → record)", sent, send_seconds, "emails/s")
    print_rate("bare aiosmtplib, same bytes", len(captured), bare_seconds, "emails/s")
    print_line(
        "bare aiosmtplib, both runs",
        ", ".join(f"{per_second(len(captured), one):,.0f}/s" for one in bare_runs),
    )
    size = sum(len(e.data) for e in captured) / max(1, len(captured))
    print_line("message size", f"{size / 1024:.1f} KB on average; {arrived:,} arrived")
    steps_rate = per_second(non_send, non_send_seconds)
    print_line(
        "all steps/s, whole passes",
        f"{per_second(first.steps + second.steps, engine_seconds):,.0f} "
        f"({first.steps + second.steps:,} in {engine_seconds:.2f} s)",
    )
    end_to_end = per_second(sent, engine_seconds + send_seconds)
    ratio = per_second(sent, send_seconds) / per_second(len(captured), bare_seconds)
    print_line("non-send steps/s", verdict(steps_rate, TARGET_STEPS, "steps/s"))
    print_line("emails/s end to end", verdict(end_to_end, TARGET_EMAILS, "emails/s"))
    print_line("send path / bare", ratio_verdict(ratio, TARGET_RATIO))
    expected = first.sends + second.sends
    if sent != expected or arrived < sent:
        print_line("ERROR", f"sent {sent:,}, expected {expected:,}; {arrived:,} arrived")
        return 1
    return 0
