"""Test databases on both engines.

SQLite always; PostgreSQL when ``AGENTDESK_TEST_DATABASE_URL`` is set (CI sets it). Rather than
skipping, the PostgreSQL parameter simply does not exist without the variable, so a plain
``make test`` runs everything it can and reports no skips. Each PostgreSQL test gets its own
database cloned from a migrated template (``CREATE DATABASE ... TEMPLATE``), so tests never see
each other's rows and never pay for migrations twice.
"""

from __future__ import annotations

import os
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


def new_database_url(kind: str, tmp_path: Path, *, migrated: bool = True) -> str:
    """A fresh, empty database of ``kind``, migrated to head unless ``migrated=False``."""
    if kind == "sqlite":
        url = sqlite_url(tmp_path / f"test-{uuid.uuid4().hex[:8]}.sqlite3")
        if migrated:
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
        return url
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
