"""Support plans: everyone reads them (queue rank, targets, channels); leads maintain them.

Every write goes through ``SupportPlan.from_dict`` first, so the server never stores a plan the
rules engine (on the server or on any desktop) would refuse to load. A plan is deleted as a
tombstone, so desktops learn of the delete through sync; one still used by an organisation is
kept (409) rather than leaving customers without a plan.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...models import Calendar, Organisation, Plan, User
from ...policy.plans import SupportPlan
from ...sync.mutators import refresh_open_sla
from ..deps import CurrentUser, ReadSession, WriteSession, tenant_session
from ..errors import ApiError
from ..schemas import PlanIn, PlanOut
from ._common import Lead, get_owned, plan_out

router = APIRouter(tags=["plans"])


def _validated(session: Session, user: User, body: PlanIn) -> dict[str, Any]:
    """The plan's columns as the rules engine normalised them."""
    raw = body.model_dump(exclude={"calendar_id", "response_targets"})
    raw["response_targets"] = {
        tier: target.model_dump(exclude_none=True) for tier, target in body.response_targets.items()
    }
    plan = SupportPlan.from_dict(raw).to_dict()
    if body.calendar_id is not None:
        found = session.scalar(
            select(Calendar.id).where(
                Calendar.id == body.calendar_id,
                Calendar.tenant_id == user.tenant_id,
                Calendar.deleted.is_(False),
            )
        )
        if found is None:
            raise ApiError(422, "invalid", "no calendar with this id", field="calendar_id")
    del plan["calendar"]
    plan["calendar_id"] = body.calendar_id
    return plan


def _check_key_free(session: Session, user: User, key: str, own_id: uuid.UUID | None) -> None:
    clash = session.scalar(select(Plan.id).where(Plan.tenant_id == user.tenant_id, Plan.key == key))
    if clash is not None and clash != own_id:
        raise ApiError(
            409,
            "conflict",
            f"a plan with key {key!r} already exists (deleted plans keep their key)",
            field="key",
        )


@router.get("/plans", response_model=list[PlanOut], summary="The team's support plans")
def list_plans(user: CurrentUser, session: ReadSession) -> list[PlanOut]:
    rows = session.scalars(
        select(Plan)
        .where(Plan.tenant_id == user.tenant_id, Plan.deleted.is_(False))
        .order_by(Plan.rank.desc(), Plan.key, Plan.id)
    )
    return [plan_out(p) for p in rows]


@router.get("/plans/{plan_id}", response_model=PlanOut, summary="One support plan")
def get_plan(plan_id: uuid.UUID, user: CurrentUser, session: ReadSession) -> PlanOut:
    return plan_out(get_owned(session, Plan, plan_id, user, "plan"))


@router.post("/plans", response_model=PlanOut, status_code=201, summary="Create a support plan")
def create_plan(body: PlanIn, user: Lead, session: WriteSession) -> PlanOut:
    fields = _validated(session, user, body)
    _check_key_free(session, user, body.key, None)
    tenant_session(session, user)
    plan = Plan(tenant_id=user.tenant_id, **fields)
    session.add(plan)
    session.flush()
    return plan_out(plan)


@router.put("/plans/{plan_id}", response_model=PlanOut, summary="Replace a support plan")
def replace_plan(plan_id: uuid.UUID, body: PlanIn, user: Lead, session: WriteSession) -> PlanOut:
    plan = get_owned(session, Plan, plan_id, user, "plan")
    fields = _validated(session, user, body)
    _check_key_free(session, user, body.key, plan.id)
    tenant_session(session, user)
    for name, value in fields.items():
        setattr(plan, name, value)
    session.flush()
    refresh_open_sla(session, user.tenant_id, plan_ids=[plan.id])  # targets or calendar moved
    session.flush()
    return plan_out(plan)


@router.delete(
    "/plans/{plan_id}",
    status_code=204,
    response_class=Response,
    summary="Delete an unused support plan (tombstone)",
)
def delete_plan(plan_id: uuid.UUID, user: Lead, session: WriteSession) -> Response:
    plan = get_owned(session, Plan, plan_id, user, "plan")
    users = (
        session.scalar(
            select(func.count())
            .select_from(Organisation)
            .where(Organisation.plan_id == plan.id, Organisation.deleted.is_(False))
        )
        or 0
    )
    if users:
        noun = "organisation uses" if users == 1 else "organisations use"
        raise ApiError(409, "in_use", f"{users} {noun} this plan; move them to another plan first")
    tenant_session(session, user)
    plan.deleted = True
    session.flush()
    return Response(status_code=204)
