"""The consultant workbench on real desks (replica + HTTP + sync) against a real server.

Reads run synchronously here (``background.SYNCHRONOUS``); dialogs are filled in like a user
would and saved with their own buttons' slots.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from PySide6.QtCore import QDate, QDateTime, Qt
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot
from sqlalchemy import func, select

from agentdesk.models import Appointment, AppointmentStatus, HourBlock, TimeEntry, TimeKind
from agentdesk.models.db import make_session_factory
from agentdesk.queries.statement import read_statement
from agentdesk.queries.timesheet import BILLED_HEADER
from agentdesk.ui import background
from agentdesk.ui.consultant.models import Column, RowsModel
from agentdesk.ui.consultant.workbench import ConsultantWorkbench, _pydate
from tests.plugins.live_team import Team
from tests.plugins.panels import TEAM_TZ, PanelDesk, quiet_past

NY = ZoneInfo(TEAM_TZ)


@pytest.fixture(autouse=True)
def _synchronous(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "SYNCHRONOUS", True)


def _bench(
    qtbot: QtBot, desk: Any, clock: Callable[[], datetime] | None = None
) -> ConsultantWorkbench:
    bench = (
        ConsultantWorkbench(desk.replica, clock=clock)
        if clock
        else ConsultantWorkbench(desk.replica)
    )
    qtbot.addWidget(bench)
    bench.resize(1200, 700)
    bench.show()
    return bench


def _set_dt(edit: object, value: datetime) -> None:
    edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(value.timestamp())))  # type: ignore[attr-defined]


def _qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


def test_rows_model_passes_the_model_tester(qtmodeltester: object) -> None:
    model: RowsModel[tuple[int, str]] = RowsModel(
        [Column("N", lambda r: str(r[0]), right=True), Column("Name", lambda r: r[1])],
        key=lambda r: r[0],
    )
    model.set_rows([(1, "a"), (2, "b")])
    qtmodeltester.check(model)  # type: ignore[attr-defined]
    changed: list[int] = []
    model.dataChanged.connect(lambda tl, _br: changed.append(tl.row()))
    model.set_rows([(1, "a"), (2, "c")])
    assert changed == [1]
    model.set_rows([(3, "z")])
    assert model.cell(0, 1) == "z"
    qtmodeltester.check(model)  # type: ignore[attr-defined]


def test_lead_records_a_purchase_and_agents_see_no_prices(
    qtbot: QtBot, panel_desk: PanelDesk, panel_team: Team
) -> None:
    lead = panel_desk("lead")
    bench = _bench(qtbot, lead)
    page = bench.contracts
    page.refresh()
    page.select_org(panel_team.world.orgs["globex"])
    assert page.purchase_button.isEnabled()
    page.open_purchase()
    dialog = page.purchase_dialog
    assert dialog is not None
    dialog.hours.setValue(4.5)
    dialog.price.setText("-3")
    dialog.save()
    assert "must be positive" in dialog.error.text()
    dialog.price.setText("675.00")
    dialog.save()
    assert not dialog.isVisible()
    assert page.contract is not None
    assert page.contract.balance == 270
    assert page.forecast.text().startswith("4.5 h expire on ")
    headers = [
        page.blocks.headerData(i, Qt.Orientation.Horizontal)
        for i in range(page.blocks.columnCount())
    ]
    assert "Price" in headers
    assert page.blocks.cell(0, headers.index("Price")) == "675.00"
    lead.sync()
    with panel_team.engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(HourBlock)) == 1

    agent = panel_desk("agent")
    agent_bench = _bench(qtbot, agent)
    agent_page = agent_bench.contracts
    agent_page.refresh()
    agent_page.select_org(panel_team.world.orgs["globex"])
    assert not agent_page.purchase_button.isEnabled()
    assert agent_page.purchase_button.toolTip() == "Only team leads record purchases"
    with agent.replica.session() as s:
        assert s.scalars(select(HourBlock.price)).all() == [None]  # never reached the replica
    assert agent_page.contract is not None
    assert agent_page.contract.balance == 270
    agent_headers = [
        agent_page.blocks.headerData(i, Qt.Orientation.Horizontal)
        for i in range(agent_page.blocks.columnCount())
    ]
    assert "Price" not in agent_headers
    agent_page.open_purchase()
    assert agent_page.message.text() == "Only team leads record purchases"


def test_timesheet_rounds_once_per_customer_per_day(
    qtbot: QtBot, panel_desk: PanelDesk, panel_team: Team
) -> None:
    desk = panel_desk("consultant")
    start = quiet_past(timedelta(minutes=50))
    org = str(panel_team.world.orgs["globex"])
    for offset, minutes, note in ((0, 5, "Checked the DNS"), (10, 30, "")):
        desk.replica.mutate(
            "add_time_entry",
            {
                "entry_id": str(uuid.uuid4()),
                "organisation_id": org,
                "started_at": (start + timedelta(minutes=offset)).isoformat(),
                "ended_at": (start + timedelta(minutes=offset + minutes)).isoformat(),
                "note": note,
            },
        )
    bench = _bench(qtbot, desk)
    bench.setCurrentWidget(bench.timesheet)
    page = bench.timesheet
    page.day_edit.setDate(_qdate(start.astimezone(NY).date()))
    page.refresh()
    assert page.rows.headerData(5, Qt.Orientation.Horizontal) == BILLED_HEADER
    assert [(r.organisation, r.raw_seconds // 60, r.billed) for r in page.rows.rows()] == [
        ("Globex", 35, 60)
    ]
    assert page.total.text().startswith("Total billed: 60 min (1 h), the sum of the rows above")
    flags = [e.flags for e in page.entries.rows()]
    assert flags == [(), ("1-on-1 time without a note",)]

    # A correction voids the old entry, with why; the sheet follows.
    page.entries_view.selectRow(1)
    page.open_correction()
    dialog = page.correction_dialog
    assert dialog is not None
    _set_dt(dialog.end, start + timedelta(minutes=20))
    dialog.save()
    assert dialog.error.text().startswith("Say why")
    dialog.why.setText("Stopped the timer late")
    dialog.save()
    assert [(e.minutes, e.note) for e in page.entries.rows()] == [
        (5, "Checked the DNS"),
        (10, "Stopped the timer late"),
    ]
    assert page.sheet is not None
    assert page.sheet.billed == 30
    desk.sync()
    with panel_team.engine.connect() as c:
        assert (
            c.scalar(
                select(func.count()).select_from(TimeEntry).where(TimeEntry.voids_id.is_not(None))
            )
            == 1
        )


def _schedule(
    page: object, org_index: int, start: datetime, hours: float = 1, extra: str = ""
) -> str:
    page.open_schedule(None)  # type: ignore[attr-defined]
    dialog = page.schedule_dialog  # type: ignore[attr-defined]
    dialog.org.setCurrentIndex(org_index)
    _set_dt(dialog.start, start)
    _set_dt(dialog.end, start + timedelta(hours=hours))
    if extra:
        dialog.extra.setCurrentIndex(dialog.extra.findText(extra))
    dialog.save()
    return str(dialog.error.text()) if dialog.isVisible() else ""


def test_appointments_schedule_cancel_and_reschedule(
    qtbot: QtBot, panel_desk: PanelDesk, panel_team: Team
) -> None:
    desk = panel_desk("consultant")
    bench = _bench(qtbot, desk)
    bench.setCurrentWidget(bench.appointments)
    page = bench.appointments
    page.whose_combo.setCurrentIndex(1)  # the team's
    page.refresh()
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    soon, later = now + timedelta(hours=23), now + timedelta(hours=25, minutes=5)
    assert _schedule(page, 0, soon) == ""
    page.day_edit.setDate(_qdate(soon.astimezone(NY).date()))
    page.span_combo.setCurrentIndex(0)
    page.refresh()
    assert len(page.model.rows()) == 1

    # Bad input: end before start, and an overlapping slot for the same consultant.
    assert _schedule(page, 0, soon, hours=-1) == "The appointment must end after it starts"
    assert "already has an appointment overlapping" in _schedule(
        page, 1, soon + timedelta(minutes=30)
    )
    page.refresh()
    assert len(page.model.rows()) == 1

    # Cancelling 23 hours ahead says it bills 30 minutes, before anything happens.
    page.view.selectRow(0)
    page.ask_cancel()
    prompt = page.cancel_prompt
    assert prompt is not None
    assert "billed 30 minutes" in prompt.text()
    prompt.button(QMessageBox.StandardButton.No).click()
    with desk.replica.session() as s:
        assert s.scalar(select(func.count()).select_from(TimeEntry)) == 0
    page.ask_cancel()
    page.cancel_prompt.button(QMessageBox.StandardButton.Yes).click()  # type: ignore[union-attr]
    with desk.replica.session() as s:
        (fee,) = s.scalars(select(TimeEntry)).all()
    assert fee.kind.value == "late_cancellation"

    # 25 hours ahead: free. Reschedule books the new slot before cancelling the old one.
    assert _schedule(page, 0, later, extra="Consultant2") == ""
    page.day_edit.setDate(_qdate(later.astimezone(NY).date()))
    page.refresh()
    mine = [
        a
        for a in page.model.rows()
        if a.consultant_id == desk.user_id and a.status.value == "scheduled"
    ]
    assert len(mine) == 1
    # The extra engineer is on the booking, not a second appointment recognised by its note.
    assert all(a.consultant_id == desk.user_id for a in page.model.rows())
    assert mine[0].extra_engineer == "Consultant2"
    assert page.model.headerData(4, Qt.Orientation.Horizontal) == "Extra engineer"
    page.view.selectRow(page.model.rows().index(mine[0]))
    page.ask_cancel()
    assert "the cancellation is free" in page.cancel_prompt.text()  # type: ignore[union-attr]
    page.cancel_prompt.button(QMessageBox.StandardButton.No).click()  # type: ignore[union-attr]
    page.open_reschedule()
    dialog = page.schedule_dialog
    assert dialog is not None
    _set_dt(dialog.start, later + timedelta(minutes=30))
    _set_dt(dialog.end, later + timedelta(minutes=90))
    dialog.save()
    assert not dialog.isVisible()
    desk.sync()
    with panel_team.engine.connect() as c:
        rows = c.execute(
            select(Appointment.starts_at, Appointment.status)
            .where(Appointment.consultant_id == desk.user_id)
            .order_by(Appointment.starts_at)
        ).all()
    assert [s.value for _, s in rows] == ["cancelled", "cancelled", "scheduled"]
    with panel_team.engine.connect() as c:
        moved = c.scalar(
            select(Appointment.extra_engineer_id).where(
                Appointment.status == AppointmentStatus.SCHEDULED
            )
        )
    assert moved == panel_team.world.users["consultant2"]  # rescheduling keeps the engineer
    with panel_team.engine.connect() as c:
        assert c.scalar(select(func.count()).select_from(TimeEntry)) == 1  # only the late one


def test_a_delivered_appointment_is_billed_as_scheduled_exactly_once(
    qtbot: QtBot, panel_desk: PanelDesk, panel_team: Team
) -> None:
    """Seed 001: billed as booked, with the extra engineer in addition; the consultant's own
    timer inside the block is not billed again, and a second delivery (here by a lead on
    another desk, before either synced) is refused by the server and changes nothing."""
    consultant, lead = panel_desk("consultant"), panel_desk("lead")
    org = panel_team.world.orgs["globex"]
    start = quiet_past(timedelta(minutes=70))
    appointment = str(uuid.uuid4())
    consultant.replica.mutate(
        "schedule_appointment",
        {
            "appointment_id": appointment,
            "organisation_id": str(org),
            "extra_engineer_id": str(panel_team.world.users["consultant2"]),
            "starts_at": start.isoformat(),
            "ends_at": (start + timedelta(minutes=60)).isoformat(),
            "note": "Mail migration",
        },
    )
    consultant.replica.mutate(
        "add_time_entry",
        {  # a timer run during the block
            "entry_id": str(uuid.uuid4()),
            "organisation_id": str(org),
            "note": "timer",
            "started_at": (start + timedelta(minutes=10)).isoformat(),
            "ended_at": (start + timedelta(minutes=50)).isoformat(),
        },
    )
    consultant.sync()
    lead.sync()

    bench = _bench(qtbot, consultant)
    bench.setCurrentWidget(bench.appointments)
    page = bench.appointments
    page.day_edit.setDate(_qdate(start.astimezone(NY).date()))
    page.span_combo.setCurrentIndex(0)
    page.refresh()
    (line,) = page.model.rows()
    assert line.extra_engineer == "Consultant2"
    lead.replica.mutate("deliver_appointment", {"appointment_id": appointment})
    page.view.selectRow(0)
    page.delivered_button.click()
    assert page.model.rows()[0].status_text == "delivered"
    page.view.selectRow(0)
    page.delivered_button.click()  # twice: refused at the desk, nothing recorded
    assert page.message.text() == "Select a scheduled appointment that took place"

    consultant.sync()
    lead.sync()
    (refusal,) = lead.replica.rejections()
    assert (refusal.name, refusal.code) == ("deliver_appointment", "conflict")
    assert "already recorded as delivered" in refusal.message
    with panel_team.engine.connect() as c:
        blocks = c.execute(
            select(TimeEntry.person_id, TimeEntry.extra_engineer).where(
                TimeEntry.kind == TimeKind.SCHEDULED_BLOCK
            )
        ).all()
        status = c.scalar(select(Appointment.status))
    assert sorted(blocks, key=lambda b: b.extra_engineer) == [
        (consultant.user_id, False),
        (panel_team.world.users["consultant2"], True),
    ]
    assert status is AppointmentStatus.HELD
    with make_session_factory(panel_team.engine)() as s:
        view = read_statement(s, org, start.astimezone(NY).date(), start.astimezone(NY).date())
    (day,) = view.days
    assert (day.scheduled, day.raw_minutes, day.billed, day.extra_engineer_minutes) == (
        120,
        0,
        120,
        60,
    )

    bench.setCurrentWidget(bench.timesheet)
    sheet = bench.timesheet
    sheet.day_edit.setDate(_qdate(start.astimezone(NY).date()))
    sheet.refresh()
    assert [(r.scheduled, r.raw_seconds, r.billed) for r in sheet.rows.rows()] == [(60, 0, 60)]
    assert sorted(e.kind.value for e in sheet.entries.rows()) == ["scheduled_block", "unscheduled"]


def test_statement_saved_from_the_desktop_matches_the_server(
    qtbot: QtBot, panel_desk: PanelDesk, panel_team: Team, tmp_path: Path
) -> None:
    lead = panel_desk("lead")
    org = panel_team.world.orgs["globex"]
    start = quiet_past(timedelta(minutes=50))
    lead.replica.mutate(
        "record_hour_purchase",
        {
            "block_id": str(uuid.uuid4()),
            "organisation_id": str(org),
            "minutes": 600,
            "purchased_at": (start - timedelta(days=1)).isoformat(),
        },
    )
    for offset, minutes in ((0, 5), (10, 30)):
        lead.replica.mutate(
            "add_time_entry",
            {
                "entry_id": str(uuid.uuid4()),
                "organisation_id": str(org),
                "note": "work",
                "started_at": (start + timedelta(minutes=offset)).isoformat(),
                "ended_at": (start + timedelta(minutes=offset + minutes)).isoformat(),
            },
        )
    lead.sync()
    bench = _bench(qtbot, lead)
    bench.contracts.refresh()
    bench.contracts.select_org(org)
    bench.contracts.statement_button.click()
    dialog = bench.statement_dialog
    assert dialog is not None
    day = start.astimezone(NY).date()
    dialog.start.setDate(_qdate(day - timedelta(days=3)))
    dialog.end.setDate(_qdate(day))
    for fmt in ("pdf", "csv"):
        dialog.format.setCurrentIndex(dialog.format.findData(fmt))
        dialog.path.setText(str(tmp_path / f"statement.{fmt}"))
        dialog.save()
        assert dialog.error.text().startswith("Saved statement.")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "statement.csv").read_text("utf-8-sig"))))
    (total,) = [r for r in rows if r["Section"] == "total"]
    text = "\n".join(p.extract_text() for p in PdfReader(tmp_path / "statement.pdf").pages)
    found = re.search(r"Total billed in the period (\d+) min", text)
    assert found is not None
    assert found.group(1) == total["Billed minutes"] == "60"
    with make_session_factory(panel_team.engine)() as s:
        server_view = read_statement(s, org, day - timedelta(days=3), day)
    assert server_view.billed == 60
    assert (
        server_view.closing
        == int(next(r for r in rows if r["Section"] == "closing")["Balance minutes"])
        == 540
    )

    dialog.end.setDate(_qdate(day - timedelta(days=3700)))
    dialog.save()
    assert "before it starts" in dialog.error.text()
    assert not (tmp_path / ".statement.csv.partial").exists()


def test_picking_another_customer_during_a_read_shows_that_customer(
    qtbot: QtBot, panel_desk: PanelDesk, panel_team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads run in the background here: a pick made while a read is in flight is read next,
    never dropped (the page used to keep showing the customer of the earlier read)."""
    monkeypatch.setattr(background, "SYNCHRONOUS", False)
    desk = panel_desk("lead")
    bench = _bench(qtbot, desk)
    page = bench.contracts
    page.refresh()
    qtbot.waitUntil(lambda: page.contract is not None and page.org_combo.count() > 1)
    first = page.contract
    assert first is not None
    other = next(
        uuid.UUID(page.org_combo.itemData(i))
        for i in range(page.org_combo.count())
        if uuid.UUID(page.org_combo.itemData(i)) != first.organisation_id
    )
    for _ in range(3):
        page.refresh()  # a read in flight, and another asked for
    page.select_org(other)
    qtbot.waitUntil(
        lambda: page.contract is not None and page.contract.organisation_id == other, timeout=10_000
    )


