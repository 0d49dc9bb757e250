"""Push and pull, authoritatively.

Push applies a batch with *group commit*: one database transaction per group of up to
:data:`GROUP_MAX_MUTATIONS` mutations or :data:`GROUP_MAX_SECONDS` of work, whichever comes
first, then a new transaction for the rest of the batch. Why: a durable commit is the floor under
"one transaction per mutation" (it waits for the WAL flush), and committing each mutation on its
own held the push far below its target. A group first runs *fast*
(see :class:`_Group`): no savepoint per mutation and one flush at the end, so its rows go out as
one multi-row statement per table; only a group that meets a refusal after writing, or a
constraint, is replayed with a savepoint per mutation. The figures, before and after, are in
``docs/performance.md`` ("Push throughput").

What each mutation keeps from having had a transaction of its own:

* Atomic on its own: a refusal (or a constraint it trips) undoes that mutation alone - the rest
  of the group stays - and is recorded and acknowledged as rejected. A refusal before any write
  needs no undoing; otherwise the group is replayed with each mutation in its own SAVEPOINT.
* Exactly once: the client's ``last_mutation_id`` and every mutation's ``MutationRecord`` are
  written in the group's transaction, which commits before the response is sent. A crash before
  the commit loses the group's effects and acknowledgements together (the client resends them);
  after it, a resend is answered as a duplicate. Groups committed before a failure stay
  committed and are answered as duplicates when the batch is retried.
* Serialised per client: the client row is locked for the group's transaction, so duplicate
  or concurrent pushes from one client queue instead of racing; ``last_mutation_id`` is read
  under that lock at the start of each group.
* A version of its own: each mutation is a stamping unit (``models.versioning.end_unit``), so
  its rows carry their own version and its record says which. The tenant counter row stays
  locked from the group's first version to its commit, so versions still become visible in
  commit order and a pull never misses one; a rolled-back savepoint takes its counter update
  with it, so no number is skipped.
* Announced once per group: the commit sends one ``pg_notify`` / in-process poke with the
  group's highest version.

Within a group, rows loaded once are not read again: every row a mutation loads stays in the
session until the commit, and the tickets the next mutations name are loaded together. That is
only safe once the group holds the counter lock (no other writer can change a synced row of the
tenant until the commit); before that, each mutation reads afresh.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Integer, Select, Table, bindparam, event, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..models import (
    MutationRecord,
    Organisation,
    SyncClient,
    SyncedMixin,
    User,
    utcnow,
)
from ..models.db import session_scope
from ..models.versioning import (
    current_version,
    enable_stamping,
    end_unit,
    hold_counter,
    stamp_unit,
    transaction_version,
    unit_changed_anything,
    write_counter,
)
from ..queries.access import may_see_prices
from ..sync.bounds import NewRow, Ref
from ..sync.mutators import (
    INTERNAL_ERROR,
    KNOWN_UNUSED_IDS,
    MUTATORS,
    MutationContext,
    MutationRejected,
    held,
    preload_org_contacts,
    preload_plans,
    run_mutation,
)
from ..sync.protocol import (
    Mutation,
    MutationResult,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
)
from ..sync.rows import SYNCED_MODELS, TABLE_ORDER, mapping_to_wire, wire_select
from .deps import ServerState
from .errors import ApiError
from .logs import db_error
from .notifications import outbox
from .notifications.config import mail_domain

log = logging.getLogger(__name__)


_CLIENTS = cast(Table, SyncClient.__table__)
_RECORDS = cast(Table, MutationRecord.__table__)
#: Takes the client row's lock until commit and reads it in one statement, recording the contact
#: on the way (a row lock on PostgreSQL; on SQLite, BEGIN IMMEDIATE already holds the write lock).
#: Core, not the ORM: a push runs this once per group, and loading, tracking and flushing a
#: ``SyncClient`` object cost more than a small group's own writes.
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
    group = _run_groups(state, user, request)
    with session_scope(state.read_sessions) as session:
        version = current_version(session, user.tenant_id)
    log.debug(
        "push from client %s (user %s): %d mutation(s), %d rejected, through %d",
        request.client_id,
        user.id,
        len(group.results),
        sum(r.status == "rejected" for r in group.results),
        group.last,
    )
    return PushResponse(
        last_mutation_id=group.last,
        results=group.results,
        expected_mutation_id=group.expected,
        version=version,
    )


#: Called with a group's session and results after its mutations ran, before it commits.
Observer = Callable[[Session, Sequence[MutationResult]], None]


def push_results(
    state: ServerState,
    user: User,
    request: PushRequest,
    bounds: GroupBounds | None = None,
    observe: Observer | None = None,
) -> list[MutationResult]:
    """A push made by the server itself (intake's batcher): the results only. There is no
    replica to hint a pull to, so the tenant's version is not read (a pooled connection and
    three round trips per push saved on intake's one, serial, writer).

    ``bounds``: the writer's own group bounds (:class:`GroupBounds`). ``observe`` sees each
    group's session and results before the group commits, so the writer can keep what its
    mutations recorded without reading it back; what it keeps holds only if the push returns
    (a push that raises may have committed none, or only its earlier groups, of what was
    observed)."""
    return _run_groups(state, user, request, bounds, observe).results


def _run_groups(
    state: ServerState,
    user: User,
    request: PushRequest,
    bounds: GroupBounds | None = None,
    observe: Observer | None = None,
) -> _Group:
    mutations = sorted(request.mutations, key=lambda m: m.id)
    results: list[MutationResult] = []
    group = _Group(
        request.client_id,
        user,
        mutations,
        results,
        mail_domain(state.settings.smtp),
        bounds,
        observe,
    )
    # One connection for the whole batch, one transaction per group on it: checking a
    # connection out of the pool (and, on PostgreSQL, pinging it) per group costs as much as
    # a small mutation.
    with _batch_sessions(state) as sessions:
        gate = _write_gate(sessions)
        while group.position < len(mutations) and group.expected is None:
            with gate, session_scope(sessions) as session:
                group.run(session)
    return group


#: Group commit bounds: a group ends at whichever comes first. A group holds the client's row
#: lock and, from its first version on, the tenant's version-counter row lock until it commits,
#: so every other writer of the tenant (other desktops' pushes, the REST routes) waits for it:
#: it must stay short. 25 ms holds a few dozen small mutations, enough to spread a durable
#: commit to a few per cent of the work, while a writer queued behind it waits about as long as
#: one push round trip (the costs measured: docs/performance.md, "Push throughput"). The time counts
#: from when the group took the counter lock, not from when it began waiting for it. The count
#: bound keeps cheap mutations from making one transaction (and its redo after a crash) large,
#: and stays under PostgreSQL's 64 cached subtransactions per backend: every mutation's
#: SAVEPOINT that writes is a subtransaction, and past 64 in one open transaction every other
#: backend's snapshot checks fall back to pg_subtrans (a known slowdown for concurrent pulls).
GROUP_MAX_MUTATIONS = 50
GROUP_MAX_SECONDS = 0.025
#: Rows named by the next this-many mutations are loaded in one query once the group holds
#: the counter lock (``_Group._preload``): about what fits in the rest of a group's 25 ms.
PRELOAD_WINDOW = 16


@dataclass(frozen=True)
class GroupBounds:
    """How a push is cut into groups, and when a group takes the counter lock.

    ``lock_first``: take the tenant's counter lock before the first mutation (one
    ``SELECT ... FOR UPDATE``, ``versioning.hold_counter``) instead of at its first write, so
    the rows of every mutation of the group, the first one's too, are read in one query per
    model. Right for a writer whose mutations nearly all write (intake: each one a new ticket);
    a desktop's push may be refused whole, and must not hold the lock for it.
    """

    mutations: int = GROUP_MAX_MUTATIONS
    seconds: float = GROUP_MAX_SECONDS
    preload: int = PRELOAD_WINDOW
    lock_first: bool = False


def _desktop_groups() -> GroupBounds:
    """A desktop's push: the module's bounds, read when the push starts."""
    return GroupBounds(GROUP_MAX_MUTATIONS, GROUP_MAX_SECONDS, PRELOAD_WINDOW)


class _Replay(Exception):
    """A fast group met a refusal after writing, or a constraint: roll it back to its
    savepoint and run it again carefully."""


class _Group:
    """The push of one batch, group by group: :meth:`run` processes the next group in the
    given transaction and leaves its position, the last processed id and any gap for the
    next one.

    A group runs *fast* first: one SAVEPOINT for the whole group, none per mutation, and one
    flush at its end (each mutation's rows stamped with its version in memory,
    ``models.versioning.stamp_unit``), so the group's rows reach the database as one
    multi-row statement per table. A refusal that changed nothing (the rules usually refuse
    before writing) is recorded as usual. A refusal after the mutation changed something, or
    a constraint tripped by any flush, cannot be rolled back alone: the group is rolled back
    to its savepoint (:class:`_Replay`) and run again *carefully*, each mutation in its own
    SAVEPOINT and flushed on its own, which decides the outcome - so the results are the same
    either way. The client row's lock (taken before the group's savepoint) is held
    throughout, so a retry of the push cannot slip in between.
    """

    def __init__(
        self,
        client_id: uuid.UUID,
        user: User,
        mutations: list[Mutation],
        results: list[MutationResult],
        domain: str,
        bounds: GroupBounds | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.client_id = client_id
        self.bounds = bounds or _desktop_groups()
        self.observe = observe
        self.domain = domain
        self.user = user
        self.mutations = mutations
        self.results = results
        self.position = 0
        self.last = 0
        self.expected: int | None = None
        self.loaded: list[Any] = []
        self.preloaded_until = 0
        self.flushes = 0
        #: Rows the session was given (``transient_to_pending``), and the notifications the
        #: group's applied mutations owe: written with its records, in its transaction.
        self.added: list[object] = []
        self.notifications: list[outbox.Pending] = []

    def mark(self) -> tuple[int, int, int]:
        return self.position, self.last, len(self.results)

    def restore(self, mark: tuple[int, int, int]) -> None:
        self.position, self.last, results = mark
        del self.results[results:]
        self.expected = None
        self.notifications = []

    def run(self, session: Session) -> None:
        client_id, user = self.client_id, self.user
        enable_stamping(session, user.tenant_id)
        # Every row the group loads stays referenced until it commits: the identity map holds
        # rows only weakly, and the next mutation would otherwise read the same organisation,
        # plan or ticket again (safe to reuse: see _preload).
        self.loaded = []
        self.added, self.notifications = [], []
        event.listen(session, "loaded_as_persistent", lambda _s, row: self.loaded.append(row))
        event.listen(session, "after_flush", self._count_flush)
        event.listen(session, "transient_to_pending", lambda _s, row: self.added.append(row))
        self.last = _lock_client(session, client_id, user)
        if self.bounds.lock_first:
            hold_counter(session, user.tenant_id)
        mark = self.mark()
        # Fast, inside one SAVEPOINT for the whole group: a replay rolls back to it, so the
        # client row stays locked throughout (a retry of this push waits for the outcome).
        fast = session.begin_nested()
        try:
            records = self._mutations(session, careful=False)
            session.flush()  # the group's rows, all at once
            fast.commit()
        except (_Replay, IntegrityError, DataError):
            fast.rollback()
            self.restore(mark)
            session.info.pop(KNOWN_UNUSED_IDS, None)  # carefully, each looks its new ids up
            records = self._mutations(session, careful=True)
        if records:
            write_counter(session)  # the versions counted on in the session (see end_unit)
            conn = session.connection()
            conn.execute(_ACKNOWLEDGE, {"b_client": client_id, "b_last": self.last})
            conn.execute(_RECORD, records)
            outbox.write(session, user.tenant_id, self.notifications, utcnow(), self.domain)
        if self.observe is not None:
            self.observe(session, self.results[mark[2] :])

    def _mutations(self, session: Session, *, careful: bool) -> list[dict[str, Any]]:
        """Process the group's mutations; returns their records."""
        client_id, user = self.client_id, self.user
        self.preloaded_until = self.position
        last = self.last
        records: list[dict[str, Any]] = []
        outcomes: dict[int, MutationResult] = {}  # this group's, not committed yet
        applied = 0
        started = time.perf_counter()
        while self.position < len(self.mutations):
            mutation = self.mutations[self.position]
            if mutation.id <= last:
                earlier = outcomes.get(mutation.id)
                self.results.append(
                    _duplicate(session, client_id, mutation.id)
                    if earlier is None
                    else earlier.model_copy(update={"status": "duplicate"})
                )
                self.position += 1
                continue
            if mutation.id > last + 1:
                self.expected = last + 1
                break
            had_version = transaction_version(session) is not None
            bounds = self.bounds
            if had_version and self.position >= self.preloaded_until:
                self._preload(
                    session, min(bounds.preload, bounds.mutations - applied), careful=careful
                )
            if not had_version:
                # Nothing in this transaction holds the counter row yet, so other writers may
                # have committed since the group's earlier (refused) mutations read their rows:
                # read afresh, as a transaction of its own would. Once the lock is held, no
                # other writer can change a synced row until this group commits.
                session.expire_all()
            if careful:
                result, record = _apply(session, client_id, user, mutation, self)
            else:
                result, record = self._apply_fast(session, mutation)
            self.results.append(result)
            outcomes[mutation.id] = result
            records.append(record)
            last = self.last = mutation.id
            self.position += 1
            applied += 1
            if not had_version and transaction_version(session) is not None:
                # The clock bounds how long the counter lock is held, not how long this group
                # waited for it (under contention the first flush queues behind other groups).
                started = time.perf_counter()
            if applied >= bounds.mutations or time.perf_counter() - started >= bounds.seconds:
                break
        return records

    def owe(self, ctx: MutationContext, start: int) -> None:
        """Queue the notifications the mutation that added ``self.added[start:]`` owes."""
        self.notifications.extend(
            outbox.derive(
                ctx.session, ctx.tenant_id, ctx.actor_id, self.added[start:], self.notifications
            )
        )

    def _count_flush(self, _session: Session, _context: Any) -> None:
        self.flushes += 1

    def _apply_fast(
        self, session: Session, mutation: Mutation
    ) -> tuple[MutationResult, dict[str, Any]]:
        """Run one mutation without a savepoint, its rows stamped but not flushed."""
        ctx = _context(session, self.client_id, self.user, mutation)
        flushes = self.flushes
        start = len(self.added)
        try:
            run_mutation(ctx, mutation.name, mutation.args)
            self.owe(ctx, start)
            if not stamp_unit(session):
                session.flush()  # a row that cannot be deferred: written now, as carefully
        except MutationRejected as exc:
            if self.flushes != flushes or unit_changed_anything(session):
                raise _Replay from exc
            return _outcome(ctx, mutation, ("rejected", exc.code, exc.message, exc.field), None)
        except (IntegrityError, DataError) as exc:  # an autoflush inside the mutation
            raise _Replay from exc
        return _outcome(ctx, mutation, ("applied", None, None, None), end_unit(session))

    def _preload(self, session: Session, count: int, *, careful: bool = False) -> None:
        """Load the rows the group's next ``count`` mutations name, in one query per model:
        every argument its mutator declares a reference (``Ref``), which the mutation runner
        resolves first thing - so a refusal from the rules still comes before any flush.

        Only once the group holds the counter row's lock: from then on no other writer can
        change a synced row of the tenant until this group commits, so the rows read now are
        the rows each mutation would read itself (from the identity map, instead of one
        round trip each).
        """
        wanted: dict[type[Any], set[uuid.UUID]] = {}
        new: dict[type[Any], set[uuid.UUID]] = {}
        contacts_of: set[uuid.UUID] = set()
        self.preloaded_until = self.position + count
        for mutation in self.mutations[self.position : self.preloaded_until]:
            m = MUTATORS.get(mutation.name)
            if m is None:
                continue
            for arg, marker in m.references:
                value = mutation.args.get(arg)
                if isinstance(marker, Ref | NewRow) and isinstance(value, str):
                    into = wanted if isinstance(marker, Ref) else new
                    with suppress(ValueError):  # the mutation's own validation says so
                        into.setdefault(marker.model, set()).add(uuid.UUID(value))
            org = mutation.args.get(m.contacts_of) if m.contacts_of else None
            if isinstance(org, str):
                with suppress(ValueError):
                    contacts_of.add(uuid.UUID(org))
        # The contact lists first: they hold the requesters, which then need no query.
        preload_org_contacts(session, self.user.tenant_id, contacts_of)
        # Without an autoflush: a fast group's rows wait for its one flush at the end, and rows
        # already in the session keep their unflushed state (a query does not overwrite them,
        # so a row held and not expired is not asked for again).
        with session.no_autoflush:
            for model, ids in wanted.items():
                ids = {i for i in ids if not held(session, model, i)}
                if ids:
                    session.scalars(
                        select(model).where(
                            model.id.in_(ids), model.tenant_id == self.user.tenant_id
                        )
                    ).all()
            # The plans and calendars the rules read through those organisations.
            preload_plans(session, self.user.tenant_id, wanted.get(Organisation, set()))
            # The ids the next mutations create, checked unused in one query (an intake burst
            # is all create_ticket: one SELECT per ticket, and the autoflush it triggered, was
            # most of a push's round trips). Only a fast group trusts it: two mutations that
            # create one id clash at its flush, and the careful replay looks each up.
            unused: set[uuid.UUID] = session.info.setdefault(KNOWN_UNUSED_IDS, set())
            for model, ids in new.items() if not careful else ():
                unused.update(ids - set(session.scalars(select(model.id).where(model.id.in_(ids)))))


