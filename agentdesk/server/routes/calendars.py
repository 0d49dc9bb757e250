"""Business calendars: every signed-in user reads them (SLA clocks); leads maintain them.

A calendar is stored in the rules engine's canonical dict form, so what the desktop's SLA clock
reads is exactly what ``BusinessCalendar.from_dict`` accepted here.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...models import Calendar, Plan, User
from ...policy.calendar import BusinessCalendar
from ...sync.mutators import refresh_open_sla
from ..deps import CurrentUser, ReadSession, WriteSession, tenant_session
from ..errors import ApiError
from ..schemas import CalendarIn, CalendarOut
from ._common import Lead, calendar_out, get_owned

router = APIRouter(tags=["calendars"])


def _canonical(body: CalendarIn) -> dict[str, Any]:
    """The rules engine's verdict on the body (PolicyError -> 422 naming the field)."""
    fields = body.model_dump(exclude={"name"}, exclude_none=True)
    return BusinessCalendar.from_dict(fields).to_dict()


def _check_name_free(session: Session, user: User, name: str, own_id: uuid.UUID | None) -> None:
    clash = session.scalar(
        select(Calendar.id).where(Calendar.tenant_id == user.tenant_id, Calendar.name == name)
    )
    if clash is not None and clash != own_id:
        raise ApiError(409, "conflict", f"a calendar named {name!r} already exists", field="name")


@router.get("/calendars", response_model=list[CalendarOut], summary="The team's calendars")
def list_calendars(user: CurrentUser, session: ReadSession) -> list[CalendarOut]:
    rows = session.scalars(
        select(Calendar)
        .where(Calendar.tenant_id == user.tenant_id, Calendar.deleted.is_(False))
        .order_by(Calendar.name, Calendar.id)
    )
    return [calendar_out(c) for c in rows]


@router.get("/calendars/{calendar_id}", response_model=CalendarOut, summary="One calendar")
def get_calendar(calendar_id: uuid.UUID, user: CurrentUser, session: ReadSession) -> CalendarOut:
    return calendar_out(get_owned(session, Calendar, calendar_id, user, "calendar"))


@router.post(
    "/calendars", response_model=CalendarOut, status_code=201, summary="Create a business calendar"
)
def create_calendar(body: CalendarIn, user: Lead, session: WriteSession) -> CalendarOut:
    data = _canonical(body)
    tenant_session(session, user)
    _check_name_free(session, user, body.name, None)
    cal = Calendar(tenant_id=user.tenant_id, name=body.name, data=data)
    session.add(cal)
    session.flush()
    return calendar_out(cal)


@router.put(
    "/calendars/{calendar_id}", response_model=CalendarOut, summary="Replace a business calendar"
)
def replace_calendar(
    calendar_id: uuid.UUID, body: CalendarIn, user: Lead, session: WriteSession
) -> CalendarOut:
    cal = get_owned(session, Calendar, calendar_id, user, "calendar")
    data = _canonical(body)
    tenant_session(session, user)
    _check_name_free(session, user, body.name, cal.id)
    cal.name = body.name
    cal.data = data
    session.flush()
    plans = session.scalars(select(Plan.id).where(Plan.calendar_id == cal.id)).all()
    refresh_open_sla(session, user.tenant_id, plan_ids=plans)  # their tickets' hours moved
    session.flush()
    return calendar_out(cal)
