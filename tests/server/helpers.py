"""Helpers for the server tests: the seeded world, a database snapshot, the TestClient."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import Base, Calendar, Contact, Organisation, Plan, Role, Tenant, User
from agentdesk.models.db import session_scope
from agentdesk.server import security

with warnings.catch_warnings():
    # Starlette prefers the `httpx2` package for its TestClient and warns (an error under our
    # warning filter) when only `httpx` is installed; both work the same for these tests.
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from fastapi.testclient import TestClient

__all__ = [
    "PASSWORD",
    "ROLES",
    "Login",
    "TestClient",
    "World",
    "client_for",
    "db_snapshot",
    "seed_tenant",
]

#: ``login("lead")`` -> the ``Authorization`` header of a fresh token for that user.
Login = Callable[..., dict[str, str]]

PASSWORD = "correct horse battery staple"
ROLES: tuple[Role, ...] = tuple(Role)

NY_CALENDAR: dict[str, Any] = {
    "tz": "America/New_York",
    "hours": {day: [["08:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "holidays": ["2026-12-25"],
    "overrides": {},
}


@dataclass
class World:
    """A seeded tenant: ids of its rows, and usernames by role."""

    tenant: uuid.UUID
    users: dict[Role, uuid.UUID] = field(default_factory=dict)
    usernames: dict[Role, str] = field(default_factory=dict)
    calendar: uuid.UUID = field(default_factory=uuid.uuid4)
    basic: uuid.UUID = field(default_factory=uuid.uuid4)
    premium: uuid.UUID = field(default_factory=uuid.uuid4)
    unused_plan: uuid.UUID = field(default_factory=uuid.uuid4)
    org: uuid.UUID = field(default_factory=uuid.uuid4)
    contact: uuid.UUID = field(default_factory=uuid.uuid4)


def seed_tenant(
    sessions: sessionmaker[Session], prefix: str = "", name: str = "Acme Support"
) -> World:
    """A tenant with one user per role (username ``<prefix><role>``), a calendar, a basic plan
    used by one organisation (with one contact), a premium plan and an unused plan."""
    with session_scope(sessions) as s:
        tenant = Tenant(name=name, timezone="America/New_York")
        s.add(tenant)
        s.flush()
        world = World(tenant=tenant.id)
        password_hash = security.hash_password(PASSWORD)
        for role in ROLES:
            user = User(
                tenant_id=tenant.id,
                username=f"{prefix}{role.value}",
                display_name=f"{prefix}{role.value} user".title(),
                email=f"{prefix}{role.value}@support.test",
                role=role,
                password_hash=password_hash,
            )
            s.add(user)
            s.flush()
            world.users[role] = user.id
            world.usernames[role] = user.username
        cal = Calendar(tenant_id=tenant.id, name="New York", data=NY_CALENDAR)
        s.add(cal)
        s.flush()
        basic = Plan(
            tenant_id=tenant.id,
            key="basic",
            name="Basic/Free",
            rank=0,
            channels=["portal"],
            contact_allotment=1,
            conversations_per_year=5,
            review_bonus_conversations=5,
            calendar_id=cal.id,
            response_targets={},
        )
        premium = Plan(
            tenant_id=tenant.id,
            key="premium",
            name="Premium",
            rank=2,
            channels=["chat", "portal"],
            contact_allotment=4,
            conversations_per_year=None,
            response_targets={"1": {"minutes": 30}},
        )
        unused = Plan(
            tenant_id=tenant.id,
            key="legacy",
            name="Legacy",
            rank=1,
            channels=["portal"],
            contact_allotment=2,
            response_targets={},
        )
        s.add_all([basic, premium, unused])
        s.flush()
        org = Organisation(
            tenant_id=tenant.id,
            name="Globex Corporation",
            plan_id=basic.id,
            membership="active",
            verified_reviews=30,
            recent_reviews=12,
        )
        s.add(org)
        s.flush()
        contact = Contact(
            tenant_id=tenant.id,
            organisation_id=org.id,
            name="Ann Lee",
            email="ann@globex.test",
            validated=True,
        )
        s.add(contact)
        s.flush()
        world.calendar, world.basic, world.premium = cal.id, basic.id, premium.id
        world.unused_plan, world.org, world.contact = unused.id, org.id, contact.id
    return world


def db_snapshot(engine: Engine) -> dict[str, list[str]]:
    """Every row of every table, to prove a refused request changed nothing."""
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            out[table.name] = sorted(repr(tuple(row)) for row in conn.execute(select(table)))
    return out


@contextmanager
def client_for(app: FastAPI) -> Iterator[TestClient]:
    """A TestClient that leaves the app's lifespan (the sync change feed) alone: entering
    ``TestClient`` itself would start it, and on PostgreSQL that is a LISTEN connection."""
    client = TestClient(app, raise_server_exceptions=False)
    try:
        yield client
    finally:
        client.close()