#: Per SQLite database, the process's queue for its write lock (see _write_gate).
_SQLITE_GATES: dict[str, threading.Lock] = {}
_GATES_LOCK = threading.Lock()


def _write_gate(sessions: sessionmaker[Session]) -> AbstractContextManager[Any]:
    """On SQLite, a lock that push groups take before BEGIN IMMEDIATE; elsewhere nothing.

    SQLite has one writer at a time, and a connection that finds the write lock taken polls
    for it, sleeping 1, 2, 5 ... up to 100 ms between tries, so with many clients pushing the
    lock could sit free while every waiter slept. Waiting on a Python lock hands it over at
    once: 50 concurrent clients went from ~1,090 to ~1,145 mutations/s (two runs each).
    PostgreSQL queues row-lock waiters itself. Other writers - REST routes, another process -
    still meet the groups at SQLite's own lock, as before.
    """
    bind = sessions.kw["bind"]
    if bind.dialect.name != "sqlite":
        return nullcontext()
    key = bind.engine.url.render_as_string(hide_password=False)
    with _GATES_LOCK:
        return _SQLITE_GATES.setdefault(key, threading.Lock())


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


def _context(
    session: Session, client_id: uuid.UUID, user: User, mutation: Mutation
) -> MutationContext:
    return MutationContext(
        session=session,
        tenant_id=user.tenant_id,
        actor_id=user.id,
        actor_role=user.role,
        now=utcnow(),
        client_id=client_id,
        mutation_id=mutation.id,
        authoritative=True,
        id_time=mutation.client_time,
    )


