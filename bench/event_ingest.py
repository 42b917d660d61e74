"""Tracking API throughput, in events per second, against a raw-executemany baseline.

Serves Postillon's real web app as it is deployed, `postillon serve --no-worker
--processes N` on a free loopback port (two processes by default, one per core; with
`--processes 0` or `--profile`, uvicorn in a thread of this process), creates a write key,
and has several clients (threads, each with its own httpx.Client) POST batches of 2,500
Segment messages to `/v1/batch` at the same time, authenticated as Segment's libraries do
(`Authorization: Basic base64(KEY:)`). Each client sends its share of the batches one
after the other; the time runs from the first request sent to the last answer received.

The messages are a shop's: mostly `track` (Product Viewed, Added to Cart, Order Completed
with revenue …), some `page`, a few `identify` with traits; 5,000 users by `userId`, a
quarter of the messages from anonymous visitors only, a handful of user agents and public
addresses for the server to enrich. To keep 2,500 messages under the 500 KB batch limit,
the user agent, an address and the library travel in the batch's `context` (which the
server applies to every message; anonymous page views carry their own address), and
message ids are 16 characters. Three passes:

1. the first pass: every user and visitor is new (the first messages create the contacts,
   identifies link visitors to them);
2. the steady state: new messages of the same users and visitors;
3. the batches of the steady state again: every message is a duplicate.

Afterwards the stored events are counted: each message sent is stored exactly once. The
request bodies are encoded before the clock starts; the rate limit is raised so that it
never refuses. The baseline, measured in the same run, reads the stored events back and
writes the same rows with SQLAlchemy Core executemany (one transaction per 2,500) into
another fresh database holding the same contacts.

    ./dev bench event_ingest [--batches N] [--clients N] [--processes N] [--profile]
                             [--database-url URL|auto-postgres]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import functools
import logging
import pstats
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from sqlalchemy import func, insert, select
from tests.support.server import LiveServer

from bench.common import (
    add_database_option,
    build_runtime,
    open_databases,
    per_second,
    print_heading,
    print_line,
    print_rate,
    ratio_verdict,
    verdict,
)
from bench.event_messages import BATCH_SIZE, make_audience, prepare_pass
from bench.served import ServedApp
from postillon.auth.service import Scope
from postillon.kit import memory
from postillon.kit.db import Database
from postillon.models import Contact, Event, Visitor
from postillon.models.base import Base
from postillon.runtime import Runtime
from postillon.tracking import endpoints as tracking_endpoints
from postillon.tracking.segment import MAX_BATCH_BYTES
from postillon.web.app import create_app

TARGET_EVENTS_PER_SECOND = 20_000  # on SQLite and on PostgreSQL, 2 cores
TARGET_RATIO = 0.5  # of the baseline
UNLIMITED_RATE = 1_000_000  # requests per second and burst: the limiter never refuses


@dataclass
class PassResult:
    seconds: float
    answers: list[tuple[int, bytes]]
    latencies: list[float]

    @property
    def answered(self) -> int:
        """Messages in the batches answered 200: what the rate is counted on."""
        return BATCH_SIZE * sum(1 for status, _ in self.answers if status == 200)


def send_pass(url: str, secret: str, bodies: Sequence[bytes], clients: int) -> PassResult:
    """Every body POSTed once, by `clients` threads at the same time, each over its own
    connection; the seconds from the first request sent to the last answer received."""
    ready = threading.Barrier(clients, timeout=60)
    credentials = base64.b64encode(f"{secret}:".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}", "Content-Type": "application/json"}

    def client(share: Sequence[bytes]) -> tuple[float, float, list[tuple[int, bytes, float]]]:
        answers = []
        with httpx.Client(base_url=url, headers=headers, timeout=300) as http:
            http.get("/healthz").raise_for_status()  # connect before the clock starts
            ready.wait()
            first_sent = time.perf_counter()
            for body in share:
                sent = time.perf_counter()
                try:
                    response = http.post("/v1/batch", content=body)
                    status, content = response.status_code, response.content
                except httpx.TransportError as error:  # reported as a failure, not raised
                    status, content = 0, f"{type(error).__name__}: {error}".encode()
                answers.append((status, content, time.perf_counter() - sent))
            return first_sent, time.perf_counter(), answers

    with ThreadPoolExecutor(max_workers=clients) as pool:
        runs = list(pool.map(client, [bodies[k::clients] for k in range(clients)]))
    seconds = max(end for _, end, _ in runs) - min(start for start, _, _ in runs)
    answers = [(status, content) for _, _, run in runs for status, content, _ in run]
    latencies = [latency for _, _, run in runs for _, _, latency in run]
    return PassResult(seconds, answers, latencies)


def check_answers(label: str, result: PassResult, *, accepted: int, duplicates: int) -> list[str]:
    """Every answer a 200 with these counts and nothing rejected; the first few that are not."""
    problems = []
    for status, content in result.answers:
        shown = content[:500].decode(errors="replace")
        if status != 200:
            answered = f"answered {status}" if status else "did not answer"
            problems.append(f"{label}: the API {answered}: {shown}")
            continue
        answer = orjson.loads(content)
        counts = (answer["accepted"], answer["duplicates"])
        if counts != (accepted, duplicates) or answer["rejected"]:
            problems.append(
                f"{label}: expected accepted={accepted} duplicates={duplicates}, got {shown}"
            )
    if len(problems) > 3:
        problems[3:] = [f"{label}: {len(problems) - 3} more batches like these"]
    return problems


@dataclass
class Stored:
    events: int
    message_ids: set[str]
    contacts: int
    visitors: int


def stored_counts(runtime: Runtime) -> Stored:
    with runtime.database.transaction(read_only=True) as session:
        tracked = Event.type != "internal"
        return Stored(
            events=session.scalar(select(func.count()).select_from(Event).where(tracked)) or 0,
            message_ids=set(session.scalars(select(Event.message_id).where(tracked))),
            contacts=session.scalar(select(func.count()).select_from(Contact)) or 0,
            visitors=session.scalar(select(func.count()).select_from(Visitor)) or 0,
        )


def stored_rows(database: Database) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every column of the contacts and of the tracked (not internal) events, as stored."""
    contacts = Base.metadata.tables[Contact.__tablename__]
    events = Base.metadata.tables[Event.__tablename__]
    tracked = select(events).where(events.c.type != "internal").order_by(events.c.id)
    with database.engine.connect() as connection:
        contact_rows = [dict(r._mapping) for r in connection.execute(select(contacts))]
        return contact_rows, [dict(r._mapping) for r in connection.execute(tracked)]


