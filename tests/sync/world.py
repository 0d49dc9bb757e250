"""A small, explicit support team for sync tests: plans from the seeds, organisations, contacts
and one user per role. Returns ids so tests can read as prose."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from agentdesk.models import Calendar, Contact, Organisation, Plan, Role, Tenant, User
from agentdesk.models.db import session_scope
from agentdesk.models.versioning import enable_stamping
from agentdesk.policy.plans import seed_plans
from agentdesk.sync.mutators import MutationContext, run_mutation

NY_HOURS = {d: [["08:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


@dataclass
class World:
    sessions: sessionmaker[Session]
    tenant: uuid.UUID
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    plans: dict[str, uuid.UUID] = field(default_factory=dict)
    orgs: dict[str, uuid.UUID] = field(default_factory=dict)
    contacts: dict[str, uuid.UUID] = field(default_factory=dict)
    client_id: uuid.UUID = field(default_factory=uuid.uuid4)
    next_mutation: int = 1
    now: datetime = datetime(2026, 3, 3, 15, 0, tzinfo=UTC)

    def run(self, who: str, name: str, **args: Any) -> None:
        """Run one mutation authoritatively as ``who`` (a role name) in its own transaction."""
        user_id = self.users[who]
        role = Role(who.rstrip("0123456789"))
        with session_scope(self.sessions) as s:
            enable_stamping(s, self.tenant)
            ctx = MutationContext(
                session=s,
                tenant_id=self.tenant,
                actor_id=user_id,
                actor_role=role,
                now=self.now,
                client_id=self.client_id,
                mutation_id=self.next_mutation,
                authoritative=True,
            )
            self.next_mutation += 1
            run_mutation(ctx, name, args)


def build_world(
    sessions: sessionmaker[Session], prefix: str = "", name: str = "Acme Support"
) -> World:
    """The team; ``prefix`` starts its usernames, so a second team can share the database."""
    with session_scope(sessions) as s:
        tenant = Tenant(name=name, timezone="America/New_York")
        s.add(tenant)
        s.flush()
        enable_stamping(s, tenant.id)
        w = World(sessions=sessions, tenant=tenant.id)
        ny = Calendar(
            tenant_id=tenant.id,
            name="NY",
            data={"tz": "America/New_York", "hours": NY_HOURS, "holidays": []},
        )
        s.add(ny)
        for p in seed_plans():
            row = Plan(tenant_id=tenant.id, calendar_id=ny.id, **Plan.columns_from_policy(p))
            s.add(row)
            w.plans[p.key] = row.id
        for role in (
            "agent",
            "agent2",
            "coordinator",
            "consultant",
            "consultant2",
            "lead",
            "admin",
        ):
            u = User(
                tenant_id=tenant.id,
                username=prefix + role,
                display_name=role.title(),
                role=Role(role.rstrip("0123456789")),
            )
            s.add(u)
            w.users[role] = u.id
        s.flush()
        for key, plan in (("globex", "standard"), ("initech", "basic"), ("umbrella", "premium")):
            org = Organisation(tenant_id=tenant.id, name=key.title(), plan_id=w.plans[plan])
            s.add(org)
            w.orgs[key] = org.id
        s.flush()
        for name, org_key, validated in (
            ("ann", "globex", True),
            ("bo", "globex", True),
            ("cy", "globex", False),
            ("dee", "initech", True),
            ("eve", "initech", False),
            ("fay", "umbrella", True),
        ):
            c = Contact(
                tenant_id=tenant.id,
                organisation_id=w.orgs[org_key],
                name=name.title(),
                email=f"{name}@{org_key}.test",
                validated=validated,
            )
            s.add(c)
            w.contacts[name] = c.id
    return w