_Outcome = tuple[str, str | None, str | None, str | None]


def _apply(
    session: Session, client_id: uuid.UUID, user: User, mutation: Mutation, group: _Group
) -> tuple[MutationResult, dict[str, Any]]:
    """Run one mutation in its own SAVEPOINT; returns its result and its record's values."""
    ctx = _context(session, client_id, user, mutation)
    outcome: _Outcome
    start, owed = len(group.added), len(group.notifications)
    try:
        with session.begin_nested():
            run_mutation(ctx, mutation.name, mutation.args)
            group.owe(ctx, start)
            session.flush()
        outcome = ("applied", None, None, None)
    except MutationRejected as exc:
        del group.notifications[owed:]
        outcome = ("rejected", exc.code, exc.message, exc.field)
    except IntegrityError as exc:
        del group.notifications[owed:]
        # A constraint the rules did not foresee (e.g. two timers racing the unique index):
        # the data stays consistent and the client gets a readable refusal.
        log.info("mutation %s/%s hit a constraint: %s", client_id, mutation.id, db_error(exc))
        outcome = ("rejected", "conflict", "the change conflicts with data changed meanwhile", None)
    except DataError as exc:
        # A value the database cannot hold that the argument bounds let through: refused and
        # logged, never a 500 (which would leave the mutation at the head of the outbox).
        log.error(
            "mutation %s/%s (%s) refused by the database: %s",
            client_id,
            mutation.id,
            mutation.name,
            exc.orig,
        )
        outcome = (
            "rejected",
            INTERNAL_ERROR,
            f"{mutation.name} could not be stored (a value is out of range); nothing was changed",
            None,
        )
    # The savepoint is released or rolled back (with any version it took: the stamping state
    # is back to what it was); the next mutation stamps with a version of its own.
    return _outcome(ctx, mutation, outcome, end_unit(session))


