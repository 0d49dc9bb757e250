"""The work queue as a Qt table model over the local replica (SQLite, the shared models).

Built for 100,000 open tickets (``bench/queue_bench.py`` measures every figure quoted here):

**Only keys in memory.** The model holds one sort key per row and nothing else: for the queue
order a 45-byte ``bytes`` (effective tier, inverted plan rank, arrival, ticket id) whose byte
order *is* seed 003's order (:func:`agentdesk.policy.queue.queue_key`; a test checks they agree),
and whose last 16 bytes are the ticket id (about 8 MB at 100k, plus an id -> key index). The keys
come from one query over ``tickets`` reading only the four key columns as raw DBAPI tuples, and
are sorted in Python: ~0.2 s at 100k. Sorting in Python rather than with ``ORDER BY``: SQLite
cannot use ``ix_tickets_queue`` for this order (the IN-list of open statuses and the mixed
``plan_rank DESC`` direction make it build a temporary B-tree anyway), Python's sort of 100k
``bytes`` is faster than that B-tree, and the in-memory order and the binary searches of
:meth:`QueueModel.apply_changes` then agree by construction (one key function, no collation
subtleties). The query does not filter by tenant unless a ``tenant_id`` is given: a desktop
replica holds one team, and SQLite answers the unfiltered scan faster than the index path.

**Row data is lazy.** ``data()`` for a row whose ticket is not cached reads the block of 200
neighbouring rows in one primary-key query into a bounded LRU cache of 4,000 rows;
nothing is ever read for rows nobody looks at. Roles the model never provides return before any
lookup, so a full repaint costs little more than Qt's own text painting.

**Filtering in SQL, not in a proxy.** Saved views and search are WHERE clauses on the key query;
a ``QSortFilterProxyModel`` would call ``data()`` on all 100k rows, defeating the lazy cache, and
its filtering would run on the GUI thread. Every re-query (view switch, search, column sort, the
periodic At risk / Breached refresh) runs on Qt's thread pool (:mod:`agentdesk.ui.background`):
at 100k rows the key query and a LIKE search each take longer than the 30 ms a GUI thread may
spend (docs/performance.md, "Work queue"). The worker also does the O(n) part of applying the
result (the id index, the diff against a snapshot of the list on screen), so the GUI thread only
emits signals; if a sync pull changed the list meanwhile the snapshot is stale and the diff is
redone on the GUI thread. Only the newest request's result is applied; changes that arrive while
a query runs are re-applied on top of its result.

**How a result is applied** (compared with the list on screen):

* another saved view (or user): ``beginResetModel`` - a different list, nothing to keep;
* another sort of the same rows: ``layoutAboutToBeChanged``/``layoutChanged`` with the persistent
  indexes (selection, current row) moved to their tickets' new rows;
* the same view and sort (search typed, periodic refresh, a large sync): the diff of the two
  sorted key lists as contiguous ``rowsRemoved``/``rowsInserted`` runs. When more than 20% of the
  rows change, or the changes form more than 256 runs, or either list is empty, it is a reset
  instead: past that point the per-run signals cost more than the view re-reading its visible
  rows, and the view restores the current ticket by id.

**Sync pulls** call :meth:`QueueModel.apply_changes` with the changed ticket ids. The model re-reads
just those rows (with the current filter evaluated in the same query), and for each one: moves
it (``beginMoveRows``, found by binary search on the keys) when its place changed, removes or
inserts it when it left or joined the view, and emits ``dataChanged`` for its row. It never
resets for that; more than 20% of the rows (and more than
50) is a re-query instead, applied as above.

**Countdown.** A 1 s timer emits ``dataChanged`` for the SLA and Age cells of the rows the view
reports visible (:meth:`QueueModel.set_visible_rows`): about 40 rows a second, whatever the queue
size. SLA clocks are cached per ticket (:mod:`agentdesk.ui.sla_display`).

**At risk / Breached** need each ticket's SLA state, which is not a column. The key query first
narrows in SQL by a bound that never drops a match: only unanswered tickets, and of those only
ones that arrived before ``now`` minus the shortest wall-clock time their tier's target can take on
any plan (business time never runs faster than wall time; pauses only move due times later; for
at risk, three quarters of a business-time target, and no bound for day targets, whose business
length varies). The survivors' states are then computed exactly with the policy's ``sla_status``,
with due times cached per ticket, so a breached ticket then costs one comparison. At 100k open
tickets the first pass costs ~2 s and later ones ~0.5 s, on the worker thread. Membership drifts
with time, so these views re-query every minute while shown. Sorting by the SLA column needs the
due time of every row: ~5 s the first time, ~2 s after (worker thread).
"""

from __future__ import annotations

import bisect
import logging
import struct
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import IntEnum, StrEnum
from fractions import Fraction
from typing import Any, TypeAlias

import shiboken6
from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    FromClause,
    Select,
    String,
    Table,
    and_,
    case,
    false,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import sessionmaker

