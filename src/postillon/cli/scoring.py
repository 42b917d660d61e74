"""`postillon scoring`: score models and scoring rules."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from postillon.cli.common import cli_runtime, console
from postillon.errors import InvalidInput
from postillon.filters.parsing import load_yaml
from postillon.scoring.schemas import rule_from_document

app = typer.Typer(help="Lead scoring: score models and rules.", no_args_is_help=True)
models_app = typer.Typer(help="Score models (main and named ones).", no_args_is_help=True)
rules_app = typer.Typer(help="Scoring rules.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(rules_app, name="rules")


@models_app.command("list")
def list_models() -> None:
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        table = Table("key", "name", "decay", "thresholds")
        for model in runtime.scoring.list_models(session):
            decay = (
                f"-{model.decay_percent}% after {model.decay_after_days} days"
                if model.decay_percent is not None
                else ""
            )
            table.add_row(model.key, model.name, decay, ", ".join(str(t) for t in model.thresholds))
        console.print(table)


@rules_app.command("list")
def list_rules() -> None:
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        table = Table("id", "name", "model", "event", "points", "frequency", "daily limit", "on")
        for rule in runtime.scoring.list_rules(session):
            table.add_row(
                str(rule.id),
                rule.name,
                rule.model,
                rule.event,
                f"{rule.points:+d}",
                rule.frequency,
                "" if rule.daily_limit is None else str(rule.daily_limit),
                "yes" if rule.enabled else "no",
            )
        console.print(table)


@rules_app.command("create")
def create_rule(
    file: Path = typer.Option(..., "--file", help="the rule as YAML (or JSON)", exists=True),
) -> None:
    """Create a rule from a file: name, model, event, where, points, frequency, daily_limit."""
    with cli_runtime() as runtime:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidInput.at(str(file), f"cannot be read ({error})") from None
        data = rule_from_document(load_yaml(text, source=str(file)))
        with runtime.database.transaction() as session:
            rule = runtime.scoring.create_rule(session, data)
    console.print(f"created rule {rule.name!r} ({rule.id}): {rule.event} → {rule.points:+d}")