def baseline_insert_events(
    url: str, contacts: list[dict[str, Any]], events: list[dict[str, Any]]
) -> float:
    """Seconds to write `events` with plain Core executemany, one transaction per batch,
    into a database that holds `contacts` (written first, not timed)."""
    database = Database(url)
    events_insert = insert(Base.metadata.tables[Event.__tablename__])
    try:
        with database.engine.begin() as connection:
            connection.execute(insert(Base.metadata.tables[Contact.__tablename__]), contacts)
        started = time.perf_counter()
        for start in range(0, len(events), BATCH_SIZE):
            with database.engine.begin() as connection:
                connection.execute(events_insert, events[start : start + BATCH_SIZE])
        return time.perf_counter() - started
    finally:
        database.dispose()


class ServerLog(logging.Handler):
    """Warnings and errors of the server, counted by kind instead of printed: a traceback
    with its SQL for every failed batch would bury the figures. An error that both the
    app and uvicorn log counts once."""

    LOGGERS = ("postillon", "uvicorn.error", "psycopg")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.kinds: Counter[str] = Counter()
        self._recent: deque[BaseException] = deque(maxlen=64)
        self._saved: list[tuple[logging.Logger, list[logging.Handler], bool]] = []

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        if error is None:
            self.kinds[re.sub(r" \(host=[^)]*\)| at 0x[0-9a-f]+", "", record.getMessage())] += 1
            return
        if any(error is seen for seen in self._recent):
            return
        self._recent.append(error)
        cause = getattr(error, "orig", None) or error
        lines = str(cause).splitlines() or [""]
        where = [re.sub(r" \(\d+,\d+\)", "", line) for line in lines if line.startswith("CONTEXT")]
        self.kinds[" ".join([f"{type(cause).__name__}: {lines[0]}", *where])] += 1

    def __enter__(self) -> ServerLog:
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.handlers[:], logger.propagate))
            logger.handlers, logger.propagate = [self], False
        return self

    def __exit__(self, *_exc: object) -> None:
        for logger, handlers, propagate in self._saved:
            logger.handlers, logger.propagate = handlers, propagate

    def summary(self) -> list[str]:
        return [
            f"{count} {'time' if count == 1 else 'times'}: {kind}"
            for kind, count in self.kinds.most_common()
        ]


