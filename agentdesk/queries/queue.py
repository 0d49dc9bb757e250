"""The work queue's read side: which tickets a saved view lists, in what order (Qt-free).

The desktop's queue model (:class:`agentdesk.ui.queue.model.QueueModel`) is a Qt adapter over
this module, :mod:`.queue_rows` (a row's cells) and :mod:`.queue_diff` (how one sorted key list
becomes another); everything here runs on worker threads as well as the GUI thread, and
``bench/queue_bench.py`` and ``bench/search_bench.py`` measure it.

**Only keys in memory.** A listed ticket is one sort key: for the queue order a 45-byte
``bytes`` (effective tier, inverted plan rank, arrival, ticket id) whose byte order *is* seed
003's order (:func:`agentdesk.policy.queue.queue_key`; a test checks they agree), and whose last
16 bytes are the ticket id. The keys come from one query over ``tickets`` reading only the key
columns as raw DBAPI tuples, and are sorted in Python. Sorting in Python rather than with
``ORDER BY``: SQLite cannot use ``ix_tickets_queue`` for this order (the IN-list of open statuses
and the mixed ``plan_rank DESC`` direction make it build a temporary B-tree anyway), Python's
sort of 100k ``bytes`` is faster than that B-tree, and the in-memory order and the model's
binary searches then agree by construction (one key function, no collation subtleties). The
query does not filter by tenant unless a ``tenant_id`` is given: a desktop replica holds one
team, and SQLite answers the unfiltered scan faster than the index path.

**Filtering in SQL.** Saved views and search are WHERE clauses on the key query
(:func:`filter_clauses`); the same clauses decide, for the tickets a sync pull changed, whether
each is still listed (:func:`agentdesk.queries.queue_rows.read_changes`).

**At risk / Breached** need each ticket's SLA state, which is not a column. The key query first
narrows in SQL by a bound that never drops a match: only unanswered tickets, and of those only
ones that arrived before ``now`` minus the shortest wall-clock time their tier's target can take on
any plan (business time never runs faster than wall time; pauses only move due times later; for
at risk, three quarters of a business-time target, and no bound for day targets, whose business
length varies). The survivors' states are then computed exactly with the policy's ``sla_status``
through :class:`~agentdesk.queries.sla_clock.SlaClock`, with due times cached per ticket, so a
breached ticket then costs one comparison. Sorting by the SLA column needs the due time of every
row.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from fractions import Fraction
from typing import Any, TypeAlias

from sqlalchemy import (
    ColumnElement,
    Connection,
    FromClause,
    String,
    Table,
    and_,
    false,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from ..models import Contact, Organisation, Ticket, TicketEvent, User, WaitingPeriod
from ..models.db import unicode_lower
from ..models.tickets import open_ticket
from ..policy.plans import TIERS, ResponseTarget
from ..policy.sla import SlaState
from ..policy.workflow import NEW, OPEN_STATUSES, STATUSES, WAITING_ON_CUSTOMER
from .dashboard import TicketFilter
from .sla_clock import AT_RISK_SHARE, SlaClock, SlaInputs
from .ticket_indexes import ThroughOpenIndex, through

__all__ = [
    "RECENT_DAYS",
    "SLA_VIEWS",
    "STATUS_VIEWS",
    "VIEW_LABELS",
    "Column",
    "Key",
    "QueueQuery",
    "SavedView",
    "fetch_keys",
    "filter_clauses",
    "id_bytes",
    "is_queue_order",
    "kid",
    "open_counts_by_assignee",
    "queue_key",
    "sort_value",
]

TICKETS: Table = Ticket.__table__  # type: ignore[assignment]
ORGS: Table = Organisation.__table__  # type: ignore[assignment]
CONTACTS: Table = Contact.__table__  # type: ignore[assignment]
USERS: Table = User.__table__  # type: ignore[assignment]
WAITS: Table = WaitingPeriod.__table__  # type: ignore[assignment]
EVENTS: Table = TicketEvent.__table__  # type: ignore[assignment]

#: A row's sort key: queue-order bytes, or ``(column value, queue-order bytes)`` for a column sort
#: (typed loosely: one list only ever holds one of the two shapes, which mypy cannot express).
Key: TypeAlias = Any


class Column(IntEnum):
    TIER = 0
    SLA = 1
    PLAN = 2
    ORGANISATION = 3
    REQUESTER = 4
    SUBJECT = 5
    CHANNEL = 6
    LEVEL = 7
    STATUS = 8
    ASSIGNEE = 9
    AGE = 10


class SavedView(StrEnum):
    ALL_OPEN = "all_open"
    MY_TICKETS = "my_tickets"
    UNASSIGNED = "unassigned"
    TRIAGE = "triage"
    AT_RISK = "at_risk"
    BREACHED = "breached"
    WAITING = "waiting_on_customer"
    RECENT = "recent"
    EVERY = "every"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REDIRECTED = "redirected"


VIEW_LABELS: dict[SavedView, str] = {
    SavedView.MY_TICKETS: "My tickets",
    SavedView.UNASSIGNED: "Unassigned",
    SavedView.TRIAGE: "Triage (untriaged)",
    SavedView.AT_RISK: "At risk",
    SavedView.BREACHED: "Breached",
    SavedView.WAITING: "Waiting on customer",
    SavedView.ALL_OPEN: "All open",
    SavedView.RECENT: "Recent (what I touched)",
    SavedView.EVERY: "Every ticket (open or not)",
    SavedView.RESOLVED: "Resolved",
    SavedView.CLOSED: "Closed",
    SavedView.REDIRECTED: "Redirected",
}
#: Views of finished tickets, and the status each lists.
STATUS_VIEWS: dict[SavedView, str] = {
    SavedView.RESOLVED: "resolved",
    SavedView.CLOSED: "closed",
    SavedView.REDIRECTED: "redirected",
}
#: How far back the Recent view looks for what the person wrote (notes, replies, changes).
RECENT_DAYS = 14
#: Views whose membership is an SLA state, and that state.
SLA_VIEWS: dict[SavedView, SlaState] = {
    SavedView.AT_RISK: SlaState.AT_RISK,
    SavedView.BREACHED: SlaState.BREACHED,
}

_STATUS_RANK = {status: i for i, status in enumerate(STATUSES)}
_OPEN = sorted(OPEN_STATUSES)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_HEAD = struct.Struct(">BH")
#: business-day targets land on the same local time n days later; a clock change shifts that
#: instant by at most this much against n x 24 hours (2 h is the largest offset change in use).
_DST_SLACK = timedelta(hours=3)


@dataclass(frozen=True)
class QueueQuery:
    """Which tickets the model lists, and in what order."""

    view: SavedView = SavedView.ALL_OPEN
    search: str = ""
    #: -1: queue order (seed 003). A :class:`Column`: that column, ties in queue order.
    sort_column: int = -1
    descending: bool = False
    user_id: uuid.UUID | None = None
    tenant_id: uuid.UUID | None = None
    #: A dashboard figure's tickets (its click-through), on top of the view; None: no filter.
    scope: TicketFilter | None = None

    def rows_key(self) -> tuple[Any, ...]:
        """What decides the set of rows apart from the search (a change means a reset)."""
        return (self.view, self.user_id, self.tenant_id, self.scope)

    @property
    def words(self) -> list[str]:
        return self.search.split()[:8]


# ----------------------------------------------------------------------------------- keys


def _arrival_bytes(value: str | datetime) -> bytes:
    """Arrival as SQLite stores it ("2026-03-11 15:00:00.000000", UTC): fixed width, so its
    bytes sort as instants. Anything else (another engine's datetime) is normalised to it."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " ":
            return value.encode("ascii")
        value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
    return f"{value.astimezone(UTC):%Y-%m-%d %H:%M:%S.%f}".encode("ascii")


def id_bytes(value: str | bytes | uuid.UUID) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, uuid.UUID):
        return value.bytes
    return bytes.fromhex(value.replace("-", ""))