from ...models import Contact, Organisation, Ticket, TicketEvent, User, WaitingPeriod
from ...models.db import unicode_lower
from ...policy.plans import TIERS, ResponseTarget
from ...policy.sla import SlaState, SlaStatus
from ...policy.workflow import NEW, OPEN_STATUSES, STATUSES, WAITING_ON_CUSTOMER, label
from ...queries.dashboard import TicketFilter
from .. import background
from ..sla_display import (
    AT_RISK_SHARE,
    LOADING,
    SlaClock,
    SlaInputs,
    age_text,
    sla_colour,
    sla_text,
    sla_tooltip,
)

log = logging.getLogger(__name__)

__all__ = [
    "SLA_VIEWS",
    "VIEW_LABELS",
    "Column",
    "QueueModel",
    "QueueQuery",
    "QueueRow",
    "SavedView",
    "SlaStateRole",
    "TicketIdRole",
    "fetch_keys",
    "queue_key",
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


HEADERS: dict[Column, tuple[str, str]] = {
    Column.TIER: ("Tier", "Severity tier (1 = production down); untriaged: the stated urgency"),
    Column.SLA: ("SLA", "Business time left to the first-response target"),
    Column.PLAN: ("Plan", "The organisation's support plan"),
    Column.ORGANISATION: ("Organisation", "The customer organisation"),
    Column.REQUESTER: ("Requester", "Who asked; ✓ validated support contact, ⚠ not validated"),
    Column.SUBJECT: ("Subject", ""),
    Column.CHANNEL: ("Channel", "Where the request came in"),
    Column.LEVEL: ("Level", "Level 1 general usage, Level 2 API/SSO/integrations"),
    Column.STATUS: ("Status", ""),
    Column.ASSIGNEE: ("Assignee", ""),
    Column.AGE: ("Age", "Wall-clock time since the request arrived"),
}

#: Custom roles: the row's ticket id (uuid.UUID) and its SLA state (an SlaState value string, or
#: None; Qt hands a str subclass back as a plain str).
TicketIdRole = int(Qt.ItemDataRole.UserRole) + 1
SlaStateRole = int(Qt.ItemDataRole.UserRole) + 2

_DISPLAY = int(Qt.ItemDataRole.DisplayRole)
_TOOLTIP = int(Qt.ItemDataRole.ToolTipRole)
_FOREGROUND = int(Qt.ItemDataRole.ForegroundRole)
_ALIGN = int(Qt.ItemDataRole.TextAlignmentRole)
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
_FLAGS = (Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
          | Qt.ItemFlag.ItemNeverHasChildren)
_ROLES = frozenset({_DISPLAY, _TOOLTIP, _FOREGROUND, _ALIGN, TicketIdRole, SlaStateRole})


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
_ROOT = QModelIndex()
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


def _id_bytes(value: str | bytes | uuid.UUID) -> bytes:
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
    return _HEAD.pack(urgency, 0x7FFF - plan_rank) + _arrival_bytes(arrived) + _id_bytes(ticket_id)


def _queue_keys(rows: Iterable[Sequence[Any]]) -> list[Key]:
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


def _kid(key: Key) -> bytes:
    """The ticket id (16 bytes) inside a key."""
    return key[-16:] if isinstance(key, bytes) else key[1][-16:]


def _arrival_us(t: datetime) -> int:
    return (t - _EPOCH) // _MICROSECOND


def _fold(text: str | None) -> str:
    return (text or "").casefold()


def _sort_value(column: int, r: Mapping[str, Any], clock: SlaClock, inputs: SlaInputs | None,
                now: datetime) -> Any:
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


def _is_queue_order(column: int) -> bool:
    # Sorting by tier is the queue order itself (tier is its first criterion).
    return column < 0 or column == Column.TIER


# ----------------------------------------------------------------------------------- SQL


def _from_joined() -> FromClause:
    return (
        TICKETS.outerjoin(ORGS, ORGS.c.id == TICKETS.c.organisation_id)
        .outerjoin(CONTACTS, CONTACTS.c.id == TICKETS.c.requester_id)
        .outerjoin(USERS, USERS.c.id == TICKETS.c.assignee_id)
    )


#: The row columns by the attribute names of :class:`QueueRow`.
_ROW_COLUMNS: dict[str, ColumnElement[Any]] = {
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
_JOINED = {"organisation_name", "plan_id", "requester_name", "requester_email",
           "requester_validated", "assignee_name"}
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
        t.c.requester_id.in_(select(CONTACTS.c.id).where(
            or_(matches(CONTACTS.c.name), matches(CONTACTS.c.email)))),
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
            EVENTS.c.author_id == query.user_id, EVENTS.c.at >= now - timedelta(days=RECENT_DAYS),
            EVENTS.c.deleted == false())
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


def _parse_utc(raw: str | datetime | None) -> datetime | None:
    """A stored instant as an aware UTC datetime (SQLite keeps naive UTC text)."""
    if raw is None:
        return None
    value = datetime.fromisoformat(raw) if isinstance(raw, str) else raw
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _pauses_of(pairs: Iterable[tuple[datetime, datetime | None]]
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
    column = -1 if _is_queue_order(query.sort_column) else query.sort_column
    fields = set(_SORT_FIELDS.get(column, ()))
    needs_sla = wanted_state is not None or column == Column.SLA
    if needs_sla:
        fields.update(_SLA_FIELDS)
    names = sorted(fields)
    stmt = select(
        TICKETS.c.urgency,
        TICKETS.c.plan_rank,
        type_coerce(TICKETS.c.arrived_at, String),
        type_coerce(TICKETS.c.id, String),
        *(type_coerce(_ROW_COLUMNS[name], String).label(name) for name in names),
    ).select_from(_from_joined() if fields & _JOINED else TICKETS).where(*clauses)
    result = conn.execute(stmt)
    rows = result.cursor.fetchall()
    result.close()
    if not fields:
        keys = _queue_keys(rows)
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
    qkeys = _queue_keys(rows)
    keys = []
    for qkey, r in zip(qkeys, rows, strict=True):
        f = dict(zip(names, r[4:], strict=True))
        if "arrived_at" in f:
            f["arrived_at"] = _parse_utc(f["arrived_at"])
        if "first_response_at" in f:
            f["first_response_at"] = _parse_utc(f["first_response_at"])
        if "plan_id" in f:
            f["plan_id"] = _uuid_of(f["plan_id"])
        inputs = None
        if needs_sla:
            inputs = SlaInputs(f["arrived_at"], int(f["urgency"]), f["plan_id"],
                               f["first_response_at"], _pauses_of(pauses.get(qkey[-16:], ())))
            if wanted_state is not None and clock.state(inputs, now) is not wanted_state:
                continue
        if column < 0:
            keys.append(qkey)
        else:
            keys.append((_sort_value(column, f, clock, inputs, now), qkey))
    keys.sort()
    return keys


# ----------------------------------------------------------------------------------- rows


#: Row columns read raw (no SQLAlchemy result processing): converted by QueueRow only as needed.
_RAW_ROW = {"id", "assignee_id", "organisation_id", "requester_id", "plan_id", "arrived_at",
            "first_response_at", "level", "status"}
_UUIDS: dict[Any, uuid.UUID | None] = {None: None}


def _uuid_of(raw: Any) -> uuid.UUID | None:
    """A UUID from the replica's text form, memoised (plan ids repeat on every row)."""
    found = _UUIDS.get(raw)
    if found is None and raw is not None:
        if len(_UUIDS) > 10_000:
            _UUIDS.clear()
            _UUIDS[None] = None
        found = _UUIDS[raw] = raw if isinstance(raw, uuid.UUID) else uuid.UUID(str(raw))
    return found


class QueueRow:
    """One ticket's row, read lazily. Attribute names match the SQL labels; ids other than the
    plan's stay in the replica's raw form (only "is there an assignee" is ever asked of them)."""

    __slots__ = (
        "_queue_key", "arrived_at", "arrived_raw", "assignee_id", "assignee_name", "channel",
        "display", "first_response_at", "inputs", "kid", "level", "organisation_id",
        "organisation_name", "plan_id", "plan_rank", "requester_email", "requester_id",
        "requester_name", "requester_validated", "sla_second", "sla_status", "status",
        "subject", "tier", "urgency", "version",
    )

    def __init__(self, r: Any, pauses: Sequence[tuple[datetime, datetime | None]],
                 clock: SlaClock) -> None:
        self.kid: bytes = _id_bytes(r.id)
        self.version: int = r.version
        self.subject: str = r.subject
        self.channel: str = r.channel
        self.level: str = str(r.level)
        self.status: str = str(r.status)
        self.tier: int | None = r.tier
        self.urgency: int = r.urgency
        self.plan_rank: int = r.plan_rank
        self.arrived_raw: Any = r.arrived_at
        arrived = _parse_utc(r.arrived_at)
        assert arrived is not None
        self.arrived_at: datetime = arrived
        self.first_response_at: datetime | None = _parse_utc(r.first_response_at)
        self.assignee_id: Any = r.assignee_id
        self.assignee_name: str | None = r.assignee_name
        self.organisation_id: Any = r.organisation_id
        self.organisation_name: str | None = r.organisation_name
        self.plan_id: uuid.UUID | None = _uuid_of(r.plan_id)
        self.requester_id: Any = r.requester_id
        self.requester_name: str | None = r.requester_name
        self.requester_email: str | None = r.requester_email
        self.requester_validated: bool = bool(r.requester_validated)
        self._queue_key: bytes | None = None
        self.inputs = SlaInputs(self.arrived_at, self.urgency, self.plan_id,
                                self.first_response_at, _pauses_of(pauses))
        self.sla_second = -1
        self.sla_status: SlaStatus | None = None
        plan = clock.plan(self.plan_id)
        if self.requester_name is None:
            # The contact row has not arrived yet: say so, assert nothing about validation.
            requester = LOADING
        elif self.requester_validated:
            requester = f"✓ {self.requester_name}"
        else:
            requester = f"⚠ {self.requester_name} (not validated)"
        self.display: list[str] = [
            f"T{self.urgency}" if self.tier is not None else f"T{self.urgency}?",
            "",
            plan.name if plan is not None else (LOADING if self.plan_id is not None else "—"),
            self.organisation_name or LOADING,
            requester,
            self.subject,
            self.channel.capitalize(),
            self.level,
            label(self.status).capitalize(),
            self.assignee_name or "Unassigned",
            "",
        ]

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.kid)

    @property
    def queue_key(self) -> bytes:
        if self._queue_key is None:
            self._queue_key = queue_key(self.urgency, self.plan_rank, self.arrived_raw, self.kid)
        return self._queue_key

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _ROW_COLUMNS}

    def tooltip(self, column: int) -> str | None:
        if column == Column.TIER:
            if self.tier is not None:
                return f"Severity tier {self.tier} (assessed at triage)"
            return (f"Not triaged yet: the customer's stated urgency ({self.urgency}) "
                    "stands in until a coordinator assesses the severity")
        if column == Column.REQUESTER:
            if self.requester_name is None:
                return ("The requester's details are still arriving from the server; whether "
                        "they are a validated contact is shown once they are here.")
            who = f"{self.requester_name} <{self.requester_email or 'no email address'}>"
            if self.requester_validated:
                return f"{who}\nA validated support contact of {self.organisation_name}."
            return (f"{who}\nNot a validated support contact: requests from this person are "
                    "not worked until the organisation's validated contacts say how to "
                    "proceed.")
        if column == Column.SUBJECT:
            return self.subject
        return None


