"""`postillon simulate`: a journey (or several, and rules) run by the real engine for one
contact against a virtual clock, in a throwaway database; prints the timeline."""

from __future__ import annotations

import json
import secrets
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import typer
from pydantic import ValidationError
from rich.table import Table

from postillon.automations import model as am
from postillon.automations.documents import parse_automation_text
from postillon.automations.simulation import Simulation, TimelineItem, read_events
from postillon.channels.email.recording import RecordingProvider
from postillon.cli.common import console, err_console
from postillon.clock import VirtualClock
from postillon.contacts.schemas import ContactIn
from postillon.errors import FieldProblem, InvalidInput, PostillonError
from postillon.filters.documents import load_yaml
from postillon.kit import migrate
from postillon.messages.sending import SendingService
from postillon.runtime import Runtime
from postillon.settings import Environment, Settings
from postillon.templates.schemas import TemplateIn


def simulate(
    documents: list[Path] = typer.Argument(
        ..., help="the journey (YAML or JSON), and any other journeys or rules it works with"
    ),
    contact: Path = typer.Option(..., help="the contact as JSON (the API's contact fields)"),
    events: Path | None = typer.Option(
        None, help='what the contact does, as JSON lines: {"at": "+2d", "event": …}'
    ),
    days: int = typer.Option(90, min=1, max=3660, help="how long to simulate"),
    start: str | None = typer.Option(
        None, help="when the simulation starts (ISO time; default: now, to the minute)"
    ),
    templates: Path | None = typer.Option(
        None,
        help="a folder of templates as `templates save` reads them (KEY.yaml); a template "
        "the journeys name that is not there is an error. Without it, every template is a "
        "stand-in with its key as subject",
    ),
) -> None:
    """Run journeys for one contact on a virtual clock and print what would happen when:
    every step, branch and reason, every message, every cap and quiet hour that held one.
    Nothing is sent and nothing is stored: the engine runs on a throwaway database."""
    try:
        began = _start(start)
        texts = [(path, _read(path)) for path in documents]
        trees = [parse_automation_text(text, source=str(path)) for path, text in texts]
        person = _contact(contact)
        planned = read_events(_read(events), start=began, source=str(events)) if events else []
        # In memory where the system has it: the database is thrown away, and a disk
        # would make every one of the thousands of small commits wait for it.
        shm = Path("/dev/shm")
        where = str(shm) if shm.is_dir() else None
        with tempfile.TemporaryDirectory(prefix="postillon-simulate-", dir=where) as tmp:
            items, zone = _run(Path(tmp), began, days, texts, trees, person, planned, templates)
    except PostillonError as error:
        for problem in getattr(error, "problems", None) or [FieldProblem("", error.message)]:
            where = f"{problem.location}: " if problem.location else ""
            err_console.print(f"[red]error:[/red] {where}{problem.message}", markup=True)
        raise typer.Exit(code=1) from None
    _print(items, zone, began, days)


def _run(
    tmp: Path,
    began: datetime,
    days: int,
    texts: list[tuple[Path, str]],
    trees: list[am.Automation],
    person: ContactIn,
    planned: list[Any],
    template_dir: Path | None,
) -> tuple[list[TimelineItem], ZoneInfo]:
    settings = Settings(
        env=Environment.test,
        database_url=f"sqlite:///{tmp / 'simulation.db'}",
        data_dir=tmp,
        secret_key=secrets.token_urlsafe(32),
        run_worker=False,
        smtp_rate_per_second=1_000_000.0,
        dkim_private_key_file=None,
        bounce_server_enabled=False,
    )
    clock = VirtualClock(began)
    runtime = Runtime.build(settings, clock=clock)
    runtime.sending = SendingService(
        settings,
        clock,
        runtime.links,
        renderer=runtime.templates,
        subscriptions=runtime.subscriptions,
        contacts=runtime.contacts,
        provider_factory=RecordingProvider,
    )
    try:
        migrate.upgrade(runtime.database)
        with runtime.database.transaction() as session:
            for key in sorted(_template_keys(trees)):
                template = _template(key, template_dir)
                # One missing from the folder is not saved: the journey naming it is
                # refused below with its file and line, as `journeys validate` would.
                if template is not None:
                    runtime.templates.save(session, template)
            created = runtime.contacts.create(session, person, source="simulation")
            keys = [tree.key for tree in trees if isinstance(tree, am.Journey)]
            for path, text in texts:
                runtime.automations.save(session, text, source_name=str(path), also_journeys=keys)
            for tree in trees:
                runtime.automations.publish(session, tree.key)
        simulation = Simulation(runtime, clock)
        simulation.run_until(began + timedelta(days=days), contact_id=created.id, events=planned)
        zone = ZoneInfo(created.timezone or "UTC")
        return simulation.timeline(created.id), zone
    finally:
        runtime.close()


