"""The desktop's local replica: a SQLite file with the shared tables, an outbox of mutations the
server has not acknowledged yet, and the undo log that lets a pull rebase them.

The model is Replicache's: what the UI reads is *server state at the cursor* with the pending
mutations applied on top. A mutation runs optimistically (the same mutator the server runs) and
is appended to the outbox in one transaction, with the pre-image of every row it touched. A
pull reverts the pending mutations from those pre-images, writes the server's rows, drops what
the server has acknowledged and replays the rest, again in one transaction, so the UI never sees
a half-applied rebase and an outbox entry is never lost nor applied twice.

Replica-only tables live in their own :class:`~sqlalchemy.MetaData`, so the server's Alembic
migrations never see (or try to drop) them.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from ..models import Role, SyncedMixin, Tenant, User, utcnow
from ..models.base import UTCDateTime
from ..models.db import make_engine, make_session_factory, sqlite_url
from ..models.migrate import current_revision, reload_needed, upgrade
from .mutators import MutationContext, MutationRejected, run_mutation
from .protocol import Change, Mutation, PullResponse, Rejection
from .replica_upsert import replace_rows
from .rows import (
    MODELS_BY_TABLE,
    SYNCED_MODELS,
    TABLE_ORDER,
    _to_json,
    wire_to_values,
)
from .server_url import normalise_url

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- replica-only tables

replica_metadata = MetaData()

outbox_table = Table(
    "outbox",
    replica_metadata,
    Column("mutation_id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(64), nullable=False),
    Column("args", JSON, nullable=False),
    Column("client_time", UTCDateTime, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

undo_table = Table(
    "undo_log",
    replica_metadata,
    Column("mutation_id", BigInteger, primary_key=True, autoincrement=False),
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("table", String(64), nullable=False),
    Column("row_id", Uuid, nullable=False),
    # SQL NULL (not JSON null) means "the row did not exist before the mutation".
    Column("preimage", JSON(none_as_null=True), nullable=True),
)

state_table = Table(
    "sync_state",
    replica_metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("client_id", Uuid, nullable=False),
    Column("server_url", Text, nullable=True),
    Column("tenant_id", Uuid, nullable=True),
    Column("user_id", Uuid, nullable=True),
    Column("username", String(64), nullable=True),
    Column("role", String(32), nullable=True),
    Column("cursor", BigInteger, nullable=False, default=0),
    Column("last_mutation_id", BigInteger, nullable=False, default=0),
    Column("rejections_after", BigInteger, nullable=False, default=0),
    Column("last_sync_at", UTCDateTime, nullable=True),
)

#: Set in a write transaction's ``Session.info`` when it changed :data:`rejection_table`: the
#: in-memory copy of the refusals is then read again before the commit.
_REJECTIONS_WRITTEN = "agentdesk.rejections_written"

rejection_table = Table(
    "rejections",
    replica_metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("mutation_id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(64), nullable=False),
    Column("code", String(64), nullable=False),
    Column("message", Text, nullable=False),
    Column("field", String(200), nullable=True),
    Column("seen", Boolean, nullable=False, default=False),
    Column("received_at", UTCDateTime, nullable=False),
)

_STATE_ID = 1

#: Replica facts that outlive a session (a key each); a table of its own, so that replicas
#: made before it existed get it from ``create_all`` without a migration.
meta_table = Table(
    "replica_meta",
    replica_metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)
#: Set when opening the replica upgraded its schema: rows pulled under the old schema lack what
#: the new one adds, so the replica reloads from the server once its outbox is drained.
SCHEMA_RESET_KEY = "schema_reset"


# --------------------------------------------------------------------------- public types


class ReplicaError(Exception):
    """Base of the replica's own refusals (not rule refusals: those are MutationRejected)."""


class NotConfigured(ReplicaError):
    """Nobody has signed in on this replica yet, so there is no tenant or actor to act as."""


class ReplicaBound(ReplicaError):
    """The replica holds unsent changes of another user or server: signing in as someone else
    would either lose them or push them under the wrong name."""


class StaleCursor(ReplicaError):
    """A pull page was fetched for a cursor the replica has since moved past."""