def _row_select(ids: Sequence[uuid.UUID]) -> Select[Any]:
    return (
        select(*(
            (type_coerce(col, String) if name in _RAW_ROW else col).label(name)
            for name, col in _ROW_COLUMNS.items()
        ))
        .select_from(_from_joined())
        .where(TICKETS.c.id.in_(ids))
    )


def _read_pauses(conn: Connection, ids: Sequence[uuid.UUID]
                 ) -> dict[bytes, list[tuple[datetime, datetime | None]]]:
    """Waiting periods of these tickets, by ticket id bytes."""
    found: dict[bytes, list[tuple[datetime, datetime | None]]] = {}
    stmt = select(WAITS.c.ticket_id, WAITS.c.started_at, WAITS.c.ended_at).where(
        WAITS.c.ticket_id.in_(ids), WAITS.c.deleted == false()
    )
    for w in conn.execute(stmt):
        found.setdefault(w.ticket_id.bytes, []).append((w.started_at, w.ended_at))
    return found


def _engine_of(source: Engine | sessionmaker[Any]) -> Engine:
    if isinstance(source, Engine):
        return source
    bind = source.kw.get("bind")
    if not isinstance(bind, Engine):
        raise TypeError("the sessionmaker must be bound to an Engine")
    return bind


@dataclass
class _Plan:
    """A diff between two key lists in the same order."""

    removals: list[list[int]]  # [start, count] in old indices
    insertions: list[tuple[int, list[Key]]]  # (start in new indices, keys)
    changed: int
    runs: int


