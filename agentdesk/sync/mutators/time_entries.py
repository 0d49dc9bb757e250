"""Time mutations: the running timer and time entries. Entries are append-only: a correction
voids an entry and adds its replacement; one running timer per person.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from sqlalchemy import func, select

from ...models import (
    Organisation,
    Role,
    RunningTimer,
    TicketKind,
    TimeEntry,
    TimeKind,
    User,
)
from ..bounds import (
    MAX_SPAN,
    Body,
    Instant,
    _no_control,
)
from .core import (
    BILLING_ADMINS,
    FORBIDDEN,
    INVALID,
    MAX_CLOCK_SKEW,
    TIMEKEEPERS,
    TOO_LONG,
    Args,
    EntryRef,
    MutationContext,
    MutationRejected,
    NewEntryId,
    NewTimerId,
    OrganisationRef,
    TicketRef,
    TimerRef,
    UserRef,
    get_row,
    get_ticket,
    mutator,
)

log = logging.getLogger(__name__)


class StartTimer(Args):
    timer_id: NewTimerId
    organisation_id: OrganisationRef
    ticket_id: TicketRef | None = None
    #: The desktop's clock when the consultant pressed start: billing data, checked for skew.
    started_at: Instant
    billable: bool = True


@mutator("start_timer", StartTimer, TIMEKEEPERS | {Role.AGENT, Role.COORDINATOR})
def start_timer(ctx: MutationContext, a: StartTimer) -> None:
    """One running timer per person, enforced here and by a unique index on the server."""
    if a.started_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "the timer cannot start in the future", "started_at")
    running = ctx.session.scalar(
        select(RunningTimer).where(
            RunningTimer.person_id == ctx.actor_id, RunningTimer.deleted.is_(False)
        )
    )
    if running is not None:
        raise MutationRejected("conflict", "a timer is already running; stop it first", "timer_id")
    get_row(ctx, Organisation, a.organisation_id, "organisation")
    billable = _billable_on(ctx, a.organisation_id, a.ticket_id, a.billable)
    ctx.session.add(
        RunningTimer(
            id=a.timer_id,
            tenant_id=ctx.tenant_id,
            person_id=ctx.actor_id,
            organisation_id=a.organisation_id,
            ticket_id=a.ticket_id,
            started_at=a.started_at,
            billable=billable,
        )
    )


class StopTimer(Args):
    timer_id: TimerRef
    entry_id: NewEntryId
    ended_at: Instant
    note: Body = ""


@mutator("stop_timer", StopTimer, TIMEKEEPERS | {Role.AGENT, Role.COORDINATOR})
def stop_timer(ctx: MutationContext, a: StopTimer) -> None:
    """Stopping appends the time entry and tombstones the timer in one transaction: the time
    is recorded exactly once whatever retries happen (the entry id comes from the client)."""
    timer: RunningTimer = get_row(ctx, RunningTimer, a.timer_id, "timer")
    if timer.person_id != ctx.actor_id:
        raise MutationRejected(
            "forbidden", "only the person running a timer can stop it", "timer_id"
        )
    if a.ended_at < timer.started_at:
        raise MutationRejected("invalid", "the timer cannot stop before it started", "ended_at")
    if a.ended_at - timer.started_at > MAX_SPAN:
        raise MutationRejected(
            TOO_LONG,
            f"the timer ran longer than {span_text()}: stop it when the work ended (at most"
            f" {span_text()} after it started) and record the rest as manual entries, split"
            " into one per day",
            "ended_at",
        )
    if a.ended_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "the timer cannot stop in the future", "ended_at")
    timer.deleted = True
    _record_entry(
        ctx,
        a.entry_id,
        "timer",
        organisation_id=timer.organisation_id,
        person_id=timer.person_id,
        ticket_id=timer.ticket_id,
        kind=TimeKind.UNSCHEDULED,
        started_at=timer.started_at,
        ended_at=a.ended_at,
        billable=timer.billable,
        note=a.note,
    )


class AddTimeEntry(Args):
    entry_id: NewEntryId
    organisation_id: OrganisationRef
    person_id: UserRef | None = None
    ticket_id: TicketRef | None = None
    kind: Literal["unscheduled", "scheduled_block"] = "unscheduled"
    started_at: Instant
    ended_at: Instant
    billable: bool = True
    extra_engineer: bool = False
    note: Body = ""
    #: A correction: the entry this one replaces (it is voided, never edited).
    voids_id: EntryRef | None = None


@mutator("add_time_entry", AddTimeEntry)
def add_time_entry(ctx: MutationContext, a: AddTimeEntry) -> None:
    """Manual time, or a correction of earlier time (append-only: the old entry is voided by
    reference). Only consultants and leads record time for someone else."""
    person_id = a.person_id or ctx.actor_id
    if person_id != ctx.actor_id and ctx.actor_role not in TIMEKEEPERS:
        raise MutationRejected(
            "forbidden", "only consultants and leads record time for others", "person_id"
        )
    if a.ended_at < a.started_at:
        raise MutationRejected("invalid", "end is before start", "ended_at")
    if a.ended_at - a.started_at > MAX_SPAN:
        raise MutationRejected(
            TOO_LONG,
            f"one time entry covers at most {span_text()}; split longer work into one entry"
            " per day",
            "ended_at",
        )
    if a.ended_at > ctx.now + MAX_CLOCK_SKEW:
        raise MutationRejected("invalid", "time cannot be recorded in the future", "ended_at")
    get_row(ctx, Organisation, a.organisation_id, "organisation")
    get_row(ctx, User, person_id, "person")
    billable = _billable_on(ctx, a.organisation_id, a.ticket_id, a.billable)
    if a.voids_id is not None:
        voided: TimeEntry = get_row(ctx, TimeEntry, a.voids_id, "voided entry", "voids_id")
        _check_may_void(ctx, voided)
        if voided.organisation_id != a.organisation_id:
            raise MutationRejected(
                INVALID,
                "a correction must be for the same organisation as the entry it replaces",
                "voids_id",
            )
        if _is_voided(ctx, voided.id):
            raise MutationRejected("conflict", "that entry was already corrected", "voids_id")
    _record_entry(
        ctx,
        a.entry_id,
        "manual",
        organisation_id=a.organisation_id,
        person_id=person_id,
        ticket_id=a.ticket_id,
        kind=TimeKind(a.kind),
        started_at=a.started_at,
        ended_at=a.ended_at,
        billable=billable,
        extra_engineer=a.extra_engineer,
        note=a.note,
        voids_id=a.voids_id,
    )


class VoidTimeEntry(Args):
    entry_id: NewEntryId
    voids_id: EntryRef
    note: Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_no_control)]


@mutator("void_time_entry", VoidTimeEntry)
def void_time_entry(ctx: MutationContext, a: VoidTimeEntry) -> None:
    """Cancel an entry without replacing it: a zero-length voiding entry keeps the ledger
    append-only and says who removed the time and why."""
    voided: TimeEntry = get_row(ctx, TimeEntry, a.voids_id, "voided entry", "voids_id")
    _check_may_void(ctx, voided)
    if _is_voided(ctx, voided.id):
        raise MutationRejected("conflict", "that entry was already corrected", "voids_id")
    _record_entry(
        ctx,
        a.entry_id,
        "void",
        organisation_id=voided.organisation_id,
        person_id=voided.person_id,
        ticket_id=voided.ticket_id,
        kind=voided.kind,
        started_at=voided.started_at,
        ended_at=voided.started_at,
        billable=False,
        note=a.note,
        voids_id=voided.id,
    )


def _billable_on(
    ctx: MutationContext, organisation_id: uuid.UUID, ticket_id: uuid.UUID | None, billable: bool
) -> bool:
    """Whether time asked to be billable is, on this ticket: the ticket must be the
    organisation's, and general support time is never billable (seed 001), timer or manual."""
    if ticket_id is None:
        return billable
    ticket = get_ticket(ctx, ticket_id)
    if ticket.organisation_id != organisation_id:
        raise MutationRejected(INVALID, "the ticket belongs to another organisation", "ticket_id")
    return billable and ticket.kind is TicketKind.ONE_ON_ONE