@dataclass(frozen=True)
class ReplicaState:
    client_id: uuid.UUID
    server_url: str | None
    tenant_id: uuid.UUID | None
    user_id: uuid.UUID | None
    username: str | None
    role: Role | None
    cursor: int
    last_mutation_id: int
    rejections_after: int
    last_sync_at: datetime | None

    @property
    def configured(self) -> bool:
        return self.tenant_id is not None and self.user_id is not None and self.role is not None


@dataclass(frozen=True)
class RejectionInfo:
    #: Mutation ids are per client id, and the replica may have changed its client id.
    client_id: uuid.UUID
    mutation_id: int
    name: str
    code: str
    message: str
    field: str | None
    seen: bool
    received_at: datetime


@dataclass(frozen=True)
class AppliedPage:
    """What one committed :meth:`Replica.apply_pull` (or :meth:`Replica.reset`) changed, for
    views that update rows in place rather than re-read everything."""

    #: The replica's cursor before the page, and after it (0 after a reset).
    since: int
    cursor: int
    #: The replica started over: every synced row may have changed or gone.
    reset: bool
    #: The server's rows the page wrote, tombstones included.
    changes: tuple[Change, ...]
    #: The local mutations that were pending when the page was applied. Their optimistic
    #: effects were undone and replayed (or dropped, once acknowledged or refused), so the rows
    #: they touch may have changed without being among ``changes``: a refused mutation is
    #: undone locally with no server row to say so.
    rebased: tuple[Mutation, ...]
    rejections: tuple[Rejection, ...]

    @cached_property
    def changed(self) -> Mapping[str, frozenset[uuid.UUID]]:
        """Per table, the ids of the rows written (not tombstones)."""
        return _ids_by_table(c for c in self.changes if not c.deleted)

    @cached_property
    def deleted(self) -> Mapping[str, frozenset[uuid.UUID]]:
        """Per table, the ids of the rows the server deleted (tombstones)."""
        return _ids_by_table(c for c in self.changes if c.deleted)


def _ids_by_table(changes: Iterable[Change]) -> Mapping[str, frozenset[uuid.UUID]]:
    ids: dict[str, set[uuid.UUID]] = {}
    for change in changes:
        ids.setdefault(change.table, set()).add(change.id)
    return MappingProxyType({table: frozenset(found) for table, found in ids.items()})


#: Told after each committed change: "mutate", "pull" or "reset".
Listener = Callable[[str], None]


# --------------------------------------------------------------------------- pre-images


def _read_image(conn: Connection, table_name: str, row_id: uuid.UUID) -> dict[str, Any] | None:
    """The row as stored right now, in wire form (so :func:`wire_to_values` restores it)."""
    table = MODELS_BY_TABLE[table_name].__table__  # type: ignore[attr-defined]
    row = conn.execute(select(table).where(table.c.id == row_id)).mappings().first()
    if row is None:
        return None
    return {
        "id": str(row["id"]),
        "version": int(row["version"]),
        "deleted": bool(row["deleted"]),
        "values": {
            key: _to_json(value)
            for key, value in row.items()
            if key not in ("id", "version", "deleted")
        },
    }


def _refuse_bulk_writes(state: ORMExecuteState) -> None:
    """Mutators change rows through the unit of work only: a bulk UPDATE/DELETE/INSERT
    bypasses ``before_flush``, so the replica could not undo it on rebase."""
    if state.is_update or state.is_delete or state.is_insert:
        raise RuntimeError(
            "a mutator must change rows through the ORM unit of work, not bulk "
            "statements: the replica could not undo them"
        )


class _Capture:
    """Records the first pre-image of every synced row a mutation inserts, changes or deletes.

    Hooked on ``before_flush``, it reads the row through Core on the flush's own connection,
    i.e. exactly what is in the database before this flush writes; later flushes of the same
    mutation leave the first image alone, so the image is the state before the mutation.
    """

    def __init__(self) -> None:
        self.images: dict[tuple[str, uuid.UUID], dict[str, Any] | None] = {}

    def before_flush(self, session: Session, _context: Any, _instances: Any) -> None:
        conn = session.connection()
        dirty = set(session.dirty)
        for obj in (*session.new, *dirty, *session.deleted):
            if not isinstance(obj, SyncedMixin):
                continue
            if obj in dirty and not session.is_modified(obj):
                continue
            key = (type(obj).__tablename__, obj.id)  # type: ignore[attr-defined]
            if key not in self.images:
                self.images[key] = _read_image(conn, key[0], key[1])


