"""Push and pull, authoritatively.

Push runs each mutation in its own transaction that also advances the client's
``last_mutation_id`` and records the outcome, so "applied" and "acknowledged" can never come
apart: a crash before commit loses both (the client resends), a crash after keeps both (the
resend is answered as a duplicate). The client row is locked for the transaction, so duplicate
or concurrent pushes from one client serialise instead of racing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, Select, Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..models import MutationRecord, SyncClient, SyncedMixin, User, utcnow
from ..models.db import session_scope
from ..models.versioning import current_version, enable_stamping, forget_version
from ..sync.mutators import MutationContext, MutationRejected, run_mutation
from ..sync.protocol import (
    MutationResult,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
)
from ..sync.rows import SYNCED_MODELS, TABLE_ORDER, mapping_to_wire, wire_select
from .deps import ServerState
from .errors import ApiError

log = logging.getLogger(__name__)


_CLIENTS = cast(Table, SyncClient.__table__)
_RECORDS = cast(Table, MutationRecord.__table__)
#: Takes the client row's lock until commit and reads it in one statement, recording the contact
#: on the way (a row lock on PostgreSQL; on SQLite, BEGIN IMMEDIATE already holds the write lock).
#: Core, not the ORM: a push runs this once per mutation, and loading, tracking and flushing a
#: ``SyncClient`` object cost more than the transaction's own writes.
_LOCK_CLIENT = (
    update(_CLIENTS)
    .where(_CLIENTS.c.id == bindparam("b_client"))
    .values(last_seen_at=bindparam("b_now"))
    .returning(_CLIENTS.c.tenant_id, _CLIENTS.c.user_id, _CLIENTS.c.last_mutation_id)
)
_ACKNOWLEDGE = (
    update(_CLIENTS)
    .where(_CLIENTS.c.id == bindparam("b_client"))
    .values(last_mutation_id=bindparam("b_last"))
)
_RECORD = insert(_RECORDS)


def _lock_client(session: Session, client_id: uuid.UUID, user: User) -> int:
    """Lock the caller's client row until commit, creating it on first contact; returns the
    last mutation id it has processed."""
    params = {"b_client": client_id, "b_now": utcnow()}
    # Core statements on the session's connection: same transaction, no ORM dispatch.
    conn = session.connection()
    row = conn.execute(_LOCK_CLIENT, params).first()
    if row is None:
        dialect = session.get_bind().dialect.name
        insert_fn = pg_insert if dialect == "postgresql" else sqlite_insert
        session.execute(
            insert_fn(SyncClient)
            .values(
                id=client_id,
                tenant_id=user.tenant_id,
                user_id=user.id,
                last_mutation_id=0,
                created_at=utcnow(),
                last_seen_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = conn.execute(_LOCK_CLIENT, params).one()
    if row.user_id != user.id or row.tenant_id != user.tenant_id:
        raise _not_yours()
    return int(row.last_mutation_id)


def _check_owner(client: SyncClient, user: User) -> None:
    if client.user_id != user.id or client.tenant_id != user.tenant_id:
        raise _not_yours()


def _not_yours() -> ApiError:
    return ApiError(403, "forbidden", "this client id belongs to another user", "client_id")


def push(state: ServerState, user: User, request: PushRequest) -> PushResponse:
    results: list[MutationResult] = []
    expected: int | None = None
    last = 0
    # One connection for the whole batch, one transaction per mutation on it: checking a
    # connection out of the pool (and, on PostgreSQL, pinging it) per mutation costs as much as
    # a small mutation.
    with _batch_sessions(state) as sessions:
        for mutation in sorted(request.mutations, key=lambda m: m.id):
            with session_scope(sessions) as session:
                last = _lock_client(session, request.client_id, user)
                if mutation.id <= last:
                    results.append(_duplicate(session, request.client_id, mutation.id))
                    continue
                if mutation.id > last + 1:
                    expected = last + 1
                    break
                results.append(
                    _apply(
                        session, request.client_id, user, mutation.id, mutation.name,
                        mutation.args, mutation.client_time,
                    )
                )
                last = mutation.id
    with session_scope(state.read_sessions) as session:
        version = current_version(session, user.tenant_id)
    return PushResponse(
        last_mutation_id=last, results=results, expected_mutation_id=expected, version=version
    )


@contextmanager
def _batch_sessions(state: ServerState) -> Iterator[sessionmaker[Session]]:
    """Write sessions (the app's factory and settings) bound to one pooled connection."""
    engine = state.write_sessions.kw["bind"]
    with engine.connect() as conn:
        yield sessionmaker(**{**state.write_sessions.kw, "bind": conn})


def _duplicate(session: Session, client_id: uuid.UUID, mutation_id: int) -> MutationResult:
    record = session.get(MutationRecord, (client_id, mutation_id))
    if record is None or record.status == "applied":
        return MutationResult(id=mutation_id, status="duplicate")
    return MutationResult(
        id=mutation_id,
        status="duplicate",
        code=record.code,
        message=record.message,
        field=record.field,
    )


def _apply(
    session: Session,
    client_id: uuid.UUID,
    user: User,
    mutation_id: int,
    name: str,
    args: dict[str, Any],
    client_time: datetime | None = None,
) -> MutationResult:
    enable_stamping(session, user.tenant_id)
    ctx = MutationContext(
        session=session,
        tenant_id=user.tenant_id,
        actor_id=user.id,
        actor_role=user.role,
        now=utcnow(),
        client_id=client_id,
        mutation_id=mutation_id,
        authoritative=True,
        id_time=client_time,
    )
    outcome: tuple[str, str | None, str | None, str | None]
    # No savepoint: on the rare refusal the whole transaction is rolled back and the refusal
    # recorded in a fresh one, under the client lock taken again. A SAVEPOINT per mutation
    # costs a fifth of a small mutation; a refusal costs one more short transaction.
    try:
        run_mutation(ctx, name, args)
        session.flush()
        outcome = ("applied", None, None, None)
    except MutationRejected as exc:
        outcome = ("rejected", exc.code, exc.message, exc.field)
    except IntegrityError as exc:
        # A constraint the rules did not foresee (e.g. two timers racing the unique index):
        # the data stays consistent and the client gets a readable refusal.
        log.info("mutation %s/%s hit a constraint: %s", client_id, mutation_id, exc.orig)
        outcome = ("rejected", "conflict", "the change conflicts with data changed meanwhile", None)
    if outcome[0] == "rejected":
        session.rollback()
        forget_version(session)
        if _lock_client(session, client_id, user) >= mutation_id:
            # A concurrent retry of this push got the lock in between and processed it.
            return _duplicate(session, client_id, mutation_id)
    status, code, message, field = outcome
    conn = session.connection()
    conn.execute(_ACKNOWLEDGE, {"b_client": client_id, "b_last": mutation_id})
    conn.execute(
        _RECORD,
        {
            "client_id": client_id,
            "mutation_id": mutation_id,
            "name": name,
            "status": status,
            "code": code,
            "message": message,
            "field": field,
            "version": int(session.info.get("stamp_version") or 0),
            "processed_at": ctx.now,
        },
    )
    return MutationResult(
        id=mutation_id,
        status=status,  # type: ignore[arg-type]
        code=code,
        message=message,
        field=field,
    )


def pull(state: ServerState, user: User, request: PullRequest) -> PullResponse:
    """The next page of changes for this client, as a validated model."""
    return PullResponse.model_validate(pull_body(state, user, request))


def pull_body(state: ServerState, user: User, request: PullRequest) -> dict[str, Any]:
    """The next page as the JSON-ready dict of a :class:`PullResponse` (same keys, same order).

    The route sends this as it is: rows are read with Core and turned into wire dicts once,
    where loading ORM objects, validating every change into a model and serialising the
    models again made a page cost several times the database's own work.
    """
    with session_scope(state.read_sessions) as session:
        if session.get_bind().dialect.name == "postgresql":
            # One snapshot for the whole pull: the acknowledged mutation id and the rows agree.
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        client = session.get(SyncClient, request.client_id)
        if client is not None:
            _check_owner(client, user)
        last = client.last_mutation_id if client is not None else 0
        # Read the head first: every version up to it has committed (writers take versions in
        # commit order under the counter row's lock), so reading rows <= head never misses one.
        head = current_version(session, user.tenant_id)
        if request.cursor > head:
            return _page(0, False, [], last, [], reset=True)
        rows, has_more = _changes(session, user.tenant_id, request.cursor, head, request.limit)
        cursor = max((r["version"] for _, r in rows), default=request.cursor) if has_more else head
        rejections = (
            [
                {
                    "mutation_id": r.mutation_id,
                    "name": r.name,
                    "code": r.code or "rejected",
                    "message": r.message or "",
                    "field": r.field,
                }
                for r in session.scalars(
                    select(MutationRecord)
                    .where(
                        MutationRecord.client_id == request.client_id,
                        MutationRecord.status == "rejected",
                        MutationRecord.mutation_id > request.rejections_after,
                    )
                    .order_by(MutationRecord.mutation_id)
                )
            ]
            if client is not None
            else []
        )
        changes = [mapping_to_wire(model, row) for model, row in rows]
        return _page(cursor, has_more, changes, last, rejections)


def _page(
    cursor: int,
    has_more: bool,
    changes: list[dict[str, Any]],
    last_mutation_id: int,
    rejections: list[dict[str, Any]],
    *,
    reset: bool = False,
) -> dict[str, Any]:
    return {
        "cursor": cursor,
        "has_more": has_more,
        "changes": changes,
        "last_mutation_id": last_mutation_id,
        "rejections": rejections,
        "reset": reset,
    }


_Row = tuple[type[SyncedMixin], RowMapping]


def _changes(
    session: Session, tenant_id: uuid.UUID, cursor: int, head: int, limit: int
) -> tuple[list[_Row], bool]:
    """Up to ``limit`` changed rows after ``cursor``, cut at a version boundary."""
    conn = session.connection()
    params = {"b_tenant": tenant_id, "b_cursor": cursor, "b_head": head, "b_limit": limit + 1}
    candidates: list[_Row] = []
    for model in SYNCED_MODELS:
        stmt = _CHANGED.get(model)
        if stmt is None:
            table = model.__table__  # type: ignore[attr-defined]
            stmt = _CHANGED[model] = (
                wire_select(model)
                .where(table.c.tenant_id == bindparam("b_tenant"),
                       table.c.version > bindparam("b_cursor"),
                       table.c.version <= bindparam("b_head"))
                .order_by(table.c.version)
                .limit(bindparam("b_limit", type_=Integer))
            )
        candidates.extend((model, row) for row in conn.execute(stmt, params).mappings().all())
    candidates.sort(key=_order)
    if len(candidates) <= limit:
        return candidates, False
    cut = candidates[limit][1]["version"]
    page = [r for r in candidates if r[1]["version"] < cut]
    if not page:
        # One transaction changed more rows than a page holds: send all of it at once.
        for model in SYNCED_MODELS:
            table = model.__table__  # type: ignore[attr-defined]
            stmt = wire_select(model).where(table.c.tenant_id == tenant_id,
                                            table.c.version == cut)
            page.extend((model, row) for row in conn.execute(stmt).mappings())
        page.sort(key=_order)
    return page, True


#: Per model, the page query with its parameters bound at execution: a pull runs one per
#: synced table per page, and building a statement costs more than a small table's read.
_CHANGED: dict[type[SyncedMixin], Select[Any]] = {}


def _order(row: _Row) -> tuple[int, int, str]:
    model, values = row
    return (values["version"], TABLE_ORDER[model.__tablename__], str(values["id"]))  # type: ignore[attr-defined]
