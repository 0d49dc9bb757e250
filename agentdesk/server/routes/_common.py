"""What every API router shares: role gates, tenant-scoped lookups and ORM-to-wire mapping.

Lookups always filter by the caller's tenant and skip tombstones, and answer "not found" the
same way whether the id is unknown or belongs to another tenant: a 403 would confirm that the
id exists somewhere.
"""

from __future__ import annotations

import uuid
from typing import Annotated, TypeVar

from fastapi import Depends
from fastapi.security import HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from ...models import Calendar, Contact, Organisation, Plan, Role, SyncedMixin, User
from ..deps import LEADS, require_roles
from ..errors import ApiError
from ..schemas import CalendarOut, ContactOut, OrganisationOut, PlanOut, TeamMemberOut

#: Documents the bearer scheme in the OpenAPI schema; ``deps.current_user`` does the checking.
bearer_scheme = HTTPBearer(auto_error=False, description="A token from POST /api/v1/login")

#: Team leads and admins: plans, calendars, users.
Lead = Annotated[User, Depends(require_roles(*LEADS))]
#: Who maintains customer organisations and their contacts.
ORG_EDITORS = (Role.COORDINATOR, *LEADS)
OrgEditor = Annotated[User, Depends(require_roles(*ORG_EDITORS))]

T = TypeVar("T", bound=SyncedMixin)


def get_owned(session: Session, model: type[T], obj_id: uuid.UUID, user: User, what: str) -> T:
    """The caller's tenant's live row, else 404 (never revealing other tenants' ids)."""
    row = session.scalar(
        select(model).where(
            model.id == obj_id, model.tenant_id == user.tenant_id, model.deleted.is_(False)
        )
    )
    if row is None:
        raise ApiError(404, "not_found", f"no {what} with this id")
    return row


def calendar_out(cal: Calendar) -> CalendarOut:
    data = cal.data
    return CalendarOut(
        id=cal.id,
        version=cal.version,
        name=cal.name,
        tz=data["tz"],
        hours=data["hours"],
        holidays=data.get("holidays", []),
        overrides=data.get("overrides", {}),
        holiday_country=data.get("holiday_country"),
    )


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        id=plan.id,
        version=plan.version,
        key=plan.key,
        name=plan.name,
        rank=plan.rank,
        channels=sorted(plan.channels),
        contact_allotment=plan.contact_allotment,
        conversations_per_year=plan.conversations_per_year,
        review_bonus_conversations=plan.review_bonus_conversations,
        min_verified_reviews=plan.min_verified_reviews,
        min_recent_reviews=plan.min_recent_reviews,
        calendar_id=plan.calendar_id,
        response_targets=dict(plan.response_targets or {}),
    )


def organisation_out(org: Organisation) -> OrganisationOut:
    return OrganisationOut(
        id=org.id,
        version=org.version,
        name=org.name,
        plan_id=org.plan_id,
        membership=org.membership,
        member_since=org.member_since,
        verified_reviews=org.verified_reviews,
        recent_reviews=org.recent_reviews,
    )


def contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        id=contact.id,
        version=contact.version,
        organisation_id=contact.organisation_id,
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        validated=contact.validated,
        validated_at=contact.validated_at,
    )


def member_out(user: User) -> TeamMemberOut:
    return TeamMemberOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        active=user.active,
    )