def _outcome(
    ctx: MutationContext, mutation: Mutation, outcome: _Outcome, version: int | None
) -> tuple[MutationResult, dict[str, Any]]:
    """A mutation's result for the client and its record's values."""
    status, code, message, field = outcome
    record = {
        "client_id": ctx.client_id,
        "mutation_id": mutation.id,
        "name": mutation.name,
        "status": status,
        "code": code,
        "message": message,
        "field": field,
        "version": version or 0,
        "processed_at": ctx.now,
    }
    result = MutationResult(
        id=mutation.id,
        status=status,  # type: ignore[arg-type]
        code=code,
        message=message,
        field=field,
    )
    return result, record


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
        if not may_see_prices(user.role):  # not even in the replica of those who may not
            for change in changes:
                if change["table"] == "hour_blocks":
                    change["values"]["price"] = None
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
                .where(
                    table.c.tenant_id == bindparam("b_tenant"),
                    table.c.version > bindparam("b_cursor"),
                    table.c.version <= bindparam("b_head"),
                )
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
            stmt = wire_select(model).where(table.c.tenant_id == tenant_id, table.c.version == cut)
            page.extend((model, row) for row in conn.execute(stmt).mappings())
        page.sort(key=_order)
    return page, True


#: Per model, the page query with its parameters bound at execution: a pull runs one per
#: synced table per page, and building a statement costs more than a small table's read.
_CHANGED: dict[type[SyncedMixin], Select[Any]] = {}


def _order(row: _Row) -> tuple[int, int, str]:
    model, values = row
    return (values["version"], TABLE_ORDER[model.__tablename__], str(values["id"]))  # type: ignore[attr-defined]