def queue_key(urgency: int, plan_rank: int, arrived: str | datetime, ticket_id: Any) -> bytes:
    """Seed 003's queue order as bytes: tier, then higher plan rank, then arrival, then id.

    Byte order equals :func:`agentdesk.policy.queue.queue_key` order (the id's 16 bytes sort as
    its canonical text does).
    """
    return _HEAD.pack(urgency, 0x7FFF - plan_rank) + _arrival_bytes(arrived) + id_bytes(ticket_id)


def queue_keys(rows: Iterable[Sequence[Any]]) -> list[Key]:
    """:func:`queue_key` for many rows, inlined for SQLite's raw text (the hot path)."""
    pack, fromhex = _HEAD.pack, bytes.fromhex
    keys: list[Key] = []
    append = keys.append
    for urgency, rank, arrived, tid, *_ in rows:
        if type(arrived) is str and len(arrived) == 26 and type(tid) is str and len(tid) == 32:
            append(pack(urgency, 0x7FFF - rank) + arrived.encode("ascii") + fromhex(tid))
        else:
            append(queue_key(urgency, rank, arrived, tid))
    return keys


def kid(key: Key) -> bytes:
    """The ticket id (16 bytes) inside a key."""
    return key[-16:] if isinstance(key, bytes) else key[1][-16:]


