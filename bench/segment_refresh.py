"""Segment refresh: three segments over a million contacts and ten million events, each
query compiled from the filter language timed beside the same query written by hand in
SQL for the database at hand, in the same run.

The data (`bench/segment_data.py`) are generated from a seed; on SQLite the file is
cached between runs (`--cache-dir`), on PostgreSQL generated in a fresh database each
time. The segments:

1. demographic + tag: tagged `sports-fan`, aged 20-35 by the `birthday` attribute, and
   `gender` f;
2. behaviour: viewed a product of category `running` at least 3 times in the last 30 days
   and completed no order in the last 30 days;
3. RFM champions: the computed trait `rfm_cell` is `champions`.

For each: (a) the compiled query alone (`filters.sql.select_members`, the ids fetched),
best of 3; (b) the hand-written SQL, best of 3, which must return the same ids; (c) the
first full refresh (`segments.membership.refresh_everyone`: everyone enters, with a
`segment_entered` event each) and (d) a second one in the steady state (nothing
changes), each including its commit; and (e) one preview count (`FilterService.count`,
which, unlike the refresh, leaves PostgreSQL's `work_mem` as the server has it). Queries
run as the refresh runs them (on PostgreSQL after `SET LOCAL work_mem = '256MB'`).

Then the incremental path: one new `Product Viewed` event for one contact, committed,
and the time of `membership.refresh_contacts` for that contact over all three segments;
50 runs over different contacts, half of them chosen so that the event makes them enter
segment 2; then 10 of them again with every statement timed at the driver, to show
where the time goes. On PostgreSQL this runs twice: right after the full refreshes, when
`segment_memberships` has no statistics yet, and after `ANALYZE segment_memberships`.

SQLite gets no statistics by default, as a Postillon database has none (nothing in
Postillon runs ANALYZE); `--analyze` runs ANALYZE first. PostgreSQL gets the `VACUUM
ANALYZE` autovacuum would run after the load.

Targets (the issue's, on 2 cores): a full refresh of each segment ≤ 5 s on SQLite and
≤ 3 s on PostgreSQL, the compiled query ≤ 1.5 x the hand-written one, an incremental
update after one event ≤ 5 ms (median). Query plans are printed for whatever misses a
target (all of them with `--plans`).

    ./dev bench segment_refresh [--contacts N] [--events-per-contact N]
                                [--database-url URL|auto-postgres] [--cache-dir DIR]
                                [--keep-database] [--regenerate] [--analyze] [--plans]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import TextClause, Uuid, bindparam, column, event, text
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import TextualSelect

from bench.common import (
    add_database_option,
    open_databases,
    print_heading,
    print_line,
)
from bench.segment_data import (
    SOURCE,
    Shape,
    bench_runtime,
    cached_postgres,
    cached_sqlite,
    contact_id,
    generate,
    remove_run_leftovers,
    sqlite_statistics,
)
from postillon.events.service import store_events
from postillon.filters.parsing import parse_filter
from postillon.filters.sql import Catalog, select_members
from postillon.kit.types import UTCDateTime
from postillon.runtime import Runtime
from postillon.segments import membership
from postillon.segments import repository as segments_repository
from postillon.segments.schemas import SegmentIn

TARGET_SECONDS = {"SQLite": 5.0, "PostgreSQL": 3.0}
TARGET_RATIO = 1.5
TARGET_INCREMENTAL_MS = 5.0
QUERY_RUNS = 3
INCREMENTAL_RUNS = 50
STATEMENT_RUNS = 10  # refresh_contacts again with each statement timed at the driver
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "postillon-bench-cache"


@dataclass(frozen=True)
class Case:
    """One segment: its filter and the SQL a good engineer would write for it, by dialect."""

    key: str
    title: str
    filter: dict[str, Any]
    sql: dict[str, str]


CASES = (
    Case(
        "sporty-women",
        "demographic + tag",
        {
            "all": [
                {"tag": "sports-fan"},
                {"attribute": "birthday", "op": "age_between", "value": [20, 35]},
                {"attribute": "gender", "op": "=", "value": "f"},
            ]
        },
        {
            "sqlite": """
                SELECT c.id FROM contacts AS c
                JOIN contact_tags AS t ON t.contact_id = c.id AND t.tag = :tag
                WHERE json_extract(c.attributes, '$.gender') = :gender
                  AND json_extract(c.attributes, '$.birthday') > :born_after
                  AND json_extract(c.attributes, '$.birthday') <= :born_by""",
            "postgresql": """
                SELECT c.id FROM contacts AS c
                JOIN contact_tags AS t ON t.contact_id = c.id AND t.tag = :tag
                WHERE c.attributes ->> 'gender' = :gender
                  AND c.attributes ->> 'birthday' > :born_after
                  AND c.attributes ->> 'birthday' <= :born_by""",
        },
    ),
    Case(
        "running-no-order",
        "viewed running ≥ 3 times in 30 days, no order in 30 days",
        {
            "all": [
                {
                    "performed": "Product Viewed",
                    "where": {"property": "category", "op": "=", "value": "running"},
                    "times": {"at_least": 3},
                    "within_last_days": 30,
                },
                {"never_performed": "Order Completed", "within_last_days": 30},
            ]
        },
        {
            "sqlite": """
                SELECT contact_id AS id FROM events
                WHERE name = :viewed AND occurred_at >= :since AND contact_id IS NOT NULL
                  AND json_extract(properties, '$.category') = :category
                GROUP BY contact_id HAVING count(*) >= 3
                EXCEPT
                SELECT contact_id FROM events WHERE name = :purchased AND occurred_at >= :since""",
            "postgresql": """
                SELECT contact_id AS id FROM events
                WHERE name = :viewed AND occurred_at >= :since AND contact_id IS NOT NULL
                  AND properties ->> 'category' = :category
                GROUP BY contact_id HAVING count(*) >= 3
                EXCEPT
                SELECT contact_id FROM events WHERE name = :purchased AND occurred_at >= :since""",
        },
    ),
    Case(
        "champions",
        "RFM champions",
        {"trait": "rfm_cell", "op": "=", "value": "champions"},
        {
            "sqlite": "SELECT contact_id AS id FROM contact_traits WHERE rfm_cell = :cell",
            "postgresql": "SELECT contact_id AS id FROM contact_traits WHERE rfm_cell = :cell",
        },
    ),
)

# Contacts one more running view makes members of segment 2: exactly two such views in
# the window and no order (the incremental runs use some of them).
ON_THE_EDGE = {
    dialect: sql.replace("HAVING count(*) >= 3", "HAVING count(*) = 2")
    + " ORDER BY 1 LIMIT :limit OFFSET :offset"
    for dialect, sql in CASES[1].sql.items()
}


def parameters(now: datetime) -> dict[str, Any]:
    """The values the hand-written queries are run with (those of the filters)."""
    today = now.date()
    return {
        "tag": "sports-fan",
        "gender": "f",
        # Aged 20-35 today: born after the day 36 years ago, on or before 20 years ago.
        "born_after": _years_before(today, 36).isoformat(),
        "born_by": _years_before(today, 20).isoformat(),
        "viewed": "Product Viewed",
        "purchased": "Order Completed",
        "category": "running",
        "since": now - timedelta(days=30),
        "cell": "champions",
    }


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def hand_written(sql: str, values: dict[str, Any]) -> TextualSelect:
    """`sql` with its parameters bound, returning ids as `select_members` does."""
    clause: TextClause = text(sql)
    for name, value in values.items():
        if f":{name}" in sql:
            kind = UTCDateTime() if isinstance(value, datetime) else None
            clause = clause.bindparams(bindparam(name, value, type_=kind))
    return clause.columns(column("id", Uuid()))


@dataclass
class Refresh:
    seconds: float
    commit_seconds: float
    entered: int
    exited: int


@dataclass
class CaseFigures:
    case: Case
    members: int = 0
    compiled: list[float] = field(default_factory=list)
    hand: list[float] = field(default_factory=list)
    refreshes: list[Refresh] = field(default_factory=list)
    preview: float = 0.0  # FilterService.count, as a preview counts (no work_mem raised)

    @property
    def ratio(self) -> float:
        return min(self.compiled) / min(self.hand)


@dataclass
class IncrementalRun:
    contact: uuid.UUID
    on_the_edge: bool
    seconds: float
    commit_seconds: float
    entered: int
    exited: int
    # Per segment key, after the refresh: building the statement for this one contact
    # (`select_members`), and running it.
    build_seconds: dict[str, float] = field(default_factory=dict)
    query_seconds: dict[str, float] = field(default_factory=dict)


def fetch_ids(session: Session, statement: Any) -> tuple[float, list[uuid.UUID]]:
    """Seconds to run `statement` and fetch its ids, as the refresh runs it."""
    segments_repository.allow_large_set_operations(session)
    started = time.perf_counter()
    ids = list(session.scalars(statement))
    return time.perf_counter() - started, ids


def measure_queries(runtime: Runtime, case: Case, catalog: Catalog) -> CaseFigures:
    """Best of `QUERY_RUNS` of each, alternating; they must agree on the ids."""
    dialect = runtime.database.engine.dialect.name
    compiled = select_members(parse_filter(case.filter), catalog, dialect)
    hand = hand_written(case.sql[dialect], parameters(catalog.now))
    figures = CaseFigures(case)
    for _ in range(QUERY_RUNS):
        with runtime.database.transaction(read_only=True) as session:
            seconds, compiled_ids = fetch_ids(session, compiled)
        figures.compiled.append(seconds)
        with runtime.database.transaction(read_only=True) as session:
            seconds, hand_ids = fetch_ids(session, hand)
        figures.hand.append(seconds)
    if len(set(compiled_ids)) != len(compiled_ids) or set(compiled_ids) != set(hand_ids):
        raise SystemExit(
            f"bench: segment {case.key}: the compiled query found {len(compiled_ids):,} ids "
            f"({len(set(compiled_ids)):,} distinct), the hand-written one {len(hand_ids):,}; "
            f"{len(set(compiled_ids) - set(hand_ids)):,} only in the first, "
            f"{len(set(hand_ids) - set(compiled_ids)):,} only in the second"
        )
    figures.members = len(compiled_ids)
    with runtime.database.transaction(read_only=True) as session:
        started = time.perf_counter()
        runtime.filters.count(session, parse_filter(case.filter), catalog=catalog)
        figures.preview = time.perf_counter() - started
    return figures


def create_segments(runtime: Runtime) -> None:
    with runtime.database.transaction() as session:
        for case in CASES:
            segment = SegmentIn(key=case.key, name=case.title, filter=case.filter)
            runtime.segments.create(session, segment, refresh=False)


def full_refresh(runtime: Runtime, key: str) -> Refresh:
    """A full refresh of one segment through `refresh_everyone`, and its commit."""
    with runtime.database.transaction() as session:
        segment = segments_repository.by_key(session, key, lock=True)
        assert segment is not None
        [compiled] = membership.in_dependency_order([segment])
        catalog = runtime.filters.catalog(session)
        started = time.perf_counter()
        changes = membership.refresh_everyone(session, compiled, catalog, runtime.clock.now())
        session.flush()
        refreshed = time.perf_counter()
    committed = time.perf_counter()
    return Refresh(
        committed - started, committed - refreshed, len(changes.entered), len(changes.exited)
    )


@dataclass
class IncrementalPass:
    title: str
    runs: list[IncrementalRun]
    statements: list[StatementTimes]


def incremental_pass(runtime: Runtime, shape: Shape, number: int, title: str) -> IncrementalPass:
    """`INCREMENTAL_RUNS` incremental refreshes, then some again with each statement
    timed; each pass takes other contacts."""
    runs = incremental_runs(runtime, shape, number)
    statements = statement_times(runtime, [run.contact for run in runs[:STATEMENT_RUNS]])
    return IncrementalPass(title, runs, statements)


def incremental_runs(runtime: Runtime, shape: Shape, number: int) -> list[IncrementalRun]:
    """One new event, committed, then `refresh_contacts` for its contact over every
    segment; for contacts on the edge of segment 2 and for contacts drawn at random."""
    dialect = runtime.database.engine.dialect.name
    now = runtime.clock.now()
    half = INCREMENTAL_RUNS // 2
    values = {**parameters(now), "limit": half, "offset": number * half}
    edge_query = hand_written(ON_THE_EDGE[dialect], values)
    with runtime.database.transaction(read_only=True) as session:
        edge = list(session.scalars(edge_query))
        ordered = membership.in_dependency_order(segments_repository.all_segments(session))
        catalog = runtime.filters.catalog(session)
    rng = random.Random(shape.seed + 2 + number)
    edge_set = set(edge)
    drawn = [contact_id(shape, n) for n in rng.sample(range(shape.contacts), INCREMENTAL_RUNS)]
    drawn = [id_ for id_ in drawn if id_ not in edge_set][: INCREMENTAL_RUNS - len(edge)]
    chosen = [(id_, True) for id_ in edge] + [(id_, False) for id_ in drawn]
    rng.shuffle(chosen)
    runs = []
    for id_, on_the_edge in chosen:
        with runtime.database.transaction() as session:
            store_events(session, [_viewed_running(id_, now)], now=now)
        with runtime.database.transaction() as session:
            started = time.perf_counter()
            changes = membership.refresh_contacts(session, ordered, [id_], catalog, now)
            session.flush()
            refreshed = time.perf_counter()
        committed = time.perf_counter()
        run = IncrementalRun(
            id_,
            on_the_edge,
            refreshed - started,
            committed - refreshed,
            sum(len(c.entered) for c in changes.values()),
            sum(len(c.exited) for c in changes.values()),
        )
        with runtime.database.transaction(read_only=True) as session:
            for compiled in ordered:
                started = time.perf_counter()
                statement = select_members(compiled.filter, catalog, dialect, contact_ids=[id_])
                built = time.perf_counter()
                list(session.scalars(statement))
                run.build_seconds[compiled.segment.key] = built - started
                run.query_seconds[compiled.segment.key] = time.perf_counter() - built
        runs.append(run)
    return runs


@dataclass
class StatementTimes:
    """What one kind of statement cost inside `refresh_contacts`, as the app ran it."""

    sql: str
    seconds: list[float] = field(default_factory=list)
    parameters: Any = None


def statement_times(runtime: Runtime, contacts: Sequence[uuid.UUID]) -> list[StatementTimes]:
    """`refresh_contacts` again for `contacts` (nothing changes any more), each database
    call timed at the driver; the statements, slowest first."""
    engine = runtime.database.engine
    now = runtime.clock.now()
    found: dict[str, StatementTimes] = {}
    started: list[float] = []

    def before(*args: Any) -> None:
        started.append(time.perf_counter())

    def after(_c: Any, _cursor: Any, sql: str, parameters: Any, *rest: Any) -> None:
        entry = found.setdefault(sql, StatementTimes(sql))
        entry.seconds.append(time.perf_counter() - started.pop())
        entry.parameters = parameters

    with runtime.database.transaction(read_only=True) as session:
        ordered = membership.in_dependency_order(segments_repository.all_segments(session))
        catalog = runtime.filters.catalog(session)
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        for id_ in contacts:
            with runtime.database.transaction() as session:
                membership.refresh_contacts(session, ordered, [id_], catalog, now)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    return sorted(found.values(), key=lambda e: -statistics.median(e.seconds))


def _viewed_running(contact: uuid.UUID, now: datetime) -> dict[str, Any]:
    moment = now - timedelta(minutes=1)
    return {
        "contact_id": contact,
        "anonymous_id": None,
        "user_id": None,
        "message_id": f"incremental-{uuid.uuid4().hex}",
        "type": "track",
        "name": "Product Viewed",
        "properties": {"category": "running", "product_id": "p0001", "price": 59.9},
        "context": {},
        "integrations": None,
        "source": SOURCE,
        "occurred_at": moment,
        "received_at": moment,
    }


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev bench segment_refresh",
        description="Segment full and incremental refresh against hand-written SQL.",
    )
    parser.add_argument("--contacts", type=int, default=1_000_000, help="contacts to generate")
    parser.add_argument(
        "--events-per-contact", type=int, default=10, help="events to generate per contact"
    )
    add_database_option(parser)
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where generated SQLite files are kept between runs (default {DEFAULT_CACHE})",
    )
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="on a PostgreSQL server given by URL, keep the generated database between runs "
        "as the SQLite file is (named after the shape; --regenerate makes it again)",
    )
    parser.add_argument(
        "--regenerate", action="store_true", help="generate the data even if cached"
    )
    parser.add_argument(
        "--analyze",
        action="store_true",
        help="on SQLite, run ANALYZE first (Postillon never does; without it the run has "
        "no statistics, like a Postillon database)",
    )
    parser.add_argument(
        "--plans", action="store_true", help="print every query plan, not only those over target"
    )
    args = parser.parse_args(argv)
    if args.keep_database and not (args.database_url or "").startswith("postgresql"):
        parser.error("--keep-database needs --database-url with a PostgreSQL server's URL")
    if args.contacts < 1000 or args.events_per_contact < 1:
        parser.error("--contacts must be at least 1000 and --events-per-contact at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from bench.segment_report import print_data, print_figures, print_incremental, print_plans

    args = parse_arguments(argv)
    shape = Shape(args.contacts, args.events_per_contact)
    with (
        tempfile.TemporaryDirectory(prefix="postillon-bench-") as tmp,
        open_databases(Path(tmp), args.database_url) as databases,
    ):
        backend = databases.backend
        print_heading(
            f"segment refresh: {shape.contacts:,} contacts, {shape.events:,} events, on {backend}"
        )
        data_dir = Path(tmp) / "data"
        cached_path: Path | None = None
        if databases.server_url is None:
            url, generated, cached = cached_sqlite(
                shape, args.cache_dir, data_dir, regenerate=args.regenerate, say=_say
            )
            cached_path = Path(url.removeprefix("sqlite:///"))
        elif args.keep_database:
            url, generated, cached = cached_postgres(
                databases.server_url, shape, data_dir, regenerate=args.regenerate, say=_say
            )
            print_line("database", f"{url} (kept between runs)")
        else:
            url, cached = databases.fresh("segments"), False
            generated = generate(url, shape, data_dir, say=_say)
        runtime = bench_runtime(url, data_dir)
        try:
            if cached:  # a run that was interrupted may have left its rows
                remove_run_leftovers(runtime.database, generated.last_event_id)
            print_data(runtime, generated, cached, cached_path)
            if runtime.database.is_sqlite:
                seconds = sqlite_statistics(runtime.database, analyze=args.analyze)
                print_line(
                    "statistics",
                    f"ANALYZE run ({seconds:.0f} s)"
                    if args.analyze
                    else "none, as in a Postillon database (--analyze runs ANALYZE first)",
                )
            figures, passes = run_cases(runtime, shape)
            print_figures(figures, backend)
            for incremental in passes:
                print_incremental(incremental, backend)
            print_plans(runtime, figures, passes[-1], backend, every=args.plans)
        finally:
            if cached_path is not None or args.keep_database:
                remove_run_leftovers(runtime.database, generated.last_event_id)
            runtime.close()
    return 0


def _say(message: str) -> None:
    print(message, flush=True)


def run_cases(runtime: Runtime, shape: Shape) -> tuple[list[CaseFigures], list[IncrementalPass]]:
    with runtime.database.transaction(read_only=True) as session:
        catalog = runtime.filters.catalog(session)
    figures = [measure_queries(runtime, case, catalog) for case in CASES]
    create_segments(runtime)
    for case_figures in figures:
        for _ in ("first", "steady state"):
            case_figures.refreshes.append(full_refresh(runtime, case_figures.case.key))
        first = case_figures.refreshes[0]
        if first.entered != case_figures.members:
            raise SystemExit(
                f"bench: segment {case_figures.case.key}: {first.entered:,} entered on the "
                f"first refresh, but {case_figures.members:,} match"
            )
    if runtime.database.is_sqlite:
        return figures, [incremental_pass(runtime, shape, 0, "")]
    fresh = incremental_pass(
        runtime, shape, 0, "right after the full refreshes (segment_memberships not analyzed)"
    )
    with runtime.database.engine.connect().execution_options(
        isolation_level="AUTOCOMMIT"
    ) as connection:
        connection.exec_driver_sql("ANALYZE segment_memberships")
    analyzed = incremental_pass(
        runtime, shape, 1, "after ANALYZE segment_memberships (as autovacuum soon runs it)"
    )
    return figures, [fresh, analyzed]


if __name__ == "__main__":
    raise SystemExit(main())
