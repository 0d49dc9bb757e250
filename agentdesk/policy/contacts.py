"""Validated support contacts and what happens to a request from anyone else.

Seed 003: "we are only able to assist Support contacts that your organization has validated. Each
Support plan includes its own allotment of Support contacts, though we're happy to switch users in
and out as needed. In the event that a non-validated Support contact requests assistance, we will
redirect them to their validated Support contacts. In addition, we will personally reach out to
validated Support contacts to confirm how they would like to proceed."

So: a plan has ``contact_allotment`` slots (plan data); validating a contact takes a slot, and
switching one out frees it. Every function here is pure: it reads the organisation's contacts and
returns a result the caller applies (:func:`apply_change` does that for a list of contacts), so the
desktop can run it optimistically and the server authoritatively with the same outcome.

Decisions:

* A refusal is a result (:class:`ContactRefused`), not an exception: a full allotment is a normal
  business outcome the agent reads to the customer. Exceptions (:class:`PolicyError`) are only for
  bad input, such as an unknown contact id.
* Validating an already-validated contact (or switching out one that is not validated) is refused
  with its own code rather than treated as a no-op, so the agent learns the request was based on a
  stale view and the ticket history never records a change that did not happen.
* Over-allotment (a downgrade left more validated contacts than slots) is reported by
  :func:`allotment_usage`. Existing validated contacts are still served, because cutting a customer
  off mid-conversation over a plan change is worse than a temporary excess; but nobody new is
  validated, not even by a swap, until enough contacts are switched out to get within the plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from .errors import PolicyError
from .plans import SupportPlan

__all__ = [
    "AllotmentUsage",
    "Contact",
    "ContactChange",
    "ContactRefused",
    "ContactResult",
    "RefusalCode",
    "RequestRouting",
    "RoutingCode",
    "allotment_usage",
    "apply_change",
    "invalidate_contact",
    "not_validated_refusal",
    "route_request",
    "swap_contact",
    "validate_contact",
]

RefusalCode = Literal["allotment_full", "already_validated", "not_validated"]
RoutingCode = Literal["validated", "redirected", "no_validated_contacts"]


@dataclass(frozen=True)
class Contact:
    """A person at a customer organisation who may ask for support."""

    id: str
    name: str
    email: str
    validated: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise PolicyError("id", "must be a non-empty string")
        if not isinstance(self.name, str) or not self.name.strip():
            raise PolicyError("name", "must not be empty")
        if not isinstance(self.email, str) or "@" not in self.email:
            raise PolicyError("email", f"must be an email address, got {self.email!r}")
        if not isinstance(self.validated, bool):
            raise PolicyError("validated", "must be true or false")

    @property
    def display(self) -> str:
        """``Ann Lee <ann@x.com>``: how a contact is named in messages and history."""
        return f"{self.name} <{self.email}>"


@dataclass(frozen=True)
class AllotmentUsage:
    """How the plan's validated-contact slots are used. ``holders`` keep the input order."""

    used: int
    total: int
    holders: tuple[Contact, ...]

    @property
    def free(self) -> int:
        return max(self.total - self.used, 0)

    @property
    def over_by(self) -> int:
        """How many validated contacts exceed the allotment (after a downgrade)."""
        return max(self.used - self.total, 0)

    @property
    def over_allotment(self) -> bool:
        return self.used > self.total


@dataclass(frozen=True)
class ContactChange:
    """An accepted change: switch ``validate`` in and ``invalidate`` out, then log ``message``."""

    validate: tuple[str, ...]
    invalidate: tuple[str, ...]
    message: str

    @property
    def accepted(self) -> bool:
        return True


@dataclass(frozen=True)
class ContactRefused:
    """A refused change, with a message for the agent and the contacts holding the slots."""

    code: RefusalCode
    contact_id: str
    message: str
    holders: tuple[Contact, ...]

    @property
    def accepted(self) -> bool:
        return False


ContactResult = ContactChange | ContactRefused


@dataclass(frozen=True)
class RequestRouting:
    """What to do with a request: work it, or redirect it (seed 003).

    ``notify``: the validated contacts to reach out to and ask how to proceed (empty when the
    request is worked, or when the organisation has none). ``history``: the ticket-history entry.
    ``requester_notice``: what to tell the requester; it names the validated contacts without
    their email addresses, since the requester is not (yet) trusted.
    """

    worked: bool
    code: RoutingCode
    requester: Contact
    notify: tuple[Contact, ...]
    history: str
    requester_notice: str


