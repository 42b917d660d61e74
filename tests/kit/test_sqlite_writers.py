"""SQLite's writers: the queue they take turns in, and the thread that checkpoints the log."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text

from postillon.kit.db import Database
from postillon.kit.wal import BACKSTOP_PAGES, WalCheckpointer, WriterTurn


@contextmanager
def restarting_early(path: Path) -> Iterator[tuple[Database, WalCheckpointer]]:
    """A database at `path` with a table `t (id, v)`, whose log is started over after 50
    pages rather than 16,384."""
    database = Database(f"sqlite:///{path}")
    try:
        assert database.checkpointer is not None
        database.checkpointer.restart_pages = 50
        with database.transaction() as session:
            session.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
        yield database, database.checkpointer
    finally:
        database.dispose()


def test_writers_take_turns_and_a_turn_may_end_on_another_thread(tmp_path: Path) -> None:
    turn = WriterTurn(str(tmp_path / "x.db"))
    assert turn.acquire()
    assert not turn.acquire()  # the same thread again: nested, not queued
    waiting_took: list[bool] = []
    waiter = threading.Thread(target=lambda: waiting_took.append(turn.acquire()))
    waiter.start()
    waiter.join(timeout=0.2)
    assert waiter.is_alive()  # queued behind the holder
    releaser = threading.Thread(target=turn.release)  # as FastAPI may end a request
    releaser.start()
    releaser.join()
    waiter.join(timeout=10)
    assert waiting_took == [True]
    turn.release()
    turn.close()


def test_another_process_waits_for_the_turn(tmp_path: Path) -> None:
    turn = WriterTurn(str(tmp_path / "x.db"))
    assert turn.acquire()
    script = (
        "import sys; from postillon.kit.wal import WriterTurn; "
        "t = WriterTurn(sys.argv[1]); print('waiting', flush=True); "
        "t.acquire(); print('took', flush=True); t.release()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "x.db")], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "waiting"
    try:
        child.wait(timeout=0.5)
        raise AssertionError("the other process took the turn while this one held it")
    except subprocess.TimeoutExpired:
        pass
    turn.release()
    assert child.stdout.readline().strip() == "took"
    assert child.wait(timeout=30) == 0
    turn.close()


def test_the_log_is_checkpointed_and_started_over_by_the_thread(tmp_path: Path) -> None:
    with restarting_early(tmp_path / "x.db") as (database, checkpointer):
        with database.transaction() as session:
            autocheckpoint = session.execute(text("PRAGMA wal_autocheckpoint")).scalar()
        assert autocheckpoint == BACKSTOP_PAGES  # the writers' own, only a backstop
        for start in range(0, 20_000, 1_000):
            with database.transaction() as session:
                session.execute(
                    text("INSERT INTO t (v) VALUES (:v)"),
                    [{"v": f"{n:08d}" * 40} for n in range(start, start + 1_000)],
                )
        assert checkpointer.wait_idle()
        assert checkpointer.checkpoints >= 1
        assert checkpointer.restarts >= 1
        with database.transaction() as session:  # the next writer starts the log over
            session.execute(text("INSERT INTO t (v) VALUES ('last')"))
        assert checkpointer.wait_idle()
        with sqlite3.connect(tmp_path / "x.db") as raw:
            _, logged, copied = raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            assert raw.execute("SELECT count(*) FROM t").fetchone() == (20_001,)
            (pages,) = raw.execute("PRAGMA page_count").fetchone()
        assert logged < pages / 4  # the log started over; it does not hold the history
        assert copied == logged


def test_back_to_back_writers_let_the_restart_through(tmp_path: Path) -> None:
    """One writer committing again at once (its rows ready) while the log is restarted:
    the restart is neither refused nor waited out (it was, for 30 s a transaction, while
    it took the writers' turn)."""
    with restarting_early(tmp_path / "x.db") as (database, checkpointer):
        rows = [{"v": f"{n:08d}" * 40} for n in range(500)]
        for _ in range(40):
            with database.engine.begin() as connection:
                connection.execute(text("INSERT INTO t (v) VALUES (:v)"), rows)
        assert checkpointer.wait_idle()
        assert checkpointer.restarts >= 1
        assert checkpointer.restarts_refused == 0
        assert checkpointer.restart_seconds < 5


def test_a_closed_checkpointer_ignores_commits(tmp_path: Path) -> None:
    checkpointer = WalCheckpointer(str(tmp_path / "x.db"))
    checkpointer.close()
    checkpointer.committed()
    assert checkpointer.wait_idle(timeout=1)
    assert checkpointer.checkpoints == 0


def test_in_memory_databases_have_neither(tmp_path: Path) -> None:
    database = Database("sqlite://")
    try:
        assert database.turn is None and database.checkpointer is None
        with database.transaction() as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
    finally:
        database.dispose()


def test_a_session_that_commits_and_goes_on_gives_the_turn_back(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        assert database.turn is not None
        turn = database.turn
        with database.session() as session:
            session.execute(text("CREATE TABLE t (v TEXT)"))
            assert turn.holder is not None  # the write transaction holds it
            session.commit()
            assert turn.holder is None
            taken: list[bool] = []

            def other_writer() -> None:
                taken.append(turn.acquire())
                turn.release()

            writer = threading.Thread(target=other_writer)
            writer.start()
            writer.join(timeout=10)
            assert taken == [True]  # at once, not after the 30 s fallback
            session.execute(text("INSERT INTO t VALUES ('again')"))  # takes it again
            assert turn.holder is not None
            session.rollback()
            assert turn.holder is None
    finally:
        database.dispose()
