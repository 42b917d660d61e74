"""`postillon`: run the server or the worker, migrate, manage keys, users and contacts,
load the demo shop."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import threading

import typer
import uvicorn

from postillon.auth.service import Scope
from postillon.bounces.server import bounce_server
from postillon.cli import (
    automations,
    broadcasts,
    caps,
    contacts,
    demo,
    keys,
    lifecycle,
    rules,
    scoring,
    segments,
    simulate,
    templates,
    traits,
    users,
    webhooks,
)
from postillon.cli.common import cli_runtime, configure_logging, console
from postillon.kit import memory, migrate
from postillon.web.app import create_app
from postillon.worker.runner import Worker

app = typer.Typer(
    name="postillon",
    help="Postillon: self-hostable marketing automation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys.app, name="keys")
app.add_typer(users.app, name="users")
app.add_typer(contacts.app, name="contacts")
app.add_typer(lifecycle.app, name="stages")
app.add_typer(traits.app, name="traits")
app.add_typer(segments.app, name="segments")
app.command("demo")(demo.demo)
app.add_typer(scoring.app, name="scoring")
app.add_typer(templates.app, name="templates")
app.add_typer(broadcasts.app, name="broadcasts")
app.add_typer(automations.journeys_app, name="journeys")
automations.rules_app.command("run")(rules.run)
app.add_typer(automations.rules_app, name="rules")
app.command("explain")(automations.explain)
app.command("simulate")(simulate.simulate)
app.add_typer(caps.app, name="caps")
app.add_typer(webhooks.app, name="webhooks")


@app.command()
def serve(
    host: str = typer.Option(None, help="address to listen on [default: 127.0.0.1]"),
    port: int = typer.Option(None, help="port to listen on [default: 8000]"),
    worker: bool = typer.Option(True, help="run the worker in this process too"),
    processes: int = typer.Option(
        1,
        min=1,
        help="web processes sharing the port, to use more than one core; with more than "
        "one, the worker runs in a process of its own",
    ),
) -> None:
    """Migrate the database and run the web app (and, by default, the worker)."""
    configure_logging()
    with cli_runtime(require_schema=False) as runtime:
        migrate.upgrade(runtime.database)
        with runtime.database.transaction() as session:
            if not runtime.api_keys.has_admin_key(session):
                _, secret = runtime.api_keys.create(session, scope=Scope.admin, name="first start")
                console.print(
                    "First start: an admin API key was created. It is shown only now; "
                    "send it as 'Authorization: Bearer KEY':"
                )
                console.print(secret)
        if runtime.settings.loads_demo_data:
            demo.load_on_first_start(runtime)
        settings = runtime.settings
        if processes == 1:
            config = uvicorn.Config(
                create_app(runtime, run_worker=worker),
                host=host or settings.host,
                port=port or settings.port,
                log_level="info",
                lifespan="on",
            )
            memory.tune_for_batches()
            console.print(f"Postillon on http://{config.host}:{config.port}  (Ctrl-C stops it)")
            uvicorn.Server(config).run()
            return
    # Each web process builds its own runtime; this one's is closed by now.
    _serve_processes(host or settings.host, port or settings.port, processes, with_worker=worker)


def _serve_processes(host: str, port: int, processes: int, *, with_worker: bool) -> None:
    """`processes` uvicorn processes on one socket (`web/served.py`), and the worker as
    `postillon worker` beside them; stopping uvicorn (Ctrl-C, SIGTERM) stops the worker."""
    worker = (
        subprocess.Popen([sys.executable, "-m", "postillon", "worker", "--name", "serve"])
        if with_worker
        else None
    )
    try:
        console.print(
            f"Postillon on http://{host}:{port} in {processes} processes  (Ctrl-C stops it)"
        )
        uvicorn.run(
            "postillon.web.served:create_served_app",
            factory=True,
            host=host,
            port=port,
            workers=processes,
            log_level="info",
            lifespan="on",
        )
    finally:
        if worker is not None:
            worker.terminate()
            try:
                worker.wait(timeout=60)
            except subprocess.TimeoutExpired:
                worker.kill()


@app.command("worker")
def run_worker(
    name: str = typer.Option("worker", help="a name for this worker in the logs"),
) -> None:
    """Run a worker without the web app (scale-out: any number, on any machine)."""
    configure_logging()
    with cli_runtime() as runtime:
        instance = Worker(runtime, name=name)
        bounces = bounce_server(runtime) if runtime.settings.bounce_server_enabled else None
        memory.tune_for_batches()

        async def main() -> None:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, instance.stop)
            await instance.run_forever()

        if bounces is not None:
            bounces.start()
        try:
            asyncio.run(main())
        finally:
            if bounces is not None:
                bounces.stop()


@app.command("bounce-server")
def run_bounce_server(
    host: str = typer.Option(None, help="address to listen on [default: 127.0.0.1]"),
    port: int = typer.Option(None, help="port to listen on [default: 2525]"),
) -> None:
    """Receive bounces and complaint reports by SMTP, in the foreground (Ctrl-C stops)."""
    configure_logging()
    with cli_runtime() as runtime:
        server = bounce_server(runtime, host=host, port=port)
        stopped = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stopped.set())
        server.start()
        console.print(
            f"bounce server on {server.hostname}:{server.port} for "
            f"bounce+…@{runtime.settings.bounce_domain}  (Ctrl-C stops it)"
        )
        stopped.wait()
        server.stop()


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Argument("head")) -> None:
    """Bring the database schema up to date."""
    with cli_runtime(require_schema=False) as runtime:
        migrate.upgrade(runtime.database, revision)
        console.print(f"schema at {migrate.current_revision(runtime.database)}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database."""
    with cli_runtime(require_schema=False) as runtime:
        current = migrate.current_revision(runtime.database)
        head = migrate.head_revision(runtime.database)
        console.print(f"{current or 'empty'} (latest: {head})")
