"""A realistic demo team, so every screen of a fresh install has something real to show.

:func:`generate_demo` writes one support team: the seeds' four plans on their calendars, 36
customer organisations with validated and unvalidated contacts, a few thousand tickets over the
last four months in every workflow state with their history, and 1-on-1 hour blocks,
appointments and time entries. Everything is built through the rules engine it demonstrates:
channels and the yearly allowance are checked with :func:`check_request`, redirected requests
carry :func:`route_request`'s own history and notices, response times are placed against
:func:`response_due` on the plan's calendar, and validated contacts stay within the allotment.

Decisions an integrator should know:

* **Idempotent, never duplicating.** The demo is its own tenant, :data:`DEMO_TEAM_NAME`. If it
  already exists nothing is written and the summary describes what is there
  (``created=False``). If a demo username is taken by another team, :class:`DemoConflict` is
  raised and nothing is written: usernames are unique across the whole server.
* **One transaction.** Either the whole team appears or nothing does. A second run racing the
  first fails on the unique usernames and rolls back.
* **Versions for sync.** The tenant is created in this transaction, so nobody else can hold its
  counter: rows are stamped directly, in dependency order (users, calendars, plans,
  organisations, contacts, tickets, events, ...), with a new version every
  :data:`VERSION_BATCH` rows. A first pull can therefore page by version and every page refers
  only to rows of earlier pages; the counter row ends at the last version used.
* **Deterministic.** One ``random.Random(seed)`` drives every choice and every instant is derived
  from ``now``, so the same seed and ``now`` give the same content (ids are fresh UUIDv7s).
  With ``now`` omitted the data is placed relative to the current time, so the demo always
  looks current: some tickets arrived minutes ago, some hours expire next week.
* **Fast.** Rows are built as plain dicts and written with bulk INSERTs (executemany), not
  through the ORM unit of work: 3,000 tickets and their ~20,000 events take a few seconds.
"""

from __future__ import annotations

import itertools
import random
import re
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from ..models import (
    Appointment,
    AppointmentStatus,
    Calendar,
    Contact,
    EventKind,
    HourBlock,
    Level,
    Organisation,
    Plan,
    Role,
    Tenant,
    TenantCounter,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    TimeEntry,
    TimeKind,
    User,
    WaitingPeriod,
    new_id,
)
from ..models import event_payloads as ev
from ..models.base import Base
from ..models.db import make_session_factory, session_scope
from ..policy.calendar import BusinessCalendar
from ..policy.contacts import Contact as PolicyContact
from ..policy.contacts import route_request
from ..policy.entitlements import calendar_year_of, check_request, conversation_allowance
from ..policy.plans import SEED_PLAN_CALENDARS, SupportPlan, seed_calendars, seed_plans
from ..policy.sla import response_business_time, response_due, response_instants
from . import demo_text as words
from .security import hash_password

__all__ = [
    "DEFAULT_TICKETS",
    "DEMO_TEAM_NAME",
    "DEMO_TIMEZONE",
    "DEMO_USERS",
    "MAX_TICKETS",
    "DemoConflict",
    "DemoSummary",
    "DemoUser",
    "generate_demo",
]

DEMO_TEAM_NAME = "AgentDesk demo team"
#: The team works New York hours (seed 002), so its calendar years and billing days are New York's.
DEMO_TIMEZONE = "America/New_York"
DEFAULT_TICKETS = 3000
MAX_TICKETS = 200_000
#: Tickets arrive over this many days before ``now``.
HISTORY_DAYS = 120
#: 1-on-1 contracts start up to this many days back, so some hour blocks have already expired.
BILLING_HISTORY_DAYS = 150
#: Appointments are booked this far ahead.
FUTURE_DAYS = 21
#: Rows per sync version: small enough for a pull to page through, large enough to stay cheap.
VERSION_BATCH = 500

_DAY = timedelta(days=1)
_SECOND = timedelta(seconds=1)
_OPEN_MINUTE = 8 * 60  # the consultants' day, New York time
_CLOSE_MINUTE = 17 * 60
_HOURLY_RATE = Decimal("150.00")
_BLOCK_PRICES = {5: Decimal("750.00"), 10: Decimal("1400.00"), 20: Decimal("2600.00")}

# Arrival hour weights, New York time: business hours dominate, evenings and nights trickle in.
_WEEKDAY_HOURS = (1, 1, 1, 1, 1, 2, 4, 9, 22, 30, 30, 26, 18, 24, 28, 26, 20, 12, 8, 6, 5, 4, 3, 2)
_WEEKEND_HOURS = (2, 1, 1, 1, 1, 1, 2, 3, 5, 7, 8, 8, 7, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2)
#: Business minutes of work between the first response and the resolution, by tier.
_WORK_MINUTES = {1: (20, 180), 2: (60, 600), 3: (60, 1200), 4: (120, 2400)}
_CHANNEL_WEIGHTS = {"portal": 6.0, "chat": 3.0, "phone": 1.5, "email": 1.0}


@dataclass(frozen=True)
class DemoUser:
    """A demo sign-in. The passwords are public by design: they are printed for whoever demos."""

    username: str
    password: str
    role: Role
    display_name: str
    duty: str

    @property
    def email(self) -> str:
        return f"{self.display_name.lower().replace(' ', '.')}@support.example.com"


def _demo_user(username: str, role: Role, name: str, duty: str) -> DemoUser:
    return DemoUser(username, f"demo-{username}-pass", role, name, duty)


DEMO_USERS: tuple[DemoUser, ...] = (
    _demo_user("admin", Role.ADMIN, "Morgan Reyes", "administrator"),
    _demo_user("lead", Role.LEAD, "Dana Whitfield", "team lead"),
    _demo_user("coordinator", Role.COORDINATOR, "Priya Raman", "support coordinator"),
    _demo_user("agent", Role.AGENT, "Sam Okafor", "Level 1 agent"),
    _demo_user("agent2", Role.AGENT, "Lucia Fernandez", "Level 1 agent"),
    _demo_user("agent3", Role.AGENT, "Tom Becker", "Level 1 agent"),
    _demo_user("agent4", Role.AGENT, "Aisha Karim", "Level 2 agent"),
    _demo_user("agent5", Role.AGENT, "Ben Holloway", "Level 2 agent"),
    _demo_user("consultant", Role.CONSULTANT, "Jordan Ellis", "1-on-1 consultant"),
    _demo_user("consultant2", Role.CONSULTANT, "Mei Tanaka", "1-on-1 consultant"),
    _demo_user("engineer", Role.CONSULTANT, "Ravi Patel", "engineer (joins calls on request)"),
)
_L1_AGENTS = ("agent", "agent2", "agent3")
_L2_AGENTS = ("agent4", "agent5")
_CONSULTANTS = ("consultant", "consultant2")


@dataclass(frozen=True)
class DemoSummary:
    """What the demo team holds. ``created`` is False when it already existed (nothing written)."""

    created: bool
    tenant_id: uuid.UUID
    team_name: str
    counts: Mapping[str, int]
    ticket_statuses: Mapping[str, int]
    users: tuple[DemoUser, ...] = DEMO_USERS


class DemoConflict(Exception):
    """The demo cannot be written without clashing with another team's data."""