def _join(words: list[str]) -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def _index(contacts: Iterable[Contact]) -> tuple[tuple[Contact, ...], dict[str, Contact]]:
    listed = tuple(contacts)
    by_id: dict[str, Contact] = {}
    for i, c in enumerate(listed):
        if not isinstance(c, Contact):
            raise PolicyError(f"contacts[{i}]", f"must be a Contact, got {type(c).__name__}")
        if c.id in by_id:
            raise PolicyError(f"contacts[{i}]", f"duplicate contact id {c.id!r}")
        by_id[c.id] = c
    return listed, by_id


def _find(by_id: dict[str, Contact], contact_id: object, field: str) -> Contact:
    if not isinstance(contact_id, str) or contact_id not in by_id:
        raise PolicyError(field, f"no contact with id {contact_id!r} in this organisation")
    return by_id[contact_id]


def _slots(total: int) -> str:
    if total == 0:
        return "no validated contacts"
    return "1 validated contact" if total == 1 else f"{total} validated contacts"


def allotment_usage(plan: SupportPlan, contacts: Iterable[Contact]) -> AllotmentUsage:
    """Used and free validated-contact slots under ``plan``."""
    listed, _ = _index(contacts)
    holders = tuple(c for c in listed if c.validated)
    return AllotmentUsage(used=len(holders), total=plan.contact_allotment, holders=holders)


def _no_room(
    plan: SupportPlan, usage: AllotmentUsage, newcomer: Contact, swapping_out: Contact | None = None
) -> ContactRefused:
    """Why ``newcomer`` cannot take a slot (with ``swapping_out`` leaving it, for a swap)."""
    holders = [h.display for h in usage.holders]
    if usage.total == 0:
        message = (
            f"{plan.name} includes no validated contacts, so {newcomer.name} cannot be "
            f"validated on this plan."
        )
    elif usage.over_allotment:
        # Validating adds one contact; a swap keeps the count. Either way the result must fit.
        to_remove = usage.over_by + (0 if swapping_out is not None else 1)
        verb = (
            f"swap {newcomer.name} in"
            if swapping_out is not None
            else (f"validate {newcomer.name}")
        )
        more = " more" if swapping_out is not None else ""
        message = (
            f"{plan.name} includes {_slots(usage.total)} but {usage.used} are validated: "
            f"{_join(holders)}. Switch out {to_remove}{more} to {verb}."
        )
    elif usage.total == 1:
        holder = usage.holders[0]
        message = (
            f"{plan.name} includes 1 validated contact; the slot is held by "
            f"{holder.display}. Swap {holder.name} out to validate {newcomer.name}."
        )
    else:
        message = (
            f"{plan.name} includes {usage.total} validated contacts; the slots are held by "
            f"{_join(holders)}. Swap one out to validate {newcomer.name}."
        )
    return ContactRefused(
        code="allotment_full", contact_id=newcomer.id, message=message, holders=usage.holders
    )


def validate_contact(
    plan: SupportPlan, contacts: Iterable[Contact], contact_id: str
) -> ContactResult:
    """Switch a contact in, if the plan's allotment has a free slot."""
    listed, by_id = _index(contacts)
    contact = _find(by_id, contact_id, "contact_id")
    usage = allotment_usage(plan, listed)
    if contact.validated:
        return ContactRefused(
            code="already_validated",
            contact_id=contact.id,
            holders=usage.holders,
            message=f"{contact.display} is already a validated contact; nothing to change.",
        )
    if usage.used >= usage.total:
        return _no_room(plan, usage, contact)
    return ContactChange(
        validate=(contact.id,),
        invalidate=(),
        message=(
            f"Validated {contact.display} as a support contact "
            f"({usage.used + 1} of {usage.total} {plan.name} slots in use)."
        ),
    )


def invalidate_contact(
    plan: SupportPlan, contacts: Iterable[Contact], contact_id: str
) -> ContactResult:
    """Switch a contact out without a replacement (always allowed for a validated contact)."""
    listed, by_id = _index(contacts)
    contact = _find(by_id, contact_id, "contact_id")
    usage = allotment_usage(plan, listed)
    if not contact.validated:
        return ContactRefused(
            code="not_validated",
            contact_id=contact.id,
            holders=usage.holders,
            message=f"{contact.display} is not a validated contact; nothing to switch out.",
        )
    return ContactChange(
        validate=(),
        invalidate=(contact.id,),
        message=(
            f"Switched out {contact.display} as a support contact "
            f"({usage.used - 1} of {usage.total} {plan.name} slots in use)."
        ),
    )


