"""``agentdesk server backup`` / ``restore``: a round trip keeps every row of every table, on and
across both engines; a backup taken while desktops push is one consistent instant; bad files,
non-empty targets and newer schemas are refused with a clear message and change nothing."""

from __future__ import annotations

import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select, text

from agentdesk.cli import main
from agentdesk.models import Base
from agentdesk.models.db import make_engine, sqlite_url
from agentdesk.models.migrate import head_revision, upgrade
from agentdesk.server.backup import table_counts
from agentdesk.server.demo import generate_demo
from tests.databases import ENGINES, drop_database, new_database_url
from tests.plugins.live_team import Team, ticket_args


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, through the models' types, in primary-key order."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            query = select(table).order_by(*table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(query)]
    return out


def run_cli(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture
def target_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.mark.parametrize("target_kind", ENGINES, indirect=True)
def test_round_trip_keeps_every_row_of_every_table(
    database_url: str, target_kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make_engine(database_url)
    generate_demo(source, seed=3, tickets=150)
    before = snapshot(source)
    filled = {name for name, rows in before.items() if rows}
    # The demo fills the tables that matter, including a time entry that voids another
    # (a row referring to a row of its own table).
    assert {"tickets", "ticket_events", "time_entries", "hour_blocks", "users"} <= filled
    with source.connect() as conn:
        assert (
            conn.execute(
                text("SELECT count(*) FROM time_entries WHERE voids_id IS NOT NULL")
            ).scalar_one()
            > 0
        )

    out = tmp_path / "backup.sqlite3"
    assert run_cli("server", "backup", "--out", str(out), "--database-url", database_url) == 0
    said = capsys.readouterr().out
    assert f"to {out}" in said
    assert "rows in" in said
    assert out.stat().st_mode & 0o077 == 0, "a backup holds password hashes: owner only"
    assert not list(tmp_path.glob(".*partial")), "no temporary file left behind"

    target_url = new_database_url(target_kind, tmp_path / "t", migrated=False)
    try:
        assert run_cli("server", "restore", str(out), "--database-url", target_url) == 0
        assert "Restored" in capsys.readouterr().out
        target = make_engine(target_url)
        assert snapshot(target) == before
        target.dispose()
    finally:
        drop_database(target_url)
    source.dispose()


def test_backup_while_desktops_push_is_one_consistent_instant(
    team: Team, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desks = [team.desk("agent"), team.desk("agent2")]
    for desk in desks:
        desk.sync()
    stop = threading.Event()
    errors: list[BaseException] = []
    pushed = [0, 0]

    def work(i: int) -> None:
        desk = desks[i]
        try:
            while not stop.is_set():
                tid = str(uuid.uuid4())
                desk.replica.mutate("create_ticket", ticket_args(team.world, ticket_id=tid))
                desk.replica.mutate("add_note", {"ticket_id": tid, "body": f"note {i}"})
                desk.sync()
                pushed[i] += 2
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(2)]
    for t in threads:
        t.start()
    backups = []
    try:
        for n in range(3):
            while sum(pushed) < 20 * (n + 1) and not errors:
                threading.Event().wait(0.02)
            out = tmp_path / f"live-{n}.sqlite3"
            assert (
                run_cli(
                    "server",
                    "backup",
                    "--out",
                    str(out),
                    "--database-url",
                    team.server.database_url,
                )
                == 0
            )
            backups.append(out)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    assert not errors, errors
    capsys.readouterr()

    sizes = []
    for out in backups:
        engine = create_engine(sqlite_url(out))
        with engine.connect() as conn:
            # One instant: no row is stamped past the team's counter, every acknowledged
            # mutation's record is there, and every ticket has the events made with it.
            counter = conn.execute(text("SELECT max(version) FROM tenant_counters")).scalar_one()
            for table in ("tickets", "ticket_events", "mutation_records"):
                top = conn.execute(text(f"SELECT max(version) FROM {table}")).scalar_one()
                assert top is None or top <= counter, table
            gaps = conn.execute(
                text(
                    "SELECT c.id FROM sync_clients c WHERE c.last_mutation_id != "
                    "(SELECT count(*) FROM mutation_records m WHERE m.client_id = c.id)"
                )
            ).all()
            assert gaps == []
            orphans = conn.execute(
                text(
                    "SELECT count(*) FROM tickets t WHERE NOT EXISTS "
                    "(SELECT 1 FROM ticket_events e WHERE e.ticket_id = t.id)"
                )
            ).scalar_one()
            assert orphans == 0
            sizes.append(conn.execute(text("SELECT count(*) FROM tickets")).scalar_one())
        expected = snapshot(engine)
        engine.dispose()
        # ... and it restores exactly, into each engine.
        for kind in ENGINES:
            url = new_database_url(kind, tmp_path / f"r-{out.stem}-{kind}", migrated=False)
            try:
                assert run_cli("server", "restore", str(out), "--database-url", url) == 0
                restored = make_engine(url)
                assert snapshot(restored) == expected
                restored.dispose()
            finally:
                drop_database(url)
    assert sizes == sorted(sizes)
    assert sizes[0] < sizes[-1], "pushes ran during the backups"
    capsys.readouterr()


def test_an_older_backup_is_upgraded_on_restore(db_kind: str, tmp_path: Path) -> None:
    """A backup made by the previous schema revision (with data) restores into this one."""
    previous = _previous_revision()
    old = tmp_path / "old.sqlite3"
    engine = create_engine(sqlite_url(old))
    upgrade(engine, previous)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO tenants (id, name, timezone, created_at) VALUES "
                "(:id, 'Old Team', 'UTC', '2026-01-01 00:00:00')"
            ),
            {"id": uuid.UUID(int=7).hex},
        )
    engine.dispose()
    url = new_database_url(db_kind, tmp_path / "t", migrated=False)
    try:
        assert run_cli("server", "restore", str(old), "--database-url", url) == 0
        target = make_engine(url)
        with target.connect() as conn:
            assert (
                conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
                == head_revision()
            )
            assert conn.execute(text("SELECT name FROM tenants")).scalar_one() == "Old Team"
        target.dispose()
    finally:
        drop_database(url)


