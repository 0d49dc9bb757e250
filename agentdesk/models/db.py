"""Engines and the one session scope.

SQLite gets WAL (readers never block the writer), foreign keys on (off by default in SQLite!),
and a busy timeout so a second process waits instead of failing with "database is locked".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Engine, String, create_engine, event, func
from sqlalchemy.engine import make_url
from sqlalchemy.orm import QueryableAttribute, Session, sessionmaker


def sqlite_url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine with the project's connection settings for its dialect."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        connect_args = kwargs.pop("connect_args", {})
        connect_args.setdefault("timeout", 30)
        connect_args.setdefault("check_same_thread", False)
        engine = create_engine(url, connect_args=connect_args, **kwargs)
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return create_engine(url, **kwargs)


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (pysqlite's implicit transactions defer it oddly).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
    # SQLite's lower() and LIKE fold ASCII only; searches that must find "Émilie" from
    # "émilie" compare unicode_lower() of both sides (see :func:`unicode_lower`).
    dbapi_conn.create_function("unicode_lower", 1, _unicode_lower, deterministic=True)


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def unicode_lower(
    column: ColumnElement[str] | QueryableAttribute[str], dialect: str
) -> ColumnElement[str]:
    """``column`` lower-cased by Unicode rules on every engine (compare it with ``str.lower()``
    of the query): PostgreSQL's lower() already is; SQLite's folds ASCII only, so there it is
    the Python function registered on each connection (a call per row: use it when the query
    needs it, e.g. a search word that is not plain ASCII)."""
    if dialect == "sqlite":
        return func.unicode_lower(column, type_=String)
    return func.lower(column, type_=String)


def _sqlite_on_begin(conn: Any) -> None:
    # A writing unit of work takes the write lock up front (BEGIN IMMEDIATE): two writers queue on
    # busy_timeout instead of one failing when it upgrades a read lock mid-transaction (SQLite's
    # classic deadlock). Readers stay DEFERRED so WAL lets them run beside the writer.
    if conn.get_execution_options().get("sqlite_begin") == "immediate":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


def make_session_factory(engine: Engine, *, write: bool = True) -> sessionmaker[Session]:
    """Sessions for units of work; ``write=False`` for read-only ones (SQLite: no write lock)."""
    bind = engine.execution_options(sqlite_begin="immediate") if write else engine
    return sessionmaker(bind, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error, always close."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
