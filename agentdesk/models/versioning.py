"""Stamping changed rows with the tenant's next version, inside the write transaction.

A session opts in with ``session.info["stamp_tenant"] = tenant_id`` (the server does; the desktop
replica never stamps: its versions come from the server). On the first flush of a *unit of work*
that changes a synced row, the tenant counter row is incremented with an ``UPDATE ... RETURNING``
- which locks it until commit - and every new or changed synced row of that unit gets that value.

A unit is normally the whole transaction: one transaction, one version. A push's group commit
(``agentdesk.server.sync_service``) runs many mutations in one transaction, each in its own
SAVEPOINT, and ends each mutation's unit with :func:`end_unit`, so each mutation still gets a
version of its own. That keeps pulls exact: the counter row stays locked from a transaction's
first version to its commit, so no other writer takes a version in between, and all of the
transaction's versions become visible at once when it commits; a cursor may stop between two of
them, never before one that has not committed. Because the lock is held, the later units'
versions are counted on in the session and the counter row is written once, just before the
commit (:func:`write_counter`), instead of once per unit. A SAVEPOINT that rolls back takes any
counter update in it with it, and the stamping state here is restored to what it was when the
savepoint began (so the number is simply taken again by the next unit: no gap, no stale
version).

A push group may also *defer* its flushes (:func:`stamp_unit`): each mutation's unit stamps the
rows it changed with its version in memory, and the group writes everything in one flush at the
end - one multi-row ``INSERT`` and one ``executemany`` ``UPDATE`` per table instead of a round
trip per row per mutation. A row stamped that way keeps its version until a later unit changes
it again (compared with the values it had when stamped), exactly as if each unit had flushed.

Each committed transaction is announced once, with its highest version: to PostgreSQL listeners
by a ``pg_notify`` sent just before the commit (delivered on commit, dropped on rollback), and to
the in-process listener after the commit.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, func, inspect, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Mapper, Session, SessionTransaction
from sqlalchemy.orm.util import identity_key

from .base import SyncedMixin
from .tenancy import TenantCounter

#: The version of the current unit of work (taken on its first stamping flush).
_VERSION_KEY = "stamp_version"
#: The highest version the transaction has taken: what its commit announces.
_TOP_KEY = "stamp_top"
#: The counter row's value as this transaction last wrote it (its lock is held from then on).
_WRITTEN_KEY = "stamp_written"
#: The counter row's value when :func:`hold_counter` locked it: a commit announces only a
#: version past it (a transaction that locked the row and then changed nothing announces none).
_BASE_KEY = "stamp_base"
_TENANT_KEY = "stamp_tenant"
#: Per open SAVEPOINT, the (unit, top, written) versions when it began, restored if it rolls
#: back.
_SAVED_KEY = "stamp_savepoints"
#: Rows stamped by :func:`stamp_unit` and not flushed yet: ``id(row) -> (row, values)``, the
#: row's column values when it was stamped.
_DEFERRED_KEY = "stamp_deferred"
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


_WRITE_COUNTER = (
    update(_COUNTERS)
    .where(_COUNTERS.c.tenant_id == bindparam("b_tenant"))
    .values(version=bindparam("b_version"))
)
_HOLD_COUNTER = (
    select(_COUNTERS.c.version)
    .where(_COUNTERS.c.tenant_id == bindparam("b_tenant"))
    .with_for_update()
)
_KEYS = (_VERSION_KEY, _TOP_KEY, _WRITTEN_KEY, _BASE_KEY)


def next_version(session: Session, tenant_id: uuid.UUID) -> int:
    """Take the tenant's next version (once per unit of work) and hold its row lock to commit."""
    held = session.info.get(_VERSION_KEY)
    if held is not None:
        return int(held)
    top = session.info.get(_TOP_KEY)
    if top is not None:
        # A later unit of a transaction that already holds the counter row's lock: nobody else
        # can take a version until it commits, so count on here; write_counter stores it.
        following = int(top) + 1
        session.info[_VERSION_KEY] = session.info[_TOP_KEY] = following
        return following
    version = _locked(session, _TAKE_VERSION, tenant_id)
    session.info[_VERSION_KEY] = session.info[_TOP_KEY] = session.info[_WRITTEN_KEY] = version
    _expire_counter(session, tenant_id)
    return version