#: Synced tables in dependency order: the order rows are written and versions are handed out.
_TABLES: tuple[tuple[str, type[Base]], ...] = (
    ("users", User),
    ("calendars", Calendar),
    ("plans", Plan),
    ("organisations", Organisation),
    ("contacts", Contact),
    ("tickets", Ticket),
    ("ticket_events", TicketEvent),
    ("waiting_periods", WaitingPeriod),
    ("hour_blocks", HourBlock),
    ("appointments", Appointment),
    ("time_entries", TimeEntry),
)


def generate_demo(
    target: Engine | sessionmaker[Session],
    *,
    seed: int = 0,
    tickets: int = DEFAULT_TICKETS,
    now: datetime | None = None,
) -> DemoSummary:
    """Write the demo team into a migrated database (see the module docstring for the rules).

    ``target`` is an engine or a session factory. ``now`` (aware) places the data in time; by
    default the current time. Raises :class:`DemoConflict` when a demo username belongs to
    another team, ``ValueError`` for a bad ``tickets`` or a naive ``now``.
    """
    if isinstance(tickets, bool) or not isinstance(tickets, int) or not 0 <= tickets <= MAX_TICKETS:
        raise ValueError(f"tickets must be a whole number from 0 to {MAX_TICKETS}")
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    now = now.astimezone(UTC)
    factory = (
        target if isinstance(target, sessionmaker) else make_session_factory(target, write=True)
    )
    # Hash before the transaction: argon2 is slow on purpose and needs no lock.
    hashes = {user.username: _password_hash(user.password) for user in DEMO_USERS}
    with session_scope(factory) as session:
        existing = session.scalar(select(Tenant).where(Tenant.name == DEMO_TEAM_NAME).limit(1))
        if existing is not None:
            return _summary(session, existing, created=False)
        taken = sorted(
            session.scalars(
                select(User.username).where(User.username.in_([u.username for u in DEMO_USERS]))
            )
        )
        if taken:
            raise DemoConflict(
                f"the username(s) {', '.join(taken)} already belong to another team on this "
                "server; the demo team needs them. Use a separate, empty database for the demo."
            )
        tenant = Tenant(
            name=DEMO_TEAM_NAME,
            timezone=DEMO_TIMEZONE,
            created_at=now - timedelta(days=BILLING_HISTORY_DAYS + 30),
        )
        session.add(tenant)
        session.flush()
        builder = _Builder(random.Random(seed), tickets, now, tenant.id, hashes)
        builder.build()
        builder.write(session)
        return _summary(session, tenant, created=True)


@cache
def _password_hash(password: str) -> str:
    """Demo passwords are public, so keeping their hashes for the life of the process leaks
    nothing, and spares argon2's deliberate slowness when several databases are seeded."""
    return hash_password(password)


def _summary(session: Session, tenant: Tenant, *, created: bool) -> DemoSummary:
    counts = {}
    for name, _model in _TABLES:
        table = Base.metadata.tables[name]
        counts[name] = int(
            session.scalar(
                select(func.count()).select_from(table).where(table.c.tenant_id == tenant.id)
            )
            or 0
        )
    by_status: dict[TicketStatus, int] = {
        status: count
        for status, count in session.execute(
            select(Ticket.status, func.count())
            .where(Ticket.tenant_id == tenant.id)
            .group_by(Ticket.status)
        )
    }
    statuses = {s.value: int(by_status[s]) for s in TicketStatus if s in by_status}
    return DemoSummary(
        created=created,
        tenant_id=tenant.id,
        team_name=tenant.name,
        counts=counts,
        ticket_statuses=statuses,
    )


# --- the builder ---------------------------------------------------------------------------------

Row = dict[str, Any]
#: Marks an update whose value is the instant of the event that makes it.
_AT = object()


@dataclass
class _Org:
    id: uuid.UUID
    name: str
    plan: SupportPlan
    calendar: BusinessCalendar
    verified: int
    recent: int
    weight: float
    contacts: list[PolicyContact] = field(default_factory=list)
    one_on_one: bool = False
    #: "regular"; "expiring": its last hours, bought on ``last_purchase``, are used lightly and
    #: run out soon; "lapsed": stopped after ``last_purchase`` and forfeited what was left.
    billing: str = "regular"
    last_purchase: date | None = None
    consultant: str = "consultant"

    def escalates_on(self, day: date) -> bool:
        """Whether general support can hand this customer's tickets to 1-on-1 on ``day``."""
        return self.one_on_one and (self.last_purchase is None or day < self.last_purchase)

    @property
    def validated(self) -> list[PolicyContact]:
        return [c for c in self.contacts if c.validated]

    @property
    def unvalidated(self) -> list[PolicyContact]:
        return [c for c in self.contacts if not c.validated]

    @property
    def allowance(self) -> int | None:
        return conversation_allowance(self.plan, self.verified, self.recent)


@dataclass
class _Draft:
    """A ticket before its history is written."""

    arrival: datetime
    org: _Org
    requester: PolicyContact
    channel: str
    stated: int
    tier: int
    level: Level
    subject: str
    description: str
    entitlement: str
    target: TicketStatus = TicketStatus.NEW
    forced: bool = False
    #: Handed to 1-on-1 whatever the dice say (so even a small demo has one escalation).
    escalate: bool = False

    @property
    def redirected(self) -> bool:
        return not self.requester.validated


@dataclass
class _Step:
    at: datetime
    author: uuid.UUID | None
    body: str
    payload: ev.Payload
    updates: dict[str, Any]

    @property
    def kind(self) -> EventKind:
        return self.payload.KIND


@dataclass
class _Escalation:
    ticket_id: uuid.UUID
    org: _Org
    at: datetime
    until: datetime
    consultant: str
    agent: uuid.UUID | None
    first_response: datetime | None


class _Timeline:
    """A ticket's history as it is planned; later cut at ``now``. Instants only move forward."""

    def __init__(self, start: datetime) -> None:
        self.steps: list[_Step] = []
        self.cursor = start - _SECOND

    def add(
        self,
        at: datetime,
        payload: ev.Payload,
        author: uuid.UUID | None,
        body: str,
        /,
        **updates: Any,
    ) -> datetime:
        at = max(at, self.cursor + _SECOND)
        self.steps.append(_Step(at, author, body, payload, updates))
        self.cursor = at
        return at