def test_the_pages_open_on_the_teams_today_not_utcs(qtbot: QtBot, panel_desk: PanelDesk) -> None:
    """At 02:00 UTC on 7 December it is still 6 December in New York (the team's zone): "my
    day", "my week", the appointments and the contracts' "as of" open on the 6th, not the 7th
    the computer's UTC date says."""
    desk = panel_desk("consultant")
    late = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
    bench = _bench(qtbot, desk, clock=lambda: late)
    for page in (bench.timesheet, bench.appointments, bench.contracts):
        page.refresh()
    assert _pydate(bench.timesheet.day_edit) == date(2026, 12, 6)
    assert _pydate(bench.appointments.day_edit) == date(2026, 12, 6)
    assert _pydate(bench.contracts.as_of_edit) == date(2026, 12, 6)
    # A date the consultant chose stays theirs.
    bench.timesheet.day_edit.setDate(_qdate(date(2026, 11, 2)))
    bench.timesheet.refresh()
    assert _pydate(bench.timesheet.day_edit) == date(2026, 11, 2)


def test_appointment_times_are_on_the_persons_chosen_clock() -> None:
    """Issue 15's time-zone setting holds in the workbench too: an appointment at 14:00 UTC
    reads 23:00 for a person who chose Tokyo, whatever the computer's zone."""
    from agentdesk.models import AppointmentStatus
    from agentdesk.queries.appointments import AppointmentLine
    from agentdesk.ui import shown_time
    from agentdesk.ui.consultant.workbench import _APPOINTMENT_COLUMNS

    line = AppointmentLine(
        id=uuid.uuid4(), organisation_id=uuid.uuid4(), organisation="Globex",
        consultant_id=None, consultant="", extra_engineer_id=None, extra_engineer="",
        ticket_id=None, ticket="", starts_at=datetime(2026, 12, 7, 14, 0, tzinfo=UTC),
        ends_at=datetime(2026, 12, 7, 15, 0, tzinfo=UTC), status=AppointmentStatus.SCHEDULED,
        note="",
    )  # fmt: skip
    assert shown_time.set_display_zone("Asia/Tokyo") is None
    try:
        start, end = (c.text(line) for c in _APPOINTMENT_COLUMNS[:2])
    finally:
        shown_time.set_display_zone("")
    assert start.endswith("2026-12-07 23:00")
    assert end == "00:00"