def _arrival_us(t: datetime) -> int:
    return (t - _EPOCH) // _MICROSECOND


def _fold(text: str | None) -> str:
    return (text or "").casefold()


def sort_value(
    column: int, r: Mapping[str, Any], clock: SlaClock, inputs: SlaInputs | None, now: datetime
) -> Any:
    """A column's sort value from the fields of a key-query row or a :class:`QueueRow`."""
    if column == Column.PLAN:
        plan = clock.plan(r["plan_id"])
        return (0, plan.rank, _fold(plan.name)) if plan is not None else (1, 0, "")
    if column == Column.ORGANISATION:
        return _fold(r["organisation_name"])
    if column == Column.REQUESTER:
        return _fold(r["requester_name"])
    if column == Column.SUBJECT:
        return _fold(r["subject"])
    if column == Column.CHANNEL:
        return r["channel"]
    if column == Column.LEVEL:
        return str(r["level"])
    if column == Column.STATUS:
        return _STATUS_RANK.get(str(r["status"]), len(_STATUS_RANK))
    if column == Column.ASSIGNEE:
        return (0, _fold(r["assignee_name"])) if r["assignee_name"] is not None else (1, "")
    if column == Column.AGE:
        return -_arrival_us(r["arrived_at"])  # youngest first
    if column == Column.SLA:
        assert inputs is not None
        due = clock.due(inputs, now)
        if due is None:
            return (2, 0)
        return (1 if due[0] else 0, _arrival_us(due[1]))
    raise ValueError(f"no sort for column {column}")


def is_queue_order(column: int) -> bool:
    # Sorting by tier is the queue order itself (tier is its first criterion).
    return column < 0 or column == Column.TIER


# ----------------------------------------------------------------------------------- SQL


def from_joined() -> FromClause:
    return (
        TICKETS.outerjoin(ORGS, ORGS.c.id == TICKETS.c.organisation_id)
        .outerjoin(CONTACTS, CONTACTS.c.id == TICKETS.c.requester_id)
        .outerjoin(USERS, USERS.c.id == TICKETS.c.assignee_id)
    )


#: The row columns by the attribute names of :class:`QueueRow`.
ROW_COLUMNS: dict[str, ColumnElement[Any]] = {
    "id": TICKETS.c.id,
    "version": TICKETS.c.version,
    "subject": TICKETS.c.subject,
    "channel": TICKETS.c.channel,
    "level": TICKETS.c.level,
    "status": TICKETS.c.status,
    "tier": TICKETS.c.tier,
    "urgency": TICKETS.c.urgency,
    "plan_rank": TICKETS.c.plan_rank,
    "arrived_at": TICKETS.c.arrived_at,
    "first_response_at": TICKETS.c.first_response_at,
    "assignee_id": TICKETS.c.assignee_id,
    "organisation_id": TICKETS.c.organisation_id,
    "requester_id": TICKETS.c.requester_id,
    "organisation_name": ORGS.c.name,
    "plan_id": ORGS.c.plan_id,
    "requester_name": CONTACTS.c.name,
    "requester_email": CONTACTS.c.email,
    "requester_validated": CONTACTS.c.validated,
    "assignee_name": USERS.c.display_name,
}
_JOINED = {
    "organisation_name",
    "plan_id",
    "requester_name",
    "requester_email",
    "requester_validated",
    "assignee_name",
}
_SLA_FIELDS = ("arrived_at", "urgency", "plan_id", "first_response_at")
_SORT_FIELDS: dict[int, tuple[str, ...]] = {
    Column.PLAN: ("plan_id",),
    Column.ORGANISATION: ("organisation_name",),
    Column.REQUESTER: ("requester_name",),
    Column.SUBJECT: ("subject",),
    Column.CHANNEL: ("channel",),
    Column.LEVEL: ("level",),
    Column.STATUS: ("status",),
    Column.ASSIGNEE: ("assignee_name",),
    Column.AGE: ("arrived_at",),
    Column.SLA: _SLA_FIELDS,
}