def _previous_revision() -> str:
    from alembic.script import ScriptDirectory

    from agentdesk.models.migrate import alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_revision("head")
    assert head is not None
    assert isinstance(head.down_revision, str)
    return head.down_revision


# --------------------------------------------------------------------------- refusals


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


def test_backup_refuses_an_existing_file_and_a_missing_directory(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "there.sqlite3"
    out.write_bytes(b"precious")
    assert run_cli("server", "backup", "--out", str(out), "--database-url", database_url) == 1
    assert "already exists" in _error(capsys)
    assert out.read_bytes() == b"precious"
    missing = tmp_path / "nowhere" / "b.sqlite3"
    assert run_cli("server", "backup", "--out", str(missing), "--database-url", database_url) == 1
    assert "does not exist" in _error(capsys)


def test_backup_refuses_a_database_without_schema(
    db_kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = new_database_url(db_kind, tmp_path, migrated=False)
    try:
        out = tmp_path / "b.sqlite3"
        assert run_cli("server", "backup", "--out", str(out), "--database-url", url) == 1
        assert "no AgentDesk schema" in _error(capsys)
        assert not out.exists()
    finally:
        drop_database(url)


@pytest.fixture
def good_backup(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert run_cli("server", "init", "--database-url", database_url) == 0
    out = tmp_path / "good.sqlite3"
    assert run_cli("server", "backup", "--out", str(out), "--database-url", database_url) == 0
    capsys.readouterr()
    return out


def test_restore_refuses_a_target_that_holds_data(
    database_url: str, good_backup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    engine = make_engine(database_url)
    before = snapshot(engine)
    assert run_cli("server", "restore", str(good_backup), "--database-url", database_url) == 1
    err = _error(capsys)
    assert "not empty" in err
    assert "tenants: 1" in err
    assert "nothing was restored" in err
    assert snapshot(engine) == before
    engine.dispose()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"hello, not a database", "not a SQLite database"),
        (b"", "not a SQLite database"),
    ],
)
def test_restore_refuses_files_that_are_not_backups(
    db_kind: str,
    tmp_path: Path,
    content: bytes,
    says: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(content)
    url = new_database_url(db_kind, tmp_path / "t", migrated=False)
    try:
        assert run_cli("server", "restore", str(bad), "--database-url", url) == 1
        assert says in _error(capsys)
        engine = make_engine(url)
        assert all(n == 0 for n in table_counts(engine).values())
        engine.dispose()
    finally:
        drop_database(url)


def test_restore_refuses_other_sqlite_files_newer_and_damaged_backups(
    good_backup: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = sqlite_url(tmp_path / "target.sqlite3")
    assert (
        run_cli("server", "restore", str(tmp_path / "missing.sqlite3"), "--database-url", target)
        == 1
    )
    assert "does not exist" in _error(capsys)
    assert run_cli("server", "restore", str(tmp_path), "--database-url", target) == 1
    assert "is not a file" in _error(capsys)

    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    assert run_cli("server", "restore", str(other), "--database-url", target) == 1
    assert "no schema revision" in _error(capsys)

    newer = tmp_path / "newer.sqlite3"
    newer.write_bytes(good_backup.read_bytes())
    with sqlite3.connect(newer) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    assert run_cli("server", "restore", str(newer), "--database-url", target) == 1
    err = _error(capsys)
    assert "revision 9999" in err
    assert f"up to {head_revision()}" in err

    damaged = tmp_path / "damaged.sqlite3"
    data = bytearray(good_backup.read_bytes())
    data[len(data) // 2 :] = b"\xff" * (len(data) - len(data) // 2)
    damaged.write_bytes(bytes(data))
    assert run_cli("server", "restore", str(damaged), "--database-url", target) == 1
    err = _error(capsys)
    assert "damaged" in err or "cannot be read" in err, err

    engine = make_engine(target)
    assert all(n == 0 for n in table_counts(engine).values())
    engine.dispose()


def test_restore_is_all_or_nothing(
    good_backup: Path, db_kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A backup whose rows break a constraint of the target leaves the target empty."""
    broken = tmp_path / "broken.sqlite3"
    broken.write_bytes(good_backup.read_bytes())
    with sqlite3.connect(broken) as conn:
        conn.execute("PRAGMA foreign_keys=OFF")
        conn.execute(
            "INSERT INTO tenant_counters (tenant_id, version) VALUES (?, 0)",
            (uuid.UUID(int=99).hex,),
        )
    url = new_database_url(db_kind, tmp_path / "t", migrated=False)
    try:
        assert run_cli("server", "restore", str(broken), "--database-url", url) == 1
        err = capsys.readouterr().err
        assert "nothing was restored" in err or "cannot use the database" in err, err
        engine = make_engine(url)
        assert all(n == 0 for n in table_counts(engine).values())
        engine.dispose()
    finally:
        drop_database(url)
