"""Batch API throughput, in contacts per second, against a raw-executemany baseline.

Starts Postillon's real web app under uvicorn on a free loopback port (in a background
thread of this process, without the worker), creates an admin API key, and POSTs batches
of contacts to `/api/contacts/batch` with httpx, one request after the other:

1. every contact new (created);
2. the same batches again (every contact unchanged);
3. the same contacts with another city (every contact updated).

The request bodies are encoded before the clock starts. The baseline, measured in the same
run, writes the same contacts as already-parsed dicts with SQLAlchemy Core executemany
(contacts and contact_tags, one transaction per batch) into another fresh database.

    ./dev bench contact_batch_api [--batches N] [--batch-size N]
                                  [--database-url URL|auto-postgres]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from tests.support.server import LiveServer

from bench.common import (
    Person,
    add_database_option,
    baseline_insert,
    build_runtime,
    check_phones,
    open_databases,
    people,
    per_second,
    prepare_rows,
    print_heading,
    print_line,
    print_rate,
    verdict,
)
from postillon.auth.service import Scope
from postillon.kit import memory
from postillon.web.app import create_app

TARGET_CONTACTS_PER_SECOND = 5_000  # on SQLite
MAUTIC_NOTE = (
    "for scale: Mautic 5.1 was reported to create 37 contacts/s through its batch API "
    "on this kind of machine (a figure given with the benchmark's brief, not measured here)"
)


def contact_json(person: Person) -> dict[str, Any]:
    return {
        "email": person.email,
        "first_name": person.first_name,
        "last_name": person.last_name,
        "phone": person.phone,
        "attributes": {"city": person.city, "age": person.age},
        "tags": list(person.tags),
    }


def encode_batches(persons: Sequence[Person], batch_size: int) -> list[bytes]:
    return [
        json.dumps({"contacts": [contact_json(p) for p in persons[i : i + batch_size]]}).encode()
        for i in range(0, len(persons), batch_size)
    ]


def send_batches(client: httpx.Client, bodies: Sequence[bytes]) -> tuple[dict[str, int], float]:
    """POST every body in turn; the summed counts of the answers and the seconds it took."""
    totals = {"created": 0, "updated": 0, "unchanged": 0}
    started = time.perf_counter()
    for body in bodies:
        response = client.post(
            "/api/contacts/batch", content=body, headers={"Content-Type": "application/json"}
        )
        if response.status_code != 200:
            raise SystemExit(f"bench: the batch API answered {response.status_code}: "
                             f"{response.text[:2000]}")  # fmt: skip
        answer = response.json()
        for action in totals:
            totals[action] += answer[action]
    return totals, time.perf_counter() - started


def check_counts(label: str, totals: dict[str, int], action: str, expected: int) -> str | None:
    if totals[action] == expected:
        return None
    return f"{label}: expected {expected} {action}, the API answered {totals}"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev bench contact_batch_api", description="Batch API contacts/s against a baseline."
    )
    parser.add_argument("--batches", type=int, default=50, help="requests per pass")
    parser.add_argument("--batch-size", type=int, default=1000, help="contacts per request")
    add_database_option(parser)
    args = parser.parse_args(argv)
    if args.batches < 1 or args.batch_size < 1:
        parser.error("--batches and --batch-size must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    count = args.batches * args.batch_size
    persons = list(people(count))
    check_phones(persons[:1000])
    moved = [replace(p, city="Neustadt an der Weinstraße") for p in persons]
    create_bodies = encode_batches(persons, args.batch_size)
    update_bodies = encode_batches(moved, args.batch_size)

    with (
        tempfile.TemporaryDirectory(prefix="postillon-bench-") as tmp,
        open_databases(Path(tmp), args.database_url) as databases,
    ):
        print_heading(
            f"contact batch API: {args.batches} batches of {args.batch_size:,} contacts "
            f"on {databases.backend}"
        )
        runtime = build_runtime(databases.fresh("api"), Path(tmp) / "data")
        with runtime.database.transaction() as session:
            _, secret = runtime.api_keys.create(session, scope=Scope.admin, name="bench")
        server = LiveServer(create_app(runtime, run_worker=False))
        memory.tune_for_batches()  # as `postillon serve` does once the app is made
        server.start()
        try:
            with httpx.Client(
                base_url=server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=300
            ) as client:
                client.get("/healthz").raise_for_status()  # connect before the clock starts
                created, created_seconds = send_batches(client, create_bodies)
                unchanged, unchanged_seconds = send_batches(client, create_bodies)
                updated, updated_seconds = send_batches(client, update_bodies)
        finally:
            server.stop()
            runtime.close()
        failures = [
            check_counts("first pass", created, "created", count),
            check_counts("same batches again", unchanged, "unchanged", count),
            check_counts("changed city", updated, "updated", count),
        ]

        rows = prepare_rows(persons, datetime.now(UTC))
        baseline_seconds = baseline_insert(
            databases.fresh("baseline"), rows, per_transaction=args.batch_size
        )

    created_rate = per_second(count, created_seconds)
    baseline_rate = per_second(count, baseline_seconds)
    print_rate("API, new contacts", count, created_seconds, "contacts/s")
    print_rate("API, same batches (unchanged)", count, unchanged_seconds, "contacts/s")
    print_rate("API, changed city (updated)", count, updated_seconds, "contacts/s")
    print_rate("baseline, Core executemany", count, baseline_seconds, "contacts/s")
    print_line("ratio API create / baseline", f"{created_rate / baseline_rate:.2f}")
    for label, seconds in (("unchanged", unchanged_seconds), ("updated", updated_seconds)):
        print_line(
            f"ratio API {label} / baseline", f"{per_second(count, seconds) / baseline_rate:.2f}"
        )
    print_line("target (SQLite)", verdict(created_rate, TARGET_CONTACTS_PER_SECOND, "contacts/s"))
    print_line("note", MAUTIC_NOTE)
    problems = [f for f in failures if f is not None]
    for problem in problems:
        print(f"  FAILED {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