def _search_clause(word: str) -> ColumnElement[bool]:
    """The ticket's subject, organisation, requester or assignee contains ``word``, in any case,
    or its reference (id) does.

    SQLite's LIKE folds ASCII letters only; a word with other letters ("émilie") compares
    Unicode-lowered text instead, which costs a Python call per row, so plain words keep the
    indexed-speed LIKE."""
    t = TICKETS
    if word.isascii():
        pattern = _like(word)

        def matches(column: ColumnElement[str]) -> ColumnElement[bool]:
            return column.like(pattern, escape="\\")
    else:
        pattern = _like(word.lower())

        def matches(column: ColumnElement[str]) -> ColumnElement[bool]:
            return unicode_lower(column, "sqlite").like(pattern, escape="\\")

    reference = word.lstrip("#").replace("-", "").lower()
    by_reference: list[ColumnElement[bool]] = []
    if len(reference) >= 6 and all(c in "0123456789abcdef" for c in reference):
        # The ticket's reference is its id (the replica keeps it as 32 hex digits): any part
        # of six digits or more, with or without the dashes, finds it.
        by_reference.append(type_coerce(t.c.id, String).like(f"%{reference}%"))
    return or_(
        *by_reference,
        matches(t.c.subject),
        t.c.organisation_id.in_(select(ORGS.c.id).where(matches(ORGS.c.name))),
        t.c.requester_id.in_(
            select(CONTACTS.c.id).where(or_(matches(CONTACTS.c.name), matches(CONTACTS.c.email)))
        ),
        t.c.assignee_id.in_(select(USERS.c.id).where(matches(USERS.c.display_name))),
    )


