"""Fixtures: every database test runs on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from postillon.auth.service import Scope
from postillon.clock import VirtualClock
from postillon.runtime import Runtime
from postillon.settings import Environment, Settings
from postillon.web.app import create_app
from tests.support.databases import PostgresDatabases, SqliteDatabases
from tests.support.postgres import private_server
from tests.support.server import LiveServer
from tests.support.smtp import SmtpSink

BACKENDS = ("sqlite", "postgresql")
TEST_SECRET = "test-secret-key-for-postillon-tests"


@pytest.fixture(scope="session")
def sqlite_databases(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    return SqliteDatabases(tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="session")
def postgresql_databases() -> Iterator[PostgresDatabases]:
    with private_server() as server_url:
        databases = PostgresDatabases(server_url)
        yield databases
        databases.close()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database of each backend in turn."""
    databases: SqliteDatabases | PostgresDatabases = request.getfixturevalue(
        f"{request.param}_databases"
    )
    url = databases.fresh()
    yield url
    databases.drop(url)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        env=Environment.test,
        database_url=database_url,
        data_dir=tmp_path / "data",
        secret_key=TEST_SECRET,
        run_worker=False,
    )


@pytest.fixture
def runtime(settings: Settings, clock: VirtualClock) -> Iterator[Runtime]:
    built = Runtime.build(settings, clock=clock)
    yield built
    built.close()


@pytest.fixture
def session(runtime: Runtime) -> Iterator[Session]:
    """A transaction for domain tests, committed at the end like a request's."""
    with runtime.database.transaction() as opened:
        yield opened


class _ServerHolder:
    server: LiveServer | None = None


@pytest.fixture(scope="session")
def _live_server() -> Iterator[_ServerHolder]:
    holder = _ServerHolder()
    yield holder
    if holder.server is not None:
        holder.server.stop()


@pytest.fixture
def server_url(_live_server: _ServerHolder, runtime: Runtime) -> str:
    """A real HTTP server on loopback, serving this test's runtime."""
    if _live_server.server is None:
        _live_server.server = LiveServer(create_app(runtime, run_worker=False)).start()
    _live_server.server.app.state.runtime = runtime
    return _live_server.server.url


@pytest.fixture
def admin_key(runtime: Runtime) -> str:
    with runtime.database.transaction() as opened:
        _, secret = runtime.api_keys.create(opened, scope=Scope.admin, name="tests")
    return secret


@pytest.fixture
def write_key(runtime: Runtime) -> str:
    with runtime.database.transaction() as opened:
        _, secret = runtime.api_keys.create(opened, scope=Scope.write, name="tracking tests")
    return secret


@pytest.fixture
def tracker(server_url: str, write_key: str) -> Iterator[httpx.Client]:
    """An HTTP client for the tracking API, authenticated as Segment's libraries do."""
    with httpx.Client(base_url=server_url, auth=(write_key, ""), timeout=30) as client:
        yield client


@pytest.fixture
def api(server_url: str, admin_key: str) -> Iterator[httpx.Client]:
    """An HTTP client for the admin API, authenticated with an admin key."""
    with httpx.Client(
        base_url=server_url, headers={"Authorization": f"Bearer {admin_key}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture
def anonymous(server_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server_url, timeout=30) as client:
        yield client


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A real SMTP server on loopback that keeps what it receives."""
    server = SmtpSink().start()
    yield server
    server.stop()