# --------------------------------------------------------------------------- the replica


class Replica:
    """One desktop's replica file. Every method is safe from any thread: each write is one
    SQLite ``BEGIN IMMEDIATE`` transaction, so the GUI thread's :meth:`mutate` and the sync
    thread's :meth:`apply_pull` queue on the write lock instead of interleaving."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._engine: Engine = make_engine(sqlite_url(self.path))
        event.listen(self._engine, "connect", _replica_pragmas)
        before = current_revision(self._engine)
        upgrade(self._engine)
        after = current_revision(self._engine)
        replica_metadata.create_all(self._engine)
        self._read_sessions: sessionmaker[Session] = make_session_factory(self._engine, write=False)
        self._listeners: list[Listener] = []
        self._listeners_lock = threading.Lock()
        self._write_lock = _FairLock()
        #: The state row, the outbox's size and the stored refusals as of the last committed
        #: write. Every write is a :meth:`_transaction`, which refreshes them before it commits
        #: (under the write lock), so :attr:`state`, :meth:`pending_count` and
        #: :meth:`rejections` are memory reads: the UI asks often (the refusals at every ticket
        #: shown while changes await an answer), and a SELECT from the GUI thread could wait
        #: behind a pull page's checkpoint. The copy is this object's: the refusals are read
        #: again by its writes that store, mark or wipe them, and by every pull page carrying
        #: any (what another object on the same file stored shows up then).
        self._snapshot: tuple[ReplicaState, int, tuple[RejectionInfo, ...]] | None = None
        with self._transaction() as s:
            if s.execute(select(state_table.c.id)).first() is None:
                s.execute(
                    insert(state_table).values(
                        id=_STATE_ID,
                        client_id=uuid.uuid4(),
                        cursor=0,
                        last_mutation_id=0,
                        rejections_after=0,
                    )
                )
            if reload_needed(before, after):
                log.info(
                    "replica schema upgraded %s -> %s; it reloads from the server once "
                    "its unsent work is acknowledged",
                    before,
                    after,
                )
                s.execute(delete(meta_table).where(meta_table.c.key == SCHEMA_RESET_KEY))
                s.execute(
                    insert(meta_table).values(key=SCHEMA_RESET_KEY, value=f"{before}->{after}")
                )

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- listeners

    def add_listener(self, listener: Listener) -> None:
        """``listener(kind)`` runs after each committed change, on the thread that made it
        (the sync engine nudges itself on "mutate"; views refresh on any)."""
        with self._listeners_lock:
            self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        with self._listeners_lock, suppress(ValueError):
            self._listeners.remove(listener)

    def _announce(self, kind: str) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(kind)
            except Exception:  # a broken view must not undo a committed change
                log.exception("replica listener failed")

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def _transaction(self, *, foreign_keys: bool = True, bulk: bool = False) -> Iterator[Session]:
        """One write unit of work under ``BEGIN IMMEDIATE``.

        ``foreign_keys=False`` is for applying server state: pull pages are cut at version
        boundaries, not at foreign-key boundaries, so a page may bring a child whose parent's
        newer version is on the next page. The server guarantees integrity at its head; the
        replica is a projection of it, so it tolerates the transient gap. The pragma can only
        change outside a transaction, hence the raw connection dance.

        ``bulk=True`` (a large pull page) lets the write-ahead log grow to
        :data:`BULK_WAL_PAGES` before its commit checkpoints it: a first sync commits page after
        page into the same index pages, and checkpointing every 4 MB copied them back over and
        over (a fifth of the time spent applying). Durability is the same either way.
        """
        with self._write_lock, self._engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            if not foreign_keys:
                raw.execute("PRAGMA foreign_keys=OFF")
            if bulk:
                raw.execute(f"PRAGMA wal_autocheckpoint={BULK_WAL_PAGES}")
            try:
                conn.execution_options(sqlite_begin="immediate")
                session = Session(bind=conn, expire_on_commit=False)
                try:
                    yield session
                    session.flush()
                    before = self._snapshot
                    snapshot = (
                        self._state_in(session),
                        self._outbox_size(session),
                        self._rejections_in(session)
                        if before is None or session.info.get(_REJECTIONS_WRITTEN)
                        else before[2],
                    )
                    session.commit()
                    self._snapshot = snapshot
                except BaseException:
                    session.rollback()
                    raise
                finally:
                    session.close()
            finally:
                if not foreign_keys:
                    raw.execute("PRAGMA foreign_keys=ON")
                if bulk:
                    raw.execute(f"PRAGMA wal_autocheckpoint={WAL_PAGES}")

    def _checkpoint(self) -> None:
        with self._write_lock, self._engine.connect() as conn:
            raw = conn.connection.driver_connection
            assert raw is not None
            raw.execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A read-only session for views and tests. Writes go through :meth:`mutate` only: a
        direct write would bypass the outbox and be silently undone by the next pull."""
        session = self._read_sessions()

        def refuse(*_args: Any) -> None:
            raise ReplicaError("the replica is read-only here; change data with Replica.mutate")

        event.listen(session, "before_flush", refuse)
        try:
            yield session
        finally:
            # close(), not rollback(): it ends the read transaction without expiring what was
            # loaded, so rows read here stay usable (detached) by the caller.
            session.close()

    # ----------------------------------------------------------------- state

    @staticmethod
    def _state_in(session: Session) -> ReplicaState:
        row = session.execute(select(state_table).where(state_table.c.id == _STATE_ID)).one()
        return ReplicaState(
            client_id=row.client_id,
            server_url=row.server_url,
            tenant_id=row.tenant_id,
            user_id=row.user_id,
            username=row.username,
            role=Role(row.role) if row.role else None,
            cursor=int(row.cursor),
            last_mutation_id=int(row.last_mutation_id),
            rejections_after=int(row.rejections_after),
            last_sync_at=row.last_sync_at,
        )

    @staticmethod
    def _outbox_size(session: Session) -> int:
        return int(session.scalar(select(func.count()).select_from(outbox_table)) or 0)

    @property
    def state(self) -> ReplicaState:
        """The replica's state as of its last committed write (no I/O)."""
        snapshot = self._snapshot
        assert snapshot is not None  # set by the constructor's first transaction
        return snapshot[0]

    def configure(
        self,
        *,
        server_url: str,
        tenant_id: uuid.UUID,
        user_id: uuid.UUID,
        username: str,
        role: Role | str,
        timezone: str | None = None,
    ) -> ReplicaState:
        """Bind the replica to a signed-in user (after a login).

        Signing in again as the same user on the same server keeps everything. Another user,
        tenant or server gets a fresh replica (new client id: the server ties a client id to
        one user), but only when nothing is waiting to be sent; otherwise :class:`ReplicaBound`.
        ``timezone`` is the team's (entitlement years are counted in it); without it the
        replica's tenant row keeps the model default until told.
        """
        server_url = normalise_url(server_url)
        with self._transaction(foreign_keys=False) as s:
            st = self._state_in(s)
            same = (st.server_url, st.tenant_id, st.user_id) == (server_url, tenant_id, user_id)
            bound = st.tenant_id is not None or st.server_url is not None
            if bound and not same:
                pending = s.scalar(select(func.count()).select_from(outbox_table)) or 0
                if pending:
                    raise ReplicaBound(
                        f"{pending} change(s) of {st.username or 'another user'} at "
                        f"{st.server_url} have not been sent yet"
                    )
                self._wipe_synced(s)
                s.execute(delete(undo_table))
                s.execute(delete(rejection_table))
                s.info[_REJECTIONS_WRITTEN] = True
                s.execute(
                    update(state_table)
                    .where(state_table.c.id == _STATE_ID)
                    .values(
                        client_id=uuid.uuid4(),
                        cursor=0,
                        last_mutation_id=0,
                        rejections_after=0,
                        last_sync_at=None,
                    )
                )
            s.execute(
                update(state_table)
                .where(state_table.c.id == _STATE_ID)
                .values(
                    server_url=server_url,
                    tenant_id=tenant_id,
                    user_id=user_id,
                    username=username,
                    role=Role(role).value,
                )
            )
            # Synced rows refer to their tenant; tenants themselves are not synced.
            tenant = s.get(Tenant, tenant_id)
            if tenant is None:
                tenant = Tenant(id=tenant_id, name="")
                if timezone:
                    tenant.timezone = timezone
                s.add(tenant)
            elif timezone:
                tenant.timezone = timezone
            s.flush()
            state = self._state_in(s)
        return state

    # ----------------------------------------------------------------- reads

    def schema_reset_pending(self) -> str | None:
        """``"old->new"`` while rows pulled under an older schema still await a reload."""
        with self.session() as s:
            value = s.scalar(select(meta_table.c.value).where(meta_table.c.key == SCHEMA_RESET_KEY))
            return str(value) if value is not None else None

    def pending_count(self) -> int:
        """Mutations waiting to be pushed, as of the last committed write (no I/O)."""
        snapshot = self._snapshot
        assert snapshot is not None
        return snapshot[1]

    def outbox_batch(self, limit: int, after: int | None = None) -> list[Mutation]:
        """The oldest pending mutations with ids above ``after`` (default: the acknowledged
        id), in id order, ready to push."""
        with self.session() as s:
            if after is None:
                after = self._state_in(s).last_mutation_id
            rows = s.execute(
                select(outbox_table)
                .where(outbox_table.c.mutation_id > after)
                .order_by(outbox_table.c.mutation_id)
                .limit(limit)
            ).all()
        return [_mutation(r) for r in rows]

    def outbox_ids(self) -> list[int]:
        with self.session() as s:
            ids = s.scalars(select(outbox_table.c.mutation_id).order_by(outbox_table.c.mutation_id))
            return list(ids)

    def rejections(self, *, unseen_only: bool = False) -> list[RejectionInfo]:
        """Mutations the server refused, oldest first (for the UI to surface), as of the last
        committed write (no I/O)."""
        snapshot = self._snapshot
        assert snapshot is not None
        return [r for r in snapshot[2] if not (unseen_only and r.seen)]

    @staticmethod
    def _rejections_in(session: Session) -> tuple[RejectionInfo, ...]:
        rows = session.execute(
            select(rejection_table).order_by(
                rejection_table.c.received_at, rejection_table.c.mutation_id
            )
        ).all()
        return tuple(
            RejectionInfo(
                client_id=r.client_id,
                mutation_id=r.mutation_id,
                name=r.name,
                code=r.code,
                message=r.message,
                field=r.field,
                seen=r.seen,
                received_at=r.received_at,
            )
            for r in rows
        )

    def unseen_rejections(self) -> list[RejectionInfo]:
        return self.rejections(unseen_only=True)

    def mark_rejections_seen(self, seen: Sequence[RejectionInfo] | None = None) -> None:
        """The agent has read these refusals (all of them when ``seen`` is None)."""
        with self._transaction() as s:
            s.info[_REJECTIONS_WRITTEN] = True
            if seen is None:
                s.execute(update(rejection_table).values(seen=True))
                return
            for r in seen:
                s.execute(
                    update(rejection_table)
                    .where(
                        rejection_table.c.client_id == r.client_id,
                        rejection_table.c.mutation_id == r.mutation_id,
                    )
                    .values(seen=True)
                )

    # ----------------------------------------------------------------- mutate

    def mutate(
        self, name: str, args: Mapping[str, Any], *, client_time: datetime | None = None
    ) -> int:
        """Apply a mutation locally and queue it for the server, atomically; returns its id.

        A local refusal (:class:`MutationRejected`) writes nothing and propagates: the UI shows
        it at once, and the server never hears of it.
        """
        payload: dict[str, Any] = to_jsonable_python(dict(args))
        now = utcnow()
        client_time = client_time or now
        with self._transaction() as s:
            st = self._state_in(s)
            _require_configured(st)
            last_queued = s.scalar(select(func.max(outbox_table.c.mutation_id))) or 0
            mutation_id = max(st.last_mutation_id, int(last_queued)) + 1
            self._run_captured(s, st, mutation_id, name, payload, now, client_time)
            s.execute(
                insert(outbox_table).values(
                    mutation_id=mutation_id,
                    name=name,
                    args=payload,
                    client_time=client_time,
                    created_at=now,
                )
            )
        log.debug("queued mutation %d (%s)", mutation_id, name)
        self._announce("mutate")
        return mutation_id

    def _run_captured(
        self,
        session: Session,
        st: ReplicaState,
        mutation_id: int,
        name: str,
        args: Mapping[str, Any],
        now: datetime,
        id_time: datetime | None,
    ) -> None:
        """Run one mutation exactly as the server would (through ``run_mutation``) inside a
        savepoint, then write its undo log. On refusal the savepoint is rolled back and
        :class:`MutationRejected` raised, leaving no trace."""
        if st.tenant_id is None or st.user_id is None or st.role is None:
            raise NotConfigured("sign in first: the replica does not know who is working")
        capture = _Capture()
        event.listen(session, "before_flush", capture.before_flush)
        event.listen(session, "do_orm_execute", _refuse_bulk_writes)
        savepoint = session.begin_nested()
        try:
            ctx = MutationContext(
                session=session,
                tenant_id=st.tenant_id,
                actor_id=st.user_id,
                actor_role=st.role,
                now=now,
                client_id=st.client_id,
                mutation_id=mutation_id,
                authoritative=False,
                id_time=id_time,
            )
            run_mutation(ctx, name, args)
            session.flush()
            savepoint.commit()
        except MutationRejected:
            savepoint.rollback()
            raise
        except IntegrityError as exc:
            savepoint.rollback()
            log.debug("mutation %d hit a local constraint: %s", mutation_id, exc.orig)
            raise MutationRejected(
                "conflict", "the change conflicts with data changed meanwhile"
            ) from None
        finally:
            event.remove(session, "before_flush", capture.before_flush)
            event.remove(session, "do_orm_execute", _refuse_bulk_writes)
        if capture.images:
            session.execute(
                insert(undo_table),
                [
                    {
                        "mutation_id": mutation_id,
                        "seq": seq,
                        "table": table,
                        "row_id": row_id,
                        "preimage": image,
                    }
                    for seq, ((table, row_id), image) in enumerate(capture.images.items())
                ],
            )

    # ----------------------------------------------------------------- rebase

    def _revert_pending(self, session: Session) -> None:
        """Undo every pending mutation's optimistic effects, newest first."""
        conn = session.connection()
        entries = conn.execute(
            select(undo_table).order_by(undo_table.c.mutation_id.desc(), undo_table.c.seq.desc())
        ).all()
        for entry in entries:
            model = MODELS_BY_TABLE.get(entry.table)
            if model is None:
                continue
            table = model.__table__  # type: ignore[attr-defined]
            if entry.preimage is None:
                conn.execute(delete(table).where(table.c.id == entry.row_id))
            else:
                values = wire_to_values(entry.table, entry.preimage)
                conn.execute(insert(table).prefix_with("OR REPLACE").values(**values))
        conn.execute(delete(undo_table))
        session.expire_all()

    def _replay_pending(self, session: Session, st: ReplicaState) -> None:
        """Re-run the still-pending mutations on top of fresh server state. One that no
        longer applies locally keeps its outbox entry with no local effect: the server has
        the final word, and its verdict comes back as a rejection or as rows."""
        pending = session.execute(select(outbox_table).order_by(outbox_table.c.mutation_id)).all()
        for entry in pending:
            try:
                self._run_captured(
                    session,
                    st,
                    entry.mutation_id,
                    entry.name,
                    entry.args,
                    entry.created_at,
                    entry.client_time,
                )
            except MutationRejected as exc:
                log.debug(
                    "pending mutation %d (%s) no longer applies locally: %s",
                    entry.mutation_id,
                    entry.name,
                    exc.code,
                )

    def _wipe_synced(self, session: Session) -> None:
        conn = session.connection()
        for model in reversed(SYNCED_MODELS):
            conn.execute(delete(model.__table__))  # type: ignore[attr-defined]
        session.expire_all()

    def _upsert(self, session: Session, resp: PullResponse) -> None:
        conn = session.connection()
        by_table: dict[str, list[dict[str, Any]]] = {}
        unknown: set[str] = set()
        for change in sorted(
            resp.changes, key=lambda c: (TABLE_ORDER.get(c.table, 1 << 30), c.version)
        ):
            if change.table not in MODELS_BY_TABLE:
                unknown.add(change.table)
                continue
            by_table.setdefault(change.table, []).append(
                {
                    "id": change.id,
                    "version": change.version,
                    "deleted": change.deleted,
                    "values": change.values,
                }
            )
        if unknown:
            log.warning("ignoring changes to tables this version does not know: %s", unknown)
        for table_name, wires in by_table.items():
            # OR REPLACE, not ON CONFLICT(id): a stale local row may hold a unique value (a
            # live timer, a username) that the server has since moved to this row; the stale
            # row is replaced here and comes back in its newer version later in the pull.
            replace_rows(conn, table_name, wires)

    def apply_pull(self, resp: PullResponse, *, since: int | None = None) -> AppliedPage:
        """Rebase on one pull page, in one transaction (see the module docstring); returns
        what it changed.

        ``since`` is the cursor the page was requested with; a page for another cursor is
        refused (:class:`StaleCursor`) rather than applied out of order.
        """
        now = utcnow()
        bulk = len(resp.changes) >= BULK_PAGE_ROWS
        with self._transaction(foreign_keys=False, bulk=bulk) as s:
            st = self._state_in(s)
            _require_configured(st)
            if since is not None and since != st.cursor:
                raise StaleCursor(f"page for cursor {since}, replica is at {st.cursor}")
            # Acknowledgements count from the last page only: an earlier page's
            # last_mutation_id may cover mutations whose rows are still on later pages, and
            # dropping their optimistic copies now would hide the desk's own work until then.
            last_acked = st.last_mutation_id if resp.has_more else resp.last_mutation_id
            acked = s.scalar(
                select(func.count())
                .select_from(outbox_table)
                .where(outbox_table.c.mutation_id <= last_acked)
            )
            rebase = bool(resp.changes) or resp.reset or bool(acked)
            rebased: tuple[Mutation, ...] = ()
            if rebase:
                rebased = tuple(
                    _mutation(r)
                    for r in s.execute(select(outbox_table).order_by(outbox_table.c.mutation_id))
                )
                self._revert_pending(s)
                if resp.reset:
                    self._wipe_synced(s)
                self._upsert(s, resp)
                s.execute(delete(outbox_table).where(outbox_table.c.mutation_id <= last_acked))
            self._store_rejections(s, st, resp, now)
            role = st.role
            if st.user_id is not None and any(
                c.table == "users" and c.id == st.user_id for c in resp.changes
            ):
                me = s.get(User, st.user_id)
                if me is not None:
                    role = me.role
            s.execute(
                update(state_table)
                .where(state_table.c.id == _STATE_ID)
                .values(
                    cursor=0 if resp.reset else resp.cursor,
                    last_mutation_id=max(st.last_mutation_id, last_acked),
                    rejections_after=max(
                        st.rejections_after,
                        last_acked,
                        *(r.mutation_id for r in resp.rejections),
                    ),
                    role=role.value if role is not None else None,
                    last_sync_at=now,
                )
            )
            if rebase:
                s.expire_all()
                self._replay_pending(s, self._state_in(s))
        if bulk and not resp.has_more:
            # The pull is done: checkpoint the grown log now, on this (sync) thread, rather than
            # in whichever commit comes next, perhaps the agent's own.
            self._checkpoint()
        log.debug(
            "applied pull: %d change(s), cursor %d, acknowledged %d",
            len(resp.changes),
            resp.cursor,
            last_acked,
        )
        self._announce("reset" if resp.reset else "pull")
        return AppliedPage(
            since=st.cursor,
            cursor=0 if resp.reset else resp.cursor,
            reset=resp.reset,
            changes=tuple(resp.changes),
            rebased=rebased,
            rejections=tuple(resp.rejections),
        )

    def _store_rejections(
        self, session: Session, st: ReplicaState, resp: PullResponse, now: datetime
    ) -> None:
        if not resp.rejections:
            return
        # Read again even when all of them are known: another Replica object on the file (a
        # sign-in replacing a workspace whose sync thread is ending) may have stored them.
        session.info[_REJECTIONS_WRITTEN] = True
        known = set(
            session.scalars(
                select(rejection_table.c.mutation_id).where(
                    rejection_table.c.client_id == st.client_id,
                    rejection_table.c.mutation_id.in_([r.mutation_id for r in resp.rejections]),
                )
            )
        )
        fresh = [r for r in resp.rejections if r.mutation_id not in known]
        if fresh:
            session.execute(
                insert(rejection_table),
                [
                    {
                        "client_id": st.client_id,
                        "mutation_id": r.mutation_id,
                        "name": r.name,
                        "code": r.code,
                        "message": r.message,
                        "field": r.field,
                        "seen": False,
                        "received_at": now,
                    }
                    for r in fresh
                ],
            )
            for r in fresh:
                log.info("the server refused mutation %d (%s): %s", r.mutation_id, r.name, r.code)

    def reset(self) -> AppliedPage:
        """Start over from cursor 0 (the server cannot serve our cursor, e.g. its database
        was restored; or the schema changed). Server rows are dropped; the outbox is kept and
        replayed. A pending schema reload is done by this too."""
        applied = self.apply_pull(
            PullResponse(
                cursor=0,
                has_more=False,
                changes=[],
                last_mutation_id=self.state.last_mutation_id,
                rejections=[],
                reset=True,
            )
        )
        with self._transaction() as s:
            s.execute(delete(meta_table).where(meta_table.c.key == SCHEMA_RESET_KEY))
        return applied

    def rebind_client(self) -> uuid.UUID:
        """Continue under a new client id, renumbering the pending mutations from 1.

        For a server that forgot mutations it had acknowledged (restored from a backup): it
        expects ids we no longer hold, so the old client id can never make progress again.
        Pending work is kept; only its numbering (and the ids of rows it derives) changes.
        """
        with self._transaction(foreign_keys=False) as s:
            st = self._state_in(s)
            self._revert_pending(s)
            pending = s.execute(select(outbox_table).order_by(outbox_table.c.mutation_id)).all()
            s.execute(delete(outbox_table))
            client_id = uuid.uuid4()
            if pending:
                s.execute(
                    insert(outbox_table),
                    [
                        {
                            "mutation_id": i,
                            "name": p.name,
                            "args": p.args,
                            "client_time": p.client_time,
                            "created_at": p.created_at,
                        }
                        for i, p in enumerate(pending, start=1)
                    ],
                )
            s.execute(
                update(state_table)
                .where(state_table.c.id == _STATE_ID)
                .values(client_id=client_id, last_mutation_id=0, rejections_after=0)
            )
            log.warning(
                "the server lost acknowledged mutations of client %s; continuing as %s",
                st.client_id,
                client_id,
            )
            self._replay_pending(s, self._state_in(s))
        self._announce("pull")
        return client_id


