"""Alembic environment: always run through :func:`agentdesk.models.migrate.upgrade`, which hands
over an open connection, so the same code migrates SQLite files and PostgreSQL."""

from __future__ import annotations

from alembic import context

from agentdesk.models import Base

config = context.config
connection = config.attributes.get("connection")
if connection is None:  # pragma: no cover - guarded by migrate.upgrade
    raise RuntimeError("run migrations through agentdesk.models.migrate, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite ALTER TABLE via copy
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
