"""Migrations build exactly the schema the models declare, on every engine, and run both ways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from agentdesk.models import Base
from agentdesk.models.db import make_engine
from agentdesk.models.migrate import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
)
from tests.databases import drop_database, new_database_url


@pytest.fixture
def empty_url(db_kind: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    url = new_database_url(db_kind, tmp_path, migrated=False)
    yield url
    drop_database(url)


def test_upgrade_from_empty_matches_models(empty_url: str) -> None:
    engine = make_engine(empty_url)
    assert current_revision(engine) is None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
    tables = set(inspect(engine).get_table_names())
    assert {"tickets", "time_entries", "tenant_counters", "running_timers"} <= tables
    engine.dispose()


def test_upgrade_is_idempotent_and_downgrade_is_clean(empty_url: str) -> None:
    engine = make_engine(empty_url)
    upgrade(engine)
    upgrade(engine)  # second start of a server: nothing to do
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    engine.dispose()


def test_a_current_database_is_not_handed_to_alembic(
    empty_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every desktop start opens its replica and every server start its database, nearly always
    already current: that costs one query, not Alembic's environment and every migration
    script read again (~30 ms a replica open; the fault simulation reopens replicas dozens of
    times a seed). An older database is still upgraded."""
    previous = ScriptDirectory.from_config(alembic_config()).get_revision("head").down_revision
    assert isinstance(previous, str)
    engine = make_engine(empty_url)
    upgrade(engine, previous)
    runs: list[str] = []
    real = command.upgrade

    def counted(config: Config, revision: str, **kw: Any) -> None:
        runs.append(revision)
        real(config, revision, **kw)

    monkeypatch.setattr(command, "upgrade", counted)
    upgrade(engine)
    assert (runs, current_revision(engine)) == (["head"], head_revision())
    upgrade(engine)
    upgrade(engine)
    assert runs == ["head"], "a current database went through Alembic again"
    engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