def _first(contact: PolicyContact) -> str:
    return contact.name.split(" ")[0]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _batched(rows: Sequence[Row], size: int) -> Iterator[Sequence[Row]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


class _Builder:
    def __init__(
        self,
        rng: random.Random,
        tickets: int,
        now: datetime,
        tenant_id: uuid.UUID,
        hashes: Mapping[str, str],
    ) -> None:
        self.rng = rng
        self.n_tickets = tickets
        self.now = now
        self.tenant_id = tenant_id
        self.hashes = hashes
        self.zone = ZoneInfo(DEMO_TIMEZONE)
        self.today = now.astimezone(self.zone).date()
        self.rows: dict[str, list[Row]] = {name: [] for name, _ in _TABLES}
        self.user_ids: dict[str, uuid.UUID] = {}
        self.user_names: dict[uuid.UUID, str] = {}
        self.usernames: dict[uuid.UUID, str] = {}
        self.calendars: dict[str, BusinessCalendar] = {}
        self.orgs: list[_Org] = []
        self.escalations: list[_Escalation] = []
        self.diary: dict[tuple[str, date], list[tuple[int, int]]] = defaultdict(list)
        self.past_appointments = 0
        self.future_appointments = 0
        self.held_appointments = 0
        self.engineer_this_week = False
        self.invoice_no = itertools.count(101)

    # --- helpers ---

    def _row(self, **values: Any) -> Row:
        return {"tenant_id": self.tenant_id, "version": 0, "deleted": False, **values}

    def _local(self, day: date, minute: int, second: int = 0) -> datetime:
        """``minute`` after local midnight of ``day`` (New York), as UTC."""
        wall = datetime.combine(day, time(minute // 60, minute % 60, second), tzinfo=self.zone)
        return wall.astimezone(UTC)

    def _uid(self, username: str) -> uuid.UUID:
        return self.user_ids[username]

    def _book(
        self,
        person: str,
        day: date,
        length: int,
        *,
        earliest: int = _OPEN_MINUTE,
        latest: int = _CLOSE_MINUTE,
        at: int | None = None,
    ) -> int | None:
        """Reserve ``length`` minutes in a person's day, so nobody is in two places at once."""
        taken = self.diary[person, day]
        if at is not None:
            candidates = [at]
        else:
            earliest = -(-earliest // 5) * 5
            slots = (latest - length - earliest) // 5
            if slots < 0:
                return None
            candidates = [earliest + 5 * self.rng.randint(0, slots) for _ in range(12)]
        for start in candidates:
            if all(start + length <= a or start >= b for a, b in taken):
                taken.append((start, start + length))
                return start
        return None

    def _business_days(self, first: date, last: date) -> Iterator[date]:
        office = self.calendars["office"]
        day = first
        while day <= last:
            if office.is_business_day(day):
                yield day
            day += _DAY

    # --- the parts ---

    def build(self) -> None:
        self._users()
        self._calendars_and_plans()
        self._organisations()
        self._tickets()
        self._billing()
        self._corrections()

    def _users(self) -> None:
        joined = self.now - timedelta(days=BILLING_HISTORY_DAYS + 20)
        for i, user in enumerate(DEMO_USERS):
            uid = new_id()
            self.user_ids[user.username] = uid
            self.user_names[uid] = user.display_name
            self.usernames[uid] = user.username
            self.rows["users"].append(
                self._row(
                    id=uid,
                    username=user.username,
                    display_name=user.display_name,
                    email=user.email,
                    role=user.role,
                    active=True,
                    password_hash=self.hashes[user.username],
                    created_at=joined + timedelta(hours=i),
                )
            )

    def _calendars_and_plans(self) -> None:
        specs = [(key, name, data) for key, (name, data) in seed_calendars().items()]
        calendar_ids: dict[str, uuid.UUID] = {}
        for key, name, data in specs:
            self.calendars[key] = BusinessCalendar.from_dict(data, name=name)
            calendar_ids[key] = new_id()
            self.rows["calendars"].append(self._row(id=calendar_ids[key], name=name, data=data))
        self.plans: dict[str, tuple[uuid.UUID, SupportPlan]] = {}
        self.plan_calendar: dict[str, BusinessCalendar] = {}
        for plan in seed_plans():
            key = SEED_PLAN_CALENDARS[plan.key]
            named = replace(plan, calendar=self.calendars[key].name)
            plan_id = new_id()
            self.plans[plan.key] = (plan_id, named)
            self.plan_calendar[plan.key] = self.calendars[key]
            self.rows["plans"].append(
                self._row(
                    id=plan_id, calendar_id=calendar_ids[key], **Plan.columns_from_policy(plan)
                )
            )

    def _organisations(self) -> None:
        rng = self.rng
        # Free members' review profiles, cycled so some qualify for the bonus and some miss it
        # by one criterion or both (seed 000).
        profiles = ("bonus", "few_recent", "bonus", "few_verified", "new", "almost")
        base_weight = {"basic": 0.2, "standard": 2.5, "premium": 5.0, "enterprise": 10.0}
        first_names = list(words.FIRST_NAMES)
        for plan_key, names in words.ORGANISATIONS.items():
            plan_id, plan = self.plans[plan_key]
            for i, name in enumerate(names):
                profile = profiles[i % len(profiles)] if plan_key == "basic" else "member"
                verified, recent = {
                    "bonus": (rng.randint(25, 140), rng.randint(10, 30)),
                    "few_recent": (rng.randint(30, 90), rng.randint(0, 9)),
                    "few_verified": (rng.randint(5, 24), rng.randint(10, 16)),
                    "almost": (24, 10),
                    "new": (rng.randint(0, 3), rng.randint(0, 2)),
                    "member": (rng.randint(10, 400), rng.randint(0, 60)),
                }[profile]
                org = _Org(
                    id=new_id(),
                    name=name,
                    plan=plan,
                    calendar=self.plan_calendar[plan_key],
                    verified=verified,
                    recent=recent,
                    weight=base_weight[plan_key] * rng.uniform(0.4, 1.6),
                )
                self.orgs.append(org)
                since = self.now - timedelta(days=rng.randint(40, 2500))
                if profile == "new":
                    since = self.now - timedelta(days=rng.randint(20, 60))
                self.rows["organisations"].append(
                    self._row(
                        id=org.id,
                        name=name,
                        plan_id=plan_id,
                        membership="trial" if profile == "new" else "active",
                        member_since=since,
                        verified_reviews=verified,
                        recent_reviews=recent,
                    )
                )
                # New free members have not validated anyone yet: all their requests redirect.
                validated = {
                    "basic": 0 if profile == "new" else 1,
                    "standard": rng.randint(1, 2),
                    "premium": rng.randint(2, 4),
                    "enterprise": rng.randint(4, 8),
                }[plan_key]
                assert validated <= plan.contact_allotment
                self._contacts(org, validated, rng.randint(1, 3), since, first_names)
        self._choose_one_on_one()

    def _contacts(
        self, org: _Org, validated: int, others: int, since: datetime, first_names: list[str]
    ) -> None:
        rng = self.rng
        domain = f"{_slug(org.name)}.example.com"
        used: set[str] = set()
        area = rng.choice(("212", "312", "415", "503", "617", "704", "808", "919"))
        for n in range(validated + others):
            while True:
                first, last = rng.choice(first_names), rng.choice(words.LAST_NAMES)
                if f"{first} {last}" not in used:
                    break
            used.add(f"{first} {last}")
            cid = new_id()
            is_validated = n < validated
            email = f"{_slug(first)}.{_slug(last)}@{domain}"
            phone = (
                f"+1 {area} 555 01{rng.randrange(100):02d}"
                if org.plan.allows_channel("phone") or rng.random() < 0.5
                else None
            )
            validated_at = None
            validated_by = None
            if is_validated:
                span = max(1, (self.now - since).days - 1)
                validated_at = since + timedelta(
                    days=rng.randint(0, min(span, 30)), minutes=rng.randrange(24 * 60)
                )
                validated_by = self._uid(rng.choice(("coordinator", "lead")))
            org.contacts.append(
                PolicyContact(
                    id=str(cid), name=f"{first} {last}", email=email, validated=is_validated
                )
            )
            self.rows["contacts"].append(
                self._row(
                    id=cid,
                    organisation_id=org.id,
                    name=f"{first} {last}",
                    email=email,
                    phone=phone,
                    validated=is_validated,
                    validated_by_id=validated_by,
                    validated_at=validated_at,
                )
            )

    def _choose_one_on_one(self) -> None:
        """Ten paying organisations buy 1-on-1 hours. Of the three Standard ones (few tickets,
        so their usage is easy to steer) two let their last hours run towards expiry, for the
        "hours about to expire" dashboard, and one stopped months ago and forfeited the rest."""
        by_plan: dict[str, list[_Org]] = defaultdict(list)
        for org in self.orgs:
            by_plan[org.plan.key].append(org)
        chosen = (
            self.rng.sample(by_plan["standard"], 3)
            + self.rng.sample(by_plan["premium"], 4)
            + self.rng.sample(by_plan["enterprise"], 3)
        )
        office = self.calendars["office"]
        for i, org in enumerate(chosen):
            org.one_on_one = True
            org.consultant = _CONSULTANTS[i % len(_CONSULTANTS)]
            if i < 2:
                org.billing = "expiring"
                last = self.today - timedelta(days=self.rng.randint(76, 84))
            elif i == 2:
                org.billing = "lapsed"
                last = self.today - timedelta(days=self.rng.randint(115, 125))
            else:
                continue
            while not office.is_business_day(last):  # purchases happen on working days
                last -= _DAY
            org.last_purchase = last
        self.one_on_one = chosen

    # --- tickets ---

    def _arrivals(self) -> list[datetime]:
        rng = self.rng
        office = self.calendars["office"]
        days = [self.today - timedelta(days=d) for d in range(HISTORY_DAYS)]
        weights = []
        for i, day in enumerate(days):
            w = 1.0 if day.weekday() < 5 else 0.15
            if office.is_holiday(day):
                w = 0.2
            weights.append(w * (0.8 + 0.4 * (1 - i / HISTORY_DAYS)))
        day_cum = list(itertools.accumulate(weights))
        weekday_cum = list(itertools.accumulate(_WEEKDAY_HOURS))
        weekend_cum = list(itertools.accumulate(_WEEKEND_HOURS))
        hours = range(24)
        latest = self.now - timedelta(minutes=1)
        out = []
        for _ in range(self.n_tickets):
            for _attempt in range(30):
                day = rng.choices(days, cum_weights=day_cum)[0]
                cum = weekday_cum if day.weekday() < 5 else weekend_cum
                hour = rng.choices(hours, cum_weights=cum)[0]
                wall = datetime.combine(
                    day,
                    time(hour, rng.randrange(60), rng.randrange(60), rng.randrange(10**6)),
                    tzinfo=self.zone,
                )
                arrival = wall.astimezone(UTC)
                if arrival <= latest:
                    break
            else:
                arrival = latest - timedelta(seconds=rng.randrange(1, 6 * 3600))
            out.append(arrival)
        out.sort()
        return out

    def _drafts(self) -> list[_Draft]:
        rng = self.rng
        limited = [o for o in self.orgs if o.allowance is not None]
        unlimited = [o for o in self.orgs if o.allowance is None]
        all_cum = list(itertools.accumulate(o.weight for o in self.orgs))
        unlimited_cum = list(itertools.accumulate(o.weight for o in unlimited))
        assert limited
        assert unlimited
        used: Counter[tuple[uuid.UUID, int]] = Counter()
        drafts = []
        for arrival in self._arrivals():
            year = calendar_year_of(arrival, DEMO_TIMEZONE)
            org = rng.choices(self.orgs, cum_weights=all_cum)[0]
            allowance = org.allowance
            if allowance is not None and used[org.id, year] >= allowance:
                org = rng.choices(unlimited, cum_weights=unlimited_cum)[0]
            if not org.validated or rng.random() < 0.04:
                requester = rng.choice(org.unvalidated)
            else:
                validated = org.validated
                requester = rng.choices(validated, weights=[3] + [1] * (len(validated) - 1))[0]
            channels = sorted(org.plan.channels)
            channel = rng.choices(channels, weights=[_CHANNEL_WEIGHTS[c] for c in channels])[0]
            decision = check_request(
                org.plan,
                channel=channel,
                verified_reviews=org.verified,
                reviews_last_6_months=org.recent,
                conversations_this_year=used[org.id, year],
                year=year,
            )
            if not decision.allowed:  # pragma: no cover - the choices above prevent it
                raise AssertionError(f"demo generator broke a rule: {decision.reason}")
            used[org.id, year] += 1
            urgent = (20, 35, 35, 10) if channel == "phone" else (8, 22, 45, 25)
            stated = rng.choices((1, 2, 3, 4), weights=urgent)[0]
            r = rng.random()
            tier = stated if r < 0.6 else min(4, stated + 1) if r < 0.9 else max(1, stated - 1)
            l2_share = 0.45 if org.plan.key == "enterprise" else 0.3
            level = Level.L2 if rng.random() < l2_share else Level.L1
            subject = rng.choice(words.SUBJECTS[level.value][tier])
            stop = "" if subject[-1] in "?." else "."
            details = " ".join(rng.sample(words.DETAILS, 2))
            description = f"Hi support team,\n\n{subject}{stop} {details}\n\n{_first(requester)}"
            drafts.append(
                _Draft(
                    arrival,
                    org,
                    requester,
                    channel,
                    stated,
                    tier,
                    level,
                    subject,
                    description,
                    decision.reason,
                )
            )
        self._targets(drafts)
        return drafts

    def _targets(self, drafts: list[_Draft]) -> None:
        """Where each ticket's history stops: recent tickets are open, old ones done."""
        rng = self.rng
        s = TicketStatus
        n = len(drafts)
        options: dict[TicketStatus, float]
        for i, d in enumerate(reversed(drafts)):
            share = i / n
            if d.redirected:
                d.target = s.REDIRECTED
                continue
            # The newest tickets are mostly headed somewhere; their history is cut at ``now``,
            # so whatever has not been triaged or answered yet shows as new or triaged.
            if share < 0.015:
                options = {
                    s.NEW: 12,
                    s.TRIAGED: 10,
                    s.IN_PROGRESS: 40,
                    s.WAITING_ON_CUSTOMER: 10,
                    s.RESOLVED: 28,
                }
            elif share < 0.05:
                options = {
                    s.NEW: 2,
                    s.TRIAGED: 5,
                    s.IN_PROGRESS: 35,
                    s.WAITING_ON_CUSTOMER: 22,
                    s.RESOLVED: 36,
                }
            elif share < 0.12:
                options = {
                    s.NEW: 0.5,
                    s.TRIAGED: 1.5,
                    s.IN_PROGRESS: 20,
                    s.WAITING_ON_CUSTOMER: 15,
                    s.RESOLVED: 63,
                }
            else:
                options = {
                    s.IN_PROGRESS: 1,
                    s.WAITING_ON_CUSTOMER: 1.5,
                    s.RESOLVED: 22,
                    s.CLOSED: 75.5,
                }
            d.target = rng.choices(list(options), weights=list(options.values()))[0]
        if n < 20:
            return
        # Every state on screen, even with few tickets: give a missing state to the newest
        # ticket old enough for its whole history to have happened by now.
        # A target counts only if the ticket is old enough to have surely reached it; a newer
        # one may still be cut short by ``now``.
        min_age = {
            s.NEW: 0,
            s.TRIAGED: 5,
            s.IN_PROGRESS: 8,
            s.WAITING_ON_CUSTOMER: 8,
            s.RESOLVED: 20,
            s.CLOSED: 35,
            s.REDIRECTED: 0,
        }

        def certain(d: _Draft) -> bool:
            return d.arrival <= self.now - timedelta(days=min_age[d.target])

        present = Counter(d.target for d in drafts if certain(d))
        for status in s:
            if present[status]:
                continue
            cutoff = self.now - timedelta(days=min_age[status])
            for d in reversed(drafts):
                if (
                    d.arrival <= cutoff
                    and not d.forced
                    and not d.redirected
                    and (not certain(d) or present[d.target] > 1)
                ):
                    if certain(d):
                        present[d.target] -= 1
                    if status is s.REDIRECTED:
                        d.requester = rng.choice(d.org.unvalidated)
                    d.target, d.forced = status, True
                    present[status] += 1
                    break
        for d in reversed(drafts):
            if (
                d.target in (s.RESOLVED, s.CLOSED)
                and certain(d)
                and not d.redirected
                and d.org.escalates_on(d.arrival.astimezone(self.zone).date())
            ):
                d.escalate = True
                break

    def _tickets(self) -> None:
        for draft in self._drafts():
            ticket_id = new_id()
            timeline = _Timeline(draft.arrival)
            timeline.add(
                draft.arrival,
                ev.Created(
                    channel=draft.channel,
                    requester_id=draft.requester.id,
                    stated_urgency=draft.stated,
                    entitlement=draft.entitlement,
                ),
                None,
                draft.description,
            )
            if draft.redirected:
                self._redirect(draft, timeline)
            else:
                self._work(draft, timeline)
            self._write_ticket(ticket_id, draft, timeline)

    def _redirect(self, d: _Draft, tl: _Timeline) -> None:
        """Seed 003: not worked; the validated contacts are asked how to proceed."""
        routing = route_request(d.org.plan, d.org.contacts, d.requester.id)
        assert not routing.worked
        room = int((self.now - d.arrival).total_seconds()) - len(routing.notify) - 3
        at = d.arrival + timedelta(seconds=max(1, min(self.rng.randint(60, 1800), room)))
        coordinator = self._uid("coordinator")
        tl.add(
            at,
            ev.Redirect(
                code=routing.code,
                requester_id=d.requester.id,
                notify=tuple(c.id for c in routing.notify),
            ),
            coordinator,
            routing.history,
            status=TicketStatus.REDIRECTED,
        )
        for contact in routing.notify:
            tl.add(
                at,
                ev.Notification(to=(contact.id,), about="redirect"),
                coordinator,
                f"Asked {contact.display} how they would like to proceed with the request "
                f"from {d.requester.display}.",
            )
        tl.add(
            at,
            ev.Notification(to=(d.requester.id,), about="redirect"),
            coordinator,
            routing.requester_notice,
        )

    def _work(self, d: _Draft, tl: _Timeline) -> None:
        """Seed 002's workflow: triage, "who has it and what happens next", completion."""
        rng = self.rng
        s = TicketStatus
        plan, cal, target = d.org.plan, d.org.calendar, d.target
        if target is s.NEW:
            return
        open_at = cal.next_open(d.arrival)
        due = response_due(d.arrival, d.tier, plan, cal)
        total = max(2, int(cal.between(d.arrival, due).total_seconds() // 60))
        triage_off = rng.randint(1, max(1, total // 4))
        coordinator = self._uid("coordinator")
        level_no = 2 if d.level is Level.L2 else 1
        stated_note = f" The customer stated urgency {d.stated}." if d.stated != d.tier else ""
        triaged_at = tl.add(
            cal.add(open_at, timedelta(minutes=triage_off)) + rng.randrange(60) * _SECOND,
            ev.Triage(tier=d.tier, level=d.level.value),
            coordinator,
            f"Assessed as tier {d.tier} ({words.TIER_LABELS[d.tier]}); routed to Level "
            f"{level_no}.{stated_note}",
            tier=d.tier,
            level=d.level,
            status=s.TRIAGED,
        )
        pool = _L2_AGENTS if d.level is Level.L2 else _L1_AGENTS
        agent_name = rng.choices(pool, weights=[3, 2, 1][: len(pool)])[0]
        agent = self._uid(agent_name)
        if target is s.TRIAGED and rng.random() < 0.5:
            return
        tl.add(
            triaged_at + rng.randint(1, 5) * 60 * _SECOND,
            ev.Assignment(new=str(agent)),
            coordinator,
            f"Assigned to {self.user_names[agent]}.",
            assignee_id=agent,
        )
        if target is s.TRIAGED:
            return
        late = rng.random() < 0.12
        offset = (
            total + rng.randint(5, 240) if late else rng.randint(min(triage_off + 1, total), total)
        )
        responded = cal.add(open_at, timedelta(minutes=offset)) + rng.randrange(60) * _SECOND
        tl.add(
            responded,
            ev.StatusChange(old="triaged", new="in_progress"),
            agent,
            "Status: triaged -> in progress.",
            status=s.IN_PROGRESS,
        )
        tl.add(
            responded,
            ev.Reply(notification="assignment", to=(d.requester.id,)),
            agent,
            f"Hi {_first(d.requester)}, thanks for getting in touch. I'm "
            f"{self.user_names[agent].split(' ')[0]} from our Level {level_no} team and I've "
            f"taken your request (tier {d.tier}: {words.TIER_LABELS[d.tier]}). Next step: "
            f"{rng.choice(words.NEXT_STEPS)}.",
            first_response_at=_AT,
        )
        if rng.random() < 0.4:
            tl.add(
                cal.add(tl.cursor, timedelta(minutes=rng.randint(5, 90))),
                ev.Note(),
                agent,
                rng.choice(words.NOTES),
            )
        waits = (
            target is s.WAITING_ON_CUSTOMER
            or (target in (s.RESOLVED, s.CLOSED) and rng.random() < 0.3)
            or (target is s.IN_PROGRESS and rng.random() < 0.2)
        )
        if waits:
            asked = tl.add(
                cal.add(tl.cursor, timedelta(minutes=rng.randint(10, 300))),
                ev.Reply(to=(d.requester.id,)),
                agent,
                rng.choice(words.QUESTIONS),
            )
            tl.add(
                asked,
                ev.StatusChange(old="in_progress", new="waiting_on_customer"),
                agent,
                "Status: in progress -> waiting on customer.",
                status=s.WAITING_ON_CUSTOMER,
                wait_start=_AT,
            )
            if target is s.WAITING_ON_CUSTOMER:
                return
            answered = tl.add(
                tl.cursor + timedelta(minutes=rng.randint(30, 4320)),
                ev.Reply(from_contact=d.requester.id),
                None,
                rng.choice(words.CUSTOMER_ANSWERS),
                wait_end=_AT,
            )
            tl.add(
                answered,
                ev.StatusChange(old="waiting_on_customer", new="in_progress"),
                None,
                "Status: waiting on customer -> in progress (the customer replied).",
                status=s.IN_PROGRESS,
            )
        worker, work_cal = agent, cal
        low, high = _WORK_MINUTES[d.tier]
        if d.escalate or (
            d.org.escalates_on(d.arrival.astimezone(self.zone).date())
            and target in (s.IN_PROGRESS, s.RESOLVED, s.CLOSED)
            and rng.random() < 0.12
        ):
            # 1-on-1 consultants work office hours, whatever the plan's calendar.
            worker, work_cal = self._escalate(d, tl, agent), self.calendars["office"]
            low, high = 180, 1500
        if target is s.IN_PROGRESS:
            return
        done = tl.add(
            work_cal.add(tl.cursor, timedelta(minutes=rng.randint(low, high))),
            ev.Reply(to=(d.requester.id,)),
            worker,
            f"Hi {_first(d.requester)}, {rng.choice(words.FIXES)}. I'm marking this "
            "request as completed; just reply if anything comes back.",
        )
        tl.add(
            done,
            ev.StatusChange(old="in_progress", new="resolved"),
            worker,
            "Status: in progress -> resolved.",
            status=s.RESOLVED,
            resolved_at=_AT,
        )
        tl.add(
            done,
            ev.Notification(to=(d.requester.id,), about="resolved"),
            None,
            f"Notified {d.requester.display} that the request is completed.",
        )
        if target is s.CLOSED:
            tl.add(
                tl.cursor + timedelta(days=rng.randint(3, 7), minutes=rng.randrange(1440)),
                ev.StatusChange(old="resolved", new="closed"),
                None,
                "Status: resolved -> closed (no reply since the request was completed).",
                status=s.CLOSED,
            )

    def _escalate(self, d: _Draft, tl: _Timeline, agent: uuid.UUID) -> uuid.UUID:
        """Seed 001: general support hands the ticket to 1-on-1; billable from this moment."""
        rng = self.rng
        consultant = self._uid(d.org.consultant)
        at = tl.add(
            d.org.calendar.add(tl.cursor, timedelta(minutes=rng.randint(15, 480))),
            ev.Escalation(consultant_id=str(consultant)),
            agent,
            "Outside the scope of general support: escalated to 1-on-1 tech support. "
            "Time spent from now on is billable.",
            kind=TicketKind.ONE_ON_ONE,
            escalated_at=_AT,
        )
        tl.add(
            at,
            ev.Assignment(old=str(agent), new=str(consultant)),
            agent,
            f"Assigned to {self.user_names[consultant]} (1-on-1 tech support).",
            assignee_id=consultant,
        )
        if rng.random() < 0.5:
            hours = rng.randint(1, 4)
            estimate = (_HOURLY_RATE * hours).quantize(Decimal("0.01"))
            tl.add(
                at,
                ev.ExtraCharges(
                    applies=True, estimate=str(estimate), hours=hours, to=(d.requester.id,)
                ),
                consultant,
                f"Hi {_first(d.requester)}, resolving this needs about {hours} hour"
                f"{'s' if hours > 1 else ''} of 1-on-1 tech support, billed from your "
                f"prepaid hours (about ${estimate}). Reply to confirm and we'll get started.",
                extra_charges=True,
                extra_charge_estimate=estimate,
            )
        return consultant

    def _write_ticket(self, ticket_id: uuid.UUID, d: _Draft, tl: _Timeline) -> None:
        kept = [step for step in tl.steps if step.at <= self.now]  # history so far
        state: dict[str, Any] = {
            "status": TicketStatus.NEW,
            "tier": None,
            "level": Level.L1,
            "assignee_id": None,
            "first_response_at": None,
            "resolved_at": None,
            "escalated_at": None,
            "kind": TicketKind.GENERAL,
            "extra_charges": False,
            "extra_charge_estimate": None,
            "wait_start": None,
            "wait_end": None,
        }
        for step in kept:
            state.update({k: step.at if v is _AT else v for k, v in step.updates.items()})
            self.rows["ticket_events"].append(
                self._row(
                    id=new_id(),
                    ticket_id=ticket_id,
                    kind=step.kind,
                    author_id=step.author,
                    at=step.at,
                    body=step.body,
                    data=step.payload.to_data(),
                )
            )
        if state["wait_start"] is not None:
            self.rows["waiting_periods"].append(
                self._row(
                    id=new_id(),
                    ticket_id=ticket_id,
                    started_at=state["wait_start"],
                    ended_at=state["wait_end"],
                )
            )
        tier = state["tier"]
        instants = None
        if state["status"] is not TicketStatus.REDIRECTED:
            waits = (
                [(state["wait_start"], state["wait_end"])]
                if state["wait_start"] is not None
                else []
            )
            instants = response_instants(
                d.arrival,
                tier if tier is not None else d.stated,
                d.org.plan,
                d.org.calendar,
                waits,
                state["first_response_at"],
            )
        sla_due_at, sla_risk_at = instants if instants is not None else (None, None)
        took = None
        if instants is not None and state["first_response_at"] is not None:
            took = int(
                response_business_time(
                    d.arrival,
                    state["first_response_at"],
                    instants[0],
                    tier if tier is not None else d.stated,
                    d.org.plan,
                    d.org.calendar,
                ).total_seconds()
            )
        self.rows["tickets"].append(
            self._row(
                id=ticket_id,
                subject=d.subject,
                description=d.description,
                channel=d.channel,
                organisation_id=d.org.id,
                requester_id=uuid.UUID(d.requester.id),
                stated_urgency=d.stated,
                tier=tier,
                urgency=tier if tier is not None else d.stated,
                plan_rank=d.org.plan.rank,
                level=state["level"],
                kind=state["kind"],
                status=state["status"],
                assignee_id=state["assignee_id"],
                arrived_at=d.arrival,
                first_response_at=state["first_response_at"],
                resolved_at=state["resolved_at"],
                escalated_at=state["escalated_at"],
                extra_charges=state["extra_charges"],
                extra_charge_estimate=state["extra_charge_estimate"],
                updated_at=kept[-1].at,
                sla_due_at=sla_due_at,
                sla_risk_at=sla_risk_at,
                first_response_business_s=took,
            )
        )
        if state["escalated_at"] is not None:
            agent = next((s.author for s in kept if s.kind is EventKind.ESCALATION), None)
            self.escalations.append(
                _Escalation(
                    ticket_id=ticket_id,
                    org=d.org,
                    at=state["escalated_at"],
                    until=state["resolved_at"] or self.now,
                    consultant=d.org.consultant,
                    agent=agent,
                    first_response=state["first_response_at"],
                )
            )

    # --- 1-on-1 billing ---

    def _billing(self) -> None:
        by_org: dict[uuid.UUID, list[_Escalation]] = defaultdict(list)
        for esc in self.escalations:
            by_org[esc.org.id].append(esc)
            self._general_time(esc)
        for org in self.one_on_one:
            self._contract(org, by_org[org.id])

    def _general_time(self, esc: _Escalation) -> None:
        """The agent's time before the escalation: recorded, never billable (seed 001)."""
        if esc.agent is None:
            return
        length = self.rng.randint(10, 40)
        if esc.first_response is not None:
            length = min(length, int((esc.at - esc.first_response).total_seconds() // 60))
        local = esc.at.astimezone(self.zone)
        end_minute = local.hour * 60 + local.minute
        if length < 1 or end_minute < length:  # nothing to record, or it began the day before
            return
        person = self.usernames[esc.agent]
        if self._book(person, local.date(), length + 1, at=end_minute - length) is None:
            return
        start = esc.at - timedelta(minutes=length)
        self._entry(
            org=esc.org,
            person=esc.agent,
            kind=TimeKind.UNSCHEDULED,
            start=start,
            end=esc.at,
            ticket_id=esc.ticket_id,
            billable=False,
            note="General support before the escalation (not billable).",
        )

    def _contract(self, org: _Org, escalations: list[_Escalation]) -> None:
        rng = self.rng
        start = self.today - timedelta(days=BILLING_HISTORY_DAYS - rng.randrange(20))
        if org.last_purchase is not None:
            start = min(start, org.last_purchase - timedelta(days=rng.randint(10, 25)))
        appt_weekday = rng.randrange(5)
        appt_minute = rng.choice((9 * 60, 10 * 60, 11 * 60, 13 * 60 + 30, 14 * 60, 15 * 60))
        every_weeks = rng.choice((1, 1, 2))
        intensity = rng.uniform(0.2, 0.45)
        blocks: list[list[Any]] = []  # [purchased_at, minutes left]
        sessions = self._ticket_sessions(org, escalations)
        last = self.today + timedelta(days=FUTURE_DAYS)
        final = org.last_purchase
        for day in self._business_days(start, last):
            # A lapsed customer stops soon after its last purchase (the rest is forfeited); an
            # expiring one goes quiet after it: fortnightly calls and the odd small job.
            active = org.billing != "lapsed" or final is None or day <= final + 10 * _DAY
            quiet = org.billing == "expiring" and final is not None and day > final
            if day <= self.today and active:
                if final is not None and day == final:
                    self._purchase(org, day, blocks, hours=10 if org.billing == "lapsed" else 20)
                elif final is None or day < final:
                    self._maybe_purchase(org, day, blocks)
                for ticket_id, earliest, latest, length in sessions.get(day, []):
                    self._work_session(
                        org,
                        day,
                        length,
                        blocks,
                        ticket_id=ticket_id,
                        earliest=earliest,
                        latest=latest,
                    )
                if rng.random() < (0.08 if quiet else intensity):
                    for _ in range(rng.randint(1, 2)):
                        self._work_session(
                            org,
                            day,
                            rng.randint(5, 60),
                            blocks,
                            ticket_id=self._open_ticket(escalations, day),
                        )
            weeks = (day - start).days // 7
            if (
                active
                and day.weekday() == appt_weekday
                and weeks >= 1
                and weeks % (2 if quiet else every_weeks) == 0
                and rng.random() < 0.85
            ):
                self._appointment(
                    org, day, appt_minute, blocks, self._open_ticket(escalations, day)
                )

    def _ticket_sessions(
        self,
        org: _Org,
        escalations: list[_Escalation],
    ) -> dict[date, list[tuple[uuid.UUID, int, int, int]]]:
        """The consultant's billable sessions on each escalated ticket, between the escalation
        and the resolution: (ticket, earliest minute, latest minute, length) by local day."""
        out: dict[date, list[tuple[uuid.UUID, int, int, int]]] = defaultdict(list)
        for esc in escalations:
            first = esc.at.astimezone(self.zone)
            until = esc.until.astimezone(self.zone)
            days = list(
                itertools.islice(
                    self._business_days(first.date(), until.date()), self.rng.randint(1, 3)
                )
            )
            for day in days:
                earliest = first.hour * 60 + first.minute + 1 if day == first.date() else 0
                latest = until.hour * 60 + until.minute if day == until.date() else 24 * 60
                out[day].append(
                    (
                        esc.ticket_id,
                        max(earliest, _OPEN_MINUTE),
                        min(latest, _CLOSE_MINUTE),
                        self.rng.randint(15, 90),
                    )
                )
        return out

    def _open_ticket(self, escalations: list[_Escalation], day: date) -> uuid.UUID | None:
        """An escalated ticket of the customer's that is being worked on ``day``, if any."""
        for esc in escalations:
            if esc.at.astimezone(self.zone).date() <= day <= esc.until.astimezone(self.zone).date():
                return esc.ticket_id
        return None

    def _maybe_purchase(self, org: _Org, day: date, blocks: list[list[Any]]) -> None:
        noon = self._local(day, 12 * 60)
        left = sum(b[1] for b in blocks if b[0] + timedelta(days=90) > noon)
        if left < 240:
            self._purchase(org, day, blocks, hours=self.rng.choices((5, 10, 20), (2, 4, 3))[0])

    def _purchase(self, org: _Org, day: date, blocks: list[list[Any]], *, hours: int) -> None:
        at = self._local(day, self.rng.randint(9 * 60, 16 * 60), self.rng.randrange(60))
        if at > self.now:
            return
        blocks.append([at, hours * 60])
        number = next(self.invoice_no)
        self.rows["hour_blocks"].append(
            self._row(
                id=new_id(),
                organisation_id=org.id,
                purchased_at=at,
                minutes=hours * 60,
                price=_BLOCK_PRICES[hours],
                recorded_by_id=self._uid(self.rng.choice(("lead", "admin"))),
                note=f"Invoice INV-{at.year}-{number:04d}: {hours} hours of 1-on-1 tech support",
            )
        )

    @staticmethod
    def _draw(blocks: list[list[Any]], at: datetime, minutes: int) -> None:
        """Roughly what the ledger will draw (each piece rounded up to half an hour, as the
        daily rounding may): enough to decide when the customer buys again."""
        minutes = -(-minutes // 30) * 30
        for block in blocks:
            if block[0] <= at < block[0] + timedelta(days=90) and minutes > 0:
                taken = min(block[1], minutes)
                block[1] -= taken
                minutes -= taken

    def _work_session(
        self,
        org: _Org,
        day: date,
        length: int,
        blocks: list[list[Any]],
        *,
        ticket_id: uuid.UUID | None,
        earliest: int = _OPEN_MINUTE,
        latest: int = _CLOSE_MINUTE,
    ) -> None:
        rng = self.rng
        person = (
            org.consultant
            if rng.random() < 0.85
            else next(c for c in _CONSULTANTS if c != org.consultant)
        )
        minute = self._book(person, day, length, earliest=earliest, latest=latest)
        if minute is None:
            return
        # A timer's seconds, kept inside the booked minutes so entries never overlap.
        slot = self._local(day, minute)
        start = slot + timedelta(seconds=rng.randrange(30))
        end = slot + timedelta(minutes=length, seconds=-rng.randrange(30))
        if end > self.now:
            return
        note = (
            "Working on the escalated ticket"
            if ticket_id is not None
            else rng.choice(words.BILLABLE_WORK)
        )
        self._entry(
            org=org,
            person=self._uid(person),
            kind=TimeKind.UNSCHEDULED,
            start=start,
            end=end,
            ticket_id=ticket_id,
            note=note,
            source="timer" if rng.random() < 0.8 else "manual",
        )
        self._draw(blocks, start, length)

    def _appointment(
        self,
        org: _Org,
        day: date,
        minute: int,
        blocks: list[list[Any]],
        ticket_id: uuid.UUID | None,
    ) -> None:
        rng = self.rng
        length = rng.choice((30, 60, 60, 60, 90))
        if self._book(org.consultant, day, length, at=minute) is None:
            return
        starts = self._local(day, minute)
        ends = starts + timedelta(minutes=length)
        consultant = self._uid(org.consultant)
        status, cancelled_at = AppointmentStatus.SCHEDULED, None
        note = rng.choice(
            (
                "Weekly status call",
                "Working session",
                "Setup review",
                "Integration walkthrough",
                "Kickoff call",
            )
        )
        if ends <= self.now:
            self.past_appointments += 1
            n, r = self.past_appointments, rng.random()
            if n == 3 or (n != 5 and r >= 0.92):  # cancelled with less than 24 hours' notice
                status = AppointmentStatus.CANCELLED
                cancelled_at = starts - timedelta(minutes=rng.randint(30, 20 * 60))
            elif n == 5 or r >= 0.84:  # cancelled in good time
                status = AppointmentStatus.CANCELLED
                cancelled_at = starts - timedelta(hours=rng.randint(26, 120))
            else:
                status = AppointmentStatus.HELD
        elif starts > self.now:
            self.future_appointments += 1
            if self.future_appointments > 1 and rng.random() < 0.12:
                status = AppointmentStatus.CANCELLED
                cancelled_at = min(
                    self.now - timedelta(hours=rng.randint(1, 48)),
                    starts - timedelta(hours=24 + rng.randint(1, 48)),
                )
        extra = self._extra_engineer(day, minute, length, status, starts)
        appointment_id = new_id()
        self.rows["appointments"].append(
            self._row(
                id=appointment_id,
                organisation_id=org.id,
                consultant_id=consultant,
                extra_engineer_id=extra,
                ticket_id=ticket_id,
                starts_at=starts,
                ends_at=ends,
                status=status,
                cancelled_at=cancelled_at,
                note=note,
            )
        )
        if status is AppointmentStatus.HELD:
            self.held_appointments += 1
            # Delivered: billed as booked, the extra engineer's time in addition (what the
            # deliver_appointment mutation records).
            for person, in_addition in ((consultant, False), (extra, True)):
                if person is not None:
                    self._entry(
                        org=org,
                        person=person,
                        kind=TimeKind.SCHEDULED_BLOCK,
                        start=starts,
                        end=ends,
                        ticket_id=ticket_id,
                        appointment_id=appointment_id,
                        extra_engineer=in_addition,
                        note=note,
                        source="schedule",
                    )
                    self._draw(blocks, starts, length)
        elif (
            status is AppointmentStatus.CANCELLED
            and cancelled_at is not None
            and starts - cancelled_at < timedelta(hours=24)
            and ends <= self.now
        ):
            notice = starts - cancelled_at
            hours, minutes = divmod(int(notice.total_seconds()) // 60, 60)
            self._entry(
                org=org,
                person=consultant,
                kind=TimeKind.LATE_CANCELLATION,
                start=starts,
                end=ends,
                appointment_id=appointment_id,
                note=f"Cancelled {hours} h {minutes:02d} min before the start (less than "
                "24 hours' notice): 30 minutes billed.",
                source="schedule",
            )
            self._draw(blocks, starts, 30)

    def _extra_engineer(
        self, day: date, minute: int, length: int, status: AppointmentStatus, starts: datetime
    ) -> uuid.UUID | None:
        """Seed 001: an engineer the customer asks for on a booked call is billed in addition.

        A few bookings ask for one (about one in fifteen), and three always do when the
        engineer is free, so the demo shows it wherever it appears: the second delivered call
        (the statements), the first delivered call of the current week (the engineer's "my
        week" timesheet) and the first upcoming call (the appointment lists).
        """
        week_start = self.today - timedelta(days=self.today.weekday())
        this_week = status is AppointmentStatus.HELD and day >= week_start
        asked = (
            (status is AppointmentStatus.HELD and self.held_appointments == 1)
            or (this_week and not self.engineer_this_week)
            or (status is AppointmentStatus.SCHEDULED and self.future_appointments == 1)
        )
        if not (self.rng.random() < 0.07 or asked):
            return None
        if self._book("engineer", day, length, at=minute) is None:
            return None
        self.engineer_this_week = self.engineer_this_week or this_week
        return self._uid("engineer")

    def _entry(
        self,
        *,
        org: _Org,
        person: uuid.UUID,
        kind: TimeKind,
        start: datetime,
        end: datetime,
        ticket_id: uuid.UUID | None = None,
        appointment_id: uuid.UUID | None = None,
        billable: bool = True,
        extra_engineer: bool = False,
        note: str = "",
        source: str = "timer",
    ) -> Row:
        delay = (
            timedelta(seconds=1)
            if source == "timer"
            else timedelta(minutes=self.rng.randint(2, 90))
        )
        row = self._row(
            id=new_id(),
            organisation_id=org.id,
            person_id=person,
            ticket_id=ticket_id,
            appointment_id=appointment_id,
            kind=kind,
            started_at=start,
            ended_at=end,
            billable=billable,
            extra_engineer=extra_engineer,
            voids_id=None,
            note=note,
            source=source,
            created_at=min(end + delay, self.now),
        )
        self.rows["time_entries"].append(row)
        return row

    def _corrections(self) -> None:
        """Two timers left running over lunch, each voided by a corrected entry (the ledger is
        append-only: the mistake stays on record, the correction replaces it)."""
        rows = self.rows["time_entries"]
        cutoff = self.now - timedelta(days=3)
        candidates = sorted(
            (
                r
                for r in rows
                if r["kind"] is TimeKind.UNSCHEDULED
                and r["billable"]
                and r["source"] == "timer"
                and not r["extra_engineer"]
                and r["ended_at"] < cutoff
            ),
            key=lambda r: r["started_at"],
        )
        if len(candidates) < 3:
            return
        for original in (candidates[len(candidates) // 3], candidates[2 * len(candidates) // 3]):
            actual_end = original["ended_at"]
            original["ended_at"] = actual_end + timedelta(
                hours=self.rng.randint(2, 3), minutes=self.rng.randrange(60)
            )
            original["created_at"] = original["ended_at"] + _SECOND
            minutes = int((actual_end - original["started_at"]).total_seconds() // 60)
            rows.append(
                self._row(
                    id=new_id(),
                    organisation_id=original["organisation_id"],
                    person_id=original["person_id"],
                    ticket_id=original["ticket_id"],
                    appointment_id=None,
                    kind=TimeKind.UNSCHEDULED,
                    started_at=original["started_at"],
                    ended_at=actual_end,
                    billable=True,
                    extra_engineer=False,
                    voids_id=original["id"],
                    note=f"Correction: the timer was left running over lunch; the actual time was "
                    f"{minutes} minutes.",
                    source="manual",
                    created_at=min(original["ended_at"] + _DAY, self.now),
                )
            )

    # --- writing ---

    def write(self, session: Session) -> None:
        version = 0
        for name, _model in _TABLES:
            for chunk in _batched(self.rows[name], VERSION_BATCH):
                version += 1
                for row in chunk:
                    row["version"] = version
                # Core, not ORM bulk: the ORM splits rows into one statement per pattern of
                # None values, which is thousands of round trips instead of one executemany.
                session.execute(insert(Base.metadata.tables[name]), list(chunk))
        session.add(TenantCounter(tenant_id=self.tenant_id, version=version))
        session.flush()
