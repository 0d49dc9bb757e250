"""Customer organisations and their contacts.

Everyone looks organisations up (an agent checks a requester's entitlement); coordinators,
leads and admins maintain them. Contacts are created here unvalidated: validating one takes a
slot of the plan's allotment and must go through the sync mutators (the same rule on desktop and
server), never a plain write.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...models import Contact, Organisation, Plan, Tenant, User, utcnow
from ...models.db import unicode_lower
from ...policy import contacts as contact_rules
from ...policy.entitlements import calendar_year_of, conversation_allowance, review_bonus_applies
from ...queries.conversations import conversations_in_year
from ...sync.mutators import refresh_open_sla
from ..deps import CurrentUser, ReadSession, WriteSession, tenant_session
from ..errors import ApiError
from ..schemas import (
    AllotmentOut,
    AllowanceOut,
    ContactCreate,
    ContactOut,
    ContactPatch,
    OrganisationCreate,
    OrganisationDetail,
    OrganisationOut,
    OrganisationPatch,
    OrganisationSearch,
)
from ._common import OrgEditor, contact_out, get_owned, organisation_out, plan_out

router = APIRouter(tags=["organisations"])


def _live_plan(session: Session, user: User, plan_id: uuid.UUID) -> Plan:
    plan = session.scalar(
        select(Plan).where(
            Plan.id == plan_id, Plan.tenant_id == user.tenant_id, Plan.deleted.is_(False)
        )
    )
    if plan is None:
        raise ApiError(422, "invalid", "no plan with this id", field="plan_id")
    return plan


@router.get(
    "/organisations",
    response_model=list[OrganisationOut],
    summary="Look organisations up by name (case-insensitive substring)",
)
def search_organisations(
    user: CurrentUser,
    session: ReadSession,
    params: Annotated[OrganisationSearch, Query()],
) -> list[OrganisationOut]:
    query = params.query
    stmt = select(Organisation).where(
        Organisation.tenant_id == user.tenant_id, Organisation.deleted.is_(False)
    )
    if query is not None:
        # autoescape: a "%" or "_" in the query matches itself, not any text; Unicode case
        # folding on both engines ("ünï" finds "Ünïcode").
        dialect = session.get_bind().dialect.name
        stmt = stmt.where(
            unicode_lower(Organisation.name, dialect).contains(query.lower(), autoescape=True)
        )
    rows = session.scalars(stmt.order_by(Organisation.name, Organisation.id).limit(params.limit))
    return [organisation_out(o) for o in rows]


@router.get(
    "/organisations/{organisation_id}",
    response_model=OrganisationDetail,
    summary="An organisation with its plan, contacts, contact slots and allowance",
)
def get_organisation(
    organisation_id: uuid.UUID, user: CurrentUser, session: ReadSession
) -> OrganisationDetail:
    org = get_owned(session, Organisation, organisation_id, user, "organisation")
    plan_row = session.get_one(Plan, org.plan_id)
    plan = plan_row.to_policy()
    contacts = list(
        session.scalars(
            select(Contact)
            .where(Contact.organisation_id == org.id, Contact.deleted.is_(False))
            .order_by(Contact.name, Contact.id)
        )
    )
    usage = contact_rules.allotment_usage(
        plan,
        [
            contact_rules.Contact(id=str(c.id), name=c.name, email=c.email, validated=c.validated)
            for c in contacts
        ],
    )
    tenant = session.get_one(Tenant, user.tenant_id)
    year = calendar_year_of(utcnow(), tenant.timezone)
    allowance = conversation_allowance(plan, org.verified_reviews, org.recent_reviews)
    used = conversations_in_year(session, org.id, year, tenant.timezone)
    return OrganisationDetail(
        **organisation_out(org).model_dump(),
        plan=plan_out(plan_row),
        contacts=[contact_out(c) for c in contacts],
        allotment=AllotmentOut(
            used=usage.used,
            total=usage.total,
            free=usage.free,
            over_by=usage.over_by,
            holders=[uuid.UUID(h.id) for h in usage.holders],
        ),
        conversations=AllowanceOut(
            year=year,
            allowance=allowance,
            used=used,
            remaining=None if allowance is None else max(allowance - used, 0),
            bonus_applies=review_bonus_applies(plan, org.verified_reviews, org.recent_reviews),
        ),
    )


@router.post(
    "/organisations",
    response_model=OrganisationOut,
    status_code=201,
    summary="Add a customer organisation",
)
def create_organisation(
    body: OrganisationCreate, user: OrgEditor, session: WriteSession
) -> OrganisationOut:
    _live_plan(session, user, body.plan_id)
    tenant_session(session, user)
    org = Organisation(tenant_id=user.tenant_id, **body.model_dump())
    session.add(org)
    session.flush()
    return organisation_out(org)


@router.patch(
    "/organisations/{organisation_id}",
    response_model=OrganisationOut,
    summary="Change an organisation's name, plan, membership or review counts",
)
def update_organisation(
    organisation_id: uuid.UUID, body: OrganisationPatch, user: OrgEditor, session: WriteSession
) -> OrganisationOut:
    org = get_owned(session, Organisation, organisation_id, user, "organisation")
    changes = body.model_dump(include=body.model_fields_set)
    if "plan_id" in changes:
        _live_plan(session, user, changes["plan_id"])
    tenant_session(session, user)
    for name, value in changes.items():
        setattr(org, name, value)
    session.flush()
    if "plan_id" in changes:
        refresh_open_sla(session, user.tenant_id, organisation_ids=[org.id])
        session.flush()
    return organisation_out(org)


@router.post(
    "/organisations/{organisation_id}/contacts",
    response_model=ContactOut,
    status_code=201,
    summary="Add a (not yet validated) contact to an organisation",
)
def create_contact(
    organisation_id: uuid.UUID, body: ContactCreate, user: OrgEditor, session: WriteSession
) -> ContactOut:
    org = get_owned(session, Organisation, organisation_id, user, "organisation")
    contact = Contact(
        tenant_id=user.tenant_id,
        organisation_id=org.id,
        name=body.name,
        email=body.email,
        phone=body.phone,
        validated=False,
    )
    _check_contact(session, contact)
    tenant_session(session, user)
    session.add(contact)
    session.flush()
    return contact_out(contact)


def _check_contact(session: Session, contact: Contact) -> None:
    """The rules engine's own checks on a contact (name, email), and one address per
    organisation, before anything is stored."""
    contact_rules.Contact(id=str(contact.id), name=contact.name, email=contact.email)
    with session.no_autoflush:
        duplicate = session.scalar(
            select(Contact.id).where(
                Contact.organisation_id == contact.organisation_id,
                Contact.deleted.is_(False),
                Contact.id != contact.id,
                func.lower(Contact.email) == contact.email.lower(),
            )
        )
    if duplicate is not None:
        raise ApiError(
            409,
            "conflict",
            "this organisation already has a contact with this email address",
            field="email",
        )


@router.patch(
    "/contacts/{contact_id}",
    response_model=ContactOut,
    summary="Change a contact's name, email address or phone",
)
def update_contact(
    contact_id: uuid.UUID, body: ContactPatch, user: OrgEditor, session: WriteSession
) -> ContactOut:
    """Validation (a slot of the plan's allotment) is not changed here: that is the sync
    mutators' rule, the same on desktop and server."""
    contact = get_owned(session, Contact, contact_id, user, "contact")
    changes = body.model_dump(include=body.model_fields_set)
    tenant_session(session, user)
    for name, value in changes.items():
        setattr(contact, name, value)
    _check_contact(session, contact)
    session.flush()
    return contact_out(contact)