def hold_counter(session: Session, tenant_id: uuid.UUID) -> None:
    """Lock the tenant's counter row now, before the transaction's first version; the units
    after it count on from the value read (one ``SELECT ... FOR UPDATE`` instead of the first
    unit's ``UPDATE``; :func:`write_counter` stores the last).

    For a writer that reads many rows before it writes and wants them read under the lock (the
    server's intake group: no other writer can change a synced row of the tenant until it
    commits, so everything it reads up front stays true). A transaction that then changes
    nothing leaves the counter as it was and announces nothing.
    """
    if session.info.get(_TOP_KEY) is not None:
        return  # the lock is held already
    version = _locked(session, _HOLD_COUNTER, tenant_id)
    for key in (_TOP_KEY, _WRITTEN_KEY, _BASE_KEY):
        session.info[key] = version


def _locked(session: Session, stmt: Any, tenant_id: uuid.UUID) -> int:
    """Run ``stmt`` (which locks the tenant's counter row and returns its version)."""
    params = {"b_tenant": tenant_id}
    version = session.execute(stmt, params).scalar_one_or_none()
    if version is None:
        # First write of a tenant: create the row without racing another first writer, then
        # take the lock through the same statement as always.
        dialect = session.get_bind().dialect.name
        insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert_fn(TenantCounter)
            .values(tenant_id=tenant_id, version=0)
            .on_conflict_do_nothing(index_elements=["tenant_id"])
        )
        version = session.execute(stmt, params).scalar_one()
    return int(version)


def _announced(session: Session) -> int | None:
    """The version a commit announces: the highest taken, if past the locked one."""
    top, base = session.info.get(_TOP_KEY), session.info.get(_BASE_KEY)
    if top is None or (base is not None and int(top) <= int(base)):
        return None
    return int(top)


def _expire_counter(session: Session, tenant_id: uuid.UUID) -> None:
    counter = session.identity_map.get(identity_key(TenantCounter, tenant_id))
    if counter is not None:
        session.expire(counter, ["version"])


def end_unit(session: Session) -> int | None:
    """End the current unit of work: the next stamping flush takes a new version (the
    transaction keeps the counter row's lock). Returns the version the unit stamped its rows
    with, ``None`` if it changed no synced row.

    Later units count their versions in the session: the transaction must call
    :func:`write_counter` before it commits, or commit with no SAVEPOINT open (the commit then
    writes the counter itself).
    """
    version = session.info.pop(_VERSION_KEY, None)
    return None if version is None else int(version)


def write_counter(session: Session) -> None:
    """Store the transaction's highest version in the counter row, if it counted past what it
    last wrote there. Call it outside any SAVEPOINT, after the last unit."""
    top, written = session.info.get(_TOP_KEY), session.info.get(_WRITTEN_KEY)
    if top is None or written is None or int(top) <= int(written):
        return
    tenant_id = session.info[_TENANT_KEY]
    session.execute(_WRITE_COUNTER, {"b_tenant": tenant_id, "b_version": int(top)})
    session.info[_WRITTEN_KEY] = top
    _expire_counter(session, tenant_id)


def transaction_version(session: Session) -> int | None:
    """The highest version the session's transaction has taken so far, or the counter's value
    when :func:`hold_counter` locked it (``None``: neither, so it does not hold the counter
    row's lock)."""
    top = session.info.get(_TOP_KEY)
    return None if top is None else int(top)


def forget_version(session: Session) -> None:
    """Drop the stamping state of a transaction that is being abandoned."""
    for key in _KEYS:
        session.info.pop(key, None)
    session.info.pop(_DEFERRED_KEY, None)


@cache
def _column_keys(mapper: Mapper[Any]) -> tuple[str, ...]:
    return tuple(attr.key for attr in mapper.column_attrs)


def _values(obj: object) -> tuple[Any, ...]:
    """A row's column values as loaded or set in the session (never loads anything)."""
    state = inspect(obj)
    loaded = state.dict
    return tuple(loaded.get(key) for key in _column_keys(state.mapper))


def _changed_rows(session: Session) -> tuple[list[object], bool]:
    """The rows the current unit changed, and whether it changed a row that is not synced.

    A row stamped by an earlier deferred unit and not flushed since counts only if its values
    moved since it was stamped; any other row counts if it is new or modified.
    """
    deferred: dict[int, tuple[object, tuple[Any, ...]]] = session.info.get(_DEFERRED_KEY) or {}
    new = session.new
    changed: list[object] = []
    unsynced = bool(session.deleted)
    for obj in (*new, *session.dirty):
        held = deferred.get(id(obj))
        if held is not None:
            if held[1] == _values(obj):
                continue
        elif obj not in new and not session.is_modified(obj):
            continue
        if isinstance(obj, SyncedMixin):
            changed.append(obj)
        else:
            unsynced = True
    return changed, unsynced


def _stamp(session: Session, tenant_id: uuid.UUID, changed: list[object]) -> None:
    version = next_version(session, tenant_id)
    for obj in changed:
        assert isinstance(obj, SyncedMixin)
        if obj.tenant_id != tenant_id:
            raise PermissionError("a unit of work may only change its own tenant's rows")
        obj.version = version


