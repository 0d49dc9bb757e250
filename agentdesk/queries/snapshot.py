"""Read transactions held open: the replica as it was at one instant, for reads that must agree.

:class:`Pin` keeps one snapshot on its own connection (the live dashboard's "before", see
:mod:`.dashboard_live`). :func:`pin_twins` takes two pins of the same snapshot, so that two
threads can each read part of a figure set and the parts still describe one state of the
replica: SQLite's reads run outside the interpreter lock, so a second thread roughly halves the
wall time of a computation made of two large independent reads.

Why a third connection holds the write lock while the two pins are taken: in write-ahead-log
mode a read transaction sees the last commit made before its first read. Two connections that
start reading one after the other see the same commit only if nothing commits in between, and
the replica's writers (the sync thread's pull pages, the desktop's one writer) commit whenever
they like. ``BEGIN IMMEDIATE`` on a connection of our own takes SQLite's write lock, which every
writer needs to commit, for the moment it takes to start the two reads; it is given back with a
rollback (it wrote nothing). A writer that asks meanwhile waits on its busy timeout for a few
milliseconds (the two connections are checked out of the pool before the lock is taken). If a
write is already in progress the lock is not waited for past :data:`TWIN_LOCK_WAIT_S`: the
caller reads on one thread instead, which is correct, only slower.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import weakref
from collections.abc import Iterator
from contextlib import closing, contextmanager
from urllib.parse import quote

from sqlalchemy import Connection, Engine, select
from sqlalchemy.orm import Session

from ..models import Ticket

log = logging.getLogger(__name__)

__all__ = ["TWIN_LOCK_WAIT_S", "Pin", "passive_checkpoint", "pin_twins"]

#: The longest :func:`pin_twins` waits for a write in progress to commit before it gives up on
#: the second pin. A pull page holds the write lock for tens of milliseconds (more on a loaded
#: machine); waiting for it would cost what the second thread saves.
TWIN_LOCK_WAIT_S = 0.05


class Pin:
    """A read transaction held open on its own connection: the replica as it was when the
    figures were computed. Used by one thread at a time (any thread); :meth:`close` lets it
    go (also done when the pin is garbage-collected)."""

    def __init__(
        self, engine: Engine, *, checkpoint: bool = False, connection: Connection | None = None
    ) -> None:
        """``connection``: one of ``engine``'s, already checked out (see :func:`pin_twins`);
        the pin then owns it."""
        self.engine = engine
        if checkpoint:
            passive_checkpoint(engine)
        conn = connection if connection is not None else engine.connect()
        try:
            conn.begin()
            # The snapshot is taken by the first read, not by BEGIN.
            conn.execute(select(Ticket.id).limit(1)).all()
        except BaseException:
            conn.close()
            raise
        self._conn: Connection | None = conn
        self.taken = time.monotonic()
        self._finalizer = weakref.finalize(self, _release, conn)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session that reads the pinned snapshot (it never commits nor ends it)."""
        if self._conn is None:
            raise RuntimeError("the dashboard's snapshot was released")
        s = Session(bind=self._conn, join_transaction_mode="rollback_only")
        try:
            yield s
        finally:
            s.close()

    @property
    def age(self) -> float:
        return time.monotonic() - self.taken

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        self._conn = None
        self._finalizer()


def _release(conn: Connection) -> None:
    try:
        conn.close()
    except Exception:  # an engine already disposed: the connection is gone with it
        log.debug("dashboard snapshot released after its engine", exc_info=True)


def passive_checkpoint(engine: Engine) -> None:
    """A passive checkpoint (SQLite): what was written since moves into the database file
    without waiting for anyone, so the log can start over once the next pin is the only
    reader. Outside a transaction (the driver's autocommit); nothing on other engines."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _database_file(conn: Connection) -> str | None:
    """The file behind a SQLite connection, as SQLite opened it (absolute), or None (an
    in-memory or temporary database)."""
    driver = conn.connection.driver_connection  # autocommit: no transaction begun here
    assert driver is not None
    for _seq, name, file in driver.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return str(file) or None
    return None  # pragma: no cover - every SQLite connection has "main"


def _write_lock(path: str) -> sqlite3.Connection | None:
    """A connection of our own to ``path`` holding the write lock, or None if it cannot be had
    within :data:`TWIN_LOCK_WAIT_S` or the database is not in write-ahead-log mode (there a
    reader would block writers, and the lock would block readers too)."""
    # Our own connection, not the pool's: its busy timeout is this wait, not the replica's 30 s;
    # read-write on the existing file only (never a new empty database by mistake).
    lock = sqlite3.connect(
        f"file:{quote(path)}?mode=rw", uri=True, timeout=TWIN_LOCK_WAIT_S, isolation_level=None
    )
    try:
        (mode,) = lock.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() != "wal":
            log.debug("dashboard: one snapshot, one thread (journal mode %s)", mode)
            lock.close()
            return None
        lock.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as busy:  # "database is locked": a write in progress
        log.debug("dashboard: one snapshot, one thread (%s)", busy)
        lock.close()
        return None
    except BaseException:
        lock.close()
        raise
    return lock


def pin_twins(engine: Engine, *, checkpoint: bool = False) -> tuple[Pin, Pin | None]:
    """Two pins of one snapshot (see the module's notes), or the first pin and None when the
    second cannot be had at once: not a SQLite file in write-ahead-log mode, or a write in
    progress for longer than :data:`TWIN_LOCK_WAIT_S`.

    Both connections are checked out of the pool (and opened, if new) before the lock is taken,
    so that while it is held only two ``BEGIN``s and two one-row reads run."""
    if checkpoint:
        passive_checkpoint(engine)
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return Pin(engine), None  # (an in-memory database's pool shares one connection)
    conns = [engine.connect(), engine.connect()]
    try:
        path = _database_file(conns[0])
        lock = _write_lock(path) if path is not None else None
        if lock is None:
            return Pin(engine, connection=conns.pop(0)), None
        with closing(lock):
            try:  # a pin that fails closes its connection
                first = Pin(engine, connection=conns.pop(0))
                try:
                    second = Pin(engine, connection=conns.pop(0))
                except BaseException:
                    first.close()
                    raise
            finally:
                lock.execute("ROLLBACK")
        return first, second
    finally:
        for conn in conns:  # not handed to a pin
            conn.close()
