"""CSV contact import throughput, in rows per second, against a raw-executemany baseline.

Writes a realistic CSV (email, names, German mobile numbers, city, `age:number`, tags) to
a temporary directory and imports it through the real path — `Runtime.build`, a freshly
migrated database, `runtime.imports.run` — twice: first every row creates a contact, then
the same file again, where every row must come back unchanged. The baseline, measured in
the same run, writes the same rows as already-parsed dicts with SQLAlchemy Core
executemany (contacts and contact_tags, one transaction per 2,000 rows) into another
fresh database of the same schema. Peak memory of an import is measured in a child
process for two file sizes, to show that it does not grow with the file. The garbage
collector is tuned as `postillon contacts import` tunes it (`kit.memory`).

    ./dev bench contact_import [--rows N] [--database-url URL|auto-postgres] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import json
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from bench.common import (
    ROWS_PER_TRANSACTION,
    BenchDatabases,
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
from postillon.imports.service import ImportOptions, ImportReport
from postillon.kit import memory
from postillon.runtime import Runtime

TARGET_ROWS_PER_SECOND = 20_000  # on SQLite
CSV_HEADER = ("email", "first_name", "last_name", "phone", "city", "age:number", "tags")
REPO_ROOT = Path(__file__).resolve().parent.parent


def write_csv(path: Path, persons: Iterable[Person]) -> int:
    """Stream `persons` into a UTF-8 CSV file; returns the number of data rows."""
    count = 0
    with path.open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(CSV_HEADER)
        for person in persons:
            writer.writerow(
                (
                    person.email,
                    person.first_name,
                    person.last_name,
                    person.phone,
                    person.city,
                    person.age,
                    ",".join(person.tags),
                )
            )
            count += 1
    return count


def timed_import(
    runtime: Runtime, csv_path: Path, profile: cProfile.Profile | None = None
) -> tuple[ImportReport, float]:
    with csv_path.open("rb") as stream:
        started = time.perf_counter()
        if profile is not None:
            profile.enable()
        report = runtime.imports.run(
            runtime.database, stream, filename=csv_path.name, options=ImportOptions()
        )
        if profile is not None:
            profile.disable()
        return report, time.perf_counter() - started


def describe_failure(report: ImportReport, expected: str) -> str:
    problems = "; ".join(f"line {p.line} {p.column}: {p.reason}" for p in report.problems[:5])
    return (
        f"expected {expected}, got created={report.created} updated={report.updated} "
        f"unchanged={report.unchanged} failed={report.failed}. {problems}"
    )


def peak_rss_kib() -> int:
    """This process's peak resident memory. Linux's VmHWM, because ru_maxrss of a child
    starts at the RSS its parent had when it forked (a parent holding the baseline's rows)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(status.split("VmHWM:")[1].split()[0])


def memory_probe(database_url: str, csv_path: Path, data_dir: Path) -> None:
    """In a child process: import `csv_path`, print peak RSS before and after as JSON."""
    runtime = build_runtime(database_url, data_dir)
    memory.tune_for_batches()
    before_kib = peak_rss_kib()
    report, _ = timed_import(runtime, csv_path)
    peak_kib = peak_rss_kib()
    runtime.close()
    print(json.dumps({"rows": report.rows, "before_kib": before_kib, "peak_kib": peak_kib}))


def measure_memory(database_url: str, csv_path: Path, data_dir: Path) -> dict[str, int]:
    command = [
        sys.executable, "-m", "bench.contact_import", "--memory-probe", str(csv_path),
        "--probe-database-url", database_url, "--probe-data-dir", str(data_dir),
    ]  # fmt: skip
    finished = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"bench: the memory probe failed:\n{finished.stderr}")
    result: dict[str, int] = json.loads(finished.stdout.strip().splitlines()[-1])
    return result


