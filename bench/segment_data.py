"""The shop the segment-refresh benchmark runs on: contacts with demographic attributes and
tags, a year of their events, and their computed traits — generated from a seed (the same
data for the same parameters, on both databases) and, on SQLite, cached between runs.

- contacts: `attributes` hold `birthday` (ages 16-80, uniform), `gender` (f 48 %, m 48 %,
  d 4 %) and `city`; tags `sports-fan` (15 %), `newsletter` (50 %), `vip` (3 %);
- events, exactly `contacts x events-per-contact` of them, over the 365 days before
  `ANCHOR`, more of them recently (the share older than a days is 1 - (a/365)^(2/3):
  about a fifth of the year's events fall in the last 30 days). Each event picks its
  contact by an exponentially distributed activity weight (some contacts are far busier
  than others). 40 % `page_viewed` (a page), 48 % `Product Viewed` with
  `properties.category` among ten categories (half of a contact's views in its favourite
  one), 8 % `Added to Cart`, 4 % `Order Completed` with `properties.revenue`. They are
  stored oldest first, as a live system stores them, with short ascending message ids
  (random ones would make the load a random walk through the unique index);
- `contact_traits` for every contact, computed by Postillon itself
  (`TraitsService.refresh`: purchases, RFM cells, engagement).

The load goes through Postillon's bulk paths — `kit.repository.insert_rows` /
`copy_rows` for contacts and tags, `events.service.store_events` for events (COPY on
PostgreSQL, one executemany on SQLite) — with the secondary indexes of the three tables
dropped during the load and built again afterwards. PostgreSQL then gets the `VACUUM
ANALYZE` autovacuum would soon run; SQLite gets no statistics here, as Postillon never
runs ANALYZE (the benchmark removes or computes them per run: `sqlite_statistics`). The
benchmark's "now" is `ANCHOR`, on a virtual clock, so a cached database gives the same
answers on any day.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from postillon.clock import VirtualClock
from postillon.events.service import store_events
from postillon.kit import migrate
from postillon.kit.db import Database, make_engine
from postillon.kit.repository import copy_rows, insert_rows
from postillon.models import Contact, ContactTag
from postillon.runtime import Runtime
from postillon.settings import Settings

# Bump when the generated data change: it is part of the cache key.
DATA_VERSION = 1
ANCHOR = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
HISTORY_DAYS = 365
RECENCY_EXPONENT = 2 / 3  # the share of events younger than a days is (a / 365) ** this
CATEGORIES = (
    "running", "fitness", "outdoor", "cycling", "swimming", "yoga", "tennis", "football",
    "hiking", "winter",
)  # fmt: skip
# How many contacts have each category as their favourite, cumulated (running: 15 %).
CATEGORY_WEIGHTS = tuple(itertools.accumulate((15, 12, 12, 11, 10, 9, 9, 8, 8, 6)))
CITIES = ("Berlin", "Hamburg", "München", "Köln", "Frankfurt am Main", "Leipzig", "Dresden")
FIRST_NAMES = ("Anna", "Lukas", "Sophie", "Jürgen", "Marie", "Felix", "Zoë", "Paul", "Lena")
LAST_NAMES = ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner")
CONTEXTS = tuple(
    {"ip": ip, "locale": "de-DE", "library": {"name": "analytics.js", "version": "2.11.1"}}
    for ip in ("193.99.144.80", "81.2.69.160", "89.160.20.112", "185.60.216.35")
)
PRODUCTS = 5_000
CONTACTS_PER_WRITE = 10_000
EVENTS_PER_WRITE = 50_000
SOURCE = "bench"
TABLES_LOADED = ("contacts", "contact_tags", "events")


@dataclass(frozen=True)
class Shape:
    """What to generate; equal shapes give equal data."""

    contacts: int
    events_per_contact: int
    seed: int = 20260105

    @property
    def events(self) -> int:
        return self.contacts * self.events_per_contact

    @property
    def cache_name(self) -> str:
        return (
            f"segment_refresh-v{DATA_VERSION}-{self.contacts}c-{self.events_per_contact}epc"
            f"-seed{self.seed}"
        )


@dataclass
class Generated:
    """What a generation made, and how long each step took (kept beside a cached file)."""

    contacts: int = 0
    tags: int = 0
    events: int = 0
    last_event_id: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    generated_at: str = ""

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Generated:
        return cls(**json.loads(path.read_text()))


def contact_id(shape: Shape, number: int) -> uuid.UUID:
    """The id of contact `number`: UUIDv7-shaped (creation order), its random bits derived
    from the seed, so the benchmark can name a contact without reading the table."""
    millis = int(ANCHOR.timestamp() * 1000) - 500 * 86_400_000 + number
    mixed = (number * 0x9E3779B97F4A7C15 + shape.seed * 0xBF58476D1CE4E5B9) % (1 << 74)
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76
    value |= ((mixed >> 62) & 0xFFF) << 64
    value |= 0b10 << 62
    value |= mixed & ((1 << 62) - 1)
    return uuid.UUID(int=value)


@dataclass
class _People:
    """Per contact, what event generation needs: the id, the user id, the favourite
    category and the cumulated activity weights."""

    ids: list[uuid.UUID]
    favourites: bytearray
    cumulated_weights: array[float]


def bench_runtime(url: str, data_dir: Path) -> Runtime:
    """Postillon's runtime on `url`, without the worker, its clock standing at `ANCHOR`."""
    settings = Settings(
        database_url=url, data_dir=data_dir, secret_key="bench-secret", run_worker=False
    )
    return Runtime.build(settings, clock=VirtualClock(ANCHOR))