#: SQLite's default automatic checkpoint (pages of write-ahead log), and the one for pull pages
#: of at least :data:`BULK_PAGE_ROWS` changes (see ``Replica._transaction``).
WAL_PAGES = 1000
BULK_WAL_PAGES = 10_000
BULK_PAGE_ROWS = 500

#: The replica's page cache, in KiB (SQLite's default is 2 MiB). A first sync writes every
#: index of a few hundred thousand rows; a bigger cache keeps their pages between the pull's
#: transactions instead of reading them back: about a tenth faster, for memory a desktop has.
REPLICA_CACHE_KIB = 32 * 1024


def _replica_pragmas(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.execute(f"PRAGMA cache_size=-{REPLICA_CACHE_KIB}")


class _FairLock:
    """A first-come, first-served lock for this process's write transactions.

    SQLite's busy handler already serialises writers, but unfairly and by sleeping: a sync
    thread applying page after page could keep re-taking the write lock while the GUI thread's
    mutation sleeps in the busy handler. Queuing in-process first means a mutation waits for
    at most the transaction already running.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._next_ticket = 0
        self._serving = 0

    def __enter__(self) -> None:
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            while ticket != self._serving:
                self._cond.wait()

    def __exit__(self, *_exc: object) -> None:
        with self._cond:
            self._serving += 1
            self._cond.notify_all()


def _mutation(row: Any) -> Mutation:
    """An outbox row as the protocol's mutation."""
    return Mutation(id=row.mutation_id, name=row.name, args=row.args, client_time=row.client_time)


def _require_configured(st: ReplicaState) -> None:
    if not st.configured:
        raise NotConfigured("sign in first: the replica does not know who is working")
