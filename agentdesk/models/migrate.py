"""Schema migrations, run in-process: ``agentdesk server`` upgrades its database on start and the
desktop upgrades its replica, with no alembic.ini to ship."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


class SchemaTooNew(Exception):
    """The database (or a backup) was written by a newer AgentDesk: its schema revision is one
    this code does not know. Refused before anything touches it: Alembic cannot downgrade to a
    revision it has no script for, and this code would misread the newer tables."""

    def __init__(self, revision: str, what: str = "the database") -> None:
        from .. import __version__

        super().__init__(
            f"{what} has schema revision {revision}, made by a newer AgentDesk; this "
            f"AgentDesk {__version__} knows schema revisions up to {head_revision()}. "
            f"Run the newer AgentDesk (or a later one) on it"
        )
        self.revision = revision
        self.what = what


@cache
def _scripts() -> ScriptDirectory:
    """The migration scripts, read once per process: they ship with the code and cannot change
    under it, and reading them (every version file executed) cost a desktop ~30 ms each time
    it opened its replica, current or not."""
    return ScriptDirectory.from_config(alembic_config())


def known_revisions() -> frozenset[str]:
    return frozenset(rev.revision for rev in _scripts().walk_revisions())


def check_known(revision: str | None, what: str = "the database") -> None:
    """Raise :class:`SchemaTooNew` for a revision this code has no migration for."""
    if revision is not None and revision not in known_revisions():
        raise SchemaTooNew(revision, what)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` (idempotent: a current database is left alone).

    Raises :class:`SchemaTooNew`, changing nothing, on a database newer than this code."""
    config = alembic_config()
    with engine.connect() as connection, _foreign_keys_deferred(connection), connection.begin():
        current = MigrationContext.configure(connection).get_current_revision()
        check_known(current)
        if revision == "head" and current == head_revision():
            return  # the common case on every start: nothing to run, no Alembic environment
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        _check_foreign_keys(connection)


@contextmanager
def _foreign_keys_deferred(connection: Connection) -> Iterator[None]:
    """SQLite: foreign keys off while migrating. Batch mode rewrites a table by copying it and
    dropping the original, and with enforcement on that DROP deletes (ON DELETE CASCADE) or
    nulls (SET NULL) every child row: an upgrade would silently lose data. The pragma only
    takes effect outside a transaction, so it is set on the raw connection before BEGIN;
    :func:`_check_foreign_keys` then verifies the result before the commit."""
    if connection.dialect.name != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        raw.execute("PRAGMA foreign_keys=ON")


def _check_foreign_keys(connection: Connection) -> None:
    if connection.dialect.name == "sqlite":
        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(
                f"the migration broke {len(broken)} foreign key(s), e.g. "
                f"{tuple(broken[0])}; rolled back"
            )


def needs_upgrade(engine: Engine) -> bool:
    """Whether :func:`upgrade` would change the schema (for a backup first)."""
    current = current_revision(engine)
    check_known(current)
    return current != head_revision()


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.connect() as connection, _foreign_keys_deferred(connection), connection.begin():
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
        _check_foreign_keys(connection)


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def reload_needed(before: str | None, after: str | None) -> bool:
    """Whether rows written under revision ``before`` can lack what ``after`` adds.

    A desktop reloads its replica from the server after an upgrade (new columns start empty).
    A revision whose script sets ``REPLICA_RELOAD = False`` (new indexes, nothing a row holds)
    spares that reload; crossing any other revision needs it."""
    if before is None or before == after:
        return False
    script = ScriptDirectory.from_config(alembic_config())
    for rev in script.iterate_revisions(after, before):
        if rev.revision == before:
            continue
        if getattr(rev.module, "REPLICA_RELOAD", True):
            return True
    return False


def head_revision() -> str | None:
    return _scripts().get_current_head()
