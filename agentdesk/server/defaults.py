"""What a new team starts with: the seeds' plans on their calendars, so the first ticket can be
filed the day the server is set up. Leads change them through the API afterwards."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from ..models import Calendar, Plan
from ..policy.plans import SEED_PLAN_CALENDARS, seed_calendars, seed_plans


def create_default_plans(session: Session, tenant_id: uuid.UUID) -> list[Plan]:
    """Add the seed calendars and plans to ``tenant_id`` (the session's stamping, if enabled,
    versions them for sync)."""
    calendars: dict[str, Calendar] = {}
    for key, (name, data) in seed_calendars().items():
        calendars[key] = Calendar(tenant_id=tenant_id, name=name, data=data)
        session.add(calendars[key])
    plans = []
    for plan in seed_plans():
        row = Plan(
            tenant_id=tenant_id,
            calendar_id=calendars[SEED_PLAN_CALENDARS[plan.key]].id,
            **Plan.columns_from_policy(plan),
        )
        session.add(row)
        plans.append(row)
    return plans