class ServerProfile:
    """cProfile of the synchronous part of each tracking request (authentication, checks
    and the transaction, which run in the server's worker threads), one profile per pass.
    Reading the body and parsing its JSON happen on the event loop, which this leaves out.
    Times are summed over requests that ran at the same time, so with several clients they
    include the waits for SQLite's write lock (in `BEGIN IMMEDIATE`)."""

    def __init__(self) -> None:
        self.passes: dict[str, list[cProfile.Profile]] = {}
        self.current: str | None = None
        self._lock = threading.Lock()
        self._original: Callable[..., Any] | None = None

    def __enter__(self) -> ServerProfile:
        original = getattr(tracking_endpoints, "_accept_sync", None)
        if original is None:
            raise SystemExit("bench: --profile wraps tracking.endpoints._accept_sync, now gone")
        self._original = original

        @functools.wraps(original)
        def profiled(*args: Any, **kwargs: Any) -> Any:
            profile = cProfile.Profile()
            try:
                return profile.runcall(original, *args, **kwargs)
            finally:
                with self._lock:
                    if self.current is not None:
                        self.passes.setdefault(self.current, []).append(profile)

        tracking_endpoints._accept_sync = profiled
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._original is not None:
            tracking_endpoints._accept_sync = self._original

    def print(self, title: str, name: str, limit: int = 40) -> None:
        profiles = self.passes.get(name)
        if not profiles:
            return
        print_heading(f"cProfile of the {title}, summed over its requests, top {limit}")
        stats = pstats.Stats(profiles[0], stream=sys.stdout)
        for profile in profiles[1:]:
            stats.add(profile)
        stats.strip_dirs().sort_stats("cumulative").print_stats(limit)
        stats.sort_stats("tottime").print_stats(limit // 2)


def runtime_without_rate_limit(database_url: str, data_dir: Path) -> Runtime:
    """The benchmarks' runtime, with the tracking rate limit raised out of the way."""
    runtime = build_runtime(database_url, data_dir)
    runtime.ingest_limiter.rate = UNLIMITED_RATE
    runtime.ingest_limiter.burst = UNLIMITED_RATE
    return runtime


def kilobytes(size: float) -> str:
    return f"{size / 1024:,.0f} KB"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev bench event_ingest", description="Tracking API events/s against a baseline."
    )
    parser.add_argument(
        "--batches", type=int, default=40, help=f"requests of {BATCH_SIZE:,} messages per pass"
    )
    parser.add_argument("--clients", type=int, default=4, help="clients sending at the same time")
    add_database_option(parser)
    parser.add_argument(
        "--processes",
        type=int,
        default=2,
        help="web processes of `postillon serve --processes N`; 0: uvicorn in a thread of "
        "the benchmark's own process",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile the server side of each request (serves in this process)",
    )
    args = parser.parse_args(argv)
    if args.batches < 1 or args.clients < 1 or args.processes < 0:
        parser.error("--batches and --clients must be at least 1, --processes at least 0")
    if args.profile:
        args.processes = 0
    return args


