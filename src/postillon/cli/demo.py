"""`postillon demo`: load the demo shop, with a progress bar and a summary."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from postillon.cli.common import cli_runtime, console, err_console
from postillon.demo.generator import DemoOptions
from postillon.demo.segments import create_demo_segments
from postillon.demo.service import DemoReport
from postillon.runtime import Runtime


def demo(
    contacts: int = typer.Option(10_000, min=1, help="how many contacts"),
    days: int = typer.Option(365, min=1, max=3650, help="how many days of history, up to now"),
    seed: int = typer.Option(1, help="another seed makes another shop"),
) -> None:
    """Load a demo shop: contacts with demographics and a year of visits, product views,
    carts, orders and emails. Does nothing if the demo data is loaded already."""
    with cli_runtime() as runtime:
        report = load_demo(runtime, DemoOptions(contacts=contacts, days=days, seed=seed))
    print_summary(report)


def load_demo(runtime: Runtime, options: DemoOptions) -> DemoReport:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("contacts, {task.fields[events]:,} events"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("loading the demo shop", total=None, events=0)

        def advance(done: int, todo: int, events: int) -> None:
            progress.update(task, completed=done, total=todo, events=events)

        report = runtime.demo.load(runtime.database, options, progress=advance)
        if report.other_demo is None:
            progress.update(task, description="computing traits and demo segments")
            with runtime.database.transaction() as session:
                runtime.traits.refresh(session)
            with runtime.database.transaction() as session:
                create_demo_segments(session, runtime.segments)
        return report


def load_on_first_start(runtime: Runtime) -> None:
    """`serve` on a database without contacts: load the demo shop first."""
    with runtime.database.transaction(read_only=True) as session:
        if runtime.demo.has_contacts(session):
            return
    console.print(
        "First start: loading the demo shop (POSTILLON_DEMO_DATA=false starts empty instead)"
    )
    print_summary(load_demo(runtime, DemoOptions(contacts=runtime.settings.demo_contacts)))


def print_summary(report: DemoReport) -> None:
    seed = report.options.seed
    if report.other_demo is not None:
        console.print(
            f"The database holds demo data already (contact {report.other_demo}): "
            f"nothing loaded for seed {seed}."
        )
        return
    if not report.loaded:
        console.print(f"The demo data (seed {seed}) is loaded already: nothing to do.")
        return
    present = f" ({report.present:,} were there already)" if report.present else ""
    console.print(
        f"Demo shop loaded (seed {seed}, {report.options.days} days up to now): "
        f"{report.contacts:,} contacts{present}, {report.events:,} events, "
        f"{report.orders:,} orders, {report.revenue:,.2f} EUR revenue "
        f"in {report.seconds:.1f} s."
    )
