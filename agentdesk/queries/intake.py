"""What the desktop's "New ticket" dialog offers: organisations with their plan's channels and
their contacts, and which plans include each channel (seed 003's rule, from the team's data)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..models import Contact, Organisation, Plan


@dataclass(frozen=True)
class ContactChoice:
    id: uuid.UUID
    name: str
    email: str
    validated: bool


@dataclass(frozen=True)
class OrganisationChoice:
    id: uuid.UUID
    name: str
    plan: str
    channels: frozenset[str]
    contacts: tuple[ContactChoice, ...]


@dataclass(frozen=True)
class IntakeChoices:
    organisations: tuple[OrganisationChoice, ...]
    #: channel -> names of the plans that include it, lowest plan first.
    plans_with: dict[str, tuple[str, ...]]


def intake_choices(session: Session) -> IntakeChoices:
    plans = {
        p.id: p
        for p in session.scalars(
            select(Plan).where(Plan.deleted.is_(False)).order_by(Plan.rank, Plan.name)
        )
    }
    contacts: dict[uuid.UUID, list[ContactChoice]] = {}
    for c in session.scalars(
        select(Contact).where(Contact.deleted.is_(False)).order_by(Contact.name, Contact.email)
    ):
        contacts.setdefault(c.organisation_id, []).append(
            ContactChoice(c.id, c.name, c.email, c.validated)
        )
    orgs = []
    for o in session.scalars(
        select(Organisation)
        .where(Organisation.deleted.is_(False))
        .order_by(Organisation.name, Organisation.id)
    ):
        plan = plans.get(o.plan_id)
        orgs.append(
            OrganisationChoice(
                o.id,
                o.name,
                plan.name if plan else "no plan",
                frozenset(plan.channels) if plan else frozenset(),
                tuple(contacts.get(o.id, ())),
            )
        )
    plans_with: dict[str, tuple[str, ...]] = {}
    for channel in ("portal", "email", "chat", "phone"):
        plans_with[channel] = tuple(p.name for p in plans.values() if channel in p.channels)
    return IntakeChoices(tuple(orgs), plans_with)


def channel_rule(
    org: OrganisationChoice, channel: str, plans_with: dict[str, tuple[str, ...]]
) -> tuple[bool, str]:
    """``(included, words)``: whether ``org``'s plan includes ``channel``, said plainly."""
    label = channel.capitalize()
    names = plans_with.get(channel, ())
    where = (
        f"{label} support is for {' and '.join(names)} plans"
        if len(names) <= 2
        else f"{label} support is for the {', '.join(names[:-1])} and {names[-1]} plans"
    )
    if not names:
        where = f"No plan includes {channel} support"
    if channel in org.channels:
        return True, f"{where}; {org.name} is on {org.plan}: included."
    return False, (
        f"{where}; {org.name} is on {org.plan}, which does not include it. The "
        f"ticket is kept and flagged for a coordinator."
    )