def _plan(old: Sequence[Key], new: Sequence[Key]) -> _Plan:
    """Merge two sorted key lists into contiguous runs of removals and insertions."""
    removals: list[list[int]] = []
    insertions: list[tuple[int, list[Key]]] = []
    i = j = 0
    n_old, n_new = len(old), len(new)
    while i < n_old or j < n_new:
        if j >= n_new or (i < n_old and old[i] < new[j]):
            if removals and removals[-1][0] + removals[-1][1] == i:
                removals[-1][1] += 1
            else:
                removals.append([i, 1])
            i += 1
        elif i >= n_old or new[j] < old[i]:
            if insertions and insertions[-1][0] + len(insertions[-1][1]) == j:
                insertions[-1][1].append(new[j])
            else:
                insertions.append((j, [new[j]]))
            j += 1
        else:
            i += 1
            j += 1
    changed = sum(c for _, c in removals) + sum(len(k) for _, k in insertions)
    return _Plan(removals, insertions, changed, len(removals) + len(insertions))


def _mode(shown: QueueQuery, wanted: QueueQuery) -> str:
    """How a result for ``wanted`` replaces the list of ``shown``: a reset for another set of
    rows, a layout change for another order of them, else a diff."""
    if shown.rows_key() != wanted.rows_key():
        return "reset"
    same_order = (_is_queue_order(shown.sort_column) and _is_queue_order(wanted.sort_column)
                  ) or shown.sort_column == wanted.sort_column
    shown_desc = shown.descending and shown.sort_column >= 0
    wanted_desc = wanted.descending and wanted.sort_column >= 0
    if not same_order or shown_desc != wanted_desc:
        return "layout"
    return "diff"


@dataclass
class _Fetched:
    """A query result with its O(n) preparation done (on the worker thread)."""

    query: QueueQuery
    keys: list[Key]
    pos: dict[bytes, Key]
    base_version: int
    mode: str
    plan: _Plan | None = None
    same_rows: bool = False


def _prepare(query: QueueQuery, keys: list[Key], snapshot: Sequence[Key], version: int,
             mode: str) -> _Fetched:
    pos = {_kid(k): k for k in keys}
    fetched = _Fetched(query, keys, pos, version, mode)
    if mode == "diff":
        fetched.plan = _plan(snapshot, keys)
    elif mode == "layout":
        fetched.same_rows = len(keys) == len(snapshot) and all(_kid(k) in pos for k in snapshot)
    return fetched


class _Gone:
    """Cache marker: the row vanished from the replica before the sync said so."""


