"""Migrations build exactly the schema the models declare, on every engine, and run both ways."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from agentdesk.models import Base
from agentdesk.models.db import make_engine
from agentdesk.models.migrate import current_revision, downgrade, head_revision, upgrade
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


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+pysqlite:///{tmp_path / 'x.sqlite3'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()
