"""`postillon stages`: the lifecycle pipeline."""

from __future__ import annotations

import typer
from rich.table import Table

from postillon.cli.common import cli_runtime, console
from postillon.lifecycle.schemas import PipelineOut, StageIn

app = typer.Typer(help="The lifecycle pipeline.", no_args_is_help=True)


@app.command("list")
def list_stages() -> None:
    """The stages in order, with how many contacts are in each."""
    with cli_runtime() as runtime, runtime.database.transaction(read_only=True) as session:
        _print(runtime.lifecycle.pipeline(session))


@app.command("set")
def set_stages(
    stages: list[str] = typer.Argument(
        ..., help="the whole pipeline in order, each KEY or KEY=Name (a kept key keeps its name)"
    ),
) -> None:
    """Replace the pipeline. A stage that contacts are in cannot be left out."""
    with cli_runtime() as runtime, runtime.database.transaction() as session:
        names = {s.key: s.name for s in runtime.lifecycle.pipeline(session).stages}
        given = []
        for stage in stages:
            key, _, name = stage.partition("=")
            given.append(StageIn(key=key, name=name or names.get(key.strip(), key.strip())))
        _print(runtime.lifecycle.replace_pipeline(session, given))


def _print(pipeline: PipelineOut) -> None:
    table = Table("position", "key", "name", "contacts")
    for stage in pipeline.stages:
        table.add_row(str(stage.position), stage.key, stage.name, str(stage.contacts))
    console.print(table)
