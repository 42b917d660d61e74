"""`postillon broadcasts`: newsletters from YAML files; schedule, send with a progress
bar, follow, cancel."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from postillon.broadcasts.progress import BroadcastState
from postillon.broadcasts.schemas import BroadcastIn, BroadcastStatus, ScheduleIn
from postillon.cli.common import cli_runtime, console, document_lines, read_document
from postillon.errors import InvalidInput
from postillon.runtime import Runtime

app = typer.Typer(help="Broadcasts: newsletters, with A/B tests.", no_args_is_help=True)

FILE_HELP = (
    "a YAML or JSON file: key, name, template (or variants and ab_test), audience "
    "(segment, topic or everyone), optionally send_at or local_send_time, timezone, "
    "rate_per_minute"
)
# How often `send` looks at the broadcast while it waits.
_POLL_SECONDS = 0.5
_FINAL = (BroadcastState.sent, BroadcastState.cancelled)


@app.command("create")
def create(path: Path = typer.Argument(..., help=FILE_HELP)) -> None:
    """Create the broadcast the file defines (a draft, or scheduled if it names a time)."""
    with cli_runtime() as runtime:
        document, text = read_document(path)
        with runtime.database.transaction() as session, document_lines(path, text):
            if not isinstance(document, dict):
                raise InvalidInput.at(str(path), "must hold a mapping with key, name, audience")
            created = runtime.broadcasts.create(session, BroadcastIn.model_validate(document))
    console.print(f"broadcast {created.key} created: {created.state}")


@app.command("list")
def list_broadcasts() -> None:
    """Broadcasts, newest first, with their state and recipients."""
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        broadcasts = runtime.broadcasts.list_broadcasts(session)
    table = Table("key", "name", "state", "recipients", "starts", "winner")
    for broadcast in broadcasts:
        starts = broadcast.start_at.isoformat(timespec="minutes") if broadcast.start_at else ""
        table.add_row(
            broadcast.key,
            broadcast.name,
            broadcast.state,
            str(broadcast.recipient_count),
            starts,
            broadcast.winner_variant or "",
        )
    console.print(table)


@app.command("schedule")
def schedule(
    key: str = typer.Argument(..., help="the broadcast's key"),
    at: datetime = typer.Option(..., help="when: an ISO time (without an offset: UTC)"),
    local: bool = typer.Option(False, help="at this wall-clock time in each recipient's time zone"),
    timezone: str | None = typer.Option(None, help="the zone of contacts without one"),
) -> None:
    """Send at a time, or (--local) at that time of day in each recipient's zone."""
    data = (
        ScheduleIn(local_send_time=at.replace(tzinfo=None), timezone=timezone)
        if local
        else ScheduleIn(send_at=at, timezone=timezone)
    )
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        scheduled = runtime.broadcasts.schedule(session, key, data)
    assert scheduled.start_at is not None
    console.print(
        f"broadcast {key} scheduled: starts {scheduled.start_at.isoformat(timespec='minutes')}"
    )


@app.command("send")
def send(
    key: str = typer.Argument(..., help="the broadcast's key"),
    wait: bool = typer.Option(True, help="show the progress until every message is out"),
) -> None:
    """Start the broadcast now. Workers send its messages; this shows how far they got."""
    with cli_runtime() as runtime:
        with runtime.database.transaction() as session:
            runtime.broadcasts.send_now(session, key)
        if not wait:
            console.print(f"broadcast {key} started")
            return
        final = _follow(runtime, key)
    _print_summary(final)


def _follow(runtime: Runtime, key: str) -> BroadcastStatus:
    """Drive the broadcast's own steps (so the total is known at once, even before a
    worker looks) and show sent/total until it is done."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"{key}: sending", total=None)
        while True:
            with runtime.database.transaction() as session:
                stepped = runtime.broadcasts.advance_key(session, key)
            with runtime.database.transaction(read_only=True) as session:
                status = runtime.broadcasts.status(session, key)
            description = f"{key}: {status.state}"
            if status.state == BroadcastState.testing and status.test_ends_at:
                description += f" (winner at {status.test_ends_at.isoformat(timespec='minutes')})"
            bar.update(
                task, description=description, total=status.recipient_count, completed=status.done
            )
            if status.state in _FINAL:
                return status
            if not stepped:
                time.sleep(_POLL_SECONDS)


def _print_summary(status: BroadcastStatus) -> None:
    counts = ", ".join(f"{count} {state}" for state, count in sorted(status.counts.items()))
    console.print(f"broadcast {status.key} {status.state}: {counts or 'no messages'}")
    if status.unknown:
        console.print(
            f"[yellow]{status.unknown} message(s) unknown:[/yellow] in flight when a worker "
            "stopped; they may or may not have gone out and are not sent again"
        )


@app.command("status")
def status(key: str = typer.Argument(..., help="the broadcast's key")) -> None:
    """State, recipients, messages by state, the A/B test's outcome."""
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        current = runtime.broadcasts.status(session, key)
    console.print(f"broadcast {current.key} ({current.name}): {current.state}")
    console.print(f"  recipients: {current.recipient_count}, done: {current.done}")
    for state, count in sorted(current.counts.items()):
        console.print(f"  {state}: {count}")
    if current.winner_variant:
        console.print(f"  winner: {current.winner_variant} {current.test_results}")
    elif current.test_ends_at:
        console.print(f"  A/B test ends {current.test_ends_at.isoformat(timespec='minutes')}")
    if current.unknown:
        console.print(f"  [yellow]unknown (in flight at a crash, not re-sent): {current.unknown}")
    if current.last_error:
        console.print(f"  [red]{current.last_error}[/red]")


@app.command("cancel")
def cancel(key: str = typer.Argument(..., help="the broadcast's key")) -> None:
    """Stop it: messages still queued are not sent (those in flight finish)."""
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        cancelled = runtime.broadcasts.cancel(session, key)
    console.print(f"broadcast {key} {cancelled.state}")