def stamp_unit(session: Session) -> bool:
    """Stamp what the current unit changed with its version, without flushing.

    For a caller that ends many units in one transaction and flushes once at the end (a push
    group): the rows keep the version stamped here unless a later unit changes them again.
    Returns False, stamping nothing, if the unit changed a row that is not synced (or deleted
    one): no stamp could tell later units whether such a row moved, so the caller flushes.
    """
    tenant_id = session.info[_TENANT_KEY]
    changed, unsynced = _changed_rows(session)
    if unsynced:
        return False
    if changed:
        with session.no_autoflush:  # taking the first version must not flush what it stamps
            _stamp(session, tenant_id, changed)
        deferred = session.info.setdefault(_DEFERRED_KEY, {})
        for obj in changed:
            deferred[id(obj)] = (obj, _values(obj))
    return True


def unit_changed_anything(session: Session) -> bool:
    """Whether the current unit has changes not yet stamped (or a row not synced)."""
    changed, unsynced = _changed_rows(session)
    return bool(changed) or unsynced


def current_version(session: Session, tenant_id: uuid.UUID) -> int:
    """The tenant's version: the committed one, or inside a stamping transaction its own."""
    counter = session.get(TenantCounter, tenant_id)
    version = counter.version if counter is not None else 0
    top = session.info.get(_TOP_KEY)
    if top is not None and session.info.get(_TENANT_KEY) == tenant_id:
        version = max(version, int(top))  # counted on in the session, not written yet
    return version


def enable_stamping(session: Session, tenant_id: uuid.UUID) -> None:
    session.info[_TENANT_KEY] = tenant_id


@event.listens_for(Session, "before_flush")
def _stamp_changed_rows(session: Session, _context: Any, _instances: Any) -> None:
    tenant_id = session.info.get(_TENANT_KEY)
    if tenant_id is None:
        return
    changed, _unsynced = _changed_rows(session)
    # Everything pending is written now, the deferred rows with the versions they have.
    session.info.pop(_DEFERRED_KEY, None)
    if changed:
        _stamp(session, tenant_id, changed)


# SQLAlchemy fires before_commit/after_commit/after_rollback for a SAVEPOINT's release and
# rollback too; ``get_nested_transaction()`` tells them apart (it is the savepoint itself while
# one is being released or rolled back, and None for the outermost transaction).


@event.listens_for(Session, "after_transaction_create")
def _remember_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested and _TENANT_KEY in session.info:
        saved = session.info.setdefault(_SAVED_KEY, {})
        deferred = session.info.get(_DEFERRED_KEY)
        saved[transaction] = (
            *(session.info.get(key) for key in _KEYS),
            None if deferred is None else dict(deferred),
        )


@event.listens_for(Session, "after_transaction_end")
def _drop_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        saved = session.info.get(_SAVED_KEY)
        if saved:
            saved.pop(transaction, None)


@event.listens_for(Session, "before_commit")
def _write_and_notify(session: Session) -> None:
    if session.get_nested_transaction() is not None or _TENANT_KEY not in session.info:
        return  # a savepoint's release (or a commit closing open savepoints: see end_unit)
    # Flush what is pending first, so a version taken by the commit's own flush is stored and
    # announced.
    session.flush()
    write_counter(session)
    top = _announced(session)
    if top is not None and session.get_bind().dialect.name == "postgresql":
        # Sent inside the transaction: PostgreSQL delivers it on commit and drops it on
        # rollback, so listeners never hear of a version that does not exist. Once per
        # transaction, however many units it stamped: listeners only need the highest.
        session.execute(
            select(func.pg_notify(NOTIFY_CHANNEL, f"{session.info[_TENANT_KEY]}:{top}"))
        )


@event.listens_for(Session, "after_commit")
def _announce_version(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint was released: nothing is visible to others yet
    top = _announced(session)
    forget_version(session)
    listener = session.info.get(LISTENER_KEY)
    if top is not None and listener is not None:
        listener(session.info[_TENANT_KEY], int(top))


@event.listens_for(Session, "after_rollback")
def _forget_version(session: Session) -> None:
    savepoint = session.get_nested_transaction()
    if savepoint is None:
        forget_version(session)
        return
    # The savepoint's counter update went with it: back to the state when it began.
    saved = session.info.get(_SAVED_KEY, {}).get(savepoint)
    if saved is None:
        forget_version(session)  # stamping was enabled inside the savepoint: nothing to keep
        return
    for key, value in zip((*_KEYS, _DEFERRED_KEY), saved, strict=True):
        if value is None:
            session.info.pop(key, None)
        else:
            session.info[key] = value