_GONE = _Gone()


# ----------------------------------------------------------------------------------- model


class QueueModel(QAbstractTableModel):
    """The queue's table model. See the module docstring for how it stays fast."""

    #: True while a re-query runs on the worker thread.
    loadingChanged = Signal(bool)
    #: A re-query's result was applied (the rows now match the current query).
    queryApplied = Signal()
    #: A re-query failed; the message is for a status line (details are logged).
    queryFailed = Signal(str)

    BLOCK = 200
    CACHE_ROWS = 4000
    RESET_SHARE = Fraction(1, 5)
    MAX_RUNS = 256
    #: apply_changes with at most this many ids never re-queries, whatever the queue size.
    SMALL_CHANGE = 50
    COUNTDOWN_MS = 1000
    SLA_VIEW_REFRESH_MS = 60_000

    def __init__(
        self,
        source: Engine | sessionmaker[Any],
        *,
        user_id: uuid.UUID | None = None,
        tenant_id: uuid.UUID | None = None,
        view: SavedView = SavedView.ALL_OPEN,
        sla_clock: SlaClock | None = None,
        now: Callable[[], datetime] | None = None,
        asynchronous: bool = True,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._engine = _engine_of(source)
        self._now_fn = now or (lambda: datetime.now(UTC))
        self.sla_clock = sla_clock or SlaClock()
        self._async = asynchronous
        self._query = QueueQuery(view=view, user_id=user_id, tenant_id=tenant_id)
        self._wanted = self._query
        self._keys: list[Key] = []
        self._pos: dict[bytes, Key] = {}
        self._desc = False
        self._rows: OrderedDict[bytes, QueueRow | _Gone] = OrderedDict()
        self._last: tuple[Key, QueueRow | None] | None = None
        self._generation = 0
        #: Bumped by every change of the key list, so a diff computed off-thread against a
        #: snapshot is only used if the list is still that snapshot.
        self._version = 0
        self._loading = False
        self._pending: set[uuid.UUID] = set()
        self._ops: set[background.Operation[Any]] = set()
        self._visible: tuple[int, int] | None = None
        self._palette: QPalette = QGuiApplication.palette()
        self._colours: dict[SlaState | None, QColor | None] = {}
        self._muted = self._palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        self._timer = QTimer(self)
        self._timer.setInterval(self.COUNTDOWN_MS)
        self._timer.timeout.connect(self.tick)
        self._membership_timer = QTimer(self)
        self._membership_timer.setInterval(self.SLA_VIEW_REFRESH_MS)
        self._membership_timer.timeout.connect(self._refresh_sla_view)
        self._request(self._query)

    # ------------------------------------------------------------------ Qt model interface

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(self._keys)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = _ROOT) -> int:
        return 0 if parent.isValid() else len(Column)

    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        return _FLAGS if index.isValid() else Qt.ItemFlag.NoItemFlags

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = _DISPLAY) -> Any:
        if orientation != Qt.Orientation.Horizontal or not 0 <= section < len(Column):
            return None
        if role == _DISPLAY:
            return HEADERS[Column(section)][0]
        if role == _TOOLTIP:
            return HEADERS[Column(section)][1] or None
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = _DISPLAY) -> Any:
        # Hot path: a repaint asks ~7 roles of every visible cell. Roles this model never
        # provides, and cells without a colour or alignment, return before any row lookup.
        if role not in _ROLES:
            return None
        col = index.column()
        if role == _ALIGN:
            return _RIGHT if col == Column.SLA or col == Column.AGE else None
        if role == _FOREGROUND and col != Column.SLA and col != Column.ASSIGNEE:
            return None
        n = len(self._keys)
        r = index.row()
        if not 0 <= r < n or not index.isValid():
            return None
        row = self._row_at(n - 1 - r if self._desc else r)
        if row is None:
            return "…" if role == _DISPLAY else None
        if role == _DISPLAY:
            if col == Column.SLA:
                return sla_text(self._sla(row))
            if col == Column.AGE:
                return age_text(row.arrived_at, self._now_fn())
            return row.display[col]
        if role == _FOREGROUND:
            if col == Column.SLA:
                status = self._sla(row)
                return self._colour(status.state if status else None)
            return self._muted if row.assignee_id is None else None
        if role == _TOOLTIP:
            if col == Column.SLA:
                now = self._now_fn()
                plan = self.sla_clock.plan(row.plan_id)
                return sla_tooltip(
                    self._sla(row), tier=row.urgency, triaged=row.tier is not None,
                    calendar=self.sla_clock.calendar(row.plan_id),
                    plan_name=plan.name if plan else None, now=now,
                )
            return row.tooltip(col)
        if role == TicketIdRole:
            return row.id
        status = self._sla(row)  # SlaStateRole
        return status.state.value if status else None

    def _colour(self, state: SlaState | None) -> QColor | None:
        if state not in self._colours:
            self._colours[state] = sla_colour(state, self._palette)
        return self._colours[state]

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        """Column sorts keep the queue order among equal values; -1 is the queue order."""
        if column >= len(Column):
            return
        descending = order == Qt.SortOrder.DescendingOrder and column >= 0
        self._change(sort_column=max(column, -1), descending=descending)

    # ------------------------------------------------------------------ public API

    def query(self) -> QueueQuery:
        """The query whose rows are shown (a newer one may be loading)."""
        return self._query

    def view(self) -> SavedView:
        return self._wanted.view

    def set_view(self, view: SavedView) -> None:
        self._change(view=SavedView(view))

    def search(self) -> str:
        return self._wanted.search

    def set_search(self, text: str) -> None:
        """Filter as typed (the view debounces keystrokes); words must all match somewhere."""
        self._change(search=" ".join(text.split()))

    def set_user_id(self, user_id: uuid.UUID | None) -> None:
        self._change(user_id=user_id)

    def scope(self) -> TicketFilter | None:
        return self._wanted.scope

    def set_scope(self, scope: TicketFilter | None) -> None:
        """List exactly a dashboard figure's tickets (with the view and search as they are:
        the caller picks "All open" and clears the search for an exact click-through)."""
        self._change(scope=scope)

    def reset_order(self) -> None:
        """Back to the queue order (seed 003)."""
        self._change(sort_column=-1, descending=False)

    def sort_column(self) -> int:
        return self._wanted.sort_column

    def is_loading(self) -> bool:
        return self._loading

    def refresh(self) -> None:
        """Re-read the whole list (applied as a diff, or a reset when much changed)."""
        self._request(self._wanted)

    def ticket_id(self, row: int) -> uuid.UUID | None:
        n = len(self._keys)
        if not 0 <= row < n:
            return None
        return uuid.UUID(bytes=_kid(self._keys[n - 1 - row if self._desc else row]))

    def row_of(self, ticket_id: uuid.UUID) -> int | None:
        """The ticket's row, or None when it is not listed. O(log n)."""
        key = self._pos.get(ticket_id.bytes)
        if key is None:
            return None
        return self._row_of_index(self._index_of_key(key))

    def set_visible_rows(self, first: int, last: int) -> None:
        """The view's visible row range: only these get the 1 s countdown repaint."""
        if first < 0 or last < first:
            self._visible = None
            self._timer.stop()
            return
        self._visible = (first, last)
        if not self._timer.isActive():
            self._timer.start()

    def set_palette(self, palette: QPalette) -> None:
        """Follow a light/dark palette switch: the SLA colours depend on it."""
        self._palette = QPalette(palette)
        self._colours = {}
        self._muted = self._palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        self._emit_all_changed([_FOREGROUND])

    def tick(self) -> None:
        """Repaint the countdown (SLA) and age cells of the visible rows."""
        if self._visible is None or not self._keys:
            return
        last_row = len(self._keys) - 1
        first, last = min(self._visible[0], last_row), min(self._visible[1], last_row)
        for col in (Column.SLA, Column.AGE):
            self.dataChanged.emit(self.index(first, col), self.index(last, col),
                                  [_DISPLAY, _FOREGROUND, _TOOLTIP])

    def invalidate_lookups(self) -> None:
        """Plans, calendars, organisations, contacts or users changed: re-read what shows them.

        Visible rows re-read lazily after one ``dataChanged`` over the table; the key list is
        re-queried (as a diff) too, since a rename can change a search match or a column sort.
        """
        with self._engine.connect() as conn:
            self.sla_clock.load(conn)
        self._rows.clear()
        self._last = None
        self._emit_all_changed([])
        self._request(self._wanted)

    def apply_changes(self, changed_ticket_ids: Iterable[uuid.UUID]) -> None:
        """A sync pull changed these tickets (rows, events or waiting periods): update in place.

        Call it on the GUI thread (from a pull running elsewhere, through a queued signal), after
        the pull's transaction committed: the rows are re-read from the replica.

        Emits ``rowsMoved``/``rowsRemoved``/``rowsInserted``/``dataChanged`` for the affected
        rows only. More than 20% of the rows (and more than :attr:`SMALL_CHANGE`): one
        re-query instead, applied as a diff or a reset (see the module docstring).
        """
        ids = {t if isinstance(t, uuid.UUID) else uuid.UUID(str(t)) for t in changed_ticket_ids}
        if not ids:
            return
        if self._loading:
            self._pending |= ids  # the list in flight may predate these: re-applied after it
        if len(ids) > max(Fraction(self.SMALL_CHANGE), len(self._keys) * self.RESET_SHARE):
            for tid in ids:
                self._forget(tid.bytes)
            self._request(self._wanted)
            return
        now = self._now_fn()
        query = self._query
        wanted_state = SLA_VIEWS.get(query.view)
        fresh: dict[bytes, tuple[QueueRow, bool]] = {}
        ordered = sorted(ids, key=lambda t: t.bytes)
        with self._engine.connect() as conn:
            if not self.sla_clock.loaded:
                self.sla_clock.load(conn)
            matches = case((and_(*filter_clauses(query, self.sla_clock, now)), 1), else_=0)
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                pauses = _read_pauses(conn, chunk)
                for r in conn.execute(_row_select(chunk).add_columns(matches.label("matches"))):
                    read = QueueRow(r, pauses.get(_id_bytes(r.id), ()), self.sla_clock)
                    matching = bool(r.matches)
                    if matching and wanted_state is not None:
                        matching = self.sla_clock.state(read.inputs, now) is wanted_state
                    fresh[read.kid] = (read, matching)
        for tid in ordered:
            kid = tid.bytes
            old = self._pos.get(kid)
            entry = fresh.get(kid)
            row = entry[0] if entry is not None else None
            listed = entry is not None and entry[1]
            new = self._key_for(row, query, now) if row is not None and listed else None
            if row is not None and new is not None:
                self._cache(kid, row)
            else:
                self._forget(kid)
            if old is None and new is None:
                continue
            if new is None:
                assert old is not None
                i = self._index_of_key(old)
                self._remove_range(i, 1)
            elif old is None:
                self._insert_range(bisect.bisect_left(self._keys, new), [new])
            else:
                r_final = self._move(self._index_of_key(old), new)
                self.dataChanged.emit(self.index(r_final, 0),
                                      self.index(r_final, len(Column) - 1), [])

    # ------------------------------------------------------------------ re-queries

    def _change(self, **changes: Any) -> None:
        query = replace(self._wanted, **changes)
        if query != self._wanted:
            self._request(query)

    def _refresh_sla_view(self) -> None:
        if not self._loading and self._wanted.view in SLA_VIEWS:
            self._request(self._wanted)

    def _request(self, query: QueueQuery) -> None:
        """Fetch the query's keys on the worker, with everything O(n) about applying them
        (the id index, the diff against the list on screen) computed there too: the GUI
        thread then only emits the signals."""
        self._wanted = query
        self._generation += 1
        generation = self._generation
        engine, clock, now = self._engine, self.sla_clock, self._now_fn()
        base_version, mode = self._version, _mode(self._query, query)
        snapshot = list(self._keys) if mode != "reset" else []

        def work() -> _Fetched:
            with engine.connect() as conn:
                keys = fetch_keys(conn, clock, query, now)
            return _prepare(query, keys, snapshot, base_version, mode)

        if not self._async:
            self._install(work())
            return
        self._set_loading(True)

        def finished(result: object) -> None:
            if not shiboken6.isValid(self):
                return  # the model was deleted (its window closed) while the query ran
            # Dropped on the next loop iteration, never inside its own signal emission.
            QTimer.singleShot(0, self, lambda: self._ops.discard(op))
            if generation != self._generation:
                return  # superseded by a newer request
            self._set_loading(False)
            if isinstance(result, Exception):
                log.error("queue query failed: %s", result, exc_info=result)
                self.queryFailed.emit(str(result) or type(result).__name__)
                return
            assert isinstance(result, _Fetched)
            self._install(result)

        op: background.Operation[_Fetched] = background.Operation(
            work, on_success=finished, on_failure=finished
        )
        self._ops.add(op)
        op.start()

    def _set_loading(self, loading: bool) -> None:
        if loading != self._loading:
            self._loading = loading
            self.loadingChanged.emit(loading)

    def _install(self, fetched: _Fetched) -> None:
        query, keys = fetched.query, fetched.keys
        if fetched.base_version != self._version:
            # The list changed while the query ran (a sync pull): redo the O(n) part here.
            fetched = _prepare(query, keys, self._keys, self._version,
                               _mode(self._query, query))
        self._query = query
        desc = query.descending and query.sort_column >= 0
        if fetched.mode == "reset":
            self._reset(keys, desc, fetched.pos)
        elif fetched.mode == "layout":
            if fetched.same_rows:
                self._relayout(keys, desc, fetched.pos)
            else:
                self._reset(keys, desc, fetched.pos)
        else:
            plan = fetched.plan
            assert plan is not None
            n_old, n_new = len(self._keys), len(keys)
            if not plan.changed:
                pass
            elif (not n_old or not n_new or plan.changed > self.RESET_SHARE * max(n_old, n_new)
                  or plan.runs > self.MAX_RUNS):
                self._reset(keys, desc, fetched.pos)
            else:
                self._apply_plan(plan)
        if query.view in SLA_VIEWS:
            if not self._membership_timer.isActive():
                self._membership_timer.start()
        else:
            self._membership_timer.stop()
        pending, self._pending = self._pending, set()
        if pending:
            self.apply_changes(pending)
        self.queryApplied.emit()

    def _reset(self, keys: list[Key], desc: bool, pos: dict[bytes, Key]) -> None:
        self.beginResetModel()
        self._keys = keys
        self._desc = desc
        self._pos = pos
        self._version += 1
        self.endResetModel()

    def _relayout(self, keys: list[Key], desc: bool, pos: dict[bytes, Key]) -> None:
        self.layoutAboutToBeChanged.emit()
        persistent = self.persistentIndexList()
        ids = [self.ticket_id(p.row()) if p.isValid() else None for p in persistent]
        self._keys = keys
        self._desc = desc
        self._pos = pos
        self._version += 1
        moved = []
        for p, tid in zip(persistent, ids, strict=True):
            row = self.row_of(tid) if tid is not None else None
            moved.append(self.index(row, p.column()) if row is not None else QModelIndex())
        self.changePersistentIndexList(persistent, moved)
        self.layoutChanged.emit()

    def _apply_plan(self, plan: _Plan) -> None:
        """Removal runs from the end (earlier indices stay valid), then insertion runs in
        ascending order (each lands where the new list has it)."""
        for start, count in reversed(plan.removals):
            self._remove_range(start, count)
        for start, new_keys in plan.insertions:
            for key in new_keys:
                self._forget(_kid(key))
            self._insert_range(start, new_keys)

    # ------------------------------------------------------------------ list surgery

    def _row_of_index(self, i: int, n: int | None = None) -> int:
        n = len(self._keys) if n is None else n
        return n - 1 - i if self._desc else i

    def _index_of_key(self, key: Key) -> int:
        i = bisect.bisect_left(self._keys, key)
        if i >= len(self._keys) or self._keys[i] != key:
            raise LookupError("key not in the list")  # the list and _pos disagree: a bug
        return i

    def _remove_range(self, start: int, count: int) -> None:
        n = len(self._keys)
        if self._desc:
            first, last = n - start - count, n - start - 1
        else:
            first, last = start, start + count - 1
        self.beginRemoveRows(QModelIndex(), first, last)
        for key in self._keys[start : start + count]:
            self._pos.pop(_kid(key), None)
        del self._keys[start : start + count]
        self._version += 1
        self.endRemoveRows()

    def _insert_range(self, start: int, keys: list[Key]) -> None:
        n, count = len(self._keys), len(keys)
        if self._desc:
            first, last = n - start, n - start + count - 1
        else:
            first, last = start, start + count - 1
        self.beginInsertRows(QModelIndex(), first, last)
        self._keys[start:start] = keys
        for key in keys:
            self._pos[_kid(key)] = key
        self._version += 1
        self.endInsertRows()

    def _move(self, src: int, new_key: Key) -> int:
        """Give the key at list index ``src`` a new key, moving its row; returns the final row."""
        n = len(self._keys)
        dst = bisect.bisect_left(self._keys, new_key)
        if dst > src:
            dst -= 1
        kid = _kid(new_key)
        self._version += 1
        if dst == src:
            self._keys[src] = new_key
            self._pos[kid] = new_key
            return self._row_of_index(src)
        src_row, final_row = self._row_of_index(src, n), self._row_of_index(dst, n)
        destination = final_row + 1 if final_row > src_row else final_row
        ok = self.beginMoveRows(QModelIndex(), src_row, src_row, QModelIndex(), destination)
        if not ok:  # cannot happen for a single row moving elsewhere; stay correct anyway
            raise RuntimeError(f"Qt refused to move row {src_row} to {destination}")
        del self._keys[src]
        self._keys.insert(dst, new_key)
        self._pos[kid] = new_key
        self.endMoveRows()
        return final_row

    def _key_for(self, row: QueueRow, query: QueueQuery, now: datetime) -> Key:
        if _is_queue_order(query.sort_column):
            return row.queue_key
        value = _sort_value(query.sort_column, row.fields(), self.sla_clock, row.inputs, now)
        return (value, row.queue_key)

    def _emit_all_changed(self, roles: list[int]) -> None:
        if self._keys:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self._keys) - 1, len(Column) - 1), roles)

    # ------------------------------------------------------------------ row cache

    def _cache(self, kid: bytes, row: QueueRow | _Gone) -> None:
        self._last = None
        self._rows[kid] = row
        self._rows.move_to_end(kid)
        while len(self._rows) > self.CACHE_ROWS:
            self._rows.popitem(last=False)

    def _row_at(self, i: int) -> QueueRow | None:
        key = self._keys[i]
        last = self._last
        if last is not None and last[0] is key:  # a view asks for every role of every cell
            return last[1]
        kid = _kid(key)
        row = self._rows.get(kid)
        if row is None:
            self._fetch_block(i)
            row = self._rows.get(kid)
        else:
            self._rows.move_to_end(kid)
        found = row if isinstance(row, QueueRow) else None
        self._last = (key, found)
        return found

    def _forget(self, kid: bytes) -> None:
        self._rows.pop(kid, None)
        self._last = None

    def _fetch_block(self, i: int) -> None:
        """Read the block of rows around list index ``i`` that are not cached, in one query."""
        start = i - i % self.BLOCK
        wanted = [
            uuid.UUID(bytes=_kid(k))
            for k in self._keys[start : start + self.BLOCK]
            if _kid(k) not in self._rows
        ]
        if not wanted:
            return
        with self._engine.connect() as conn:
            if not self.sla_clock.loaded:
                self.sla_clock.load(conn)
            pauses = _read_pauses(conn, wanted)
            found = {
                row.kid: row
                for row in (QueueRow(r, pauses.get(_id_bytes(r.id), ()), self.sla_clock)
                            for r in conn.execute(_row_select(wanted)))
            }
        for tid in wanted:
            self._cache(tid.bytes, found.get(tid.bytes, _GONE))

    def _sla(self, row: QueueRow) -> SlaStatus | None:
        now = self._now_fn()
        second = int(now.timestamp())
        if row.sla_second != second:
            row.sla_status = self.sla_clock.status(row.inputs, now)
            row.sla_second = second
        return row.sla_status
