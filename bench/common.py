"""What the benchmarks share: realistic synthetic people, fresh migrated databases (SQLite
files or databases on a PostgreSQL server), the raw-executemany baseline, and printing.

Not a benchmark itself; `python -m bench` lists the benchmarks.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import phonenumbers
from sqlalchemy import insert, text
from sqlalchemy.engine import make_url
from tests.support.postgres import private_server

from postillon.kit import migrate
from postillon.kit.db import Database, make_engine
from postillon.kit.ids import new_id
from postillon.models import Contact, ContactTag
from postillon.models.base import Base
from postillon.runtime import Runtime
from postillon.settings import Settings

AUTO_POSTGRES = "auto-postgres"
ROWS_PER_TRANSACTION = 2000  # the import's chunk size (Settings.import_batch_rows)

_FIRST_NAMES = (
    "Anna", "Lukas", "Sophie", "Jürgen", "Marie", "Felix", "Zoë", "Paul", "Lena", "Jonas",
    "Hannah", "Björn", "Mia", "Ömer", "Clara", "Max", "Émilie", "Tobias", "Leonie", "Finn",
)  # fmt: skip
_LAST_NAMES = (
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Schulz", "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Größer",
    "Neumann", "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange",
)  # fmt: skip
_CITIES = (
    "Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Stuttgart", "Düsseldorf",
    "Leipzig", "Dortmund", "Essen", "Bremen", "Dresden", "Hannover", "Nürnberg", "Münster",
)  # fmt: skip
_DOMAINS = ("example.com", "example.org", "mail.example.net", "example.de")
# German mobile prefixes whose numbers have 8 digits after the prefix.
_MOBILE_PREFIXES = ("151", "152", "157", "159", "160", "162", "170", "171", "172", "175", "176")
_TAG_SETS = (
    ("newsletter",), ("newsletter",), ("newsletter",), ("newsletter", "vip"),
    ("customer",), ("newsletter", "customer"), (),
)  # fmt: skip
_ASCII = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "é": "e", "ë": "e"})


@dataclass(frozen=True)
class Person:
    email: str
    first_name: str
    last_name: str
    phone: str
    city: str
    age: int
    tags: tuple[str, ...]


def people(count: int, *, seed: int = 20260105) -> Iterator[Person]:
    """`count` distinct people, the same ones for the same seed (a prefix for a smaller count)."""
    rng = random.Random(seed)
    for number in range(count):
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        local = f"{first}.{last}".lower().translate(_ASCII)
        yield Person(
            email=f"{local}.{number}@{rng.choice(_DOMAINS)}",
            first_name=first,
            last_name=last,
            phone=f"+49{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10**8):08d}",
            city=rng.choice(_CITIES),
            age=rng.randint(18, 85),
            tags=rng.choice(_TAG_SETS),
        )


def check_phones(sample: Sequence[Person]) -> None:
    """Fail early if the generator makes numbers that Postillon would reject."""
    for person in sample:
        if not phonenumbers.is_valid_number(phonenumbers.parse(person.phone)):
            raise SystemExit(f"bench: generated an invalid phone number {person.phone}")


@dataclass
class PreparedRows:
    """People as stored rows: `contacts` and, aligned with it, each contact's tag rows."""

    contacts: list[dict[str, Any]]
    tags: list[list[dict[str, Any]]]


def prepare_rows(persons: Sequence[Person], now: datetime) -> PreparedRows:
    """The rows the import would write for `persons`, with every column of `contacts`."""
    prepared = PreparedRows(contacts=[], tags=[])
    for person in persons:
        contact_id = new_id()
        prepared.contacts.append(
            {
                "id": contact_id,
                "external_id": None,
                "email": person.email,
                "phone": person.phone,
                "first_name": person.first_name,
                "last_name": person.last_name,
                "attributes": {"city": person.city, "age": person.age},
                "score": 0,
                "lifecycle_stage": None,
                "owner_id": None,
                "timezone": None,
                "locale": None,
                "created_at": now,
                "updated_at": now,
            }
        )
        prepared.tags.append(
            [{"contact_id": contact_id, "tag": tag, "added_at": now} for tag in person.tags]
        )
    return prepared


