"""The contact-validation panel: validated or not, the allotment and who holds it, the year's
entitlement in the team's time zone, the channel; validate, swap, switch out and redirect."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import Contact, EventKind, Organisation, Ticket, TicketEvent, TicketStatus
from agentdesk.models.versioning import enable_stamping
from agentdesk.ui import background
from agentdesk.ui.contacts.panel import ContactPanel
from agentdesk.ui.ticket.panel import TicketPanel
from tests.plugins.live_team import Desk, Team, ticket_args
from tests.plugins.panels import TEAM_TZ, FakeClock, PanelDesk, new_ticket


@pytest.fixture(autouse=True)
def _inline_background(monkeypatch: pytest.MonkeyPatch) -> None:
    """The panel reads on a background operation; here it runs inline."""
    monkeypatch.setattr(background, "SYNCHRONOUS", True)


def _panel(qtbot: QtBot, desk: Desk, ticket_id: uuid.UUID, **kw: object) -> ContactPanel:
    panel = ContactPanel(desk.replica, **kw)  # type: ignore[arg-type]
    qtbot.addWidget(panel)
    panel.resize(420, 700)
    panel.show_ticket(ticket_id)
    return panel


def _validated(team: Team) -> dict[str, bool]:
    with team.db() as s:
        return {c.name: c.validated for c in s.scalars(select(Contact))}


def test_a_validated_requester_on_a_full_standard_plan(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    panel = _panel(qtbot, desk, new_ticket(desk, panel_team))
    year = datetime.now(ZoneInfo(TEAM_TZ)).year  # the team's calendar year

    assert panel.mark.text() == "✔ Validated contact"
    fields = {k: label.text() for k, label in panel.fields.items()}
    assert fields["organisation"] == "Globex"
    assert fields["plan"] == "Standard (channels: portal)"
    assert fields["allotment"] == ("2 of 2 used — held by Ann, Bo")
    assert panel.fields["allotment"].toolTip() == "Ann <ann@globex.test>\nBo <bo@globex.test>"
    assert fields["conversations"] == f"1 in {year} (unlimited on Standard)"
    assert fields["bonus"] == "not offered on Standard"
    assert "✔</span> Portal is included in Standard" in fields["channel"]
    assert "unlimited support conversations" in fields["request"]

    assert not panel.validate_button.isEnabled()
    assert panel.validate_button.toolTip() == (
        "Ann <ann@globex.test> is already a validated contact; nothing to change."
    )
    assert not panel.redirect_button.isEnabled()
    assert panel.redirect_button.toolTip() == (
        "The requester is a validated contact; work the ticket instead."
    )
    assert not panel.swap_button.isEnabled()
    assert panel.switch_out_button.isEnabled()
    assert [panel.holder_combo.itemText(i) for i in range(panel.holder_combo.count())] == [
        "Ann <ann@globex.test>",
        "Bo <bo@globex.test>",
    ]


def test_redirecting_a_requester_who_is_no_longer_validated(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    world = panel_team.world
    ticket_id = new_ticket(desk, panel_team)  # Ann, validated when she asked
    panel = _panel(qtbot, desk, ticket_id)
    tickets = TicketPanel(desk.replica)
    qtbot.addWidget(tickets)
    tickets.show_ticket(ticket_id)

    # Globex switches Ann out: her open request may no longer be worked.
    panel.holder_combo.setCurrentIndex(panel.holder_combo.findData(str(world.contacts["ann"])))
    panel.switch_out_button.click()
    assert panel.confirm_box is not None
    panel.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    assert panel.message.text() == "Ann was switched out"
    assert panel.mark.text() == "✖ Not a validated contact"
    assert panel.fields["allotment"].text().startswith("1 of 2 used — held by Bo")
    assert panel.redirect_button.isEnabled()
    assert panel.redirect_button.toolTip() == (
        "Request from Ann <ann@globex.test>, who is not a validated support contact: not "
        "worked. Redirected to the validated contacts Bo <bo@globex.test>, who were asked how "
        "to proceed."
    )

    panel.redirect_button.click()
    assert panel.message.text() == "Redirected; Bo notified and asked how to proceed"
    assert not panel.redirect_button.isEnabled()
    assert panel.redirect_button.toolTip() == "The ticket is already redirected"
    tickets.refresh()
    assert tickets.fields["status"].text() == "Redirected"
    history = tickets.history.toPlainText()
    assert "Redirected; validated contacts notified: Bo" in history
    assert "Email to Bo queued" in history
    assert not tickets.reply_mode.isEnabled(), "a redirected request is not worked"

    desk.sync()
    assert desk.replica.rejections() == []
    with panel_team.db() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        assert ticket.status is TicketStatus.REDIRECTED
        [redirect] = s.scalars(
            select(TicketEvent).where(
                TicketEvent.ticket_id == ticket_id, TicketEvent.kind == EventKind.REDIRECT
            )
        )
        assert redirect.data["notify"] == [str(world.contacts["bo"])]
    assert _validated(panel_team)["Ann"] is False

    # Bo answers: validate Ann again. The panel says what comes next; the ticket stays
    # redirected until someone reopens it.
    panel.validate_button.click()
    assert panel.message.text() == (
        "Ann is now a validated contact; use Reopen on the ticket to work it"
    )
    tickets.refresh()
    assert tickets.fields["status"].text() == "Redirected"
    assert tickets.reopen_button.isEnabled()


def test_validation_within_the_allotment_refusal_naming_the_holders_and_a_swap(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    world = panel_team.world
    # Eve at Initech (Basic/Free: one slot, held by Dee) asks: redirected on arrival.
    eve_ticket = new_ticket(
        desk,
        panel_team,
        organisation_id=str(world.orgs["initech"]),
        requester_id=str(world.contacts["eve"]),
    )
    panel = _panel(qtbot, desk, eve_ticket)
    assert panel.mark.text() == "✖ Not a validated contact"
    assert not panel.validate_button.isEnabled()
    refusal = (
        "Basic/Free includes 1 validated contact; the slot is held by Dee "
        "<dee@initech.test>. Swap Dee out to validate Eve."
    )
    assert panel.validate_button.toolTip() == refusal
    panel.validate_requester()  # asked anyway (a stale click): the same sentence, inline
    assert panel.message.kind == "error"
    assert panel.message.text() == refusal
    assert desk.replica.pending_count() == 1  # just the ticket

    assert panel.swap_button.text() == "Swap Eve in for them"
    assert panel.swap_button.isEnabled()
    panel.swap_button.click()
    # Eve's request was redirected on arrival: the panel says what comes next.
    assert panel.message.text() == (
        "Swapped Dee out and Eve in; use Reopen on the ticket to work it"
    )
    assert panel.mark.text() == "✔ Validated contact"
    assert panel.fields["allotment"].text() == "1 of 1 used — held by Eve"

    # Cy at Globex (Standard: two slots, both held): switch Bo out, then validate Cy.
    cy_ticket = new_ticket(desk, panel_team, requester_id=str(world.contacts["cy"]))
    panel.show_ticket(cy_ticket)
    assert panel.message.kind is None
    assert not panel.validate_button.isEnabled()
    assert "the slots are held by Ann <ann@globex.test> and Bo <bo@globex.test>" in (
        panel.validate_button.toolTip()
    )
    panel.holder_combo.setCurrentIndex(panel.holder_combo.findData(str(world.contacts["bo"])))
    panel.switch_out_button.click()
    assert panel.confirm_box is not None
    panel.confirm_box.button(QMessageBox.StandardButton.Yes).click()
    assert panel.validate_button.isEnabled()
    assert panel.validate_button.toolTip() == (
        "Validate Cy as a support contact (takes a free slot)"
    )
    panel.validate_button.click()
    assert panel.message.text() == (  # redirected on arrival, like Eve's
        "Cy is now a validated contact; use Reopen on the ticket to work it"
    )
    assert panel.fields["allotment"].text() == ("2 of 2 used — held by Ann, Cy")

    desk.sync()
    assert desk.replica.rejections() == []
    assert _validated(panel_team) == {
        "Ann": True,
        "Bo": False,
        "Cy": True,
        "Dee": False,
        "Eve": True,
        "Fay": True,
    }


def test_entitlement_counts_the_teams_calendar_year_and_the_review_bonus(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    world = panel_team.world
    initech = str(world.orgs["initech"])
    arrivals = [
        # 22:30 on 31 December in New York: still 2025 for the team, though 2026 in UTC.
        (datetime(2026, 1, 1, 3, 30, tzinfo=UTC), "dee", "portal"),
        (datetime(2026, 1, 1, 6, 0, tzinfo=UTC), "dee", "portal"),
        (datetime(2026, 2, 10, 15, 0, tzinfo=UTC), "eve", "portal"),  # redirected: no count
        (datetime(2026, 3, 3, 15, 0, tzinfo=UTC), "dee", "chat"),
    ]
    ids = []
    for when, who, channel in arrivals:
        world.now = when
        args = ticket_args(
            world, organisation_id=initech, requester_id=str(world.contacts[who]), channel=channel
        )
        world.run("coordinator", "create_ticket", **args)
        ids.append(uuid.UUID(args["ticket_id"]))
    desk = panel_desk("agent")
    clock = FakeClock(datetime(2026, 6, 1, 12, 0, tzinfo=UTC))
    panel = _panel(qtbot, desk, ids[-1], clock=clock)

    assert panel.fields["plan"].text() == "Basic/Free (channels: portal)"
    assert panel.fields["conversations"].text() == "2 of 5 used in 2026 (3 left)"
    assert panel.fields["bonus"].text() == (
        "+5 for ≥25 verified reviews and ≥10 in the last 6 months: does not qualify "
        "(0 verified, 0 recent)"
    )
    channel = panel.fields["channel"].text()
    assert "✖" in channel
    assert (
        "Chat support is included in the Premium and Enterprise plans only; your "
        "Basic/Free plan includes: portal."
    ) in channel
    assert "not entitled on this channel" in panel.fields["request"].text()

    panel.show_ticket(ids[1])  # the first of 2026 in New York
    assert "this request is support conversation 1 of 5 in 2026" in (panel.fields["request"].text())

    with panel_team.db() as s:  # the lead records Initech's reviews on the server
        enable_stamping(s, world.tenant)
        initech_row = s.get(Organisation, world.orgs["initech"])
        assert initech_row is not None
        initech_row.verified_reviews, initech_row.recent_reviews = 30, 12
    desk.sync()
    panel.refresh()
    assert panel.fields["conversations"].text() == "2 of 10 used in 2026 (8 left)"
    assert panel.fields["bonus"].text().endswith("qualifies (30 verified, 12 recent)")

    clock.now = datetime(2027, 1, 2, 12, 0, tzinfo=UTC)  # a new year: nothing used yet
    panel.refresh()
    assert panel.fields["conversations"].text() == "0 of 10 used in 2027 (10 left)"


def test_the_panel_re_reads_only_for_changes_touching_its_ticket(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentdesk.ui.contacts.panel import load_contact_view as real
    from agentdesk.ui.shell.sync_bridge import ReplicaChange

    desk = panel_desk("coordinator")
    ticket_id = new_ticket(desk, panel_team)  # Ann at Globex
    panel = _panel(qtbot, desk, ticket_id)
    reads: list[uuid.UUID] = []

    def counted(session: Any, ticket: uuid.UUID, *args: Any) -> Any:
        reads.append(ticket)
        return real(session, ticket, *args)

    monkeypatch.setattr("agentdesk.ui.contacts.panel.load_contact_view", counted)
    world = panel_team.world

    def pull(
        *,
        tables: set[str],
        ticket_ids: set[uuid.UUID] | None = None,
        organisation_ids: set[uuid.UUID] | None = None,
        person_ids: set[uuid.UUID] | None = None,
    ) -> ReplicaChange:
        return ReplicaChange(
            kinds=frozenset({"pull"}),
            tables=frozenset(tables),
            ticket_ids=frozenset(ticket_ids or ()),
            organisation_ids=frozenset(organisation_ids or ()),
            person_ids=frozenset(person_ids or ()),
        )

    panel.changes_arrived(
        pull(
            tables={"tickets", "time_entries"},
            ticket_ids={uuid.uuid4()},
            organisation_ids={world.orgs["initech"]},
        )
    )
    assert reads == [], "another organisation's tickets and time"
    panel.changes_arrived(
        pull(tables={"tickets"}, ticket_ids={uuid.uuid4()}, organisation_ids={world.orgs["globex"]})
    )
    assert reads == [ticket_id], "a new Globex ticket changes the year's conversations"
    panel.changes_arrived(pull(tables={"ticket_events"}, ticket_ids={ticket_id}))
    assert reads == [ticket_id] * 2
    panel.changes_arrived(
        ReplicaChange(kinds=frozenset({"pull"}), tables=frozenset({"contacts"}), lookups=True)
    )
    assert reads == [ticket_id] * 3
