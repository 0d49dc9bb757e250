"""Online backup and restore of the server's database, on either engine.

A backup is always one SQLite database file holding every table at its schema revision (with
its ``alembic_version``), so a single format restores into SQLite or PostgreSQL:

* From SQLite it is SQLite's online backup API: one step, under a read transaction, so the copy
  is the database as of one instant while the server keeps writing (WAL readers never block the
  writer).
* From PostgreSQL it is a logical copy read in one ``REPEATABLE READ READ ONLY`` transaction:
  every table from the same snapshot, whatever commits meanwhile. Tables are created in the file
  by the project's own migrations at the source's revision, and values cross engines through the
  models' column types (UTC datetimes, UUIDs, JSON), exactly as the server reads and writes them.

A restore checks the file (a SQLite database with a schema revision this AgentDesk knows, not
newer), brings a private copy of it to the current schema with the migrations, and copies it
into an *empty* target database in one transaction, parents before children: on any error the
target keeps nothing. The file is written under a temporary name and renamed when complete, so
an interrupted backup never leaves a file that looks whole; it is readable by its owner only
(it holds password hashes).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    MetaData,
    Table,
    create_engine,
    func,
    inspect,
    select,
    text,
)
from sqlalchemy.exc import IntegrityError

from ..models import Base
from ..models.db import make_engine, sqlite_url
from ..models.migrate import check_known, current_revision, head_revision, upgrade

SQLITE_MAGIC = b"SQLite format 3\x00"
#: Rows per INSERT batch when copying a table.
BATCH_ROWS = 2000
#: Tables that are not data: the schema revision travels separately.
_SKIP = frozenset({"alembic_version"})


class BackupError(Exception):
    """A refusal with a message for the operator; nothing was written or changed."""


@dataclass(frozen=True)
class Summary:
    path: Path
    revision: str
    rows: dict[str, int]
    seconds: float

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


# --------------------------------------------------------------------------- revisions


def check_revision(revision: str | None, what: str) -> None:
    """Refuse a schema revision this code does not know (made by a newer AgentDesk)."""
    check_known(revision, what)


# --------------------------------------------------------------------------- backup


def backup(database_url: str, out: Path) -> Summary:
    """Write a consistent copy of the database at ``database_url`` to ``out`` (a new file)."""
    started = time.perf_counter()
    out = Path(out)
    if out.exists():
        raise BackupError(
            f"{out} already exists; choose a new file name (a backup never overwrites a file)"
        )
    if not out.parent.is_dir():
        raise BackupError(f"the directory {out.parent} does not exist")
    engine = make_engine(database_url)
    try:
        revision = current_revision(engine)
        if revision is None:
            raise BackupError("the database has no AgentDesk schema; nothing to back up")
        check_revision(revision, "the database")
        fd, name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent)
        os.close(fd)
        partial = Path(name)
        try:
            os.chmod(partial, 0o600)
            if engine.dialect.name == "sqlite":
                _sqlite_online_backup(engine, partial)
            else:
                _logical_backup(engine, revision, partial)  # an empty file: an empty database
            rows = _verify_file(partial, expect_revision=revision)
            os.chmod(partial, 0o600)
            os.replace(partial, out)
        finally:
            partial.unlink(missing_ok=True)
    finally:
        engine.dispose()
    return Summary(out, revision, rows, time.perf_counter() - started)


def _sqlite_online_backup(engine: Engine, dest: Path) -> None:
    raw = engine.raw_connection()
    try:
        source = raw.driver_connection
        assert isinstance(source, sqlite3.Connection)
        with closing(sqlite3.connect(dest)) as target:
            # pages=-1: the whole database in one step, so nothing the server commits during
            # the copy can make it restart or mix two states.
            source.backup(target, pages=-1)
            # One self-contained file: no -wal or -shm beside it when it is opened later.
            target.execute("PRAGMA journal_mode=DELETE")
    finally:
        raw.close()


def _logical_backup(engine: Engine, revision: str, dest: Path) -> None:
    file_engine = create_engine(sqlite_url(dest))
    try:
        upgrade(file_engine, revision)
        tables = _tables(file_engine)
        with engine.connect() as source_conn:
            source = source_conn.execution_options(isolation_level="REPEATABLE READ")
            with source.begin():
                source.execute(text("SET TRANSACTION READ ONLY"))
                with file_engine.begin() as target:
                    for table in tables:
                        _copy_table(source, target, table)
    finally:
        file_engine.dispose()


# --------------------------------------------------------------------------- restore


def restore(path: Path, database_url: str) -> Summary:
    """Copy the backup at ``path`` into the empty database at ``database_url``, at the current
    schema revision (an older backup is migrated on a private copy first)."""
    started = time.perf_counter()
    path = Path(path)
    revision = inspect_backup(path)
    with tempfile.TemporaryDirectory(prefix="agentdesk-restore-") as tmp:
        work = Path(tmp) / "backup.sqlite3"
        shutil.copyfile(path, work)
        work_engine = create_engine(sqlite_url(work))
        target = make_engine(database_url)
        try:
            target_revision = current_revision(target)
            check_revision(target_revision, "the target database")
            _require_empty(target)
            if revision != head_revision():
                upgrade(work_engine)  # the migrations, with the backup's data in them
            upgrade(target)
            tables = _tables(work_engine)
            rows: dict[str, int] = {}
            try:
                with work_engine.connect() as source, target.begin() as dest:
                    for table in tables:
                        rows[table.name] = _copy_table(source, dest, table)
            except IntegrityError as exc:
                first = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
                raise BackupError(
                    f"the backup's rows break a rule of the database ({first}); "
                    "the target was left empty"
                ) from None
        finally:
            work_engine.dispose()
            target.dispose()
    return Summary(path, revision, rows, time.perf_counter() - started)


def inspect_backup(path: Path) -> str:
    """The schema revision of the backup at ``path``; refuses anything else."""
    if not path.exists():
        raise BackupError(f"{path} does not exist")
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    with path.open("rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise BackupError(f"{path} is not an AgentDesk backup (not a SQLite database file)")
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            check = conn.execute("PRAGMA quick_check").fetchone()
            if not check or check[0] != "ok":
                raise BackupError(f"{path} is damaged (SQLite says: {check[0] if check else '?'})")
            try:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            except sqlite3.DatabaseError:
                row = None
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} cannot be read as a backup: {exc}") from None
    if row is None:
        raise BackupError(f"{path} is not an AgentDesk backup (it has no schema revision)")
    revision = str(row[0])
    check_revision(revision, f"the backup {path.name}")
    return revision


def table_counts(engine: Engine) -> dict[str, int]:
    """Rows per data table that exists in the database (for messages and checks)."""
    present = set(inspect(engine).get_table_names())
    counts: dict[str, int] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if table.name in present:
                counts[table.name] = int(
                    conn.execute(select(func.count()).select_from(table)).scalar_one()
                )
    return counts


def _require_empty(engine: Engine) -> None:
    full = {name: n for name, n in table_counts(engine).items() if n}
    if full:
        listed = ", ".join(f"{name}: {n}" for name, n in sorted(full.items()))
        raise BackupError(
            f"the target database is not empty ({listed}); restore only into an empty "
            "database (a new SQLite file, or a new PostgreSQL database made with createdb)"
        )


# --------------------------------------------------------------------------- copying


def _tables(engine: Engine) -> list[Table]:
    """The data tables of ``engine``'s database, parents first, with the models' column types
    (so values cross engines as the server reads and writes them) where a column exists in the
    models, and the reflected type otherwise (a column of an older revision)."""
    reflected = MetaData()
    reflected.reflect(engine)
    copy = MetaData()
    tables = []
    for table in reflected.sorted_tables:
        if table.name in _SKIP:
            continue
        model = Base.metadata.tables.get(table.name)
        columns = []
        for column in table.columns:
            kind = (
                model.c[column.name].type
                if model is not None and column.name in model.c
                else column.type
            )
            columns.append(Column(column.name, kind, primary_key=column.primary_key))
        copied = Table(table.name, copy, *columns)
        copied.info["self_references"] = [
            (fk.parent.name, fk.column.name)
            for fk in table.foreign_keys
            if fk.column.table.name == table.name
        ]
        tables.append(copied)
    return tables


def _copy_table(source: Connection, target: Connection, table: Table) -> int:
    query = select(table).order_by(*table.primary_key.columns)
    self_refs: Sequence[tuple[str, str]] = table.info.get("self_references", [])
    if self_refs:
        rows = [dict(r._mapping) for r in source.execute(query)]
        batches: Iterator[list[dict[str, Any]]] = _chunks(_parents_first(rows, self_refs))
    else:
        result = source.execution_options(yield_per=BATCH_ROWS).execute(query)
        batches = ([dict(r._mapping) for r in part] for part in result.partitions())
    count = 0
    for batch in batches:
        if batch:
            target.execute(table.insert(), batch)
            count += len(batch)
    return count


def _parents_first(
    rows: list[dict[str, Any]], refs: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Order rows so a row another row of the same table refers to comes first (a time entry
    that voids another), as the foreign keys require on insert."""
    keys = {ref for _col, ref in refs}
    index = {(ref, row[ref]): i for i, row in enumerate(rows) for ref in keys}
    placed: set[int] = set()
    ordered: list[dict[str, Any]] = []

    def place(i: int, depth: int = 0) -> None:
        if i in placed:
            return
        if depth > len(rows):
            raise BackupError("a cycle of self-references; cannot order rows")
        for col, ref in refs:
            value = rows[i][col]
            parent = index.get((ref, value)) if value is not None else None
            if parent is not None and parent != i:
                place(parent, depth + 1)
        placed.add(i)
        ordered.append(rows[i])

    for i in range(len(rows)):
        place(i)
    return ordered


def _chunks(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), BATCH_ROWS):
        yield rows[start : start + BATCH_ROWS]


def _verify_file(path: Path, *, expect_revision: str) -> dict[str, int]:
    revision = inspect_backup(path)
    if revision != expect_revision:
        raise BackupError(f"the backup has revision {revision}, expected {expect_revision}")
    engine = create_engine(sqlite_url(path))
    try:
        return table_counts(engine)
    finally:
        engine.dispose()
