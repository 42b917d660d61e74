"""Fresh, migrated databases for each test, on SQLite and PostgreSQL.

Each backend is migrated once into a template; every test gets its own copy (a file copy
for SQLite, CREATE DATABASE … TEMPLATE for PostgreSQL), so tests never share data and the
server under test can commit for real.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from postillon.kit import migrate
from postillon.kit.db import Database


class SqliteDatabases:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template.db"
        database = Database(f"sqlite:///{self.template}")
        migrate.upgrade(database)
        database.dispose()
        self._numbers = itertools.count()

    def fresh(self) -> str:
        path = self.root / f"test-{next(self._numbers)}.db"
        shutil.copyfile(self.template, path)
        return f"sqlite:///{path}"

    def drop(self, url: str) -> None:
        path = Path(make_url(url).database or "")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


class PostgresDatabases:
    def __init__(self, server_url: str) -> None:
        self.server_url = server_url
        self._admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        self._numbers = itertools.count()
        with self._admin.connect() as connection:
            connection.execute(text("DROP DATABASE IF EXISTS postillon_template"))
            connection.execute(text("CREATE DATABASE postillon_template"))
        database = Database(self._url("postillon_template"))
        migrate.upgrade(database)
        database.dispose()

    def _url(self, name: str) -> str:
        return make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def fresh(self) -> str:
        name = f"postillon_test_{next(self._numbers)}"
        with self._admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            connection.execute(
                text(f"CREATE DATABASE {name} TEMPLATE postillon_template STRATEGY FILE_COPY")
            )
        return self._url(name)

    def drop(self, url: str) -> None:
        name = make_url(url).database
        with self._admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))

    def close(self) -> None:
        self._admin.dispose()
