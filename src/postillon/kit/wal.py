"""SQLite's write-ahead log copied back into the database file on a thread of its own.

In WAL mode a commit appends the changed pages to the `-wal` file, and by default the
committing connection copies the log back into the database file (a checkpoint, with two
fsyncs) once the log passes 1,000 pages: inside its transaction, while it still holds the
write lock that every other writer waits for. A batch of events dirties thousands of index
pages, so nearly every commit checkpointed, and that took longer than the batch's inserts.

`WalCheckpointer` moves that work off the writers. After each write transaction it wakes
its thread, which runs a PASSIVE checkpoint: it copies what readers no longer need without
taking the write lock, so it runs beside the next writer (the sqlite3 module releases the
GIL while SQLite works). The log only starts over from its beginning when a writer finds
all of it copied, which never happens while the next writer is already waiting; so once
the log holds `restart_pages`, the thread asks for a RESTART checkpoint, which takes the
write lock for the few pages written since its last pass, and the next writer reuses the
file from its start (cut back to `WAL_FILE_LIMIT` bytes). The RESTART waits at most
`_RESTART_WAIT_SECONDS` for the current writer and the readers, and is asked for again
after the next commit if they held on. It does not take the `WriterTurn`: done under the
turn, with the only writer queued on the turn, SQLite answered busy until its whole
timeout had passed (30 s per write transaction in the tracking benchmark's baseline).
Writers keep SQLite's own checkpoint as a backstop, at `BACKSTOP_PAGES`, for when this
thread falls behind.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time

logger = logging.getLogger(__name__)

# 64 MiB of 4 KiB pages: the log then starts over. A restart keeps the writers waiting while
# it copies what was committed since the last pass, so not after every batch; but readers
# look every page up in the log's index first, which grows with the log.
RESTART_PAGES = 16_384
BACKSTOP_PAGES = 4 * RESTART_PAGES  # the writers' own checkpoint, if this thread lags
WAL_FILE_LIMIT = 64 * 1024 * 1024  # bytes the -wal file keeps once it starts over
_BUSY_TIMEOUT_SECONDS = 30.0
# How long a RESTART may wait for the writer and the readers before it gives up until the
# next commit: writers that come meanwhile wait behind it.
_RESTART_WAIT_SECONDS = 0.25


class WriterTurn:
    """The turn to write to one SQLite database file, taken before `BEGIN IMMEDIATE`.

    SQLite has one writer at a time, and its busy handler makes a waiting writer sleep
    (1, 2, 5 … 100 ms) and try again: under a steady load the lock sat free a quarter of
    the time while the next writer slept. Writers queue here instead, and the next one
    goes the moment the last one commits: the threads of a process on a lock, the
    processes sharing the file (`serve --processes N`) on an exclusive `flock` of
    `<database>-writer`, which the kernel hands on at once and releases if a process dies.

    `acquire` says whether it took the turn: not when the calling thread holds it already
    (a nested transaction, which SQLite refuses as before), nor after waiting as long as
    SQLite's busy timeout (SQLite then decides). `release` may come from another thread:
    FastAPI ends a request's transaction on a thread of its pool, not always the one that
    began it.
    """

    def __init__(self, path: str) -> None:
        self.path = f"{path}-writer"
        self.holder: object | None = None  # the connection whose transaction holds the turn
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._owner == threading.get_ident():
            return False
        if not self._lock.acquire(timeout=_BUSY_TIMEOUT_SECONDS):
            return False
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._lock.release()
            raise
        self._owner = threading.get_ident()
        return True

    def release(self) -> None:
        self._owner = None
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._lock.release()

    def close(self) -> None:
        if self._lock.acquire(timeout=_BUSY_TIMEOUT_SECONDS):
            try:
                if self._fd is not None:
                    os.close(self._fd)
                    self._fd = None
            finally:
                self._lock.release()


class WalCheckpointer:
    """Checkpoints one SQLite database file after its write transactions commit.

    `committed()` is cheap and never blocks: it starts the thread the first time and then
    only sets a flag. `close()` stops the thread; a closed checkpointer ignores commits.
    """

    def __init__(self, path: str, *, restart_pages: int = RESTART_PAGES) -> None:
        self.path = path
        self.restart_pages = restart_pages
        self.checkpoints = 0  # passes run, for tests and benchmarks
        self.restarts = 0
        self.restart_seconds = 0.0  # writers kept waiting by the restarts
        self.restarts_refused = 0  # a writer or a reader held on past the restart's wait
        self._wanted = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def committed(self) -> None:
        if self._closed:
            return
        if self._thread is None:
            with self._start_lock:
                if self._thread is None and not self._closed:
                    self._thread = threading.Thread(
                        target=self._run, name="postillon-wal-checkpoint", daemon=True
                    )
                    self._thread.start()
        self._wanted.set()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Until no checkpoint is asked for or running (False if `timeout` passed first)."""
        with self._idle:
            return self._idle.wait_for(
                lambda: self._closed or not (self._busy or self._wanted.is_set()), timeout
            )

    def close(self) -> None:
        self._closed = True
        self._wanted.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=_BUSY_TIMEOUT_SECONDS)
        with self._idle:
            self._idle.notify_all()

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(
                self.path,
                timeout=_RESTART_WAIT_SECONDS,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error:
            logger.exception("the WAL checkpoint thread could not open %s", self.path)
            return
        try:
            while True:
                self._wanted.wait()
                with self._idle:
                    self._wanted.clear()
                    self._busy = not self._closed
                if self._closed:
                    return
                try:
                    self._checkpoint(connection)
                except sqlite3.Error as error:  # the writers' backstop still checkpoints
                    logger.warning("WAL checkpoint of %s failed: %s", self.path, error)
                finally:
                    with self._idle:
                        self._busy = False
                        self._idle.notify_all()
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        _, logged, _ = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        if logged >= self.restart_pages:
            started = time.perf_counter()
            busy, _, _ = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            self.restart_seconds += time.perf_counter() - started
            if busy:
                self.restarts_refused += 1
            else:
                self.restarts += 1