def cached_sqlite(
    shape: Shape, cache_dir: Path, data_dir: Path, *, regenerate: bool, say: Any = print
) -> tuple[str, Generated, bool]:
    """A SQLite file holding `shape`'s data in `cache_dir`, generated unless a complete
    one is there already: its URL, what the generation made, and whether it was cached."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{shape.cache_name}.db"
    summary = cache_dir / f"{shape.cache_name}.json"
    url = f"sqlite:///{path}"
    if path.exists() and summary.exists() and not regenerate:
        return url, Generated.load(summary), True
    for stale in (summary, path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    migrate_fresh(url)
    generated = generate(url, shape, data_dir, say=say)
    database = Database(url)
    try:
        checkpoint(database)
    finally:
        database.dispose()
    generated.save(summary)  # last: a file without its summary is an interrupted one
    return url, generated, False


def cached_postgres(
    server_url: str, shape: Shape, data_dir: Path, *, regenerate: bool, say: Any = print
) -> tuple[str, Generated, bool]:
    """Like `cached_sqlite`, a database on the PostgreSQL server at `server_url` named
    after `shape`, kept between runs; what the generation made is its database comment
    (written last: a database without one is an interrupted generation)."""
    name = f"postillon_bench_{shape.contacts}c_{shape.events_per_contact}epc_v{DATA_VERSION}"
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    admin = make_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            summary = connection.execute(
                text(
                    "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                    "WHERE datname = :name"
                ),
                {"name": name},
            ).scalar()
            if summary and not regenerate:
                return url, Generated(**json.loads(summary)), True
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        migrate_fresh(url)
        generated = generate(url, shape, data_dir, say=say)
        with admin.connect() as connection:
            comment = json.dumps(asdict(generated)).replace("'", "''")
            connection.execute(text(f"COMMENT ON DATABASE \"{name}\" IS '{comment}'"))
        return url, generated, False
    finally:
        admin.dispose()


def generate(url: str, shape: Shape, data_dir: Path, *, say: Any = print) -> Generated:
    """Fill the freshly migrated database at `url` with `shape`'s data."""
    generated = Generated(generated_at=datetime.now(UTC).isoformat(timespec="seconds"))
    runtime = bench_runtime(url, data_dir)
    database = runtime.database
    started = time.perf_counter()
    try:
        with database.transaction() as session:
            indexes = _drop_secondary_indexes(session)
        step = time.perf_counter()
        people = _load_contacts(database, shape, generated)
        generated.seconds["contacts and tags"] = time.perf_counter() - step
        say(f"  generated {generated.contacts:,} contacts, {generated.tags:,} tags")

        step = time.perf_counter()
        _load_events(database, shape, people, generated, say=say)
        generated.seconds["events"] = time.perf_counter() - step
        del people

        step = time.perf_counter()
        with database.transaction() as session:
            _bulk_settings(session)
            for statement in indexes:
                session.execute(text(statement))
            session.execute(text("DELETE FROM event_queue"))
        generated.seconds["indexes"] = time.perf_counter() - step
        say(f"  built {len(indexes)} secondary indexes")

        if not database.is_sqlite:
            # What autovacuum does after a load, done now: statistics, and the visibility
            # map that index-only scans need.
            step = time.perf_counter()
            with database.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                connection.exec_driver_sql("VACUUM (ANALYZE)")
            generated.seconds["VACUUM ANALYZE"] = time.perf_counter() - step

        step = time.perf_counter()
        with database.transaction() as session:
            changed = runtime.traits.refresh(session)
            session.execute(text("DELETE FROM contact_refresh_queue"))
        generated.seconds["traits (TraitsService.refresh)"] = time.perf_counter() - step
        say(f"  computed traits of {len(changed):,} contacts with TraitsService.refresh")
        if not database.is_sqlite:
            with database.engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                connection.exec_driver_sql("VACUUM (ANALYZE) contact_traits")
        generated.seconds["total"] = time.perf_counter() - started
        return generated
    finally:
        runtime.close()


