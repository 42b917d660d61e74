"""The segment refresh benchmark's report: figures, verdicts against the targets, and the
query plans of whatever misses one (see `bench/segment_refresh.py`)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import CompileError
from sqlalchemy.orm import Session

from bench.common import (
    print_heading,
    print_line,
    seconds_verdict,
    time_ratio_verdict,
)
from bench.segment_data import (
    ANCHOR,
    Generated,
)
from bench.segment_refresh import (
    CASES,
    STATEMENT_RUNS,
    TARGET_INCREMENTAL_MS,
    TARGET_RATIO,
    TARGET_SECONDS,
    CaseFigures,
    IncrementalPass,
    hand_written,
    parameters,
)
from postillon.filters.parsing import parse_filter
from postillon.filters.sql import select_members
from postillon.runtime import Runtime
from postillon.segments import repository as segments_repository


def print_data(
    runtime: Runtime, generated: Generated, cached: bool, cached_path: Path | None
) -> None:
    with runtime.database.transaction(read_only=True) as session:
        purchasers, champions = session.execute(
            text(
                "SELECT count(*) FILTER (WHERE rfm_cell IS NOT NULL), "
                "count(*) FILTER (WHERE rfm_cell = 'champions') FROM contact_traits"
            )
        ).one()
    print_line(
        "data",
        f"{generated.contacts:,} contacts, {generated.tags:,} tags, {generated.events:,} "
        f"events, {purchasers:,} purchasers ({champions:,} RFM champions)",
    )
    if cached_path is not None:
        size = sum(p.stat().st_size for p in cached_path.parent.glob(f"{cached_path.name}*"))
        state = "cached, generated" if cached else "generated now and cached"
        print_line("SQLite file", f"{cached_path} ({size / 2**30:.1f} GiB)")
        print_line("generation", f"{state} {generated.generated_at}")
    steps = ", ".join(
        f"{name} {seconds:,.0f} s" for name, seconds in generated.seconds.items() if name != "total"
    )
    print_line("generation time", f"{generated.seconds['total']:,.0f} s ({steps})")
    print_line("now", f"{ANCHOR.isoformat()} (a virtual clock; the data end there)")


def print_figures(figures: Sequence[CaseFigures], backend: str) -> None:
    target = TARGET_SECONDS[backend]
    for number, case_figures in enumerate(figures, start=1):
        case = case_figures.case
        print_heading(f"{number}. {case.title}: {case_figures.members:,} members")
        for label, times in (
            ("compiled query (select_members)", case_figures.compiled),
            ("hand-written SQL", case_figures.hand),
        ):
            runs_text = ", ".join(f"{t:.3f}" for t in times)
            print_line(label, f"{min(times):8.3f} s   (best of {runs_text})")
        print_line("compiled / hand-written", f"{case_figures.ratio:8.2f}")
        print_line("preview count (FilterService.count)", f"{case_figures.preview:8.3f} s")
        for label, refresh in zip(
            ("full refresh, first", "full refresh, steady state"),
            case_figures.refreshes,
            strict=True,
        ):
            print_line(
                label,
                f"{refresh.seconds:8.3f} s   ({refresh.entered:,} entered, {refresh.exited:,} "
                f"exited; commit {refresh.commit_seconds:.3f} s)",
            )
        print_line(
            "target: compiled / hand-written", time_ratio_verdict(case_figures.ratio, TARGET_RATIO)
        )
        print_line(
            f"target ({backend}): compiled query",
            seconds_verdict(min(case_figures.compiled), target),
        )
        for label, refresh in zip(("first", "steady state"), case_figures.refreshes, strict=True):
            print_line(
                f"target ({backend}): refresh, {label}", seconds_verdict(refresh.seconds, target)
            )


def print_incremental(incremental: IncrementalPass, backend: str) -> None:
    runs = incremental.runs
    print_heading(
        f"incremental refresh after one event: refresh_contacts over {len(CASES)} segments, "
        f"{len(runs)} contacts"
    )
    if incremental.title:
        print_line("when", incremental.title)
    groups = (
        ("all contacts", list(runs)),
        ("drawn at random", [r for r in runs if not r.on_the_edge]),
        ("on the edge of segment 2", [r for r in runs if r.on_the_edge]),
    )
    for label, group in groups:
        if not group:
            continue
        times = sorted(r.seconds for r in group)
        entered = sum(r.entered for r in group)
        exited = sum(r.exited for r in group)
        print_line(
            f"{label} ({len(group)})",
            f"median {statistics.median(times) * 1000:.2f} ms, "
            f"90th percentile {_percentile(times, 0.9) * 1000:.2f} ms, "
            f"slowest {times[-1] * 1000:.2f} ms; {entered} entered, {exited} exited",
        )
    commits = [r.commit_seconds for r in runs]
    print_line("commit after it", f"median {statistics.median(commits) * 1000:.2f} ms")
    for number, case in enumerate(CASES, start=1):
        built = statistics.median(r.build_seconds[case.key] for r in runs)
        ran = statistics.median(r.query_seconds[case.key] for r in runs)
        print_line(
            f"segment {number}",
            f"median {built * 1000:.2f} ms to build its statement (select_members; "
            f"refresh_contacts keeps it built), {ran * 1000:.2f} ms to run it",
        )
    median = statistics.median(r.seconds for r in runs)
    print_line(f"target ({backend}): median", seconds_verdict(median, TARGET_INCREMENTAL_MS / 1000))
    print(
        f"  its statements, timed at the driver ({STATEMENT_RUNS} of these contacts again, "
        "nothing changing):"
    )
    for entry in incremental.statements:
        sql = " ".join(entry.sql.split())
        calls = len(entry.seconds) / STATEMENT_RUNS
        median = statistics.median(entry.seconds) * 1000
        print_line(
            f"  {median:5.2f} ms median, {calls:g} a refresh",
            sql[:80] + ("…" if len(sql) > 80 else ""),
        )


def _percentile(ordered: Sequence[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def print_plans(
    runtime: Runtime,
    figures: Sequence[CaseFigures],
    incremental: IncrementalPass,
    backend: str,
    *,
    every: bool,
) -> None:
    target = TARGET_SECONDS[backend]
    dialect = runtime.database.engine.dialect
    with runtime.database.transaction(read_only=True) as session:
        catalog = runtime.filters.catalog(session)
    for number, case_figures in enumerate(figures, start=1):
        case = case_figures.case
        slow = (
            min(case_figures.compiled) > target
            or case_figures.ratio > TARGET_RATIO
            or any(refresh.seconds > target for refresh in case_figures.refreshes)
        )
        if not (slow or every):
            continue
        compiled = select_members(parse_filter(case.filter), catalog, dialect.name)
        hand = hand_written(case.sql[dialect.name], parameters(catalog.now))
        print_heading(f"plans of segment {number}, {case.title}")
        print("  compiled SQL:")
        print(_indent(sql_text(compiled, dialect), 4))
        for label, statement in (("compiled", compiled), ("hand-written", hand)):
            with runtime.database.transaction(read_only=True) as session:
                segments_repository.allow_large_set_operations(session)
                plan = query_plan(session, statement)
            print(f"  plan, {label}:")
            print(_indent("\n".join(plan), 4))
        if dialect.name == "postgresql":
            with runtime.database.transaction(read_only=True) as session:
                plan = query_plan(session, compiled, analyze=False)
            print("  plan, compiled, with the server's work_mem (as preview and count run it):")
            print(_indent("\n".join(plan), 4))

    runs, statements = incremental.runs, incremental.statements
    median = statistics.median(run.seconds for run in runs)
    if median <= TARGET_INCREMENTAL_MS / 1000 and not every:
        return
    contact = next((run.contact for run in runs if run.on_the_edge), runs[0].contact)
    print_heading(f"plans of the incremental refresh, for contact {contact}")
    for number, case in enumerate(CASES, start=1):
        node = parse_filter(case.filter)
        statement = select_members(node, catalog, dialect.name, contact_ids=[contact])
        with runtime.database.transaction(read_only=True) as session:
            plan = query_plan(session, statement)
        print(f"  segment {number}, {case.title}:")
        print(_indent(sql_text(statement, dialect), 4))
        print(_indent("\n".join(plan), 4))
    slowest = next((e for e in statements if e.sql.lstrip().upper().startswith("SELECT")), None)
    if slowest is None:
        return
    explain = "EXPLAIN QUERY PLAN" if dialect.name == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS)"
    with runtime.database.transaction(read_only=True) as session:
        rows = session.connection().exec_driver_sql(f"{explain} {slowest.sql}", slowest.parameters)
        plan = [str(row[-1] if dialect.name == "sqlite" else row[0]) for row in rows]
    print("  the slowest SELECT of refresh_contacts, with its last parameters:")
    print(_indent(slowest.sql, 4))
    print(f"    parameters: {slowest.parameters}")
    print(_indent("\n".join(plan), 4))


def _indent(block: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in block.strip("\n").splitlines())


def query_plan(session: Session, statement: Any, *, analyze: bool = True) -> list[str]:
    """The plan of `statement` (its values inline where they can be written as SQL: the
    plan a one-off run gets; otherwise bound, as Postillon runs it)."""
    connection = session.connection()
    sql, values = _runnable(statement, connection.dialect)
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", values).all()
        depth: dict[int, int] = {0: 0}
        lines = []
        for node, parent, _, detail in rows:
            depth[node] = depth.get(parent, 0) + 1
            lines.append(f"{'  ' * (depth[node] - 1)}{detail}")
        return lines
    options = "(ANALYZE, BUFFERS) " if analyze else ""
    result = connection.exec_driver_sql(f"EXPLAIN {options}{sql}", values)
    return [str(row[0]) for row in result]


def _runnable(statement: Any, dialect: Any) -> tuple[str, Any]:
    if isinstance(statement, str):
        return statement, ()
    try:
        return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True})), ()
    except CompileError:  # a value with no SQL literal form (jsonb): bind them all
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        processors = compiled._bind_processors  # each value as its column type sends it
        values = {
            name: processors[name](value) if name in processors else value
            for name, value in compiled.params.items()
        }
        if dialect.name == "sqlite":
            return str(compiled), tuple(values[name] for name in compiled.positiontup or ())
        return str(compiled), values


def sql_text(statement: Any, dialect: Any) -> str:
    """The statement as SQL with its values inline (for reading, not running)."""
    try:
        return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    except CompileError:
        return str(statement.compile(dialect=dialect))
