"""A fast generator of realistic queue data in a replica-shaped SQLite file.

Used by the queue tests (a few hundred tickets) and by ``bench/queue_bench.py`` (100,000). Rows
are plain dicts written with Core bulk INSERTs (executemany), never through the ORM unit of work:
100,000 tickets take a few seconds instead of minutes. One ``random.Random(seed)`` and a fixed
``now`` make the content reproducible (ids are fresh UUIDv7s, so tests refer to them through
the returned :class:`QueueData`).

The mix is what a real queue holds: every open status, untriaged tickets that only have a stated
urgency, tickets already answered (SLA met), tickets waiting on the customer with an open
waiting period (SLA paused), a few closed/redirected ones that must never appear, validated and
non-validated requesters, assigned and unassigned tickets, and arrivals from minutes to weeks ago
so on-track, at-risk and breached clocks all occur.
"""

from __future__ import annotations

import atexit
import random
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, Table, insert

from agentdesk.models import (
    Calendar,
    Contact,
    Level,
    Organisation,
    Plan,
    Role,
    Tenant,
    TenantCounter,
    Ticket,
    TicketKind,
    TicketStatus,
    User,
    WaitingPeriod,
    new_id,
)
from agentdesk.models.db import make_engine, sqlite_url
from agentdesk.models.migrate import upgrade
from agentdesk.policy.calendar import BusinessCalendar
from agentdesk.policy.plans import SupportPlan, seed_plans
from agentdesk.policy.workflow import OPEN_STATUSES

#: A Wednesday mid-morning in New York: inside business hours on every calendar of the fixture.
DEFAULT_NOW = datetime(2026, 3, 11, 15, 0, tzinfo=UTC)

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = {
    "tz": "America/New_York",
    "hours": {**{d: [["08:00", "17:00"]] for d in WEEKDAYS}, "sat": [], "sun": []},
    "holidays": [],
    "overrides": {},
}
PACIFIC = {
    "tz": "America/Los_Angeles",
    "hours": {**{d: [["06:00", "17:00"]] for d in WEEKDAYS}, "sat": [], "sun": []},
    "holidays": [],
    "overrides": {},
}

