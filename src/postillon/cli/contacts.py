"""`postillon contacts import`: CSV import with a progress bar and a report of bad rows."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TextIO

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from postillon.cli.common import cli_runtime, console, err_console
from postillon.contacts.fields import ConsentStatus
from postillon.imports.service import ImportOptions, ImportReport, RowProblem
from postillon.kit import memory

app = typer.Typer(help="Contacts.", no_args_is_help=True)
SHOWN_PROBLEMS = 20


@app.command("import")
def import_csv(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, readable=True),
    map_: list[str] = typer.Option(
        [], "--map", help="HEADER=TARGET: a contact field, skip, or attribute[:type]"
    ),
    tag: list[str] = typer.Option([], "--tag", help="a tag for every imported contact"),
    email_consent: ConsentStatus | None = typer.Option(
        None, help="record this email consent (source: import) for every row"
    ),
    phone_region: str | None = typer.Option(None, help="region for numbers without +, e.g. DE"),
    dry_run: bool = typer.Option(False, help="check and count, but store nothing"),
    run_automations: bool = typer.Option(
        False, help='run the automations for "contact created" on the contacts created'
    ),
    report: Path | None = typer.Option(None, help="write every bad row to this CSV file"),
) -> None:
    """Import contacts from a CSV file: upsert by email; bad rows are reported."""
    mapping: dict[str, str] = {}
    for item in map_:
        header, sep, target = item.partition("=")
        if not sep or not header.strip():
            err_console.print(f"[red]error:[/red] --map {item!r}: write it as HEADER=TARGET")
            raise typer.Exit(code=2)
        mapping[header.strip()] = target.strip()
    options = ImportOptions(
        mapping=mapping,
        tags=tuple(tag),
        email_consent=email_consent,
        phone_region=phone_region.upper() if phone_region else None,
        dry_run=dry_run,
        run_automations=run_automations,
    )
    try:
        report_file: TextIO | None = report.open("w", newline="") if report else None
    except OSError as exc:
        err_console.print(f"[red]error:[/red] cannot write the report {report}: {exc.strerror}")
        raise typer.Exit(code=2) from None
    report_writer = csv.writer(report_file) if report_file else None
    if report_writer:
        report_writer.writerow(["line", "column", "reason"])

    def on_problem(problem: RowProblem) -> None:
        if report_writer:
            report_writer.writerow([problem.line, problem.column, problem.reason])

    size = file.stat().st_size
    try:
        with (
            cli_runtime() as runtime,
            file.open("rb") as stream,
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                DownloadColumn(),
                TextColumn("{task.fields[rows]:,} rows"),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            ) as progress,
        ):
            task = progress.add_task(f"importing {file.name}", total=size, rows=0)
            memory.tune_for_batches()
            result = runtime.imports.run(
                runtime.database,
                stream,
                filename=file.name,
                options=options,
                on_problem=on_problem,
                progress=lambda done, rows: progress.update(task, completed=done, rows=rows),
            )
    finally:
        if report_file:
            report_file.close()
    _print_report(result, report)


def _print_report(result: ImportReport, report: Path | None) -> None:
    verb = "would be" if result.dry_run else "were"
    console.print(
        f"{result.rows:,} rows: {result.created:,} contacts {verb} created, "
        f"{result.updated:,} updated, {result.unchanged:,} unchanged, "
        f"{result.failed:,} rows rejected.{' (dry run: nothing stored)' if result.dry_run else ''}"
    )
    if result.problems:
        table = Table("line", "column", "reason", title="rejected rows")
        for problem in result.problems[:SHOWN_PROBLEMS]:
            table.add_row(str(problem.line), problem.column, problem.reason)
        console.print(table)
        if result.failed > SHOWN_PROBLEMS and report is None:
            console.print(f"… and more: use --report FILE to get all {result.failed:,}")
    if report is not None and result.problems:
        console.print(f"all rejected rows: {report}")
    console.print(f"import id: {result.import_id}")
