"""Validated support contacts and request routing (seed 003)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentdesk.policy.contacts import (
    Contact,
    ContactChange,
    ContactRefused,
    ContactResult,
    allotment_usage,
    apply_change,
    invalidate_contact,
    route_request,
    swap_contact,
    validate_contact,
)
from agentdesk.policy.errors import PolicyError
from agentdesk.policy.plans import SupportPlan, seed_plans

PLANS = {p.key: p for p in seed_plans()}
BASIC, STANDARD, PREMIUM = PLANS["basic"], PLANS["standard"], PLANS["premium"]

ANN = Contact("c1", "Ann Lee", "ann@x.com", validated=True)
BO = Contact("c2", "Bo Chen", "bo@x.com", validated=True)
CY = Contact("c3", "Cy Diaz", "cy@x.com")
DEE = Contact("c4", "Dee Fox", "dee@x.com")
FULL_STANDARD = (ANN, BO, CY, DEE)


def accepted(result: ContactResult) -> ContactChange:
    assert isinstance(result, ContactChange), result
    assert result.accepted
    return result


def refused(result: ContactResult) -> ContactRefused:
    assert isinstance(result, ContactRefused), result
    assert not result.accepted
    return result


# --- value objects -------------------------------------------------------------------------------


def test_contact_is_frozen_and_displays_name_and_email() -> None:
    assert ANN.display == "Ann Lee <ann@x.com>"
    assert not CY.validated
    with pytest.raises(FrozenInstanceError):
        ANN.validated = False  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"id": "", "name": "A", "email": "a@x"}, "id"),
        ({"id": "1", "name": "  ", "email": "a@x"}, "name"),
        ({"id": "1", "name": "A", "email": "not-an-email"}, "email"),
        ({"id": "1", "name": "A", "email": "a@x", "validated": "yes"}, "validated"),
    ],
)
def test_contact_bad_input(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(PolicyError) as err:
        Contact(**kwargs)  # type: ignore[arg-type]
    assert err.value.field == field


# --- allotment usage -----------------------------------------------------------------------------


def test_usage_counts_slots_and_lists_holders_in_order() -> None:
    usage = allotment_usage(PREMIUM, FULL_STANDARD)
    assert (usage.used, usage.total, usage.free, usage.over_by) == (2, 4, 2, 0)
    assert usage.holders == (ANN, BO)
    assert not usage.over_allotment
    full = allotment_usage(STANDARD, FULL_STANDARD)
    assert (full.used, full.total, full.free, full.over_allotment) == (2, 2, 0, False)


def test_usage_reports_over_allotment_after_downgrade() -> None:
    usage = allotment_usage(BASIC, FULL_STANDARD)
    assert (usage.used, usage.total, usage.free, usage.over_by) == (2, 1, 0, 1)
    assert usage.over_allotment


def test_duplicate_ids_and_non_contacts_are_refused() -> None:
    with pytest.raises(PolicyError) as err:
        allotment_usage(STANDARD, [ANN, replace(CY, id=ANN.id)])
    assert err.value.field == "contacts[1]"
    with pytest.raises(PolicyError) as err:
        allotment_usage(STANDARD, [ANN, "c2"])  # type: ignore[list-item]
    assert err.value.field == "contacts[1]"


# --- validate ------------------------------------------------------------------------------------


def test_validate_within_allotment() -> None:
    change = accepted(validate_contact(PREMIUM, FULL_STANDARD, "c3"))
    assert change.validate == ("c3",)
    assert change.invalidate == ()
    assert change.message == (
        "Validated Cy Diaz <cy@x.com> as a support contact (3 of 4 Premium slots in use)."
    )
    after = apply_change(FULL_STANDARD, change)
    assert [c.validated for c in after] == [True, True, True, False]


def test_validate_beyond_allotment_names_the_holders() -> None:
    r = refused(validate_contact(STANDARD, FULL_STANDARD, "c3"))
    assert r.code == "allotment_full"
    assert r.contact_id == "c3"
    assert r.holders == (ANN, BO)
    assert r.message == (
        "Standard includes 2 validated contacts; the slots are held by Ann Lee "
        "<ann@x.com> and Bo Chen <bo@x.com>. Swap one out to validate Cy Diaz."
    )


def test_validate_with_a_single_slot_names_the_one_holder() -> None:
    contacts = (ANN, CY)
    r = refused(validate_contact(BASIC, contacts, "c3"))
    assert r.message == (
        "Basic/Free includes 1 validated contact; the slot is held by Ann Lee "
        "<ann@x.com>. Swap Ann Lee out to validate Cy Diaz."
    )


def test_validate_on_a_plan_without_contacts() -> None:
    none = SupportPlan(key="none", name="Self-serve", rank=0, contact_allotment=0)
    r = refused(validate_contact(none, (CY,), "c3"))
    assert r.code == "allotment_full"
    assert r.message == (
        "Self-serve includes no validated contacts, so Cy Diaz cannot be validated on this plan."
    )


def test_validating_an_already_validated_contact_is_refused() -> None:
    r = refused(validate_contact(PREMIUM, FULL_STANDARD, "c1"))
    assert r.code == "already_validated"
    assert r.message == "Ann Lee <ann@x.com> is already a validated contact; nothing to change."


def test_over_allotment_refuses_validation_until_enough_are_switched_out() -> None:
    # Downgraded from Premium to Basic/Free (1 slot) with three validated contacts.
    contacts: tuple[Contact, ...] = (ANN, BO, replace(CY, validated=True), DEE)
    r = refused(validate_contact(BASIC, contacts, "c4"))
    assert r.code == "allotment_full"
    assert r.message == (
        "Basic/Free includes 1 validated contact but 3 are validated: Ann Lee "
        "<ann@x.com>, Bo Chen <bo@x.com> and Cy Diaz <cy@x.com>. Switch out 3 "
        "to validate Dee Fox."
    )
    # A swap is refused too: it would leave the organisation still over its allotment.
    s = refused(swap_contact(BASIC, contacts, "c1", "c4"))
    assert s.code == "allotment_full"
    assert s.message.endswith("Switch out 2 more to swap Dee Fox in.")
    # Switching out is always allowed; once at the allotment, a swap works, then validation
    # needs a free slot.
    contacts = apply_change(contacts, accepted(invalidate_contact(BASIC, contacts, "c1")))
    assert allotment_usage(BASIC, contacts).over_by == 1
    refused(validate_contact(BASIC, contacts, "c4"))
    contacts = apply_change(contacts, accepted(invalidate_contact(BASIC, contacts, "c2")))
    assert not allotment_usage(BASIC, contacts).over_allotment
    refused(validate_contact(BASIC, contacts, "c4"))
    swapped = apply_change(contacts, accepted(swap_contact(BASIC, contacts, "c3", "c4")))
    assert [c.id for c in swapped if c.validated] == ["c4"]
    contacts = apply_change(contacts, accepted(invalidate_contact(BASIC, contacts, "c3")))
    accepted(validate_contact(BASIC, contacts, "c4"))


def test_unknown_contact_id() -> None:
    with pytest.raises(PolicyError) as err:
        validate_contact(STANDARD, FULL_STANDARD, "nope")
    assert err.value.field == "contact_id"
    with pytest.raises(PolicyError) as err:
        invalidate_contact(STANDARD, FULL_STANDARD, "nope")
    assert err.value.field == "contact_id"


# --- swap and invalidate -------------------------------------------------------------------------


def test_swap_reports_both_changes() -> None:
    change = accepted(swap_contact(STANDARD, FULL_STANDARD, "c2", "c3"))
    assert change.invalidate == ("c2",)
    assert change.validate == ("c3",)
    assert change.message == (
        "Swapped support contact Bo Chen <bo@x.com> out and Cy Diaz <cy@x.com> in."
    )
    after = apply_change(FULL_STANDARD, change)
    assert [c.id for c in after if c.validated] == ["c1", "c3"]


def test_swap_requires_a_validated_out_and_a_non_validated_in() -> None:
    out_not_validated = refused(swap_contact(STANDARD, FULL_STANDARD, "c3", "c4"))
    assert out_not_validated.code == "not_validated"
    assert out_not_validated.contact_id == "c3"
    assert out_not_validated.message == (
        "Cy Diaz <cy@x.com> is not a validated contact, so cannot be swapped out for Dee Fox."
    )
    in_already = refused(swap_contact(STANDARD, FULL_STANDARD, "c1", "c2"))
    assert in_already.code == "already_validated"
    assert in_already.contact_id == "c2"


def test_swap_bad_ids() -> None:
    for out_id, in_id, field in (
        ("x", "c3", "out_id"),
        ("c1", "x", "in_id"),
        ("c1", "c1", "in_id"),
    ):
        with pytest.raises(PolicyError) as err:
            swap_contact(STANDARD, FULL_STANDARD, out_id, in_id)
        assert err.value.field == field


def test_invalidate_frees_a_slot() -> None:
    change = accepted(invalidate_contact(STANDARD, FULL_STANDARD, "c1"))
    assert (change.validate, change.invalidate) == ((), ("c1",))
    assert change.message == (
        "Switched out Ann Lee <ann@x.com> as a support contact (1 of 2 Standard slots in use)."
    )
    after = apply_change(FULL_STANDARD, change)
    accepted(validate_contact(STANDARD, after, "c3"))


def test_invalidating_a_non_validated_contact_is_refused() -> None:
    r = refused(invalidate_contact(STANDARD, FULL_STANDARD, "c4"))
    assert r.code == "not_validated"
    assert r.message == "Dee Fox <dee@x.com> is not a validated contact; nothing to switch out."


def test_inputs_are_never_mutated() -> None:
    contacts = list(FULL_STANDARD)
    snapshot = list(contacts)
    validate_contact(PREMIUM, contacts, "c3")
    swap_contact(STANDARD, contacts, "c1", "c3")
    change = accepted(invalidate_contact(STANDARD, contacts, "c1"))
    after = apply_change(contacts, change)
    route_request(STANDARD, contacts, "c4")
    assert contacts == snapshot
    assert after is not contacts  # type: ignore[comparison-overlap]  # a tuple is never the list
    assert after[0] is not ANN
    assert ANN.validated


def test_apply_change_rejects_unknown_ids() -> None:
    with pytest.raises(PolicyError) as err:
        apply_change(FULL_STANDARD, ContactChange(validate=("zz",), invalidate=(), message=""))
    assert err.value.field == "validate"


# --- routing -------------------------------------------------------------------------------------


def test_validated_requester_is_worked() -> None:
    r = route_request(STANDARD, FULL_STANDARD, "c1")
    assert r.worked
    assert r.code == "validated"
    assert r.requester == ANN
    assert r.notify == ()
    assert r.history == "Request from validated support contact Ann Lee <ann@x.com>."


def test_non_validated_requester_is_redirected_and_validated_contacts_notified() -> None:
    r = route_request(STANDARD, FULL_STANDARD, "c3")
    assert not r.worked
    assert r.code == "redirected"
    assert r.requester == CY
    assert r.notify == (ANN, BO)
    assert r.history == (
        "Request from Cy Diaz <cy@x.com>, who is not a validated support contact: not worked. "
        "Redirected to the validated contacts Ann Lee <ann@x.com> and Bo Chen <bo@x.com>, who "
        "were asked how to proceed."
    )
    assert "Ann Lee and Bo Chen" in r.requester_notice
    assert "@" not in r.requester_notice  # the requester is not trusted with their addresses


def test_redirect_with_no_validated_contacts_says_so() -> None:
    contacts = (CY, DEE)
    r = route_request(STANDARD, contacts, "c4")
    assert not r.worked
    assert r.code == "no_validated_contacts"
    assert r.notify == ()
    assert r.history == (
        "Request from Dee Fox <dee@x.com>, who is not a validated support contact: not worked. "
        "The organisation has no validated support contacts to notify; it must validate a "
        "contact first (Standard includes 2 validated contacts)."
    )
    assert "validate a support contact first" in r.requester_notice


def test_over_allotment_contacts_are_still_served() -> None:
    contacts = (ANN, BO)
    assert allotment_usage(BASIC, contacts).over_allotment
    assert route_request(BASIC, contacts, "c2").worked


def test_unknown_requester_is_bad_input() -> None:
    with pytest.raises(PolicyError) as err:
        route_request(STANDARD, FULL_STANDARD, "stranger")
    assert err.value.field == "requester_id"


# --- property: the allotment is never exceeded by applying results -------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(["validate", "invalidate", "swap"]), st.integers(0, 7), st.integers(0, 7)
    ),
    max_size=25,
)


@settings(max_examples=200, deadline=None)
@given(allotment=st.integers(0, 4), flags=st.lists(st.booleans(), min_size=1, max_size=8), ops=OPS)
def test_allotment_never_exceeded_unless_it_started_above(
    allotment: int, flags: list[bool], ops: list[tuple[str, int, int]]
) -> None:
    plan = SupportPlan(key="p", name="P", rank=0, contact_allotment=allotment)
    contacts: tuple[Contact, ...] = tuple(
        Contact(f"id{i}", f"Person {i}", f"p{i}@x.com", validated=v) for i, v in enumerate(flags)
    )
    ceiling = max(allotment, sum(flags))
    previous = sum(flags)
    for op, i, j in ops:
        a, b = contacts[i % len(contacts)].id, contacts[j % len(contacts)].id
        if op == "validate":
            result = validate_contact(plan, contacts, a)
        elif op == "invalidate":
            result = invalidate_contact(plan, contacts, a)
        elif a == b:
            continue
        else:
            result = swap_contact(plan, contacts, a, b)
        before = contacts
        if isinstance(result, ContactChange) and result.validate:
            # Over the allotment nobody new is validated, not even by a swap; at it, only a swap.
            assert previous <= allotment, result
            assert previous < allotment or result.invalidate, result
        if isinstance(result, ContactChange):
            contacts = apply_change(contacts, result)
        else:
            assert result.message
        used = allotment_usage(plan, contacts).used
        assert used <= ceiling
        if previous > allotment:  # over: nothing may add to the excess
            assert used <= previous
        else:
            assert used <= allotment
        # Ids, names and order never change; only the validated flags do.
        assert [c.id for c in contacts] == [c.id for c in before]
        previous = used
