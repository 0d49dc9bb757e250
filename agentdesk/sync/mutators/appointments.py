"""1-on-1 appointments: scheduling within a customer's prepaid hours, and cancellations with
the late-cancellation fee from :mod:`agentdesk.policy.billing`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select

from ...models import (
    Appointment,
    AppointmentStatus,
    Organisation,
    TimeEntry,
    TimeKind,
    User,
)
from ...policy.billing import cancellation_fee_minutes
from ..bounds import (
    MAX_SPAN,
    Body,
    Instant,
)
from .core import (
    INVALID,
    MAX_CLOCK_SKEW,
    TIMEKEEPERS,
    TOO_LONG,
    TRIAGERS,
    AppointmentRef,
    Args,
    MutationContext,
    MutationRejected,
    NewAppointmentId,
    OrganisationRef,
    TicketRef,
    UserRef,
    get_row,
    get_ticket,
    mutator,
)
from .time_entries import span_text

log = logging.getLogger(__name__)

class ScheduleAppointment(Args):
    appointment_id: NewAppointmentId
    organisation_id: OrganisationRef
    consultant_id: UserRef | None = None
    ticket_id: TicketRef | None = None
    starts_at: Instant
    ends_at: Instant
    note: Body = ""
    #: Rescheduling: the appointment this booking replaces (cancelled right after), which the
    #: new slot may overlap.
    replaces_id: AppointmentRef | None = None


@mutator("schedule_appointment", ScheduleAppointment, TIMEKEEPERS | TRIAGERS)
def schedule_appointment(ctx: MutationContext, a: ScheduleAppointment) -> None:
    if a.ends_at <= a.starts_at:
        raise MutationRejected("invalid", "the appointment must end after it starts", "ends_at")
    if a.ends_at - a.starts_at > MAX_SPAN:
        raise MutationRejected(
            TOO_LONG,
            f"an appointment lasts at most {span_text()}; book longer work as one appointment"
            " per day",
            "ends_at",
        )
    get_row(ctx, Organisation, a.organisation_id, "organisation")
    if a.consultant_id is not None:
        get_row(ctx, User, a.consultant_id, "consultant")
    if a.ticket_id is not None:
        ticket = get_ticket(ctx, a.ticket_id)
        if ticket.organisation_id != a.organisation_id:
            raise MutationRejected(
                INVALID, "the ticket belongs to another organisation", "ticket_id"
            )
    clash = ctx.session.scalar(
        select(Appointment.starts_at).where(
            Appointment.tenant_id == ctx.tenant_id,
            Appointment.consultant_id == (a.consultant_id or ctx.actor_id),
            Appointment.deleted.is_(False),
            Appointment.status == AppointmentStatus.SCHEDULED,
            Appointment.starts_at < a.ends_at,
            Appointment.ends_at > a.starts_at,
            Appointment.id != (a.replaces_id or a.appointment_id),
        ).limit(1)
    )
    if clash is not None:
        raise MutationRejected(
            "conflict", "the consultant already has an appointment overlapping this time "
            f"(starting {clash:%Y-%m-%d %H:%M} UTC)", "starts_at")
    ctx.session.add(
        Appointment(
            id=a.appointment_id,
            tenant_id=ctx.tenant_id,
            organisation_id=a.organisation_id,
            consultant_id=a.consultant_id or ctx.actor_id,
            ticket_id=a.ticket_id,
            starts_at=a.starts_at,
            ends_at=a.ends_at,
            note=a.note,
        )
    )


class CancelAppointment(Args):
    appointment_id: AppointmentRef
    #: When the customer cancelled (they may have phoned before the desktop recorded it).
    cancelled_at: Instant | None = None


@mutator("cancel_appointment", CancelAppointment, TIMEKEEPERS | TRIAGERS)
def cancel_appointment(ctx: MutationContext, a: CancelAppointment) -> None:
    """Seed 001: cancelled less than 24 hours before the start bills 30 minutes."""
    appt: Appointment = get_row(ctx, Appointment, a.appointment_id, "appointment")
    if appt.status is not AppointmentStatus.SCHEDULED:
        raise MutationRejected(
            "invalid", f"the appointment is already {appt.status.value}", "appointment_id"
        )
    cancelled_at = a.cancelled_at or ctx.now
    if cancelled_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "a cancellation cannot be in the future", "cancelled_at")
    appt.status = AppointmentStatus.CANCELLED
    appt.cancelled_at = cancelled_at
    fee = cancellation_fee_minutes(appt.starts_at, cancelled_at)
    if fee:
        ctx.session.add(
            TimeEntry(
                id=ctx.derived_id(),
                tenant_id=ctx.tenant_id,
                organisation_id=appt.organisation_id,
                person_id=appt.consultant_id or ctx.actor_id,
                ticket_id=appt.ticket_id,
                appointment_id=appt.id,
                kind=TimeKind.LATE_CANCELLATION,
                started_at=appt.starts_at,
                ended_at=appt.starts_at + timedelta(minutes=fee),
                billable=True,
                note="Cancelled less than 24 hours before the appointment",
                source="cancellation",
                created_at=ctx.now,
            )
        )
