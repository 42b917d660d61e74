"""`postillon caps`: frequency caps per channel."""

from __future__ import annotations

import typer
from rich.table import Table

from postillon.automations.caps.schemas import FrequencyCapOut
from postillon.cli.common import cli_runtime, console

app = typer.Typer(help="Frequency caps: marketing messages per contact and day or week.")


@app.command("list")
def list_caps() -> None:
    """The channels with caps (a channel not listed has none)."""
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        _print(runtime.frequency_caps.list(session))


@app.command("set")
def set_cap(
    channel: str = typer.Argument(..., help="email, sms or push"),
    per_day: int | None = typer.Option(
        None, "--per-day", help="marketing messages per contact and local day; left out: none"
    ),
    per_week: int | None = typer.Option(
        None, "--per-week", help="per contact and local week (Monday first); left out: none"
    ),
) -> None:
    """Replace the channel's caps. A cap left out is removed; both left out: no caps."""
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        cap = runtime.frequency_caps.set(session, channel, per_day=per_day, per_week=per_week)
        _print([cap])


def _print(caps: list[FrequencyCapOut]) -> None:
    table = Table("channel", "per day", "per week")
    for cap in caps:
        table.add_row(cap.channel, _cap(cap.per_day), _cap(cap.per_week))
    console.print(table)


def _cap(value: int | None) -> str:
    return "-" if value is None else str(value)
