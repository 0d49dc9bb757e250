"""Fixtures for the backend's command line and the demo data.

The full-size demo (3,000 tickets) is generated once per engine and module and then only read,
so the rule checks run against realistic volume without paying for it in every test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from agentdesk.models import (
    Appointment,
    Calendar,
    Contact,
    HourBlock,
    Organisation,
    Plan,
    Tenant,
    TenantCounter,
    Ticket,
    TicketEvent,
    TimeEntry,
    TimeKind,
    User,
    WaitingPeriod,
)
from agentdesk.models.db import make_engine
from agentdesk.policy import billing
from agentdesk.server.demo import DEMO_TIMEZONE, DemoSummary, generate_demo
from tests.databases import ENGINES, drop_database, new_database_url

#: A Tuesday morning in New York: the demo is placed relative to this instant.
NOW = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
SEED = 11


@dataclass
class DemoDatabase:
    url: str
    engine: Engine
    summary: DemoSummary
    seconds: float
    rows: dict[str, list[Any]]


def load_rows(engine: Engine) -> dict[str, list[Any]]:
    """Every demo-relevant row as detached ORM objects, by table name."""
    models = {
        "tenants": Tenant,
        "tenant_counters": TenantCounter,
        "users": User,
        "calendars": Calendar,
        "plans": Plan,
        "organisations": Organisation,
        "contacts": Contact,
        "tickets": Ticket,
        "ticket_events": TicketEvent,
        "waiting_periods": WaitingPeriod,
        "hour_blocks": HourBlock,
        "appointments": Appointment,
        "time_entries": TimeEntry,
    }
    with Session(engine, expire_on_commit=False) as session:
        return {name: list(session.scalars(select(model))) for name, model in models.items()}


@pytest.fixture(scope="module", params=ENGINES)
def demo_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DemoDatabase]:
    tmp: Path = tmp_path_factory.mktemp("demo")
    url = new_database_url(str(request.param), tmp)
    engine = make_engine(url)
    started = time.perf_counter()
    summary = generate_demo(engine, seed=SEED, now=NOW)
    seconds = time.perf_counter() - started
    try:
        yield DemoDatabase(url, engine, summary, seconds, load_rows(engine))
    finally:
        engine.dispose()
        drop_database(url)


def _work_items(rows: dict[str, list[Any]]) -> list[billing.WorkItem]:
    voided = {e.voids_id for e in rows["time_entries"] if e.voids_id is not None}
    appointments = {a.id: a for a in rows["appointments"]}
    items = []
    for e in rows["time_entries"]:
        if e.id in voided:
            continue
        late = e.kind is TimeKind.LATE_CANCELLATION
        items.append(
            billing.WorkItem(
                customer_id=str(e.organisation_id),
                person=str(e.person_id),
                kind=billing.WorkKind(e.kind.value),
                start=e.started_at,
                end=e.ended_at,
                billable=e.billable,
                extra_engineer=e.extra_engineer,
                id=str(e.id),
                cancelled_at=appointments[e.appointment_id].cancelled_at if late else None,
            )
        )
    return items


@dataclass
class BillingOverview:
    customers: int
    billed_customers: int
    expiring_soon: int  # customers with minutes left that expire within 14 days
    forfeited: int  # customers who lost minutes to expiry


def billing_overview(rows: dict[str, list[Any]], now: datetime) -> BillingOverview:
    """Replays the demo's ledger through the rules engine, as the hour-balance screens will."""
    bills = billing.bill_days(_work_items(rows), tz=DEMO_TIMEZONE)
    blocks = [
        billing.HourBlock(
            id=str(b.id),
            customer_id=str(b.organisation_id),
            purchased_at=b.purchased_at,
            minutes=b.minutes,
        )
        for b in rows["hour_blocks"]
    ]
    customers = sorted({b.customer_id for b in blocks})
    billed = expiring = forfeited = 0
    zone_today = now.astimezone(ZoneInfo(DEMO_TIMEZONE)).date()
    for customer in customers:
        mine = [b for b in blocks if b.customer_id == customer]
        their_bills = [b for b in bills if b.customer_id == customer]
        bal = billing.balance(mine, their_bills, now, customer_id=customer)
        if (
            bal.next_expiry is not None
            and bal.next_expiry <= now + timedelta(days=14)
            and bal.next_expiry_minutes > 0
        ):
            expiring += 1
        st = billing.statement(
            mine,
            their_bills,
            start=zone_today - timedelta(days=200),
            end=zone_today,
            tz=DEMO_TIMEZONE,
            as_of=now,
            customer_id=customer,
        )
        forfeited += st.forfeited_minutes > 0
        billed += st.billed_minutes > 0
    return BillingOverview(len(customers), billed, expiring, forfeited)
