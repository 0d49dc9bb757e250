"""Pre-scheduled 1-on-1 appointments for a day or a week: mine or the team's.

The cancellation consequence is the policy's
(:func:`agentdesk.policy.billing.cancellation_fee_minutes`), computed here so the desktop can
say it before anyone confirms a cancellation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from ..models import Appointment, AppointmentStatus, Organisation, Ticket, User
from ..policy.billing import cancellation_fee_minutes
from .ledger import QueryError, day_bounds, team_timezone

__all__ = ["AppointmentLine", "cancellation_consequence", "read_appointments"]

MAX_SPAN = timedelta(days=62)


@dataclass(frozen=True)
class AppointmentLine:
    id: uuid.UUID
    organisation_id: uuid.UUID
    organisation: str
    consultant_id: uuid.UUID | None
    consultant: str
    extra_engineer_id: uuid.UUID | None
    extra_engineer: str
    ticket_id: uuid.UUID | None
    ticket: str
    starts_at: datetime
    ends_at: datetime
    status: AppointmentStatus
    note: str

    @property
    def status_text(self) -> str:
        """What a person calls the status (the stored value ``held`` means delivered)."""
        return "delivered" if self.status is AppointmentStatus.HELD else self.status.value


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def read_appointments(
    session: Session,
    tenant_id: uuid.UUID,
    start: date,
    end: date,
    *,
    consultant_id: uuid.UUID | None = None,
) -> tuple[AppointmentLine, ...]:
    """Appointments starting on the team's local days ``start``..``end``; one consultant's
    when ``consultant_id`` is given (as consultant or as extra engineer), else everyone's.
    Cancelled ones are listed too."""
    if end < start:
        raise QueryError("to", f"the period ends ({end}) before it starts ({start})")
    if end - start >= MAX_SPAN:
        raise QueryError("to", f"list at most {MAX_SPAN.days} days of appointments at a time")
    opens, closes = day_bounds(start, end, team_timezone(session, tenant_id))
    person, extra = aliased(User), aliased(User)
    query = (
        select(
            Appointment, Organisation.name, person.display_name, extra.display_name, Ticket.subject
        )
        .join(Organisation, Organisation.id == Appointment.organisation_id)
        .outerjoin(person, person.id == Appointment.consultant_id)
        .outerjoin(extra, extra.id == Appointment.extra_engineer_id)
        .outerjoin(Ticket, Ticket.id == Appointment.ticket_id)
        .where(
            Appointment.deleted.is_(False),
            Appointment.starts_at >= opens,
            Appointment.starts_at < closes,
        )
        .order_by(Appointment.starts_at, Appointment.id)
    )
    if consultant_id is not None:
        query = query.where(
            or_(
                Appointment.consultant_id == consultant_id,
                Appointment.extra_engineer_id == consultant_id,
            )
        )
    return tuple(
        AppointmentLine(
            id=a.id,
            organisation_id=a.organisation_id,
            organisation=org,
            consultant_id=a.consultant_id,
            consultant=who or "",
            extra_engineer_id=a.extra_engineer_id,
            extra_engineer=extra_name or "",
            ticket_id=a.ticket_id,
            ticket=subject or "",
            starts_at=_aware(a.starts_at),
            ends_at=_aware(a.ends_at),
            status=a.status,
            note=a.note,
        )
        for a, org, who, extra_name, subject in session.execute(query)
    )


def cancellation_consequence(starts_at: datetime, now: datetime) -> tuple[int, str]:
    """Minutes a cancellation now would bill, and the sentence saying so (seed 001)."""
    fee = cancellation_fee_minutes(starts_at, now)
    if fee:
        return fee, (
            f"This is less than 24 hours before the start: the customer will be "
            f"billed {fee} minutes for the cancellation."
        )
    return 0, "This is at least 24 hours before the start: the cancellation is free."