def migrate_fresh(url: str) -> None:
    database = Database(url)
    try:
        migrate.upgrade(database)
    finally:
        database.dispose()


def _bulk_settings(session: Session) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL maintenance_work_mem = '512MB'"))
        session.execute(text("SET LOCAL synchronous_commit = off"))


def _drop_secondary_indexes(session: Session) -> list[str]:
    """Drop the plain (not constraint) indexes of the loaded tables; the statements that
    create them again."""
    tables = ", ".join(f"'{name}'" for name in TABLES_LOADED)
    if session.get_bind().dialect.name == "sqlite":
        query = (
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({tables})"
        )
    else:
        query = (
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            f"AND tablename IN ({tables}) AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint WHERE contype IN ('p', 'u', 'x'))"
        )
    found = [(str(name), str(sql)) for name, sql in session.execute(text(query))]
    for name, _ in found:
        session.execute(text(f'DROP INDEX "{name}"'))
    return [sql for _, sql in found]


def _load_contacts(database: Database, shape: Shape, generated: Generated) -> _People:
    rng = random.Random(shape.seed)
    created = ANCHOR - timedelta(days=HISTORY_DAYS + 30)
    today = ANCHOR.date()
    people = _People(ids=[], favourites=bytearray(), cumulated_weights=array("d"))
    total_weight = 0.0
    for start in range(0, shape.contacts, CONTACTS_PER_WRITE):
        contacts: list[dict[str, Any]] = []
        tags: list[dict[str, Any]] = []
        for number in range(start, min(start + CONTACTS_PER_WRITE, shape.contacts)):
            id_ = contact_id(shape, number)
            birthday = today - timedelta(days=rng.randrange(16 * 365, 81 * 365))
            draw = rng.random()
            gender = "f" if draw < 0.48 else "m" if draw < 0.96 else "d"
            contacts.append(
                {
                    "id": id_,
                    "external_id": f"u{number:07d}",
                    "email": f"contact.{number}@example.com",
                    "phone": None,
                    "first_name": rng.choice(FIRST_NAMES),
                    "last_name": rng.choice(LAST_NAMES),
                    "attributes": {
                        "birthday": birthday.isoformat(),
                        "gender": gender,
                        "city": rng.choice(CITIES),
                    },
                    "score": 0,
                    "lifecycle_stage": None,
                    "owner_id": None,
                    "timezone": None,
                    "locale": None,
                    "state": "identified",
                    "monitored_at": None,
                    "last_seen_at": None,
                    "last_seen": None,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            for tag, share in (("sports-fan", 0.15), ("newsletter", 0.5), ("vip", 0.03)):
                if rng.random() < share:
                    tags.append({"contact_id": id_, "tag": tag, "added_at": created})
            people.ids.append(id_)
            favourite = bisect_right(CATEGORY_WEIGHTS, rng.randrange(CATEGORY_WEIGHTS[-1]))
            people.favourites.append(favourite)
            total_weight += rng.expovariate(1.0)
            people.cumulated_weights.append(total_weight)
        with database.transaction() as session:
            write = copy_rows if session.get_bind().dialect.name == "postgresql" else insert_rows
            write(session, Contact, contacts)
            write(session, ContactTag, tags)
        generated.contacts += len(contacts)
        generated.tags += len(tags)
    return people


def _day_counts(total: int) -> Iterator[tuple[int, int]]:
    """(age in whole days, events on that day), oldest day first, summing to `total`."""
    emitted = 0
    for age in range(HISTORY_DAYS - 1, -1, -1):
        older_or_same = round(total * (1 - (age / HISTORY_DAYS) ** RECENCY_EXPONENT))
        yield age, older_or_same - emitted
        emitted = older_or_same


def _load_events(
    database: Database, shape: Shape, people: _People, generated: Generated, *, say: Any
) -> None:
    rng = random.Random(shape.seed + 1)
    numbers = range(len(people.ids))
    sequence = 0
    pending: list[dict[str, Any]] = []
    reported = time.perf_counter()

    def flush() -> None:
        with database.transaction() as session:
            ids = store_events(session, pending, now=ANCHOR)
        generated.events += len(pending)
        generated.last_event_id = max(generated.last_event_id, ids[-1])
        pending.clear()

    for age, count in _day_counts(shape.events):
        day_start = ANCHOR - timedelta(days=age + 1)
        moments = sorted(rng.random() for _ in range(count))
        picks = rng.choices(numbers, cum_weights=people.cumulated_weights, k=count)
        for fraction, number in zip(moments, picks, strict=True):
            occurred = day_start + timedelta(days=fraction)
            pending.append(_event(rng, sequence, number, people, occurred))
            sequence += 1
            if len(pending) >= EVENTS_PER_WRITE:
                flush()
                if time.perf_counter() - reported > 30:
                    reported = time.perf_counter()
                    say(f"  … {generated.events:,} of {shape.events:,} events")
    if pending:
        flush()
    say(f"  generated {generated.events:,} events")


def _event(
    rng: random.Random, sequence: int, number: int, people: _People, occurred: datetime
) -> dict[str, Any]:
    draw = rng.random()
    product = f"p{rng.randrange(PRODUCTS):04d}"
    if draw < 0.40:
        category = CATEGORIES[rng.randrange(len(CATEGORIES))]
        kind, name = "page", "page_viewed"
        properties: dict[str, Any] = {"path": f"/c/{category}", "title": category.title()}
    elif draw < 0.88:
        favourite = people.favourites[number]
        category = CATEGORIES[favourite if rng.random() < 0.5 else rng.randrange(10)]
        price = round(rng.uniform(5, 200), 2)
        kind, name = "track", "Product Viewed"
        properties = {"category": category, "product_id": product, "price": price}
    elif draw < 0.96:
        price = round(rng.uniform(5, 200), 2)
        kind, name = "track", "Added to Cart"
        properties = {"product_id": product, "price": price, "quantity": 1}
    else:
        revenue = round(rng.lognormvariate(4.0, 0.6), 2)
        kind, name = "track", "Order Completed"
        properties = {"order_id": f"o{sequence}", "revenue": revenue, "currency": "EUR"}
    return {
        "contact_id": people.ids[number],
        "anonymous_id": None,
        "user_id": f"u{number:07d}",
        "message_id": f"m{sequence:09d}",
        "type": kind,
        "name": name,
        "properties": properties,
        "context": CONTEXTS[(sequence >> 12) % len(CONTEXTS)],  # runs of one: converted once
        "integrations": None,
        "source": SOURCE,
        "occurred_at": occurred,
        "received_at": occurred + timedelta(seconds=1),
    }


def sqlite_statistics(database: Database, *, analyze: bool) -> float:
    """On SQLite, run ANALYZE (`analyze`), or remove the statistics, as a Postillon
    database has none (nothing in Postillon runs ANALYZE); the seconds it took."""
    started = time.perf_counter()
    with database.transaction() as session:
        if analyze:
            session.execute(text("ANALYZE"))
        else:
            tables = session.scalars(
                text("SELECT name FROM sqlite_master WHERE name LIKE 'sqlite_stat%'")
            ).all()
            for table in tables:
                session.execute(text(f"DELETE FROM {table}"))
    # A connection reads the statistics when it loads the schema: open new ones.
    database.engine.dispose()
    return time.perf_counter() - started


def checkpoint(database: Database) -> None:
    """On SQLite, fold the write-ahead log into the file (a cached file is then complete)."""
    if database.is_sqlite:
        connection = database.engine.raw_connection()  # outside a transaction, as it must be
        try:
            connection.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            connection.close()


def remove_run_leftovers(database: Database, last_event_id: int) -> None:
    """Take out what a benchmark run added to a cached database: segments, memberships,
    the events it stored, queued work."""
    with database.transaction() as session:
        session.execute(text("DELETE FROM segment_memberships"))
        session.execute(text("DELETE FROM segments"))
        session.execute(text("DELETE FROM events WHERE id > :last"), {"last": last_event_id})
        session.execute(text("DELETE FROM event_queue"))
        session.execute(text("DELETE FROM contact_refresh_queue"))
