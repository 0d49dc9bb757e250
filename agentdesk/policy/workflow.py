"""The ticket workflow as a state machine (seed 002, with seed 003's redirect).

Seed 002: "Your request is reviewed by a Support Coordinator, and assessed for its severity" ->
"You receive an update ... letting you know who it's been assigned to and what to expect" ->
"Your request is completed, and you're notified." So a ticket is ``new`` until triaged, becomes
``in_progress`` once someone owns it and the customer was told, may wait on the customer (which
pauses the SLA clock), and ends ``resolved`` (customer notified) and later ``closed``.

A request from a non-validated contact (seed 003) is ``redirected``: recorded, never worked. When
the organisation's validated contacts answer how to proceed, it can be reopened as ``new``. A
ticket can be redirected from every open status: a requester may be switched out while their
ticket is in progress or waiting, and seed 003 then forbids working it any further.

Status names are plain strings here so the rules engine stays free of the ORM's enums; the
models use the same values.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import PolicyError

NEW = "new"
TRIAGED = "triaged"
IN_PROGRESS = "in_progress"
WAITING_ON_CUSTOMER = "waiting_on_customer"
RESOLVED = "resolved"
CLOSED = "closed"
REDIRECTED = "redirected"

STATUSES: tuple[str, ...] = (
    NEW,
    TRIAGED,
    IN_PROGRESS,
    WAITING_ON_CUSTOMER,
    RESOLVED,
    CLOSED,
    REDIRECTED,
)
#: Statuses in which a ticket is in the work queue.
OPEN_STATUSES: frozenset[str] = frozenset({NEW, TRIAGED, IN_PROGRESS, WAITING_ON_CUSTOMER})

TRANSITIONS: Mapping[str, frozenset[str]] = {
    NEW: frozenset({TRIAGED, REDIRECTED}),
    TRIAGED: frozenset({IN_PROGRESS, WAITING_ON_CUSTOMER, RESOLVED, REDIRECTED}),
    IN_PROGRESS: frozenset({WAITING_ON_CUSTOMER, RESOLVED, REDIRECTED}),
    WAITING_ON_CUSTOMER: frozenset({IN_PROGRESS, RESOLVED, REDIRECTED}),
    RESOLVED: frozenset({CLOSED, IN_PROGRESS}),
    CLOSED: frozenset(),
    REDIRECTED: frozenset({NEW}),
}

_WHY_NOT: Mapping[str, str] = {
    NEW: "it has not been triaged yet: assess its severity first",
    CLOSED: "it is closed",
    REDIRECTED: "it was redirected to the organisation's validated contacts: reopen it once "
    "they confirm how to proceed",
}


def can_transition(current: str, target: str) -> bool:
    _check(current, "status")
    _check(target, "target")
    return target in TRANSITIONS[current]


def transition_refusal(current: str, target: str) -> str | None:
    """Why ``current -> target`` is not allowed, in words for a tooltip; None when allowed."""
    if can_transition(current, target):
        return None
    if current == target:
        return f"the ticket is already {label(current)}"
    reason = _WHY_NOT.get(current)
    if reason:
        return f"cannot move the ticket to {label(target)}: {reason}"
    allowed = ", ".join(label(s) for s in STATUSES if s in TRANSITIONS[current]) or "nothing"
    return f"cannot move a {label(current)} ticket to {label(target)}; it can go to: {allowed}"


def require_transition(current: str, target: str) -> None:
    refusal = transition_refusal(current, target)
    if refusal is not None:
        raise PolicyError("status", refusal)


def label(status: str) -> str:
    return status.replace("_", " ")


def _check(status: str, field: str) -> None:
    if status not in TRANSITIONS:
        raise PolicyError(field, f"unknown status {status!r}; expected one of {list(STATUSES)}")
