"""Delivering an appointment through real desks and a real server (SQLite and PostgreSQL):
billed as booked, with the extra engineer, exactly once whoever else marks it."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from agentdesk.models import Appointment, AppointmentStatus, TimeEntry, TimeKind, utcnow
from agentdesk.sync.mutators import MutationRejected
from tests.plugins.live_team import Team


def _book(team: Team, desk: object, *, hours_ago: float, extra: bool = True) -> str:
    appointment = str(uuid.uuid4())
    start = (utcnow() - timedelta(hours=hours_ago)).replace(microsecond=0)
    desk.replica.mutate(  # type: ignore[attr-defined]
        "schedule_appointment",
        {
            "appointment_id": appointment,
            "organisation_id": str(team.world.orgs["globex"]),
            "extra_engineer_id": str(team.world.users["consultant2"]) if extra else None,
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(hours=1)).isoformat(),
        },
    )
    return appointment


def test_two_desks_deliver_the_same_appointment_and_it_is_billed_once(team: Team) -> None:
    consultant, lead = team.desk("consultant"), team.desk("lead")
    consultant.sync()
    appointment = _book(team, consultant, hours_ago=3)
    consultant.sync()
    lead.sync()
    # Both mark it delivered before either hears of the other (offline, say).
    consultant.replica.mutate("deliver_appointment", {"appointment_id": appointment})
    lead.replica.mutate("deliver_appointment", {"appointment_id": appointment})
    lead.sync()
    consultant.sync()
    (refusal,) = consultant.replica.rejections()
    assert (refusal.code, refusal.field) == ("conflict", "appointment_id")
    with team.db() as s:
        rows = s.execute(
            select(TimeEntry.person_id, TimeEntry.extra_engineer, TimeEntry.recorded_by_id).where(
                TimeEntry.kind == TimeKind.SCHEDULED_BLOCK
            )
        ).all()
        status = s.scalar(select(Appointment.status))
    assert sorted(rows, key=lambda r: r.extra_engineer) == [
        (consultant.user_id, False, lead.user_id),
        (team.world.users["consultant2"], True, lead.user_id),
    ]
    assert status is AppointmentStatus.HELD
    # The desk that lost converges on the server's rows (no second set left behind).
    with consultant.replica.session() as s:
        assert len(s.scalars(select(TimeEntry)).all()) == 2


def test_delivery_is_refused_before_the_end_after_a_cancellation_and_for_agents(team: Team) -> None:
    consultant = team.desk("consultant")
    consultant.sync()
    ongoing = _book(team, consultant, hours_ago=0.5, extra=False)
    cancelled = _book(team, consultant, hours_ago=5, extra=False)
    consultant.replica.mutate("cancel_appointment", {"appointment_id": cancelled})
    consultant.sync()
    for appointment, message in (
        (ongoing, "has not ended yet"),
        (cancelled, "a cancelled appointment cannot be delivered"),
    ):
        with pytest.raises(MutationRejected, match=message):
            consultant.replica.mutate("deliver_appointment", {"appointment_id": appointment})
    agent = team.desk("agent")
    agent.sync()
    with pytest.raises(MutationRejected) as refused:
        agent.replica.mutate("deliver_appointment", {"appointment_id": ongoing})
    assert refused.value.code == "forbidden"
    with team.db() as s:
        # Only the cancellation's fee (it came after the start); no block was billed.
        assert s.scalars(select(TimeEntry.kind)).all() == [TimeKind.LATE_CANCELLATION]
