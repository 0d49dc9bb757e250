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
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import MutationRecord, SyncClient, User, utcnow
from ..models.db import session_scope
from ..models.versioning import current_version, enable_stamping, forget_version
from ..sync.mutators import MutationContext, MutationRejected, run_mutation
from ..sync.protocol import (
    Change,
    MutationResult,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
    Rejection,
)
from ..sync.rows import SYNCED_MODELS, TABLE_ORDER, row_to_wire
from .deps import ServerState
from .errors import ApiError

log = logging.getLogger(__name__)


def _client_for_update(session: Session, client_id: uuid.UUID, user: User) -> SyncClient:
    """The caller's client row, created on first contact, locked until commit."""
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
    client = session.scalar(select(SyncClient).where(SyncClient.id == client_id).with_for_update())
    assert client is not None
    _check_owner(client, user)
    return client


def _check_owner(client: SyncClient, user: User) -> None:
    if client.user_id != user.id or client.tenant_id != user.tenant_id:
        raise ApiError(403, "forbidden", "this client id belongs to another user", "client_id")


def push(state: ServerState, user: User, request: PushRequest) -> PushResponse:
    results: list[MutationResult] = []
    expected: int | None = None
    last = 0
    for mutation in sorted(request.mutations, key=lambda m: m.id):
        with session_scope(state.write_sessions) as session:
            client = _client_for_update(session, request.client_id, user)
            client.last_seen_at = utcnow()
            last = client.last_mutation_id
            if mutation.id <= last:
                results.append(_duplicate(session, client.id, mutation.id))
                continue
            if mutation.id > last + 1:
                expected = last + 1
                break
            results.append(
                _apply(
                    session, client, user, mutation.id, mutation.name, mutation.args,
                    mutation.client_time,
                )
            )
            last = client.last_mutation_id
    with session_scope(state.read_sessions) as session:
        version = current_version(session, user.tenant_id)
    return PushResponse(
        last_mutation_id=last, results=results, expected_mutation_id=expected, version=version
    )


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
    client: SyncClient,
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
        client_id=client.id,
        mutation_id=mutation_id,
        authoritative=True,
        id_time=client_time,
    )
    outcome: tuple[str, str | None, str | None, str | None]
    savepoint = session.begin_nested()
    try:
        run_mutation(ctx, name, args)
        session.flush()
        savepoint.commit()
        outcome = ("applied", None, None, None)
    except MutationRejected as exc:
        savepoint.rollback()
        forget_version(session)
        outcome = ("rejected", exc.code, exc.message, exc.field)
    except IntegrityError as exc:
        # A constraint the rules did not foresee (e.g. two timers racing the unique index):
        # the data stays consistent and the client gets a readable refusal.
        savepoint.rollback()
        forget_version(session)
        log.info("mutation %s/%s hit a constraint: %s", client.id, mutation_id, exc.orig)
        outcome = ("rejected", "conflict", "the change conflicts with data changed meanwhile", None)
    status, code, message, field = outcome
    client.last_mutation_id = mutation_id
    session.add(
        MutationRecord(
            client_id=client.id,
            mutation_id=mutation_id,
            name=name,
            status=status,
            code=code,
            message=message,
            field=field,
            version=int(session.info.get("stamp_version") or 0),
            processed_at=ctx.now,
        )
    )
    return MutationResult(
        id=mutation_id,
        status=status,  # type: ignore[arg-type]
        code=code,
        message=message,
        field=field,
    )


def pull(state: ServerState, user: User, request: PullRequest) -> PullResponse:
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
            return PullResponse(
                cursor=0,
                has_more=False,
                changes=[],
                last_mutation_id=last,
                rejections=[],
                reset=True,
            )
        rows, has_more = _changes(session, user.tenant_id, request.cursor, head, request.limit)
        cursor = max((r.version for r in rows), default=request.cursor) if has_more else head
        rejections = (
            [
                Rejection(
                    mutation_id=r.mutation_id,
                    name=r.name,
                    code=r.code or "rejected",
                    message=r.message or "",
                    field=r.field,
                )
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
        return PullResponse(
            cursor=cursor,
            has_more=has_more,
            changes=[Change.model_validate(row_to_wire(r)) for r in rows],
            last_mutation_id=last,
            rejections=rejections,
        )


def _changes(
    session: Session, tenant_id: uuid.UUID, cursor: int, head: int, limit: int
) -> tuple[Sequence[Any], bool]:
    """Up to ``limit`` changed rows after ``cursor``, cut at a version boundary."""
    candidates: list[Any] = []
    for model in SYNCED_MODELS:
        candidates.extend(
            session.scalars(
                select(model)
                .where(model.tenant_id == tenant_id, model.version > cursor, model.version <= head)
                .order_by(model.version)
                .limit(limit + 1)
            )
        )
    candidates.sort(key=_order)
    if len(candidates) <= limit:
        return candidates, False
    cut = candidates[limit].version
    page = [r for r in candidates if r.version < cut]
    if not page:
        # One transaction changed more rows than a page holds: send all of it at once.
        page = []
        for model in SYNCED_MODELS:
            page.extend(
                session.scalars(
                    select(model).where(model.tenant_id == tenant_id, model.version == cut)
                )
            )
        page.sort(key=_order)
    return page, True


def _order(row: Any) -> tuple[int, int, str]:
    return (row.version, TABLE_ORDER[row.__tablename__], str(row.id))
