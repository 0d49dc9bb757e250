"""What each ticket event's ``data`` holds: one typed definition per :class:`EventKind`.

The mutators write events, the demo generator writes events, and the ticket view reads them.
When each spelled the JSON keys on its own, the demo's history read "Status: ? -> ?" and
"Unassigned (was nobody)" (issue 15). So every writer builds one of these frozen payloads and
stores :meth:`Payload.to_data`; every reader gets it back with :func:`payload_of`, and a key
can only be renamed here.

:func:`payload_of` is lenient on purpose: history is append-only and synced, so rows written
by an older version stay in replicas and on servers. The keys the demo used before this module
existed ("from"/"to" for status and assignment, "notified" for a redirect) are still read.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

from .tickets import EventKind

__all__ = [
    "PAYLOADS",
    "Assignment",
    "Created",
    "Escalation",
    "ExtraCharges",
    "FieldChange",
    "Note",
    "Notification",
    "Payload",
    "Redirect",
    "Reply",
    "StatusChange",
    "Triage",
    "as_id",
    "ids",
    "payload_of",
]

Ids = tuple[str, ...]


def _json(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    return value


def ids(values: Any) -> Ids:
    """Contact or user ids as strings, from one id or a sequence of them."""
    if values is None or values == "":
        return ()
    if isinstance(values, str | uuid.UUID):
        return (str(values),)
    return tuple(str(v) for v in values)


@dataclass(frozen=True)
class Payload:
    """Base of every event payload; ``KIND`` ties a payload class to its event kind."""

    KIND: ClassVar[EventKind]
    #: Keys older writers used for a field, read as that field.
    LEGACY: ClassVar[Mapping[str, str]] = {}

    def to_data(self) -> dict[str, Any]:
        return {f.name: _json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Payload:
        values: dict[str, Any] = {}
        for old, new in cls.LEGACY.items():
            if old in data and new not in data:
                values[new] = data[old]
        for f in dataclasses.fields(cls):
            if f.name in data:
                values[f.name] = data[f.name]
            if f.name in values and f.default == () and not isinstance(values[f.name], tuple):
                values[f.name] = ids(values[f.name])
        return cls(**values)


@dataclass(frozen=True)
class Created(Payload):
    KIND = EventKind.CREATED
    channel: str | None = None
    stated_urgency: int | None = None
    #: When the customer asked, by the submitting desktop's clock (data, never ordering).
    reported_at: str | None = None
    requester_id: str | None = None
    #: The entitlement decision's code at intake (seed 000), when the writer knew it.
    entitlement: str | None = None


@dataclass(frozen=True)
class Note(Payload):
    KIND = EventKind.NOTE
    #: Set when the note records an entitlement refusal (seed 000), e.g. "allowance_used_up".
    entitlement: str | None = None
    #: The address an email about this ticket could not be delivered to (the sender gave up:
    #: refused for good, or out of retries).
    delivery_failed: str | None = None


@dataclass(frozen=True)
class Reply(Payload):
    KIND = EventKind.REPLY
    LEGACY = {"from": "from_contact"}
    #: "assignment" for seed 002 step 2's "who has it and what happens next".
    notification: str | None = None
    to: Ids = ()
    #: Set on the customer's own answer (a contact id); None on a reply by the team.
    from_contact: str | None = None


@dataclass(frozen=True)
class StatusChange(Payload):
    KIND = EventKind.STATUS
    LEGACY = {"from": "old", "to": "new"}
    old: str | None = None
    new: str | None = None


@dataclass(frozen=True)
class Triage(Payload):
    KIND = EventKind.TRIAGE
    tier: int | None = None
    level: str | None = None
    old_tier: int | None = None
    old_level: str | None = None


@dataclass(frozen=True)
class Assignment(Payload):
    KIND = EventKind.ASSIGNMENT
    LEGACY = {"from": "old", "to": "new"}
    #: User ids as strings; None is "nobody".
    old: str | None = None
    new: str | None = None


@dataclass(frozen=True)
class FieldChange(Payload):
    KIND = EventKind.FIELD_CHANGE
    field: str | None = None
    old: Any = None
    new: Any = None


@dataclass(frozen=True)
class Redirect(Payload):
    KIND = EventKind.REDIRECT
    LEGACY = {"notified": "notify"}
    #: contacts.RequestRouting.code: "redirected" or "no_validated_contacts".
    code: str | None = None
    #: The organisation's validated contacts asked how to proceed (seed 003).
    notify: Ids = ()
    requester_id: str | None = None


@dataclass(frozen=True)
class Escalation(Payload):
    KIND = EventKind.ESCALATION
    consultant_id: str | None = None


@dataclass(frozen=True)
class Notification(Payload):
    KIND = EventKind.NOTIFICATION
    #: Contact ids; the single id "requester" means the ticket's requester.
    to: Ids = ()
    channel: str = "email"
    #: What it is about: "redirect", "resolved", ...
    about: str | None = None
    #: Set by the server's mail sender once an email went out (the outbox's delivery row, which
    #: desktops never hold): to whom, what, and which delivery. A notification recorded by a
    #: mutator has none of these: it says the team owes the message, not that it was sent.
    email: str | None = None
    name: str | None = None
    subject: str | None = None
    #: "sent": the mail server accepted it.
    delivery: str | None = None
    delivery_id: str | None = None


@dataclass(frozen=True)
class ExtraCharges(Payload):
    KIND = EventKind.EXTRA_CHARGES
    applies: bool = False
    #: A money amount as a decimal string, or None when not estimated yet.
    estimate: str | None = None
    hours: int | None = None
    to: Ids = ()


PAYLOADS: Mapping[EventKind, type[Payload]] = {
    cls.KIND: cls
    for cls in (
        Created,
        Note,
        Reply,
        StatusChange,
        Triage,
        Assignment,
        FieldChange,
        Redirect,
        Escalation,
        Notification,
        ExtraCharges,
    )
}


def payload_of(kind: EventKind, data: Mapping[str, Any] | None) -> Payload:
    """The typed payload of a stored event (unknown keys are ignored)."""
    return PAYLOADS[kind].from_data(data or {})


def as_id(value: uuid.UUID | str | None) -> str | None:
    """An id as payloads store it."""
    return None if value is None else str(value)
