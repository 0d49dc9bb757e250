"""The consultant read side over real databases, ledgers written through the real mutators.

Every figure is checked against :mod:`agentdesk.policy.billing` run directly on the same facts,
or against seed 001's worked examples.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agentdesk.policy import billing
from agentdesk.queries.contracts import expiring_hours, read_contract
from agentdesk.queries.ledger import QueryError, load_ledger
from agentdesk.queries.statement import read_statement
from agentdesk.queries.timesheet import BILLED_HEADER, Flag, read_timesheet
from tests.queries.conftest import Ledger

NY = ZoneInfo("America/New_York")


def at(day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}").replace(tzinfo=NY)


def test_five_plus_thirty_minutes_bill_sixty(ledger: Ledger) -> None:
    ledger.buy(at("2026-10-01", "09:00"), 10)
    ledger.work(at("2026-10-05", "09:00"), at("2026-10-05", "09:05"))
    ledger.work(at("2026-10-05", "14:00"), at("2026-10-05", "14:30"))
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 10, 1), date(2026, 10, 31))
    (day,) = view.days
    assert (day.day, day.raw_minutes, day.work_billed, day.billed) == (
        date(2026, 10, 5),
        35,
        60,
        60,
    )
    assert view.opening == 0
    assert view.purchased == 600
    assert view.closing == 540
    assert view.opening + view.purchased - view.drawn - view.forfeited == view.closing
    assert "9 h closing" in view.identity_text
    assert [e.minutes for e in view.entries] == [5, 30]
    assert view.expiry_lines == ("9 h expire on 2026-12-30",)


def test_statement_equals_the_policy_over_the_same_ledger(ledger: Ledger) -> None:
    ledger.buy(at("2026-05-01", "10:00"), 3)
    ledger.buy(at("2026-07-20", "10:00"), 5)
    ledger.buy(at("2026-09-15", "10:00"), 2)
    for day in range(1, 29, 3):
        ledger.work(at(f"2026-08-{day:02d}", "09:00"), at(f"2026-08-{day:02d}", "09:50"))
    ledger.work(
        at("2026-08-10", "22:00"),
        at("2026-08-11", "01:10"),
        who="consultant2",
        extra_engineer=True,
        person_id=None,
    )
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 7, 25), date(2026, 9, 30))
        led = load_ledger(
            s, ledger.org(), datetime(2026, 1, 1, tzinfo=NY), datetime(2026, 11, 1, tzinfo=NY)
        )
    expected = billing.statement(
        led.blocks,
        billing.bill_days(led.items, tz=view.tz),
        start=date(2026, 7, 25),
        end=date(2026, 9, 30),
        tz=view.tz,
    )
    assert view.statement == expected
    assert view.billed == sum(d.billed for d in view.days) == expected.billed_minutes
    assert view.opening + view.purchased - view.drawn - view.forfeited == view.closing
    assert view.forfeited == expected.forfeited_minutes > 0  # the May block expired unused
    extra = [d for d in view.days if d.extra_engineer_minutes]
    assert [(d.day, d.extra_engineer_minutes) for d in extra] == [
        (date(2026, 8, 10), 120),
        (date(2026, 8, 11), 70),
    ]


def test_unused_hours_are_forfeited_at_ninety_days(ledger: Ledger) -> None:
    ledger.buy(at("2026-06-01", "09:00"), 2)
    ledger.work(at("2026-06-02", "09:00"), at("2026-06-02", "09:20"))
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 8, 1), date(2026, 9, 30))
        contract = read_contract(s, ledger.org(), at("2026-10-01", "12:00"), show_prices=True)
    (gone,) = view.statement.expiries
    assert gone.forfeited_minutes == 90
    assert (view.opening, view.forfeited, view.closing) == (90, 90, 0)
    (block,) = contract.blocks
    assert (block.drawn, block.forfeited, block.remaining, block.expired) == (30, 90, 0, True)


def test_late_cancellation_bills_thirty_minutes_and_early_nothing(ledger: Ledger) -> None:
    ledger.buy(at("2026-10-01", "09:00"), 5)
    late, early = str(uuid.uuid4()), str(uuid.uuid4())
    for appt, day in ((late, "2026-10-07"), (early, "2026-10-08")):
        ledger.at(at("2026-10-02", "09:00")).world.run(
            "consultant",
            "schedule_appointment",
            appointment_id=appt,
            organisation_id=str(ledger.org()),
            starts_at=at(day, "10:00").isoformat(),
            ends_at=at(day, "11:00").isoformat(),
        )
    ledger.at(at("2026-10-06", "11:00")).world.run(
        "consultant", "cancel_appointment", appointment_id=late
    )  # 23 h before
    ledger.at(at("2026-10-07", "09:00")).world.run(
        "consultant", "cancel_appointment", appointment_id=early
    )  # 25 h before
    ledger.at(at("2026-11-20", "09:00"))
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 10, 1), date(2026, 10, 31))
    assert [(d.day, d.late_cancellation, d.billed) for d in view.days] == [
        (date(2026, 10, 7), 30, 30)
    ]
    assert [e.kind for e in view.entries] == ["late cancellation"]


def test_general_support_is_not_billed_until_escalated(ledger: Ledger) -> None:
    ticket = ledger.ticket()
    timer = str(uuid.uuid4())
    w = ledger.at(at("2026-10-05", "09:00")).world
    w.run(
        "consultant",
        "start_timer",
        timer_id=timer,
        organisation_id=str(ledger.org()),
        ticket_id=str(ticket),
        started_at=at("2026-10-05", "09:00").isoformat(),
    )
    ledger.at(at("2026-10-05", "09:40")).world.run(
        "consultant",
        "stop_timer",
        timer_id=timer,
        entry_id=str(uuid.uuid4()),
        ended_at=at("2026-10-05", "09:40").isoformat(),
    )
    w.run("coordinator", "escalate_ticket", ticket_id=str(ticket))
    timer2 = str(uuid.uuid4())
    w.run(
        "consultant",
        "start_timer",
        timer_id=timer2,
        organisation_id=str(ledger.org()),
        ticket_id=str(ticket),
        started_at=at("2026-10-05", "09:40").isoformat(),
    )
    ledger.at(at("2026-10-05", "09:50")).world.run(
        "consultant",
        "stop_timer",
        timer_id=timer2,
        entry_id=str(uuid.uuid4()),
        ended_at=at("2026-10-05", "09:50").isoformat(),
        note="Escalated fix",
    )
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 10, 5), date(2026, 10, 5))
        sheet = read_timesheet(
            s, ledger.world.tenant, ledger.user("consultant"), date(2026, 10, 5), date(2026, 10, 5)
        )
    assert [(d.raw_minutes, d.billed) for d in view.days] == [(10, 30)]
    assert [(e.minutes, e.billable) for e in view.entries] == [(40, False), (10, True)]
    assert [e.flags for e in sheet.entries] == [(Flag.GENERAL,), ()]


def test_timesheet_rounds_once_per_customer_per_day_and_flags(ledger: Ledger) -> None:
    ledger.work(at("2026-10-05", "09:00"), at("2026-10-05", "09:05"))
    ledger.work(at("2026-10-05", "09:03"), at("2026-10-05", "09:33"), note="")
    ledger.work(at("2026-10-05", "10:00"), at("2026-10-05", "10:10"), org="umbrella")
    ledger.work(at("2026-10-06", "08:00"), at("2026-10-06", "17:00"))
    ledger.work(at("2026-10-06", "09:00"), at("2026-10-06", "09:10"), who="consultant2")
    with ledger.session() as s:
        sheet = read_timesheet(
            s, ledger.world.tenant, ledger.user("consultant"), date(2026, 10, 5), date(2026, 10, 11)
        )
    assert [(r.day.day, r.organisation, r.raw_seconds // 60, r.billed) for r in sheet.rows] == [
        (5, "Globex", 33, 60),
        (5, "Umbrella", 10, 30),
        (6, "Globex", 540, 540),
    ]
    assert sheet.billed == sum(r.billed for r in sheet.rows) == 630
    flags = {(e.start.hour, e.start.minute): e.flags for e in sheet.entries}
    assert flags[9, 0] == (Flag.OVERLAP,)
    assert flags[9, 3] == (Flag.OVERLAP, Flag.NO_NOTE)
    assert flags[8, 0] == (Flag.LONG,)
    assert "once per customer per day" in BILLED_HEADER
    # The customer's bill pools the team (consultant2's 10 minutes on the 6th join the pool);
    # the sheet rounds only my time, and its header says the two differ and why.
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 10, 5), date(2026, 10, 6))
    assert [(d.day.day, d.raw_minutes, d.billed) for d in view.days] == [(5, 33, 60), (6, 550, 570)]
    assert "statement pools the team's time" in BILLED_HEADER


def test_corrections_void_old_entries(ledger: Ledger) -> None:
    old = ledger.work(at("2026-10-05", "09:00"), at("2026-10-05", "11:00"))
    ledger.work(
        at("2026-10-05", "09:00"),
        at("2026-10-05", "09:45"),
        voids_id=old,
        note="Typed 11:00 instead of 09:45",
    )
    with ledger.session() as s:
        sheet = read_timesheet(
            s, ledger.world.tenant, ledger.user("consultant"), date(2026, 10, 5), date(2026, 10, 5)
        )
    assert [(e.minutes, e.note) for e in sheet.entries] == [(45, "Typed 11:00 instead of 09:45")]
    assert sheet.billed == 60


def test_corrections_say_who_made_them_and_why(ledger: Ledger) -> None:
    """A lead corrects one of the consultant's entries and voids another: the consultant's
    timesheet and the customer's statement both keep the history, with the lead's name."""
    ledger.buy(at("2026-10-01", "08:00"), 5)
    typo = ledger.work(at("2026-10-05", "09:00"), at("2026-10-05", "11:00"))
    twice = ledger.work(at("2026-10-05", "13:00"), at("2026-10-05", "13:30"))
    ledger.correct(
        typo,
        at("2026-10-05", "09:00"),
        at("2026-10-05", "09:45"),
        on=at("2026-10-06", "10:00"),
        note="Typed 11:00 for 09:45",
    )
    ledger.world.run(
        "lead", "void_time_entry", entry_id=str(uuid.uuid4()), voids_id=twice, note="Booked twice"
    )
    with ledger.session() as s:
        sheet = read_timesheet(
            s, ledger.world.tenant, ledger.user("consultant"), date(2026, 10, 5), date(2026, 10, 5)
        )
        view = read_statement(s, ledger.org(), date(2026, 10, 1), date(2026, 10, 31))
    expected = [(120, 45, "Lead", "Typed 11:00 for 09:45"), (30, None, "Lead", "Booked twice")]
    for corrections in (sheet.corrections, view.corrections):
        assert [(c.minutes, c.replacement_minutes, c.by, c.why) for c in corrections] == expected
        assert [c.person for c in corrections] == ["Consultant", "Consultant"]
    assert view.corrections[0].text == (
        "120 min corrected to 45 min by Lead on 2026-10-06: Typed 11:00 for 09:45"
    )
    assert view.corrections[1].text.startswith("30 min voided by Lead on ")
    assert view.billed == 60  # the history is shown, never billed


def test_contract_draws_oldest_first_hides_prices_and_forecasts(ledger: Ledger) -> None:
    first = ledger.buy(at("2026-09-01", "09:00"), 2, price="300.00")
    second = ledger.buy(at("2026-09-20", "09:00"), 5, price="700.00")
    ledger.work(at("2026-10-05", "09:00"), at("2026-10-05", "11:30"))
    ledger.buy(at("2026-10-01", "09:00"), 1, org="umbrella")
    with ledger.session() as s:
        seen = read_contract(s, ledger.org(), at("2026-10-20", "12:00"), show_prices=True)
        hidden = read_contract(s, ledger.org(), at("2026-10-20", "12:00"), show_prices=False)
        soon = expiring_hours(s, at("2026-11-20", "12:00"), timedelta(days=14))
        month = expiring_hours(s, at("2026-11-20", "12:00"), timedelta(days=30))
    by_id = {b.block_id: b for b in seen.blocks}
    assert (by_id[first].drawn, by_id[first].remaining) == (120, 0)
    assert (by_id[second].drawn, by_id[second].remaining) == (30, 270)
    assert str(by_id[second].price) == "700.00"
    assert all(b.price is None for b in hidden.blocks)
    assert seen.balance == 270
    assert seen.forecast == "4.5 h expire on 2026-12-19"
    assert [(e.organisation, e.remaining) for e in soon] == []
    assert [(e.organisation, e.remaining) for e in month] == [("Globex", 270)]
    assert [
        e.organisation for e in expiring_hours(s, at("2026-12-25", "12:00"), timedelta(days=14))
    ] == ["Umbrella"]


@pytest.mark.parametrize(
    ("start", "end", "words"),
    [
        (date(2026, 10, 5), date(2026, 10, 1), "ends (2026-10-01) before it starts"),
        (date(2016, 10, 1), date(2026, 9, 30), "longer than"),
    ],
)
def test_bad_periods_are_refused_with_a_clear_message(
    ledger: Ledger, start: date, end: date, words: str
) -> None:
    with ledger.session() as s, pytest.raises(QueryError, match=re.escape(words)):
        read_statement(s, ledger.org(), start, end)
    with ledger.session() as s, pytest.raises(QueryError, match=re.escape(words)):
        read_timesheet(s, ledger.world.tenant, ledger.user("consultant"), start, end)


def _appointments(ledger: Ledger) -> list[tuple[datetime, str]]:
    from sqlalchemy import select

    from agentdesk.models import Appointment

    with ledger.session() as s:
        return [
            (a.starts_at, a.status.value)
            for a in s.scalars(select(Appointment).order_by(Appointment.starts_at))
        ]


def test_overlapping_appointments_for_one_consultant_are_refused(ledger: Ledger) -> None:
    from agentdesk.sync.mutators import MutationRejected

    w = ledger.at(at("2026-10-01", "09:00")).world
    first = str(uuid.uuid4())
    w.run(
        "consultant",
        "schedule_appointment",
        appointment_id=first,
        organisation_id=str(ledger.org()),
        starts_at=at("2026-10-07", "10:00").isoformat(),
        ends_at=at("2026-10-07", "11:00").isoformat(),
    )
    before = _appointments(ledger)
    with pytest.raises(MutationRejected, match="already has an appointment overlapping"):
        w.run(
            "consultant",
            "schedule_appointment",
            appointment_id=str(uuid.uuid4()),
            organisation_id=str(ledger.org("umbrella")),
            starts_at=at("2026-10-07", "10:30").isoformat(),
            ends_at=at("2026-10-07", "11:30").isoformat(),
        )
    with pytest.raises(MutationRejected, match="must end after it starts"):
        w.run(
            "consultant",
            "schedule_appointment",
            appointment_id=str(uuid.uuid4()),
            organisation_id=str(ledger.org()),
            starts_at=at("2026-10-08", "10:30").isoformat(),
            ends_at=at("2026-10-08", "09:30").isoformat(),
        )
    assert _appointments(ledger) == before
    # Another consultant may take the slot; a reschedule may overlap the slot it replaces.
    w.run(
        "consultant2",
        "schedule_appointment",
        appointment_id=str(uuid.uuid4()),
        organisation_id=str(ledger.org()),
        starts_at=at("2026-10-07", "10:30").isoformat(),
        ends_at=at("2026-10-07", "11:30").isoformat(),
    )
    w.run(
        "consultant",
        "schedule_appointment",
        appointment_id=str(uuid.uuid4()),
        organisation_id=str(ledger.org()),
        starts_at=at("2026-10-07", "10:30").isoformat(),
        ends_at=at("2026-10-07", "11:30").isoformat(),
        replaces_id=first,
    )
    assert len(_appointments(ledger)) == 3


def test_manual_time_on_general_support_is_not_billable(ledger: Ledger) -> None:
    ticket = ledger.ticket()
    ledger.work(at("2026-10-05", "09:00"), at("2026-10-05", "09:30"), ticket_id=str(ticket))
    with ledger.session() as s:
        view = read_statement(s, ledger.org(), date(2026, 10, 5), date(2026, 10, 5))
    assert view.days == ()
    assert [(e.minutes, e.billable) for e in view.entries] == [(30, False)]


@pytest.mark.parametrize("who", ["agent", "coordinator", "consultant"])
def test_only_leads_and_admins_record_purchases(ledger: Ledger, who: str) -> None:
    from agentdesk.sync.mutators import MutationRejected

    with pytest.raises(MutationRejected) as refused:
        ledger.buy(at("2026-10-01", "09:00"), 10, who=who)
    assert refused.value.code == "forbidden"
    with ledger.session() as s:
        assert (
            read_contract(s, ledger.org(), at("2026-10-02", "09:00"), show_prices=True).blocks == ()
        )
