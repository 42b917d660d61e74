"""Engine and session factory for SQLite (embedded) and PostgreSQL (scale-out).

SQLite runs in WAL mode. Python's sqlite3 starts transactions lazily, which lets two writers
deadlock on the upgrade from a read lock to a write lock; so SQLite transactions are started
explicitly, `BEGIN IMMEDIATE` for sessions that write and plain `BEGIN` for read-only ones.
A database file's write-ahead log is checkpointed on a thread of its own (`wal.py`), not by
the committing writer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from postillon.kit.wal import BACKSTOP_PAGES, WAL_FILE_LIMIT, WalCheckpointer, WriterTurn

_READ_ONLY = "postillon_read_only"


def _json_loads(text: str | bytes) -> Any:
    """JSON columns read by orjson, several times faster than the standard library; what
    only the standard library reads (NaN, which its writer allows) falls back to it."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with Postillon's connection settings for the URL's dialect."""
    kwargs.setdefault("json_deserializer", _json_loads)
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs
        )
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20, **kwargs)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA cache_size=-65536")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
        cursor.execute(f"PRAGMA journal_size_limit={WAL_FILE_LIMIT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        read_only = connection.get_execution_options().get(_READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _database_file(engine: Engine) -> str | None:
    """The SQLite database file; None for PostgreSQL or an in-memory database."""
    path = engine.url.database
    if engine.dialect.name != "sqlite" or not path or path == ":memory:":
        return None
    if engine.url.query.get("mode") == "memory":
        return None
    return path


def _writers_take_turns(engine: Engine, turn: WriterTurn) -> None:
    """Each write transaction holds `turn` from before its `BEGIN IMMEDIATE` until its
    COMMIT or ROLLBACK has run (or its connection is closed), whichever session, engine
    user or thread ends it: a session that commits and goes on does not keep it."""

    @event.listens_for(engine, "begin", insert=True)  # before `_on_begin`'s BEGIN
    def _take_turn(connection: Any) -> None:
        if not connection.get_execution_options().get(_READ_ONLY, False) and turn.acquire():
            turn.holder = connection.connection.dbapi_connection

    dialect = engine.dialect
    for name in ("do_commit", "do_rollback", "do_close"):
        setattr(dialect, name, _then_hand_on(getattr(dialect, name), turn))


def _then_hand_on(end: Callable[[Any], None], turn: WriterTurn) -> Callable[[Any], None]:
    def ended(dbapi_connection: Any) -> None:
        try:
            end(dbapi_connection)
        finally:
            raw = getattr(dbapi_connection, "dbapi_connection", dbapi_connection)
            if turn.holder is not None and turn.holder is raw:
                turn.holder = None
                turn.release()

    return ended


def _checkpoint_after_writes(engine: Engine, checkpointer: WalCheckpointer) -> None:
    @event.listens_for(engine, "commit")
    def _on_commit(connection: Any) -> None:
        if not connection.get_execution_options().get(_READ_ONLY, False):
            checkpointer.committed()


# PostgreSQL: deadlock detected, serialization failure, lock not available.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001", "55P03"})


def is_transient(error: DBAPIError) -> bool:
    """Whether running the transaction again may succeed (a deadlock, a lock timeout)."""
    original = error.orig
    sqlstate = getattr(original, "sqlstate", None)
    if sqlstate in _TRANSIENT_SQLSTATES:
        return True
    return "database is locked" in str(original)


class Database:
    """The engine plus the two kinds of session Postillon opens: read-write and read-only."""

    def __init__(self, url: str, **engine_kwargs: Any) -> None:
        self.url = url
        self.engine = make_engine(url, **engine_kwargs)
        # Writers to a SQLite file queue for their turn (see `WriterTurn`), and its log is
        # checkpointed by a thread of its own.
        path = _database_file(self.engine)
        self.turn: WriterTurn | None = None
        self.checkpointer: WalCheckpointer | None = None
        if path is not None:
            self.turn = WriterTurn(path)
            self.checkpointer = WalCheckpointer(path)
            _writers_take_turns(self.engine, self.turn)
            _checkpoint_after_writes(self.engine, self.checkpointer)
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        self._reader = sessionmaker(
            self.engine.execution_options(**{_READ_ONLY: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[Session]:
        """A session whose transaction commits when the block ends and rolls back on error."""
        factory = self._reader if read_only else self._writer
        with factory() as session, session.begin():
            yield session

    def session(self, *, read_only: bool = False) -> Session:
        """A session the caller commits (or rolls back) itself."""
        return (self._reader if read_only else self._writer)()

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.engine.dispose()
        if self.turn is not None:
            self.turn.close()