def swap_contact(
    plan: SupportPlan, contacts: Iterable[Contact], out_id: str, in_id: str
) -> ContactResult:
    """Switch ``out_id`` out and ``in_id`` in as one change (seed 003's "switch users in and out").

    Refused when the plan is over its allotment, because the result would still be over it.
    """
    listed, by_id = _index(contacts)
    leaving = _find(by_id, out_id, "out_id")
    joining = _find(by_id, in_id, "in_id")
    if leaving.id == joining.id:
        raise PolicyError("in_id", "must be a different contact from out_id")
    usage = allotment_usage(plan, listed)
    if not leaving.validated:
        return ContactRefused(
            code="not_validated",
            contact_id=leaving.id,
            holders=usage.holders,
            message=(
                f"{leaving.display} is not a validated contact, so cannot be swapped out "
                f"for {joining.name}."
            ),
        )
    if joining.validated:
        return ContactRefused(
            code="already_validated",
            contact_id=joining.id,
            holders=usage.holders,
            message=f"{joining.display} is already a validated contact; nothing to swap in.",
        )
    if usage.used > usage.total:
        return _no_room(plan, usage, joining, swapping_out=leaving)
    return ContactChange(
        validate=(joining.id,),
        invalidate=(leaving.id,),
        message=f"Swapped support contact {leaving.display} out and {joining.display} in.",
    )


def apply_change(contacts: Iterable[Contact], change: ContactChange) -> tuple[Contact, ...]:
    """The contacts after ``change``: new objects, same order; the input is left untouched."""
    listed, by_id = _index(contacts)
    for field, ids in (("validate", change.validate), ("invalidate", change.invalidate)):
        for cid in ids:
            _find(by_id, cid, field)
    switch_in, switch_out = set(change.validate), set(change.invalidate)
    return tuple(
        replace(c, validated=True)
        if c.id in switch_in
        else replace(c, validated=False)
        if c.id in switch_out
        else c
        for c in listed
    )


def not_validated_refusal(requester: str, doing: str) -> str:
    """Why a ticket from a non-validated requester is not helped (replied to, told who has it,
    resolved), with the next step: seed 003's "we are only able to assist Support contacts
    that your organization has validated ... we will redirect them". The same words serve the
    disabled button's tooltip and the server's refusal."""
    return (
        f"cannot {doing}: {requester} is not a validated support contact, and we only "
        "assist validated contacts (seed 003). Redirect the ticket to the organisation's "
        "validated contacts, or validate the requester first"
    )


def route_request(
    plan: SupportPlan, contacts: Iterable[Contact], requester_id: str
) -> RequestRouting:
    """Work a request from a validated contact; redirect anyone else (seed 003).

    The requester must be one of the organisation's contacts: record an unknown sender as a
    non-validated contact first, so the history and the notifications can name them.
    """
    listed, by_id = _index(contacts)
    requester = _find(by_id, requester_id, "requester_id")
    usage = allotment_usage(plan, listed)
    if requester.validated:
        return RequestRouting(
            worked=True,
            code="validated",
            requester=requester,
            notify=(),
            history=f"Request from validated support contact {requester.display}.",
            requester_notice="",
        )
    not_worked = (
        f"Request from {requester.display}, who is not a validated support contact: not worked."
    )
    if not usage.holders:
        return RequestRouting(
            worked=False,
            code="no_validated_contacts",
            requester=requester,
            notify=(),
            history=(
                f"{not_worked} The organisation has no validated support contacts to "
                f"notify; it must validate a contact first ({plan.name} includes "
                f"{_slots(plan.contact_allotment)})."
            ),
            requester_notice=(
                "We can only assist support contacts your organisation has validated, and it "
                "has not validated anyone yet. Please ask your organisation to validate a "
                "support contact first."
            ),
        )
    names = _join([h.name for h in usage.holders])
    return RequestRouting(
        worked=False,
        code="redirected",
        requester=requester,
        notify=usage.holders,
        history=(
            f"{not_worked} Redirected to the validated contacts "
            f"{_join([h.display for h in usage.holders])}, who were asked how to proceed."
        ),
        requester_notice=(
            f"We can only assist support contacts your organisation has validated: {names}. "
            f"We have let them know about your request and asked how they would like to "
            f"proceed."
        ),
    )
