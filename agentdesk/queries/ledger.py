"""One organisation's 1-on-1 ledger (hour blocks and live time entries), read for a window.

Every consultant read model (statement, contracts, timesheet) replays the same facts through
:mod:`agentdesk.policy.billing`; this module is the one place that turns rows into the policy's
:class:`~agentdesk.policy.billing.HourBlock` and :class:`~agentdesk.policy.billing.WorkItem`.

Cost is bounded by the window asked for, never by the size of the ledger:

* A period longer than :data:`MAX_PERIOD` is refused (:class:`QueryError`): a ten-year statement
  is a typo, and answering it would read a decade of rows.
* A balance at a date depends on older blocks only while their validity overlaps (a day's bill
  draws from the oldest valid block first), so the replay starts at the earliest purchase of an
  unbroken chain of overlapping blocks reaching the window, but never more than
  :data:`MAX_LOOKBACK` before it. Beyond that the older purchases are not read: a customer
  whose purchases overlap without a gap for more than two years gets their replay started
  there (the blocks bought before it are then counted as if they did not exist). Rows read are
  at most the period plus the lookback, both capped.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, aliased

from ..models import (
    HourBlock,
    Organisation,
    Plan,
    Tenant,
    Ticket,
    TicketKind,
    TimeEntry,
    TimeKind,
    User,
)
from ..policy import billing
from ..policy.billing import WorkItem, WorkKind
from ..policy.zones import zone_or_utc
from .raw import Texts, Uuids, driver_rows, instant, raw, uuid_text

__all__ = [
    "MAX_LOOKBACK",
    "MAX_PERIOD",
    "EntryFacts",
    "Ledger",
    "OrgFacts",
    "QueryError",
    "check_period",
    "clipped_work",
    "day_bounds",
    "find_organisation",
    "load_ledger",
    "org_facts",
    "person_names",
    "read_blocks",
    "team_timezone",
]

#: The longest period a statement or report covers (three years and a leap day).
MAX_PERIOD = timedelta(days=3 * 365 + 1)
#: How far before a window the replay may start to pick up overlapping older blocks.
MAX_LOOKBACK = timedelta(days=2 * 365)
#: A local day is at most 25 hours; a block expiring during a day still covers it.
_DAY_SLACK = timedelta(days=2)


class QueryError(ValueError):
    """A request the read side refuses, with a message naming what is wrong (nothing changed)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def check_period(start: date, end: date) -> None:
    """Refuse an inverted or over-long period before any row is read."""
    if end < start:
        raise QueryError("to", f"the period ends ({end}) before it starts ({start})")
    if end - start >= MAX_PERIOD:
        raise QueryError(
            "to",
            f"the period from {start} to {end} is longer than "
            f"{MAX_PERIOD.days} days; ask for at most three years at a time",
        )