def print_memory(databases: BenchDatabases, root: Path, csv_path: Path, rows: int) -> None:
    """Peak memory of importing a tenth of the file and the whole file, each in a child."""
    small_rows = max(rows // 10, 1)
    small_csv = root / "contacts-small.csv"
    write_csv(small_csv, people(small_rows))
    for count, path in ((small_rows, small_csv), (rows, csv_path)):
        probe = measure_memory(databases.fresh(f"memory_{count}"), path, root / "data")
        growth_mib = (probe["peak_kib"] - probe["before_kib"]) / 1024
        print_line(
            f"peak RSS, import of {count:,} rows",
            f"{probe['peak_kib'] / 1024:.0f} MiB (+{growth_mib:.0f} MiB over the "
            f"{probe['before_kib'] / 1024:.0f} MiB before the import)",
        )
    print_line(
        "note",
        "the growth includes SQLite's page cache, up to 64 MiB per connection (kit/db.py), "
        "which fills as the database grows; it does not grow further with the file",
    )


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="./dev bench contact_import", description="CSV import rows/s against a baseline."
    )
    parser.add_argument("--rows", type=int, default=200_000, help="rows in the CSV file")
    add_database_option(parser)
    parser.add_argument("--profile", action="store_true", help="cProfile both imports")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory probes")
    parser.add_argument("--memory-probe", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--probe-database-url", help=argparse.SUPPRESS)
    parser.add_argument("--probe-data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error("--rows must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    if args.memory_probe is not None:
        memory_probe(args.probe_database_url, args.memory_probe, args.probe_data_dir)
        return 0
    with (
        tempfile.TemporaryDirectory(prefix="postillon-bench-") as tmp,
        open_databases(Path(tmp), args.database_url) as databases,
    ):
        root = Path(tmp)
        print_heading(f"contact import: {args.rows:,} CSV rows on {databases.backend}")
        check_phones(list(people(min(args.rows, 1000))))
        csv_path = root / "contacts.csv"
        write_csv(csv_path, people(args.rows))
        print_line("CSV file", f"{csv_path.stat().st_size / 1e6:.1f} MB, columns {CSV_HEADER}")

        runtime = build_runtime(databases.fresh("import"), root / "data")
        memory.tune_for_batches()  # as `postillon contacts import` does once it is set up
        profiles = [cProfile.Profile(), cProfile.Profile()] if args.profile else [None, None]
        try:
            first, first_seconds = timed_import(runtime, csv_path, profiles[0])
            second, second_seconds = timed_import(runtime, csv_path, profiles[1])
        finally:
            runtime.close()
        failures = []
        if first.created != args.rows or first.failed:
            failures.append("first import: " + describe_failure(first, f"{args.rows} created"))
        if second.unchanged != args.rows:
            failures.append("re-import: " + describe_failure(second, f"{args.rows} unchanged"))

        rows = prepare_rows(list(people(args.rows)), datetime.now(UTC))
        baseline_seconds = baseline_insert(
            databases.fresh("baseline"), rows, per_transaction=ROWS_PER_TRANSACTION
        )
        del rows

        import_rate = per_second(args.rows, first_seconds)
        baseline_rate = per_second(args.rows, baseline_seconds)
        print_rate("import, new contacts", args.rows, first_seconds, "rows/s")
        print_rate("re-import, all unchanged", args.rows, second_seconds, "rows/s")
        print_rate("baseline, Core executemany", args.rows, baseline_seconds, "rows/s")
        print_line("ratio import / baseline", f"{import_rate / baseline_rate:.2f}")
        print_line(
            "ratio re-import / baseline",
            f"{per_second(args.rows, second_seconds) / baseline_rate:.2f}",
        )
        print_line("target (SQLite)", verdict(import_rate, TARGET_ROWS_PER_SECOND, "rows/s"))

        if args.profile:
            print_line("note", "the imports ran under cProfile, which slows them down")
        if not args.no_memory:
            print_memory(databases, root, csv_path, args.rows)

        for title, profile in zip(("import", "re-import"), profiles, strict=True):
            if profile is not None:
                print_heading(f"cProfile of the {title}, top 40 by cumulative time")
                stats = pstats.Stats(profile, stream=sys.stdout).strip_dirs()
                stats.sort_stats("cumulative").print_stats(40)
        for failure in failures:
            print(f"  FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
