"""Test databases on both engines.

SQLite always; PostgreSQL when ``AGENTDESK_TEST_DATABASE_URL`` is set (CI sets it). Rather than
skipping, the PostgreSQL parameter simply does not exist without the variable, so a plain
``make test`` runs everything it can and reports no skips. Each PostgreSQL test gets its own
database cloned from a migrated template (``CREATE DATABASE ... TEMPLATE``), so tests never see
each other's rows and never pay for migrations twice. SQLite likewise: each new database (and each
desk's replica file, :func:`new_replica_file`) is a copy of a file migrated once per process.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from agentdesk.models.db import make_engine, sqlite_url
from agentdesk.models.migrate import upgrade

PG_URL = os.environ.get("AGENTDESK_TEST_DATABASE_URL", "")
ENGINES = ["sqlite", "postgresql"] if PG_URL else ["sqlite"]

_template: str | None = None
_TEMPLATE_NAME = f"agentdesk_tmpl_{os.getpid()}"
#: Migrated SQLite files of this process, by kind ("server", "replica"), and their directory.
_sqlite_templates: dict[str, Path] = {}
_sqlite_template_dir: Path | None = None


def _admin_engine() -> Engine:
    return create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_size=1, max_overflow=0)


def _pg_url_for(database: str) -> str:
    return make_url(PG_URL).set(database=database).render_as_string(hide_password=False)


def _ensure_template() -> str:
    global _template
    if _template is None:
        admin = _admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{_TEMPLATE_NAME}"'))
            conn.execute(text(f'CREATE DATABASE "{_TEMPLATE_NAME}"'))
        admin.dispose()
        engine = make_engine(_pg_url_for(_TEMPLATE_NAME))
        upgrade(engine)
        engine.dispose()
        _template = _TEMPLATE_NAME
    return _template


def _sqlite_template(kind: str) -> Path:
    """A SQLite file migrated to head (a replica's also has the replica's own tables), made
    once per process: migrating costs a quarter of a second, a copy about a millisecond, and
    the fault simulation makes six fresh databases per seed. The engine is disposed before
    the file is copied, so its WAL is checkpointed into it and removed."""
    global _sqlite_template_dir
    if kind not in _sqlite_templates:
        if _sqlite_template_dir is None:
            _sqlite_template_dir = Path(tempfile.mkdtemp(prefix="agentdesk-templates-"))
        path = _sqlite_template_dir / f"{kind}.sqlite3"
        engine = make_engine(sqlite_url(path))
        upgrade(engine)
        if kind == "replica":
            from agentdesk.sync.replica import replica_metadata

            replica_metadata.create_all(engine)
        engine.dispose()
        assert not Path(f"{path}-wal").exists(), "the template's WAL was not checkpointed"
        _sqlite_templates[kind] = path
    return _sqlite_templates[kind]


def new_replica_file(path: Path) -> Path:
    """A desk's replica file at ``path``: the schema ``Replica`` would create, copied from the
    process's template. ``Replica(path)`` then finds it current (its upgrade and
    ``create_all`` change nothing) and adds its state row with a new client id, as on a
    fresh file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_sqlite_template("replica"), path)
    return path


def new_database_url(kind: str, tmp_path: Path, *, migrated: bool = True) -> str:
    """A fresh, empty database of ``kind``, migrated to head unless ``migrated=False``."""
    if kind == "sqlite":
        path = tmp_path / f"test-{uuid.uuid4().hex[:8]}.sqlite3"
        if migrated:
            tmp_path.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(_sqlite_template("server"), path)
        return sqlite_url(path)
    name = f"agentdesk_t_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        if migrated:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{_ensure_template()}"'))
        else:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return _pg_url_for(name)


def drop_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
    admin.dispose()


def drop_template() -> None:
    if _template is not None:
        drop_database(_pg_url_for(_template))
    if _sqlite_template_dir is not None:
        shutil.rmtree(_sqlite_template_dir, ignore_errors=True)