def _record_entry(
    ctx: MutationContext,
    entry_id: uuid.UUID,
    source: str,
    *,
    organisation_id: uuid.UUID,
    person_id: uuid.UUID,
    ticket_id: uuid.UUID | None,
    kind: TimeKind,
    started_at: datetime,
    ended_at: datetime,
    billable: bool,
    note: str,
    voids_id: uuid.UUID | None = None,
    extra_engineer: bool = False,
) -> None:
    """The one place a time entry is written (timer, manual entry, correction, void): the
    ledger's rows always carry the same fields, stamped with the tenant and the mutation's
    clock, whichever path recorded the time."""
    ctx.session.add(
        TimeEntry(
            id=entry_id,
            tenant_id=ctx.tenant_id,
            organisation_id=organisation_id,
            person_id=person_id,
            ticket_id=ticket_id,
            kind=kind,
            started_at=started_at,
            ended_at=ended_at,
            billable=billable,
            extra_engineer=extra_engineer,
            note=note,
            voids_id=voids_id,
            source=source,
            created_at=ctx.now,
            recorded_by_id=ctx.actor_id,
        )
    )


def _check_may_void(ctx: MutationContext, entry: TimeEntry) -> None:
    """The one rule for voiding or correcting recorded time (``void_time_entry`` and
    ``add_time_entry``'s ``voids_id`` alike): the entry's owner, or a lead or admin."""
    if entry.person_id != ctx.actor_id and ctx.actor_role not in BILLING_ADMINS:
        raise MutationRejected(
            FORBIDDEN, "only the person who recorded the time, or a lead, can void it", "voids_id"
        )


def span_text() -> str:
    return f"{int(MAX_SPAN.total_seconds() // 3600)} hours"


def _is_voided(ctx: MutationContext, entry_id: uuid.UUID) -> bool:
    count = ctx.session.scalar(
        select(func.count())
        .select_from(TimeEntry)
        .where(TimeEntry.voids_id == entry_id, TimeEntry.deleted.is_(False))
    )
    return bool(count)