def run_passes(
    runtime: Runtime,
    passes: Sequence[tuple[str, list[bytes]]],
    *,
    clients: int,
    processes: int,
    profile: ServerProfile | None,
) -> tuple[dict[str, PassResult], list[str]]:
    """Each pass's bodies sent to the real app, with a new write key: served by
    `postillon serve --processes N` or, with no processes, by uvicorn in a thread of this
    one. Also returns the warnings and errors the server logged."""
    with runtime.database.transaction() as session:
        _, secret = runtime.api_keys.create(session, scope=Scope.write, name="bench")
    results: dict[str, PassResult] = {}
    if processes:
        served = ServedApp(
            database_url=runtime.settings.resolved_database_url,
            data_dir=runtime.settings.data_dir,
            processes=processes,
            log_path=runtime.settings.data_dir / "serve.log",
            settings={
                "POSTILLON_INGEST_RATE_PER_SECOND": str(UNLIMITED_RATE),
                "POSTILLON_INGEST_BURST": str(UNLIMITED_RATE),
            },
        )
        with served:
            for name, bodies in passes:
                results[name] = send_pass(served.url, secret, bodies, clients)
        return results, served.problems()
    server = LiveServer(create_app(runtime, run_worker=False))  # sets up uvicorn's logging
    memory.tune_for_batches()  # as `postillon serve` does once the app is made
    with ServerLog() as log, profile or contextlib.nullcontext():
        server.start()
        try:
            for name, bodies in passes:
                if profile is not None:
                    profile.current = name
                results[name] = send_pass(server.url, secret, bodies, clients)
        finally:
            server.stop()
    return results, log.summary()


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    count = args.batches * BATCH_SIZE
    audience = make_audience(random.Random(20260105))
    start = datetime.now(UTC) - timedelta(hours=1)
    first = prepare_pass(audience, args.batches, seed=1, start=start)
    steady = prepare_pass(audience, args.batches, seed=2, start=start + timedelta(minutes=30))
    sizes = [len(body) for body in first.bodies + steady.bodies]

    with (
        tempfile.TemporaryDirectory(prefix="postillon-bench-") as tmp,
        open_databases(Path(tmp), args.database_url) as databases,
    ):
        print_heading(
            f"event ingest: {args.batches} batches of {BATCH_SIZE:,} messages from "
            f"{args.clients} clients, on {databases.backend}"
        )
        mix = ", ".join(f"{n / count:.0%} {kind}" for kind, n in sorted(first.mix.items()))
        print_line("messages", f"{mix}; {first.anonymous / count:.0%} with an anonymousId only")
        shrunk = first.shrunk + steady.shrunk
        print_line(
            "batch size",
            f"{kilobytes(statistics.mean(sizes))} on average, {kilobytes(max(sizes))} at most "
            f"(limit {kilobytes(MAX_BATCH_BYTES)})"
            + (f"; {shrunk:,} messages lost optional properties to fit" if shrunk else ""),
        )
        print_line("rate limit", f"raised to {UNLIMITED_RATE:,} requests/s so it never refuses")
        print_line(
            "server",
            f"postillon serve --no-worker --processes {args.processes}"
            if args.processes
            else "uvicorn in a thread of this process",
        )
        print_line("worker", "not running: the events stay queued for their consumers")

        runtime = runtime_without_rate_limit(databases.fresh("api"), Path(tmp) / "data")
        profile = ServerProfile() if args.profile else None
        try:
            passes = [("first", first.bodies), ("steady", steady.bodies), ("resend", steady.bodies)]
            results, server_log = run_passes(
                runtime, passes, clients=args.clients, processes=args.processes, profile=profile
            )
            stored = stored_counts(runtime)
            contacts, events = stored_rows(runtime.database)
        finally:
            runtime.close()

        failures = [
            *check_answers("first pass", results["first"], accepted=BATCH_SIZE, duplicates=0),
            *check_answers("steady state", results["steady"], accepted=BATCH_SIZE, duplicates=0),
            *check_answers("re-send", results["resend"], accepted=0, duplicates=BATCH_SIZE),
        ]
        sent = set(first.message_ids) | set(steady.message_ids)
        if stored.events != len(sent) or stored.message_ids != sent:
            failures.append(
                f"stored {stored.events:,} tracked events for {len(sent):,} messages sent; "
                f"{len(sent - stored.message_ids):,} missing, "
                f"{len(stored.message_ids - sent):,} not sent"
            )

        baseline_seconds = baseline_insert_events(databases.fresh("baseline"), contacts, events)
        baseline_count = len(events)
        del contacts, events

        rates = {name: per_second(r.answered, r.seconds) for name, r in results.items()}
        baseline_rate = per_second(baseline_count, baseline_seconds)
        labels = {
            "first": ("first pass (new users)", "first pass"),
            "steady": ("steady state (known users)", "steady state"),
            "resend": ("same batches (duplicates)", "duplicates"),
        }
        for name, (label, _) in labels.items():
            result = results[name]
            print_rate(f"API, {label}", result.answered, result.seconds, "events/s")
        print_rate("baseline, Core executemany", baseline_count, baseline_seconds, "events/s")
        for name, (_, short) in labels.items():
            print_line(f"ratio API {short} / baseline", f"{rates[name] / baseline_rate:.2f}")
        latencies = sorted(results["steady"].latencies)
        print_line(
            "latency per batch, steady state",
            f"median {statistics.median(latencies) * 1000:,.0f} ms, "
            f"slowest {latencies[-1] * 1000:,.0f} ms",
        )
        print_line(
            "stored",
            f"{stored.events:,} tracked events ({len(stored.message_ids):,} message ids), "
            f"{stored.contacts:,} contacts, {stored.visitors:,} visitors",
        )
        backend = databases.backend
        steady_rate = rates["steady"]
        print_line(
            f"target ({backend})", verdict(steady_rate, TARGET_EVENTS_PER_SECOND, "events/s")
        )
        print_line(f"target ({backend})", ratio_verdict(steady_rate / baseline_rate, TARGET_RATIO))
        for line in server_log:
            print_line("server log", line)
        if profile is not None:
            print_line("note", "the server ran under cProfile, which slows it down")
            profile.print("first pass", "first")
            profile.print("steady state", "steady")
        for failure in failures:
            print(f"  FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
