"""Stamping changed rows with the tenant's next version, inside the write transaction.

A session opts in with ``session.info["stamp_tenant"] = tenant_id`` (the server does; the desktop
replica never stamps: its versions come from the server). On the first flush that changes a
synced row, the tenant counter row is incremented with an ``UPDATE ... RETURNING`` - which
locks it until commit - and every new or changed synced row of that transaction gets that value.
One transaction, one version: a pull cursor can stop between transactions, never inside one.
"""

from __future__ import annotations

import uuid
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from .base import SyncedMixin
from .tenancy import TenantCounter

_VERSION_KEY = "stamp_version"
_TENANT_KEY = "stamp_tenant"
#: ``session.info`` key (set through ``sessionmaker(info=...)``) of a callable
#: ``(tenant_id, version) -> None`` told after each commit that took a version.
LISTENER_KEY = "version_listener"
#: PostgreSQL channel on which every committed version is announced, to every server process.
NOTIFY_CHANNEL = "agentdesk_versions"


_COUNTERS = cast(Table, TenantCounter.__table__)
#: Core on the table, built once: it runs in every write transaction, and the ORM-enabled
#: UPDATE (statement construction, session synchronisation) cost more than the UPDATE itself.
#: A counter object loaded in the same session is expired instead, so it cannot go stale.
_TAKE_VERSION = (
    update(_COUNTERS)
    .where(_COUNTERS.c.tenant_id == bindparam("b_tenant"))
    .values(version=_COUNTERS.c.version + 1)
    .returning(_COUNTERS.c.version)
)


def next_version(session: Session, tenant_id: uuid.UUID) -> int:
    """Take the tenant's next version (once per transaction) and hold its row lock to commit."""
    held = session.info.get(_VERSION_KEY)
    if held is not None:
        return int(held)
    stmt, params = _TAKE_VERSION, {"b_tenant": tenant_id}
    version = session.execute(stmt, params).scalar_one_or_none()
    if version is None:
        # First write of a tenant: create the row without racing another first writer, then
        # take the lock through the same UPDATE as always.
        dialect = session.get_bind().dialect.name
        insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert_fn(TenantCounter)
            .values(tenant_id=tenant_id, version=0)
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        version = session.execute(stmt, params).scalar_one()
    session.info[_VERSION_KEY] = version
    counter = session.identity_map.get(identity_key(TenantCounter, tenant_id))
    if counter is not None:
        session.expire(counter, ["version"])
    if session.get_bind().dialect.name == "postgresql":
        # Sent inside the transaction: PostgreSQL delivers it on commit and drops it on
        # rollback, so listeners never hear of a version that does not exist.
        session.execute(
            select(func.pg_notify(NOTIFY_CHANNEL, f"{tenant_id}:{version}"))
        )
    return int(version)


def forget_version(session: Session) -> None:
    """After rolling back a savepoint that took a version: the counter update went with it."""
    session.info.pop(_VERSION_KEY, None)


def current_version(session: Session, tenant_id: uuid.UUID) -> int:
    counter = session.get(TenantCounter, tenant_id)
    return counter.version if counter is not None else 0


def enable_stamping(session: Session, tenant_id: uuid.UUID) -> None:
    session.info[_TENANT_KEY] = tenant_id


@event.listens_for(Session, "before_flush")
def _stamp_changed_rows(session: Session, _context: Any, _instances: Any) -> None:
    tenant_id = session.info.get(_TENANT_KEY)
    if tenant_id is None:
        return
    changed = [
        obj
        for obj in (*session.new, *session.dirty)
        if isinstance(obj, SyncedMixin) and (obj in session.new or session.is_modified(obj))
    ]
    if not changed:
        return
    version = next_version(session, tenant_id)
    for obj in changed:
        if obj.tenant_id != tenant_id:
            raise PermissionError("a unit of work may only change its own tenant's rows")
        obj.version = version


@event.listens_for(Session, "after_commit")
def _announce_version(session: Session) -> None:
    version = session.info.pop(_VERSION_KEY, None)
    listener = session.info.get(LISTENER_KEY)
    if version is not None and listener is not None:
        listener(session.info[_TENANT_KEY], int(version))


@event.listens_for(Session, "after_rollback")
def _forget_version(session: Session) -> None:
    session.info.pop(_VERSION_KEY, None)