def day_bounds(start: date, end: date, tz: str) -> tuple[datetime, datetime]:
    """UTC instants bounding the local days ``start``..``end`` (inclusive)."""
    zone = zone_or_utc(tz)[1]
    opens = datetime.combine(start, time(0), tzinfo=zone).astimezone(UTC)
    closes = datetime.combine(end + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
    return opens, closes


def team_timezone(session: Session, tenant_id: uuid.UUID) -> str:
    tz = session.scalar(select(Tenant.timezone).where(Tenant.id == tenant_id)) or "UTC"
    return zone_or_utc(tz)[0]


@dataclass(frozen=True)
class OrgFacts:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    plan: str
    tz: str


def org_facts(session: Session, org_id: uuid.UUID) -> OrgFacts:
    row = session.execute(
        select(Organisation.tenant_id, Organisation.name, Plan.name)
        .join(Plan, Plan.id == Organisation.plan_id)
        .where(Organisation.id == org_id, Organisation.deleted.is_(False))
    ).first()
    if row is None:
        raise QueryError("organisation", "no such organisation")
    tenant_id, name, plan = row
    return OrgFacts(org_id, tenant_id, name, plan, team_timezone(session, tenant_id))


def find_organisation(
    session: Session, name: str, *, tenant_id: uuid.UUID | None = None
) -> OrgFacts:
    """The organisation called ``name`` (exact, then case-insensitive), or a clear refusal.
    ``tenant_id`` limits the search to one team (the server; a local database has one)."""
    wanted = name.strip()
    if not wanted:
        raise QueryError("org", "name an organisation")
    query = (
        select(Organisation.id, Organisation.name)
        .where(Organisation.deleted.is_(False))
        .where(
            Organisation.name.ilike(
                wanted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_"), escape="\\"
            )
        )
    )
    if tenant_id is not None:
        query = query.where(Organisation.tenant_id == tenant_id)
    rows = list(session.execute(query))
    exact = [r for r in rows if r[1] == wanted]
    chosen = exact or rows
    if not chosen:
        raise QueryError("org", f"no organisation is called {wanted!r}")
    if len(chosen) > 1:
        raise QueryError("org", f"{len(chosen)} organisations are called {wanted!r}")
    return org_facts(session, chosen[0][0])


def person_names(session: Session, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    return {
        i: n for i, n in session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    }


@dataclass(frozen=True)
class EntryFacts:
    """What the policy's work item does not carry but a reader wants to see."""

    id: str
    organisation_id: uuid.UUID
    person_id: uuid.UUID
    ticket_id: uuid.UUID | None
    ticket_subject: str
    general_support: bool
    kind: TimeKind
    started_at: datetime
    ended_at: datetime
    billable: bool
    extra_engineer: bool
    note: str
    source: str
    voids_id: uuid.UUID | None


@dataclass(frozen=True)
class Ledger:
    """Blocks (with price) and live work items of one organisation from ``since`` to ``until``.

    ``items`` are the policy's view; ``details`` what a reader shows next to each of them (its
    ticket's subject and its note), by item id, when asked for.
    """

    organisation_id: uuid.UUID
    since: datetime
    until: datetime
    blocks: tuple[billing.HourBlock, ...]
    prices: dict[str, Decimal | None]
    items: tuple[WorkItem, ...]
    details: dict[str, tuple[str, str]]


def work_item(e: EntryFacts) -> WorkItem:
    return WorkItem(
        customer_id=str(e.organisation_id),
        person=str(e.person_id),
        kind=WorkKind(e.kind.value),
        start=e.started_at,
        end=e.ended_at,
        billable=e.billable,
        extra_engineer=e.extra_engineer,
        id=e.id,
    )


def _aware(value: datetime) -> datetime:
    """SQLite hands back naive UTC; PostgreSQL aware times."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


# -- the lean read -------------------------------------------------------------------------
#
# A year or five of one customer's ledger is ~20,000 rows, read with no per-value result
# processing (:mod:`.raw`): typed, that was most of a statement's read and stalled the desktop's
# GUI thread 60-70 ms while the timer's balance loaded (docs/performance.md).

_WORK_KINDS = {k.value: k for k in WorkKind}
_TIME_KINDS = {k.value: k for k in TimeKind}


def live_clauses(query: Any, te: Any, since: datetime, until: datetime) -> Any:
    """Entries touching [since, until) that nobody voided, voiding entries left out (the
    ledger is append-only: a correction is a new entry voiding the old one). Voided entries
    are dropped by ``NOT EXISTS`` on the indexed ``voids_id``, wherever the voiding entry
    lies."""
    voiding = aliased(TimeEntry)
    return query.where(
        te.deleted.is_(False),
        te.started_at < until,
        te.ended_at >= since,
        te.source != "void",
        ~exists().where(voiding.voids_id == te.id, voiding.deleted.is_(False)),
    )


def live_entries(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    org_id: uuid.UUID | None = None,
    person_id: uuid.UUID | None = None,
) -> list[EntryFacts]:
    """Live entries touching [since, until) with what a reader shows next to them (see
    :func:`live_clauses`): one query, read lean (see the notes above)."""
    te = TimeEntry
    query = live_clauses(
        select(
            raw(te.id),
            raw(te.organisation_id),
            raw(te.person_id),
            raw(te.ticket_id),
            raw(te.kind),
            raw(te.started_at),
            raw(te.ended_at),
            te.billable,
            te.extra_engineer,
            te.note,
            te.source,
            raw(te.voids_id),
            Ticket.subject,
            raw(Ticket.kind).label("ticket_kind"),
        ).outerjoin(Ticket, Ticket.id == te.ticket_id),
        te,
        since,
        until,
    )
    if org_id is not None:
        query = query.where(te.organisation_id == org_id)
    if person_id is not None:
        query = query.where(te.person_id == person_id)
    general = TicketKind.GENERAL.value
    uuids = Uuids()
    kinds = _TIME_KINDS
    return [
        EntryFacts(
            id=uuid_text(i),
            organisation_id=uuids[org],
            person_id=uuids[person],
            ticket_id=None if ticket is None else uuids[ticket],
            ticket_subject=subject or "",
            general_support=ticket_kind == general,
            kind=kinds[kind],
            started_at=instant(start),
            ended_at=instant(end),
            billable=billable,
            extra_engineer=extra,
            note=note,
            source=source,
            voids_id=None if voids is None else uuids[voids],
        )
        for (
            i,
            org,
            person,
            ticket,
            kind,
            start,
            end,
            billable,
            extra,
            note,
            source,
            voids,
            subject,
            ticket_kind,
        ) in session.execute(query)
    ]


def _work_columns() -> list[Any]:
    """What a policy work item needs of a time entry, read as the driver returns it (see
    :mod:`.raw`), in the order :func:`clipped_work` and :func:`load_ledger` unpack it."""
    te = TimeEntry
    return [
        raw(te.id),
        raw(te.person_id),
        raw(te.kind),
        raw(te.started_at),
        raw(te.ended_at),
        te.billable,
        te.extra_engineer,
    ]


def clipped_work(
    session: Session, org_id: uuid.UUID, since: datetime, until: datetime
) -> list[WorkItem]:
    """The organisation's live work touching [since, until), each item clipped to it, as the
    policy's items (nothing else read: the timer's balance and today's figures).

    Why clip: the cost of a day-by-day bill follows the span of the items it is given, and one
    entry spanning centuries (recorded before arguments were bounded, or imported) would
    otherwise make a desktop replay ~740,000 days to show today's figure. The window is a
    whole number of the team's local days (today) or reaches days before anything that
    matters (a prepaid balance), so clipping at its edges changes no bill inside it.
    """
    te = TimeEntry
    query = live_clauses(select(*_work_columns()), te, since, until).where(
        te.organisation_id == org_id
    )
    customer = str(org_id)
    people = Texts()
    kinds = _WORK_KINDS
    items = []
    for i, person, kind, start, end, billable, extra in driver_rows(session, query):
        start, end = instant(start), instant(end)
        if start < since or end > until:
            start, end = max(start, since), min(end, until)
            end = max(start, end)
        items.append(
            WorkItem(  # by position: a keyword call costs twice as much (years of entries)
                customer,
                people[person],
                kinds[kind],
                start,
                end,
                bool(billable),  # the driver's 0/1 (SQLite) or boolean
                bool(extra),
                None,
                uuid_text(i),
            )
        )
    return items


def read_blocks(
    session: Session,
    org_id: uuid.UUID,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[list[billing.HourBlock], dict[str, Decimal | None]]:
    """The organisation's live hour blocks purchased in [since, until) (either end open),
    oldest first, and their prices by block id."""
    query = (
        select(HourBlock.id, HourBlock.purchased_at, HourBlock.minutes, HourBlock.price)
        .where(HourBlock.organisation_id == org_id, HourBlock.deleted.is_(False))
        .order_by(HourBlock.purchased_at, HourBlock.id)
    )
    if since is not None:
        query = query.where(HourBlock.purchased_at >= since)
    if until is not None:
        query = query.where(HourBlock.purchased_at < until)
    rows = list(session.execute(query))
    blocks = [
        billing.HourBlock(id=str(i), customer_id=str(org_id), purchased_at=_aware(at), minutes=m)
        for i, at, m, _ in rows
    ]
    return blocks, {str(i): p for i, _, _, p in rows}


def replay_start(
    blocks: Sequence[billing.HourBlock],
    since: datetime,
    *,
    lookback: timedelta | None = MAX_LOOKBACK,
) -> datetime:
    """Where a replay must begin for balances at ``since`` to be right (see the module notes).

    ``lookback=None``: follow the chain of overlapping blocks however far back it goes (the
    timer's prepaid balance, which has always counted every block of the chain)."""
    start = since
    floor = since - lookback if lookback is not None else datetime.min.replace(tzinfo=UTC)
    for block in sorted(blocks, key=lambda b: b.purchased_at, reverse=True):
        if block.purchased_at >= start:
            continue
        if block.expires_at > start - _DAY_SLACK:
            start = max(floor, min(start, _aware(block.purchased_at)))
    return start - _DAY_SLACK


def load_ledger(
    session: Session,
    org_id: uuid.UUID,
    since: datetime,
    until: datetime,
    *,
    details: bool = True,
) -> Ledger:
    """The ledger a replay needs for balances from ``since`` to ``until``; with ``details``,
    each entry's ticket subject and note too (a statement's lines; a contract needs none).

    The entries are read lean (see the notes above) straight into the policy's items: a year
    is ~20,000 rows, and every object made per row showed in a statement's time.
    """
    all_blocks, prices = read_blocks(
        session, org_id, since=since - MAX_LOOKBACK - billing.DEFAULT_VALIDITY, until=until
    )
    start = replay_start(all_blocks, since)
    blocks = tuple(b for b in all_blocks if b.expires_at > start)
    te = TimeEntry
    columns = _work_columns()
    query = select(*columns)
    if details:
        query = select(*columns, te.note, Ticket.subject).outerjoin(
            Ticket, Ticket.id == te.ticket_id
        )
    query = live_clauses(query, te, start, until).where(te.organisation_id == org_id)
    customer = str(org_id)
    people = Texts()
    kinds = _WORK_KINDS
    items = []
    shown: dict[str, tuple[str, str]] = {}
    # The driver's rows, fetched at once: a result object per row (even Core's) cost more than
    # the columns; the flags come as SQLite's 0/1 (PostgreSQL's booleans), hence bool().
    for row in driver_rows(session, query):
        item_id = uuid_text(row[0])
        items.append(
            WorkItem(  # by position: a keyword call costs twice as much (20,000 rows)
                customer,
                people[row[1]],
                kinds[row[2]],
                instant(row[3]),
                instant(row[4]),
                bool(row[5]),
                bool(row[6]),
                None,
                item_id,
            )
        )
        if details:
            shown[item_id] = (row[8] or "", row[7])
    return Ledger(org_id, start, until, blocks, prices, tuple(items), shown)