SUBJECT_WORDS = (
    "checkout",
    "login",
    "invoice",
    "export",
    "SSO",
    "API",
    "webhook",
    "dashboard",
    "report",
    "password",
    "import",
    "search",
    "upload",
    "billing",
    "typo",
    "footer",
    "banner",
    "cart",
    "latency",
    "timeout",
    "integration",
    "script",
    "mobile",
    "email",
    "sitemap",
    "redirect",
)
SUBJECT_FORMS = (
    "{a} fails after {b} change",
    "{a} is slow",
    "Cannot use {a} with {b}",
    "{a} shows wrong {b}",
    "Question about {a}",
    "{a} broken on production",
)
FIRST = ("Ann", "Ben", "Cy", "Dee", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo", "Kai", "Liv")
LAST = ("Lee", "Doe", "Ng", "Roe", "Park", "Kim", "Diaz", "Moss", "Hart", "Quinn", "Shaw")
#: Open statuses, weighted like a working queue (most in progress, few waiting).
STATUS_WEIGHTS: tuple[tuple[TicketStatus, int], ...] = (
    (TicketStatus.NEW, 20),
    (TicketStatus.TRIAGED, 20),
    (TicketStatus.IN_PROGRESS, 40),
    (TicketStatus.WAITING_ON_CUSTOMER, 12),
    (TicketStatus.RESOLVED, 4),
    (TicketStatus.CLOSED, 2),
    (TicketStatus.REDIRECTED, 2),
)
CHANNELS = ("portal", "portal", "portal", "email", "chat", "phone")
#: Which calendar each seed plan runs on; Basic has none (the team default, i.e. OFFICE).
ON_CALENDAR = {"basic": "office", "standard": "office", "premium": "pacific", "enterprise": "24x7"}
CALENDARS = {
    "office": BusinessCalendar.from_dict(OFFICE, name="office"),
    "pacific": BusinessCalendar.from_dict(PACIFIC, name="pacific"),
    "24x7": BusinessCalendar.always_open("UTC"),
}


@dataclass
class QueueData:
    """What was written, so tests can name rows without querying for them."""

    url: str
    path: Path
    now: datetime
    tenant_id: uuid.UUID
    user_ids: list[uuid.UUID]
    plan_ids: dict[str, uuid.UUID]
    calendar_ids: dict[str, uuid.UUID]
    org_ids: list[uuid.UUID]
    org_names: dict[uuid.UUID, str]
    org_plan: dict[uuid.UUID, str]
    contact_ids: dict[uuid.UUID, list[uuid.UUID]]
    tickets: list[dict[str, Any]] = field(default_factory=list)
    waits: list[dict[str, Any]] = field(default_factory=list)

    def engine(self) -> Engine:
        return make_engine(self.url)

    def policy_plan(self, org_id: uuid.UUID) -> tuple[SupportPlan, BusinessCalendar]:
        """The organisation's plan and the calendar its clock runs on, built independently of
        the code under test (for expected values)."""
        key = self.org_plan[org_id]
        plan = next(p for p in seed_plans() if p.key == key)
        return plan, CALENDARS[ON_CALENDAR[key]]


def _batched(
    rows: Sequence[dict[str, Any]], size: int = 5000
) -> Iterator[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _bulk(engine: Engine, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    with engine.begin() as conn:
        for batch in _batched(rows):
            conn.execute(insert(table), list(batch))


def generate(
    path: Path,
    n_tickets: int,
    *,
    seed: int = 7,
    now: datetime = DEFAULT_NOW,
    n_orgs: int | None = None,
    n_users: int = 12,
    max_age: timedelta = timedelta(days=21),
    migrate: bool = True,
    open_only: bool = False,
) -> QueueData:
    """Write one team with ``n_tickets`` tickets into a new SQLite file at ``path``.

    ``open_only``: every ticket in an open status (the benchmark's "100,000 open tickets");
    otherwise a few resolved, closed and redirected ones are mixed in.
    """
    rng = random.Random(seed)
    url = sqlite_url(path)
    engine = make_engine(url)
    try:
        if migrate:
            upgrade(engine)
        tenant_id = new_id()
        _bulk(
            engine,
            Tenant.__table__,  # type: ignore[arg-type]
            [
                {
                    "id": tenant_id,
                    "name": "Queue fixture team",
                    "timezone": "America/New_York",
                    "created_at": now - timedelta(days=400),
                }
            ],
        )
        _bulk(
            engine,
            TenantCounter.__table__,  # type: ignore[arg-type]
            [{"tenant_id": tenant_id, "version": 1}],
        )
        common = {"tenant_id": tenant_id, "version": 1, "deleted": False}

        user_ids = [new_id() for _ in range(n_users)]
        _bulk(
            engine,
            User.__table__,  # type: ignore[arg-type]
            [
                {
                    **common,
                    "id": uid,
                    "username": f"agent{i}",
                    "display_name": f"{FIRST[i % len(FIRST)]} Agent{i}",
                    "email": None,
                    "role": Role.AGENT,
                    "active": True,
                    "password_hash": None,
                    "created_at": now - timedelta(days=300),
                }
                for i, uid in enumerate(user_ids)
            ],
        )

        calendar_ids = {key: new_id() for key in ("office", "pacific", "24x7")}
        cal_data = {
            "office": OFFICE,
            "pacific": PACIFIC,
            "24x7": BusinessCalendar.always_open("UTC").to_dict(),
        }
        _bulk(
            engine,
            Calendar.__table__,  # type: ignore[arg-type]
            [
                {**common, "id": cid, "name": key, "data": cal_data[key]}
                for key, cid in calendar_ids.items()
            ],
        )
        on_calendar = ON_CALENDAR
        plan_ids: dict[str, uuid.UUID] = {}
        plan_rows = []
        for plan in seed_plans():
            plan_ids[plan.key] = new_id()
            d = plan.to_dict()
            plan_rows.append(
                {
                    **common,
                    "id": plan_ids[plan.key],
                    "key": plan.key,
                    "name": plan.name,
                    "rank": plan.rank,
                    "channels": d["channels"],
                    "contact_allotment": plan.contact_allotment,
                    "conversations_per_year": plan.conversations_per_year,
                    "review_bonus_conversations": plan.review_bonus_conversations,
                    "min_verified_reviews": plan.min_verified_reviews,
                    "min_recent_reviews": plan.min_recent_reviews,
                    # Basic runs on the team's default calendar (calendar_id NULL).
                    "calendar_id": (
                        None if plan.key == "basic" else calendar_ids[on_calendar[plan.key]]
                    ),
                    "response_targets": d["response_targets"],
                }
            )
        _bulk(engine, Plan.__table__, plan_rows)  # type: ignore[arg-type]
        ranks = {p.key: p.rank for p in seed_plans()}

        n_orgs = n_orgs if n_orgs is not None else max(4, min(2000, n_tickets // 50))
        plan_keys = list(plan_ids)
        org_ids = [new_id() for _ in range(n_orgs)]
        org_names = {
            oid: f"Org {i:04d} {LAST[i % len(LAST)]} & Co" for i, oid in enumerate(org_ids)
        }
        org_plan = {oid: plan_keys[i % len(plan_keys)] for i, oid in enumerate(org_ids)}
        _bulk(
            engine,
            Organisation.__table__,  # type: ignore[arg-type]
            [
                {
                    **common,
                    "id": oid,
                    "name": org_names[oid],
                    "plan_id": plan_ids[org_plan[oid]],
                    "membership": "active",
                    "member_since": None,
                    "verified_reviews": 0,
                    "recent_reviews": 0,
                }
                for oid in org_ids
            ],
        )
        contact_ids: dict[uuid.UUID, list[uuid.UUID]] = {}
        contact_rows = []
        for i, oid in enumerate(org_ids):
            contact_ids[oid] = []
            for j in range(3):
                cid = new_id()
                contact_ids[oid].append(cid)
                first, last = FIRST[(i + j) % len(FIRST)], LAST[(i * 3 + j) % len(LAST)]
                contact_rows.append(
                    {
                        **common,
                        "id": cid,
                        "organisation_id": oid,
                        "name": f"{first} {last}",
                        "email": f"{first.lower()}.{last.lower()}{i}@example.com",
                        "phone": None,
                        # Every org's third contact is not validated (seed 003's redirect case).
                        "validated": j < 2,
                        "validated_by_id": None,
                        "validated_at": None,
                    }
                )
        _bulk(engine, Contact.__table__, contact_rows)  # type: ignore[arg-type]

        mix = [(s, w) for s, w in STATUS_WEIGHTS if not open_only or s.value in OPEN_STATUSES]
        statuses = [s for s, _ in mix]
        weights = [w for _, w in mix]
        max_seconds = int(max_age.total_seconds())
        tickets: list[dict[str, Any]] = []
        waits: list[dict[str, Any]] = []
        for i in range(n_tickets):
            oid = org_ids[rng.randrange(n_orgs)]
            status = rng.choices(statuses, weights)[0]
            stated = rng.choice((1, 2, 2, 3, 3, 3, 4, 4))
            triaged = status is not TicketStatus.NEW and rng.random() < 0.9
            tier = rng.choice((1, 2, 3, 3, 4)) if triaged else None
            # Skew arrivals towards the recent past, with microseconds so ties are rare but exist.
            age = int(max_seconds * rng.random() ** 3)
            arrived = now - timedelta(seconds=age, microseconds=rng.randrange(1_000_000))
            if i % 97 == 0 and tickets:  # an exact arrival tie: only the id decides
                arrived = tickets[-1]["arrived_at"]
            answered = status in (
                TicketStatus.IN_PROGRESS,
                TicketStatus.RESOLVED,
                TicketStatus.CLOSED,
                TicketStatus.WAITING_ON_CUSTOMER,
            )
            first_response = None
            if answered and rng.random() < 0.8:
                first_response = min(now, arrived + timedelta(minutes=rng.randrange(5, 600)))
            assigned = status is not TicketStatus.NEW and rng.random() < 0.85
            tid = new_id()
            words = rng.sample(SUBJECT_WORDS, 2)
            tickets.append(
                {
                    **common,
                    "id": tid,
                    "subject": rng.choice(SUBJECT_FORMS).format(a=words[0], b=words[1]),
                    "description": "",
                    "channel": rng.choice(CHANNELS),
                    "organisation_id": oid,
                    "requester_id": contact_ids[oid][rng.randrange(3)],
                    "stated_urgency": stated,
                    "tier": tier,
                    "urgency": tier if tier is not None else stated,
                    "plan_rank": ranks[org_plan[oid]],
                    "level": Level.L2 if rng.random() < 0.3 else Level.L1,
                    "kind": TicketKind.GENERAL,
                    "status": status,
                    "assignee_id": user_ids[rng.randrange(n_users)] if assigned else None,
                    "arrived_at": arrived,
                    "first_response_at": first_response,
                    "resolved_at": None,
                    "escalated_at": None,
                    "extra_charges": False,
                    "extra_charge_estimate": None,
                    "updated_at": arrived,
                }
            )
            if status is TicketStatus.WAITING_ON_CUSTOMER:
                start = arrived + (now - arrived) / 2
                waits.append(
                    {
                        **common,
                        "id": new_id(),
                        "ticket_id": tid,
                        "started_at": start,
                        "ended_at": None,
                    }
                )
        _bulk(engine, Ticket.__table__, tickets)  # type: ignore[arg-type]
        _bulk(engine, WaitingPeriod.__table__, waits)  # type: ignore[arg-type]
    finally:
        engine.dispose()
    return QueueData(
        url=url,
        path=path,
        now=now,
        tenant_id=tenant_id,
        user_ids=user_ids,
        plan_ids=plan_ids,
        calendar_ids=calendar_ids,
        org_ids=org_ids,
        org_names=org_names,
        org_plan=org_plan,
        contact_ids=contact_ids,
        tickets=tickets,
        waits=waits,
    )


_templates: dict[tuple[int, int], QueueData] = {}


def queue_db(tmp_path: Path, n_tickets: int = 400, *, seed: int = 7) -> QueueData:
    """A private copy of a generated replica: generated once per process, copied per test."""
    template = _templates.get((n_tickets, seed))
    if template is None:
        directory = Path(tempfile.mkdtemp(prefix="agentdesk-queue-"))
        atexit.register(shutil.rmtree, directory, True)
        template = generate(directory / f"queue-{n_tickets}-{seed}.sqlite3", n_tickets, seed=seed)
        _templates[(n_tickets, seed)] = template
    path = tmp_path / f"replica-{n_tickets}-{seed}.sqlite3"
    shutil.copyfile(template.path, path)
    return replace(template, path=path, url=sqlite_url(path), tickets=list(template.tickets))


def ticket_row(data: QueueData, **values: Any) -> dict[str, Any]:
    """A complete new ticket row for the fixture's team (for inserts that simulate a pull)."""
    oid = values.pop("organisation_id", data.org_ids[0])
    ranks = {p.key: p.rank for p in seed_plans()}
    stated = values.pop("stated_urgency", 3)
    tier = values.pop("tier", None)
    row: dict[str, Any] = {
        "tenant_id": data.tenant_id,
        "version": 2,
        "deleted": False,
        "id": new_id(),
        "subject": "Fresh ticket",
        "description": "",
        "channel": "portal",
        "organisation_id": oid,
        "requester_id": data.contact_ids[oid][0],
        "stated_urgency": stated,
        "tier": tier,
        "urgency": tier if tier is not None else stated,
        "plan_rank": ranks[data.org_plan[oid]],
        "level": Level.L1,
        "kind": TicketKind.GENERAL,
        "status": TicketStatus.NEW,
        "assignee_id": None,
        "arrived_at": data.now,
        "first_response_at": None,
        "resolved_at": None,
        "escalated_at": None,
        "extra_charges": False,
        "extra_charge_estimate": None,
        "updated_at": data.now,
    }
    row.update(values)
    return row


def listed_ids(model: Any) -> list[uuid.UUID]:
    """The ticket ids a queue model lists, in its order (every row must name a ticket)."""
    out = []
    for row in range(model.rowCount()):
        ticket_id = model.ticket_id(row)
        assert ticket_id is not None
        out.append(ticket_id)
    return out
