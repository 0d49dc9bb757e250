"""1-on-1 appointments: scheduling within a customer's prepaid hours, and cancellations with
the late-cancellation fee from :mod:`agentdesk.policy.billing`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, select

from ...models import (
    Appointment,
    AppointmentStatus,
    Organisation,
    TicketKind,
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
    CONFLICT,
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
    #: An engineer the customer asked for on top of the consultant (billed in addition).
    extra_engineer_id: UserRef | None = None
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
    if a.extra_engineer_id is not None:
        get_row(ctx, User, a.extra_engineer_id, "extra engineer", "extra_engineer_id")
        if a.extra_engineer_id == (a.consultant_id or ctx.actor_id):
            raise MutationRejected(
                INVALID, "the extra engineer is the consultant already", "extra_engineer_id"
            )
    if a.ticket_id is not None:
        ticket = get_ticket(ctx, a.ticket_id)
        if ticket.organisation_id != a.organisation_id:
            raise MutationRejected(
                INVALID, "the ticket belongs to another organisation", "ticket_id"
            )
    consultant = a.consultant_id or ctx.actor_id
    for person, field in ((consultant, "starts_at"), (a.extra_engineer_id, "extra_engineer_id")):
        if person is None:
            continue
        clash = ctx.session.scalar(
            select(Appointment.starts_at)
            .where(
                Appointment.tenant_id == ctx.tenant_id,
                or_(Appointment.consultant_id == person, Appointment.extra_engineer_id == person),
                Appointment.deleted.is_(False),
                Appointment.status == AppointmentStatus.SCHEDULED,
                Appointment.starts_at < a.ends_at,
                Appointment.ends_at > a.starts_at,
                Appointment.id != (a.replaces_id or a.appointment_id),
            )
            .limit(1)
        )
        if clash is not None:
            who = "consultant" if person == consultant else "extra engineer"
            raise MutationRejected(
                "conflict",
                f"the {who} already has an appointment overlapping this time "
                f"(starting {clash:%Y-%m-%d %H:%M} UTC)",
                field,
            )
    ctx.session.add(
        Appointment(
            id=a.appointment_id,
            tenant_id=ctx.tenant_id,
            organisation_id=a.organisation_id,
            consultant_id=consultant,
            extra_engineer_id=a.extra_engineer_id,
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
                recorded_by_id=ctx.actor_id,
            )
        )


class DeliverAppointment(Args):
    appointment_id: AppointmentRef


@mutator("deliver_appointment", DeliverAppointment, TIMEKEEPERS | TRIAGERS)
def deliver_appointment(ctx: MutationContext, a: DeliverAppointment) -> None:
    """Seed 001: a delivered appointment is billed as scheduled, exactly once.

    The appointment becomes ``held`` and gets one scheduled-block entry for its consultant (and
    one, marked extra engineer, for an extra engineer the customer asked for), in the same
    transaction; a second delivery or a delivery after a cancellation is refused. A timer the
    consultant also ran during the block is not billed again: the policy does not count a
    person's unscheduled time inside their own booked block (:func:`billing.bill_days`).
    """
    appt: Appointment = get_row(ctx, Appointment, a.appointment_id, "appointment")
    if appt.status is AppointmentStatus.HELD:
        raise MutationRejected(
            CONFLICT,
            "the appointment is already recorded as delivered; it is billed once",
            "appointment_id",
        )
    if appt.status is not AppointmentStatus.SCHEDULED:
        raise MutationRejected(
            INVALID,
            f"the appointment was {appt.status.value}; a cancelled appointment cannot be delivered",
            "appointment_id",
        )
    if appt.ends_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected(
            INVALID,
            f"the appointment has not ended yet (it ends {appt.ends_at:%Y-%m-%d %H:%M}"
            " UTC); record it as delivered afterwards",
            "appointment_id",
        )
    already = ctx.session.scalar(
        select(TimeEntry.id)
        .where(
            TimeEntry.tenant_id == ctx.tenant_id,
            TimeEntry.appointment_id == appt.id,
            TimeEntry.kind == TimeKind.SCHEDULED_BLOCK,
            TimeEntry.deleted.is_(False),
        )
        .limit(1)
    )
    if already is not None:
        raise MutationRejected(
            CONFLICT,
            "the appointment's block is already on the ledger; it is billed once",
            "appointment_id",
        )
    billable = True
    if appt.ticket_id is not None:
        # Seed 001: general support is not billable (as for the timer and manual time).
        billable = get_ticket(ctx, appt.ticket_id).kind is TicketKind.ONE_ON_ONE
    appt.status = AppointmentStatus.HELD
    people = [(appt.consultant_id or ctx.actor_id, False)]
    if appt.extra_engineer_id is not None:
        people.append((appt.extra_engineer_id, True))
    for person_id, extra in people:
        ctx.session.add(
            TimeEntry(
                id=ctx.derived_id(),
                tenant_id=ctx.tenant_id,
                organisation_id=appt.organisation_id,
                person_id=person_id,
                ticket_id=appt.ticket_id,
                appointment_id=appt.id,
                kind=TimeKind.SCHEDULED_BLOCK,
                started_at=appt.starts_at,
                ended_at=appt.ends_at,
                billable=billable,
                extra_engineer=extra,
                note=appt.note or "Delivered appointment",
                source="schedule",
                created_at=ctx.now,
                recorded_by_id=ctx.actor_id,
            )
        )
