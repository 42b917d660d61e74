"""Run Postillon's benchmarks: `./dev bench` runs them all, `./dev bench NAME [options]` one.

Each benchmark prints its figure beside a baseline measured in the same run, and the ratio.
`./dev bench NAME --help` lists a benchmark's options (rows, batches, --database-url);
options given without a NAME go to every benchmark (`./dev bench --database-url URL`).
Benchmarks are run on demand, never by the test suite.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from bench import (
    broadcast_materialise,
    contact_batch_api,
    contact_import,
    email_send,
    event_ingest,
    journey_run,
    segment_refresh,
)


@dataclass(frozen=True)
class Benchmark:
    summary: str
    parse: Callable[[list[str] | None], argparse.Namespace]
    run: Callable[[list[str] | None], int]


BENCHMARKS = {
    "contact_import": Benchmark(
        "CSV import rows/s (default 200,000 rows)",
        contact_import.parse_arguments,
        contact_import.main,
    ),
    "contact_batch_api": Benchmark(
        "batch API contacts/s (50 batches of 1,000)",
        contact_batch_api.parse_arguments,
        contact_batch_api.main,
    ),
    "event_ingest": Benchmark(
        "tracking API events/s (2,500-event batches, 4 clients)",
        event_ingest.parse_arguments,
        event_ingest.main,
    ),
    "email_send": Benchmark(
        "email send path msg/s against bare aiosmtplib (20,000 MJML newsletters)",
        email_send.parse_arguments,
        email_send.main,
    ),
    "broadcast_materialise": Benchmark(
        "broadcast recipients into the outbox/s (100,000 recipients)",
        broadcast_materialise.parse_arguments,
        broadcast_materialise.main,
    ),
    "journey_run": Benchmark(
        "journey engine steps/s and emails/s against bare aiosmtplib (100,000 contacts)",
        journey_run.parse_arguments,
        journey_run.main,
    ),
    "segment_refresh": Benchmark(
        "segment full and incremental refresh against hand-written SQL (1M contacts)",
        segment_refresh.parse_arguments,
        segment_refresh.main,
    ),
}


def usage() -> str:
    lines = ["usage: ./dev bench [NAME] [options]", "", "benchmarks:"]
    lines += [f"  {name:<20} {bench.summary}" for name, bench in BENCHMARKS.items()]
    lines += ["", "With no NAME, every benchmark runs, each with the options given."]
    lines += ["./dev bench NAME --help lists the options of one."]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if argv and argv[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    if not argv or argv[0].startswith("-"):
        for bench in BENCHMARKS.values():
            bench.parse(argv)  # an option one of them does not know stops before any runs
        return max(bench.run(argv) for bench in BENCHMARKS.values())
    name, options = argv[0].replace("-", "_"), argv[1:]
    if name not in BENCHMARKS:
        print(f"bench: unknown benchmark {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    return BENCHMARKS[name].run(options)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
