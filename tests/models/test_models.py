"""The models round-trip on both engines, constraints refuse bad rows, versions are stamped."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import (
    Calendar,
    Contact,
    Organisation,
    Plan,
    Role,
    RunningTimer,
    Tenant,
    Ticket,
    TicketStatus,
    TimeEntry,
    TimeKind,
    User,
)
from agentdesk.models.db import make_engine, make_session_factory, session_scope
from agentdesk.models.versioning import current_version, enable_stamping

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def world(sessions: sessionmaker[Session]) -> dict[str, uuid.UUID]:
    with session_scope(sessions) as s:
        tenant = Tenant(name="Acme Support")
        s.add(tenant)
        s.flush()
        cal = Calendar(
            tenant_id=tenant.id,
            name="NY",
            data={"tz": "America/New_York", "hours": {"mon": [["08:00", "17:00"]]}, "holidays": []},
        )
        s.add(cal)
        s.flush()
        plan = Plan(
            tenant_id=tenant.id,
            key="std",
            name="Standard",
            rank=1,
            channels=["portal"],
            contact_allotment=2,
            calendar_id=cal.id,
            response_targets={"1": {"minutes": 20}},
        )
        s.add(plan)
        s.flush()
        org = Organisation(tenant_id=tenant.id, name="Globex", plan_id=plan.id)
        s.add(org)
        s.flush()
        contact = Contact(
            tenant_id=tenant.id,
            organisation_id=org.id,
            name="Ann",
            email="ann@globex.test",
            validated=True,
        )
        user = User(tenant_id=tenant.id, username="ann", display_name="Ann Agent", role=Role.AGENT)
        s.add_all([contact, user])
        s.flush()
        return {
            "tenant": tenant.id,
            "plan": plan.id,
            "org": org.id,
            "contact": contact.id,
            "user": user.id,
            "calendar": cal.id,
        }


def _ticket(world: dict[str, uuid.UUID], **kw: object) -> Ticket:
    fields: dict[str, object] = dict(
        tenant_id=world["tenant"],
        subject="Site down",
        channel="portal",
        organisation_id=world["org"],
        requester_id=world["contact"],
        stated_urgency=1,
        urgency=1,
        plan_rank=1,
        arrived_at=T0,
    )
    fields.update(kw)
    return Ticket(**fields)


def test_round_trip_keeps_aware_datetimes_decimals_and_enums(
    sessions: sessionmaker[Session], world: dict[str, uuid.UUID]
) -> None:
    berlin = datetime(2026, 3, 2, 15, 30, tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Berlin"))
    with session_scope(sessions) as s:
        t = _ticket(
            world, arrived_at=berlin, extra_charges=True, extra_charge_estimate=Decimal("149.90")
        )
        s.add(t)
        tid = t.id
    with session_scope(sessions) as s:
        t = s.get_one(Ticket, tid)
        assert t.arrived_at == berlin
        assert t.arrived_at.tzinfo is not None
        assert t.arrived_at.utcoffset() == timedelta(0)
        assert t.extra_charge_estimate == Decimal("149.90")
        assert t.status is TicketStatus.NEW
        assert t.version == 0
        assert t.deleted is False
        assert uuid.UUID(str(t.id)).version == 7
        plan = s.get_one(Plan, world["plan"]).to_policy("NY")
        assert plan.target_for(1).business_time == timedelta(minutes=20)
        assert (
            s.get_one(Calendar, world["calendar"])
            .to_policy()
            .is_open(datetime(2026, 3, 2, 14, 0, tzinfo=UTC))
        )


def test_naive_datetime_is_refused(
    sessions: sessionmaker[Session], world: dict[str, uuid.UUID]
) -> None:
    with pytest.raises(StatementError, match="naive datetime"), session_scope(sessions) as s:
        s.add(_ticket(world, arrived_at=datetime(2026, 3, 2, 9, 0)))  # noqa: DTZ001
        s.flush()


@pytest.mark.parametrize(
    "bad",
    [
        {"tier": 5},
        {"stated_urgency": 0},
        {"urgency": 9},
        {"extra_charge_estimate": Decimal("-1")},
        {"requester_id": uuid.UUID(int=1)},  # no such contact: foreign keys are on
    ],
)
def test_constraints_refuse_bad_tickets(
    sessions: sessionmaker[Session], world: dict[str, uuid.UUID], bad: dict[str, object]
) -> None:
    with pytest.raises(IntegrityError), session_scope(sessions) as s:
        s.add(_ticket(world, **bad))
        s.flush()


def test_time_entry_end_before_start_is_refused(
    sessions: sessionmaker[Session], world: dict[str, uuid.UUID]
) -> None:
    with pytest.raises(IntegrityError), session_scope(sessions) as s:
        s.add(
            TimeEntry(
                tenant_id=world["tenant"],
                organisation_id=world["org"],
                person_id=world["user"],
                kind=TimeKind.UNSCHEDULED,
                started_at=T0,
                ended_at=T0 - timedelta(minutes=1),
            )
        )
        s.flush()


def test_one_live_timer_per_person(
    sessions: sessionmaker[Session], world: dict[str, uuid.UUID]
) -> None:
    with session_scope(sessions) as s:
        first = RunningTimer(
            tenant_id=world["tenant"],
            person_id=world["user"],
            organisation_id=world["org"],
            started_at=T0,
        )
        s.add(first)
    with pytest.raises(IntegrityError), session_scope(sessions) as s:
        s.add(
            RunningTimer(
                tenant_id=world["tenant"],
                person_id=world["user"],
                organisation_id=world["org"],
                started_at=T0,
            )
        )
        s.flush()
    # A stopped (tombstoned) timer frees the slot.
    with session_scope(sessions) as s:
        s.get_one(RunningTimer, first.id).deleted = True
    with session_scope(sessions) as s:
        s.add(
            RunningTimer(
                tenant_id=world["tenant"],
                person_id=world["user"],
                organisation_id=world["org"],
                started_at=T0,
            )
        )


def test_every_write_transaction_stamps_one_new_version(
    sessions: sessionmaker[Session], world: dict[str, uuid.UUID]
) -> None:
    tenant = world["tenant"]
    with session_scope(sessions) as s:
        enable_stamping(s, tenant)
        a, b = _ticket(world), _ticket(world, subject="Second")
        s.add_all([a, b])
        s.flush()
        s.add(_ticket(world, subject="Third, second flush"))
    with session_scope(sessions) as s:
        versions = {t.subject: t.version for t in s.scalars(select(Ticket))}
        assert len(set(versions.values())) == 1, "one transaction, one version"
        v1 = versions["Site down"]
        assert v1 == current_version(s, tenant) >= 1
    with session_scope(sessions) as s:
        enable_stamping(s, tenant)
        s.get_one(Ticket, a.id).subject = "Site down (edited)"
    with session_scope(sessions) as s:
        assert s.get_one(Ticket, a.id).version == v1 + 1
        assert s.get_one(Ticket, b.id).version == v1  # untouched rows keep their version
    with session_scope(sessions) as s:
        enable_stamping(s, tenant)
        s.get_one(Ticket, a.id)  # read only: no version taken
    with session_scope(sessions) as s:
        assert current_version(s, tenant) == v1 + 1


def test_stamping_refuses_another_tenants_rows(
    sessions: sessionmaker[Session], world: dict[str, uuid.UUID]
) -> None:
    with session_scope(sessions) as s:
        other = Tenant(name="Other")
        s.add(other)
        s.flush()
        other_id = other.id
    with pytest.raises(PermissionError), session_scope(sessions) as s:
        enable_stamping(s, other_id)
        s.add(_ticket(world))
        s.flush()


def test_concurrent_writers_get_distinct_increasing_versions(
    engine: Engine, world: dict[str, uuid.UUID]
) -> None:
    sessions = make_session_factory(engine)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(5):
                with session_scope(sessions) as s:
                    enable_stamping(s, world["tenant"])
                    s.add(_ticket(world, subject=f"w{n}-{i}"))
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with session_scope(sessions) as s:
        versions = sorted(t.version for t in s.scalars(select(Ticket)))
    assert versions == list(range(1, 21))