def baseline_insert(url: str, rows: PreparedRows, *, per_transaction: int) -> float:
    """Seconds to write `rows` with plain Core executemany, one transaction per
    `per_transaction` contacts, over Postillon's own engine settings."""
    database = Database(url)
    contacts_insert = insert(Base.metadata.tables[Contact.__tablename__])
    tags_insert = insert(Base.metadata.tables[ContactTag.__tablename__])
    try:
        started = time.perf_counter()
        for start in range(0, len(rows.contacts), per_transaction):
            end = start + per_transaction
            tag_rows = list(itertools.chain.from_iterable(rows.tags[start:end]))
            with database.engine.begin() as connection:
                connection.execute(contacts_insert, rows.contacts[start:end])
                if tag_rows:
                    connection.execute(tags_insert, tag_rows)
        return time.perf_counter() - started
    finally:
        database.dispose()


def build_runtime(database_url: str, data_dir: Path) -> Runtime:
    """Postillon's runtime as `serve` builds it, on `database_url`, without the worker."""
    settings = Settings(
        database_url=database_url, data_dir=data_dir, secret_key="bench-secret", run_worker=False
    )
    return Runtime.build(settings)


class BenchDatabases:
    """Fresh, migrated databases: files in `root` for SQLite, or new databases on the
    PostgreSQL server at `server_url` (dropped again by `close`)."""

    def __init__(self, root: Path, server_url: str | None) -> None:
        self.root = root
        self.server_url = server_url
        self._created: list[str] = []

    @property
    def backend(self) -> str:
        return "SQLite" if self.server_url is None else "PostgreSQL"

    def fresh(self, name: str) -> str:
        if self.server_url is None:
            url = f"sqlite:///{self.root / f'{name}.db'}"
        else:
            database_name = f"postillon_bench_{os.getpid()}_{name}"
            with self._admin() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database_name}"'))
                connection.execute(text(f'CREATE DATABASE "{database_name}"'))
            self._created.append(database_name)
            server = make_url(self.server_url)
            url = server.set(database=database_name).render_as_string(hide_password=False)
        database = Database(url)
        try:
            migrate.upgrade(database)
        finally:
            database.dispose()
        return url

    def close(self) -> None:
        if self.server_url is None or not self._created:
            return
        with self._admin() as connection:
            for database_name in self._created:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)'))

    @contextmanager
    def _admin(self) -> Iterator[Any]:
        assert self.server_url is not None
        engine = make_engine(self.server_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                yield connection
        finally:
            engine.dispose()


@contextmanager
def open_databases(root: Path, database_url: str | None) -> Iterator[BenchDatabases]:
    """SQLite by default; a PostgreSQL server URL; or `auto-postgres` for a throwaway server
    started from Debian's binaries (as the test suite does)."""
    if database_url == AUTO_POSTGRES:
        with private_server() as server_url, open_databases(root, server_url) as databases:
            yield databases
        return
    if database_url is not None and not database_url.startswith("postgresql"):
        raise SystemExit(f"bench: --database-url must be a postgresql:// URL or {AUTO_POSTGRES}")
    databases = BenchDatabases(root, database_url)
    try:
        yield databases
    finally:
        databases.close()


def add_database_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="a PostgreSQL server (postgresql://user@host/db) to create fresh databases on, "
        f"or {AUTO_POSTGRES} to start a throwaway one; SQLite files when left out",
    )


def per_second(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def print_heading(title: str) -> None:
    print(f"\n{title}\n{'-' * len(title)}")


def print_rate(label: str, count: int, seconds: float, unit: str) -> None:
    rate = per_second(count, seconds)
    print(f"  {label:<34} {rate:>10,.0f} {unit}   ({count:,} in {seconds:.2f} s)")


def print_line(label: str, value: str) -> None:
    print(f"  {label:<34} {value}")


def verdict(rate: float, target: float, unit: str) -> str:
    met = "met" if rate >= target else "NOT met"
    return f"≥ {target:,.0f} {unit}: {met} ({rate:,.0f})"


def ratio_verdict(ratio: float, target: float) -> str:
    met = "met" if ratio >= target else "NOT met"
    return f"≥ {target:.2f} of the baseline: {met} ({ratio:.2f})"


def time_ratio_verdict(ratio: float, target: float) -> str:
    """For a time (lower is better) over the baseline's time."""
    met = "met" if ratio <= target else "NOT met"
    return f"≤ {target:.2f} x the baseline's time: {met} ({ratio:.2f})"


def seconds_verdict(seconds: float, target: float) -> str:
    met = "met" if seconds <= target else "NOT met"
    if target < 1:
        return f"≤ {target * 1000:g} ms: {met} ({seconds * 1000:.2f} ms)"
    return f"≤ {target:g} s: {met} ({seconds:.2f} s)"