def _template_keys(trees: list[am.Automation]) -> set[str]:
    keys: set[str] = set()
    for tree in trees:
        actions: list[am.Action] = list(tree.actions) if isinstance(tree, am.Rule) else []
        if isinstance(tree, am.Journey):
            for step in tree.steps:
                if isinstance(step, am.SendStep):
                    actions.append(step.action)
                elif isinstance(step, am.UpdateStep):
                    actions += step.actions
        keys |= {a.template for a in actions if isinstance(a, am.SendAction)}
    return keys


def _template(key: str, folder: Path | None) -> TemplateIn | None:
    """The template `key` from the folder (None if it is not there), or without a
    folder a stand-in."""
    if folder is None:
        return TemplateIn(
            key=key,
            format="html",
            subject=key,
            body=f"<p>{key}</p><p>{{{{ contact.first_name | default('') }}}}</p>",
        )
    for suffix in (".yaml", ".yml", ".json"):
        path = folder / f"{key}{suffix}"
        if path.exists():
            document = load_yaml(_read(path), source=str(path))
            if not isinstance(document, dict):
                raise InvalidInput.at(str(path), "must be a mapping of key, subject, body …")
            body_file = document.pop("body_file", None)
            if body_file is not None:
                document["body"] = _read(path.parent / str(body_file))
            document.setdefault("key", key)
            try:
                return TemplateIn.model_validate(document)
            except ValidationError as error:
                raise InvalidInput.of(
                    [
                        FieldProblem(f"{path}: {'.'.join(map(str, e['loc']))}", e["msg"])
                        for e in error.errors()
                    ]
                ) from None
    return None


def _contact(path: Path) -> ContactIn:
    try:
        document = json.loads(_read(path))
    except json.JSONDecodeError as error:
        raise InvalidInput.at(f"{path} line {error.lineno}", f"not JSON: {error.msg}") from None
    if not isinstance(document, dict):
        raise InvalidInput.at(str(path), "must be a JSON object with the contact's fields")
    # A simulated contact is subscribed unless the file says otherwise.
    document.setdefault("consent", {"email": {"status": "subscribed", "source": "simulation"}})
    try:
        return ContactIn.model_validate(document)
    except ValidationError as error:
        raise InvalidInput.of(
            [
                FieldProblem(f"{path}: {'.'.join(map(str, e['loc']))}", e["msg"])
                for e in error.errors()
            ]
        ) from None


def _start(raw: str | None) -> datetime:
    if raw is None:
        return datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput.at("--start", "must be an ISO time such as 2026-03-02T08:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _read(path: Path | None) -> str:
    assert path is not None
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput.at(str(path), f"cannot be read: {error}") from None


def _print(items: list[TimelineItem], zone: ZoneInfo, began: datetime, days: int) -> None:
    table = Table(title=f"{days} days from {began:%Y-%m-%d %H:%M} UTC", show_lines=False)
    table.add_column("day", justify="right")
    table.add_column(f"local time ({zone.key})")
    table.add_column("what")
    for item in items:
        local = item.at.astimezone(zone)
        day = (item.at - began).days
        style = {"message": "bold", "event": "cyan"}.get(item.kind, "")
        table.add_row(str(day), f"{local:%a %Y-%m-%d %H:%M}", item.text, style=style)
    console.print(table)
    sent = sum(1 for item in items if item.kind == "message" and "email sent" in item.text)
    console.print(f"{sent} email(s) sent, {len(items)} entries")
