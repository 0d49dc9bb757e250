"""Validated-contact mutations (validate, invalidate, swap) through
:mod:`agentdesk.policy.contacts`: a plan's limit on validated contacts is enforced here.
"""

from __future__ import annotations

import logging
import uuid

from ...models import (
    Contact,
    Organisation,
)
from ...policy import contacts as contact_rules
from ...policy.plans import SupportPlan
from .core import (
    Args,
    ContactRef,
    MutationContext,
    MutationRejected,
    get_row,
    mutator,
    plan_of,
    policy_contacts,
)

log = logging.getLogger(__name__)


class ContactArgs(Args):
    contact_id: ContactRef


class SwapContact(Args):
    out_id: ContactRef
    in_id: ContactRef


def _apply_contact_result(ctx: MutationContext, result: contact_rules.ContactResult) -> None:
    if isinstance(result, contact_rules.ContactRefused):
        raise MutationRejected(result.code, result.message, "contact_id")
    for cid in result.invalidate:
        contact: Contact = get_row(ctx, Contact, uuid.UUID(cid), "contact")
        contact.validated = False
        contact.validated_at = None
        contact.validated_by_id = None
    for cid in result.validate:
        contact = get_row(ctx, Contact, uuid.UUID(cid), "contact")
        contact.validated = True
        contact.validated_at = ctx.now
        contact.validated_by_id = ctx.actor_id


def _org_plan_contacts(
    ctx: MutationContext, contact_id: uuid.UUID
) -> tuple[SupportPlan, list[contact_rules.Contact]]:
    contact: Contact = get_row(ctx, Contact, contact_id, "contact")
    org: Organisation = get_row(ctx, Organisation, contact.organisation_id, "organisation")
    _, plan = plan_of(ctx, org)
    return plan, policy_contacts(ctx, org.id)


@mutator("validate_contact", ContactArgs)
def validate_contact(ctx: MutationContext, a: ContactArgs) -> None:
    plan, contacts = _org_plan_contacts(ctx, a.contact_id)
    _apply_contact_result(ctx, contact_rules.validate_contact(plan, contacts, str(a.contact_id)))


@mutator("invalidate_contact", ContactArgs)
def invalidate_contact(ctx: MutationContext, a: ContactArgs) -> None:
    plan, contacts = _org_plan_contacts(ctx, a.contact_id)
    _apply_contact_result(ctx, contact_rules.invalidate_contact(plan, contacts, str(a.contact_id)))


@mutator("swap_contact", SwapContact)
def swap_contact(ctx: MutationContext, a: SwapContact) -> None:
    plan, contacts = _org_plan_contacts(ctx, a.out_id)
    incoming: Contact = get_row(ctx, Contact, a.in_id, "contact")
    outgoing: Contact = get_row(ctx, Contact, a.out_id, "contact")
    if incoming.organisation_id != outgoing.organisation_id:
        raise MutationRejected(
            "invalid", "both contacts must belong to the same organisation", "in_id"
        )
    _apply_contact_result(
        ctx, contact_rules.swap_contact(plan, contacts, str(a.out_id), str(a.in_id))
    )