def _like(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _wall_minimum(target: ResponseTarget, share: Fraction) -> timedelta:
    """A lower bound on the wall-clock time for ``share`` of a target to elapse."""
    if target.business_time is not None:
        return target.business_time * share.numerator / share.denominator
    if share < 1:
        return timedelta(0)  # a day target's length in business time varies: no safe bound
    assert target.business_days is not None
    return max(timedelta(0), timedelta(days=target.business_days) - _DST_SLACK)


def _sla_bound(state: SlaState, clock: SlaClock, now: datetime) -> ColumnElement[bool]:
    """Tickets that can possibly be in ``state`` at ``now`` (see the module docstring)."""
    share = Fraction(1) if state is SlaState.BREACHED else 1 - AT_RISK_SHARE
    plans = list(clock.plans().values())
    if not plans:
        return false()
    per_tier = []
    for tier in TIERS:
        bound = min(_wall_minimum(plan.target_for(tier), share) for plan in plans)
        per_tier.append(and_(TICKETS.c.urgency == tier, TICKETS.c.arrived_at <= now - bound))
    return and_(TICKETS.c.first_response_at.is_(None), or_(*per_tier))


def filter_clauses(query: QueueQuery, clock: SlaClock, now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a query (SLA views: the SQL pre-filter; the exact test is Python)."""
    t = TICKETS
    view = query.view
    clauses: list[ColumnElement[bool]] = [t.c.deleted == false()]
    if query.scope is not None:
        # A dashboard figure's tickets: its own filter says whether only open ones count.
        if query.scope.open_only:
            clauses.append(t.c.status.in_(_OPEN))
        clauses.extend(query.scope.clauses())
    elif view in STATUS_VIEWS:
        clauses.append(t.c.status == STATUS_VIEWS[view])
    elif view is SavedView.RECENT:
        # Any status: what the person touched lately, finished or not (ix_ticket_events_author_at).
        touched = select(EVENTS.c.ticket_id).where(
            EVENTS.c.author_id == query.user_id,
            EVENTS.c.at >= now - timedelta(days=RECENT_DAYS),
            EVENTS.c.deleted == false(),
        )
        clauses.append(t.c.id.in_(touched) if query.user_id else false())
    elif view is not SavedView.EVERY:
        clauses.append(t.c.status.in_(_OPEN))
    if query.tenant_id is not None:
        clauses.append(t.c.tenant_id == query.tenant_id)
    if view is SavedView.MY_TICKETS:
        clauses.append(t.c.assignee_id == query.user_id if query.user_id else false())
    elif view is SavedView.UNASSIGNED:
        clauses.append(t.c.assignee_id.is_(None))
    elif view is SavedView.TRIAGE:
        clauses.append(t.c.status == NEW)
    elif view is SavedView.WAITING:
        clauses.append(t.c.status == WAITING_ON_CUSTOMER)
    elif view in SLA_VIEWS:
        clauses.append(_sla_bound(SLA_VIEWS[view], clock, now))
    for word in query.words:
        clauses.append(_search_clause(word))
    return clauses


def parse_utc(raw: str | datetime | None) -> datetime | None:
    """A stored instant as an aware UTC datetime (SQLite keeps naive UTC text)."""
    if raw is None:
        return None
    value = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def pauses_of(
    pairs: Iterable[tuple[datetime, datetime | None]],
) -> tuple[tuple[datetime, datetime | None], ...]:
    return tuple(sorted(pairs, key=lambda p: (p[0], p[1] is None, p[1] or p[0])))


def fetch_keys(conn: Connection, clock: SlaClock, query: QueueQuery, now: datetime) -> list[Key]:
    """The sorted keys of every ticket the query lists (runs on a worker thread).

    Every column is read raw (coerced to String: no SQLAlchemy result processing) from the
    DBAPI's own tuples, and only the few values a key needs are converted here: building
    100k SQLAlchemy Row objects with processed datetimes costs several times the query itself.
    """
    if not clock.loaded:
        clock.load(conn)
    clauses = filter_clauses(query, clock, now)
    wanted_state = SLA_VIEWS.get(query.view)
    column = -1 if is_queue_order(query.sort_column) else query.sort_column
    fields = set(_SORT_FIELDS.get(column, ()))
    needs_sla = wanted_state is not None or column == Column.SLA
    if needs_sla:
        fields.update(_SLA_FIELDS)
    names = sorted(fields)
    stmt = (
        select(
            TICKETS.c.urgency,
            TICKETS.c.plan_rank,
            type_coerce(TICKETS.c.arrived_at, String),
            type_coerce(TICKETS.c.id, String),
            *(type_coerce(ROW_COLUMNS[name], String).label(name) for name in names),
        )
        .select_from(from_joined() if fields & _JOINED else TICKETS)
        .where(*clauses)
    )
    result = conn.execute(stmt)
    rows = result.cursor.fetchall()
    result.close()
    if not fields:
        keys = queue_keys(rows)
        keys.sort()
        return keys
    pauses: dict[bytes, list[tuple[datetime, datetime | None]]] = {}
    if needs_sla and rows:
        waits = select(WAITS.c.ticket_id, WAITS.c.started_at, WAITS.c.ended_at).where(
            WAITS.c.deleted == false(),
            WAITS.c.ticket_id.in_(select(TICKETS.c.id).where(*clauses)),
        )
        for w in conn.execute(waits):
            pauses.setdefault(w.ticket_id.bytes, []).append((w.started_at, w.ended_at))
    qkeys = queue_keys(rows)
    keys = []
    for qkey, r in zip(qkeys, rows, strict=True):
        f = dict(zip(names, r[4:], strict=True))
        if "arrived_at" in f:
            f["arrived_at"] = parse_utc(f["arrived_at"])
        if "first_response_at" in f:
            f["first_response_at"] = parse_utc(f["first_response_at"])
        if "plan_id" in f:
            f["plan_id"] = uuid_of(f["plan_id"])
        inputs = None
        if needs_sla:
            inputs = SlaInputs(
                f["arrived_at"],
                int(f["urgency"]),
                f["plan_id"],
                f["first_response_at"],
                pauses_of(pauses.get(qkey[-16:], ())),
            )
            if wanted_state is not None and clock.state(inputs, now) is not wanted_state:
                continue
        if column < 0:
            keys.append(qkey)
        else:
            keys.append((sort_value(column, f, clock, inputs, now), qkey))
    keys.sort()
    return keys


_UUIDS: dict[Any, uuid.UUID | None] = {None: None}


def uuid_of(raw: Any) -> uuid.UUID | None:
    """A UUID from the replica's text form, memoised (plan ids repeat on every row)."""
    found = _UUIDS.get(raw)
    if found is None and raw is not None:
        if len(_UUIDS) > 10_000:
            _UUIDS.clear()
            _UUIDS[None] = None
        found = _UUIDS[raw] = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
    return found


_OPEN_BY_ASSIGNEE = through(ThroughOpenIndex, "assignee_id", "status", "deleted")


def open_counts_by_assignee(conn: Connection | Session) -> dict[uuid.UUID, int]:
    """How many open tickets each agent holds (the ticket card's "assign to" list): one
    index-only scan in assignee order. The WHERE is :func:`~agentdesk.models.tickets.open_ticket`
    as written, which the partial index requires."""
    t = _OPEN_BY_ASSIGNEE
    rows = conn.execute(
        select(t.c.assignee_id, func.count())
        .select_from(t)
        .where(t.c.assignee_id.is_not(None), open_ticket(t))
        .group_by(t.c.assignee_id)
    )
    return {row[0]: int(row[1]) for row in rows if row[0] is not None}
