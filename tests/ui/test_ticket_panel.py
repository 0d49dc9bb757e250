"""The ticket panel: which workflow actions are allowed and why not, and the actions themselves
against a desk's replica, round-tripped to a real server where it matters."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import (
    EventKind,
    Level,
    Role,
    Ticket,
    TicketEvent,
    TicketKind,
    TicketStatus,
    WaitingPeriod,
)
from agentdesk.policy.plans import seed_plans
from agentdesk.queries.ticket_card import Person, TicketView
from agentdesk.ui.panel_widgets import parse_money
from agentdesk.ui.sla_display import default_team_calendar
from agentdesk.ui.ticket.panel import TicketPanel
from agentdesk.ui.ticket.view import Action, Me, action_refusals
from tests.plugins.live_team import Desk, Team, ticket_args
from tests.plugins.panels import PanelDesk, new_ticket

# --------------------------------------------------------------------------------- rules

ME = uuid.uuid4()
OTHER = uuid.uuid4()
GONE = uuid.uuid4()
MEMBERS = (
    Person(ME, "Me", Role.AGENT, True),
    Person(OTHER, "Olga", Role.AGENT, True),
    Person(GONE, "Gone", Role.AGENT, False),
)


def _view(**kw: object) -> TicketView:
    base = TicketView(
        id=uuid.uuid4(),
        subject="Checkout is down",
        description="",
        channel="portal",
        status=TicketStatus.NEW,
        kind=TicketKind.GENERAL,
        level=Level.L1,
        tier=None,
        stated_urgency=2,
        assignee_id=None,
        assignee_name=None,
        requester_id=uuid.uuid4(),
        requester_name="Ann Lee",
        requester_email="ann@globex.test",
        requester_validated=True,
        organisation_id=uuid.uuid4(),
        organisation_name="Globex",
        plan_name="Standard",
        plan=seed_plans()[1],
        calendar=default_team_calendar(),
        arrived_at=datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
        first_response_at=None,
        resolved_at=None,
        escalated_at=None,
        extra_charges=False,
        extra_charge_estimate=None,
        members=MEMBERS,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


NOT_TRIAGED = "it has not been triaged yet: assess its severity first"


@pytest.mark.parametrize(
    ("role", "changes", "action", "refusal"),
    [
        # Triage: coordinators, leads and admins only (the mutator's role set), open tickets.
        (Role.AGENT, {}, Action.TRIAGE, "only coordinators, leads and admins can triage tickets"),
        (Role.CONSULTANT, {}, Action.TRIAGE, "only coordinators, leads and admins can triage"),
        (Role.COORDINATOR, {}, Action.TRIAGE, None),
        (Role.LEAD, {"status": TicketStatus.IN_PROGRESS, "tier": 3}, Action.TRIAGE, None),
        (
            Role.ADMIN,
            {"status": TicketStatus.CLOSED},
            Action.TRIAGE,
            "a closed ticket cannot be triaged",
        ),
        # Assign to me: anyone, open tickets, not when it is already mine.
        (Role.AGENT, {}, Action.ASSIGN_ME, None),
        (Role.AGENT, {"assignee_id": OTHER}, Action.ASSIGN_ME, None),
        (
            Role.AGENT,
            {"assignee_id": ME},
            Action.ASSIGN_ME,
            "the ticket is already assigned to you",
        ),
        (
            Role.AGENT,
            {"status": TicketStatus.RESOLVED},
            Action.ASSIGN_ME,
            "only open tickets can be assigned",
        ),
        # Assign to someone else: coordinators and leads.
        (
            Role.AGENT,
            {},
            Action.ASSIGN_OTHER,
            "only coordinators, leads and admins assign tickets to someone else",
        ),
        (Role.COORDINATOR, {}, Action.ASSIGN_OTHER, "pick the person to assign the ticket to"),
        (
            Role.COORDINATOR,
            {"status": TicketStatus.REDIRECTED},
            Action.ASSIGN_OTHER,
            "only open tickets can be assigned",
        ),
        # Unassign: your own, or anyone's as a coordinator.
        (Role.AGENT, {}, Action.RELEASE, "nobody is assigned"),
        (
            Role.AGENT,
            {"assignee_id": OTHER},
            Action.RELEASE,
            "only coordinators, leads and admins unassign someone else",
        ),
        (Role.AGENT, {"assignee_id": ME}, Action.RELEASE, None),
        (Role.COORDINATOR, {"assignee_id": OTHER}, Action.RELEASE, None),
        # Tell the customer: triaged and assigned (seed 002 step 2 follows step 1).
        (
            Role.AGENT,
            {},
            Action.TELL,
            "triage the ticket first; assign the ticket first, so "
            "the customer can be told who has it",
        ),
        (
            Role.AGENT,
            {"status": TicketStatus.TRIAGED, "tier": 2},
            Action.TELL,
            "assign the ticket first, so the customer can be told who has it",
        ),
        (
            Role.AGENT,
            {"status": TicketStatus.TRIAGED, "tier": 2, "assignee_id": OTHER},
            Action.TELL,
            None,
        ),
        (
            Role.AGENT,
            {"status": TicketStatus.CLOSED, "assignee_id": OTHER},
            Action.TELL,
            "the ticket is closed",
        ),
        # Waiting on the customer and back (the workflow's transitions).
        (
            Role.AGENT,
            {},
            Action.WAIT,
            f"cannot move the ticket to waiting on customer: {NOT_TRIAGED}",
        ),
        (Role.AGENT, {"status": TicketStatus.IN_PROGRESS}, Action.WAIT, None),
        (
            Role.AGENT,
            {"status": TicketStatus.WAITING_ON_CUSTOMER},
            Action.WAIT,
            "the ticket is already waiting on customer",
        ),
        (
            Role.AGENT,
            {"status": TicketStatus.IN_PROGRESS},
            Action.RESUME,
            "the ticket is not waiting on the customer",
        ),
        (Role.AGENT, {"status": TicketStatus.WAITING_ON_CUSTOMER}, Action.RESUME, None),
        # Escalation: general support, open.
        (Role.AGENT, {}, Action.ESCALATE, None),
        (
            Role.AGENT,
            {"kind": TicketKind.ONE_ON_ONE},
            Action.ESCALATE,
            "the ticket is already 1-on-1",
        ),
        (
            Role.AGENT,
            {"status": TicketStatus.RESOLVED},
            Action.ESCALATE,
            "only open tickets can be escalated",
        ),
        # Extra charges, resolve, close, reopen.
        (
            Role.AGENT,
            {"status": TicketStatus.REDIRECTED},
            Action.CHARGES,
            "the ticket was redirected",
        ),
        (Role.AGENT, {}, Action.RESOLVE, f"cannot move the ticket to resolved: {NOT_TRIAGED}"),
        (Role.AGENT, {"status": TicketStatus.IN_PROGRESS}, Action.RESOLVE, None),
        (
            Role.AGENT,
            {"status": TicketStatus.IN_PROGRESS},
            Action.CLOSE,
            "cannot move a in progress ticket to closed; it can go to: waiting on customer, "
            "resolved",
        ),
        (Role.AGENT, {"status": TicketStatus.RESOLVED}, Action.CLOSE, None),
        (Role.AGENT, {"status": TicketStatus.RESOLVED}, Action.REOPEN, None),
        (Role.AGENT, {"status": TicketStatus.REDIRECTED}, Action.REOPEN, None),
        (
            Role.AGENT,
            {"status": TicketStatus.CLOSED},
            Action.REOPEN,
            "a closed ticket cannot be reopened",
        ),
        (
            Role.AGENT,
            {"status": TicketStatus.IN_PROGRESS},
            Action.REOPEN,
            "the ticket is open: only resolved or redirected tickets are reopened",
        ),
        # Replies: not to a closed or a redirected ticket; notes always.
        (Role.AGENT, {"status": TicketStatus.CLOSED}, Action.REPLY, "the ticket is closed"),
        (
            Role.AGENT,
            {"status": TicketStatus.REDIRECTED},
            Action.REPLY,
            "the requester is not a validated contact",
        ),
        (Role.AGENT, {"status": TicketStatus.CLOSED}, Action.NOTE, None),
    ],
)
def test_each_action_is_refused_with_the_rule_that_forbids_it(
    role: Role, changes: dict[str, object], action: Action, refusal: str | None
) -> None:
    got = action_refusals(_view(**changes), Me(ME, role))[action]
    if refusal is None:
        assert got is None
    else:
        assert got is not None
        assert refusal in got


def test_assigning_to_someone_checks_the_person_picked() -> None:
    coordinator = Me(uuid.uuid4(), Role.COORDINATOR)
    view = _view(assignee_id=OTHER)
    assert action_refusals(view, coordinator, assign_to=ME)[Action.ASSIGN_OTHER] is None
    assert action_refusals(view, coordinator, assign_to=OTHER)[Action.ASSIGN_OTHER] == (
        "the ticket is already assigned to Olga"
    )
    assert action_refusals(view, coordinator, assign_to=GONE)[Action.ASSIGN_OTHER] == (
        "Gone is not active"
    )


@pytest.mark.parametrize(
    ("text", "amount", "problem"),
    [
        ("150", Decimal("150.00"), None),
        (" 1,250.5 ", Decimal("1250.50"), None),
        ("0", Decimal("0.00"), None),
        ("", None, "enter an amount"),
        ("abc", None, "is not an amount"),
        ("-5", None, "cannot be negative"),
        ("12.345", None, "at most 2 decimal places"),
        ("1e3", None, "is not an amount"),
        ("NaN", None, "is not an amount"),
        ("1,25.00", None, "is not an amount"),
        ("12345678901", None, "too large"),
    ],
)
def test_money_is_parsed_as_decimal_or_refused_in_words(
    text: str, amount: Decimal | None, problem: str | None
) -> None:
    if problem is None:
        assert parse_money(text) == amount
    else:
        with pytest.raises(ValueError, match=problem):
            parse_money(text)


# --------------------------------------------------------------------------------- widget


def _panel(qtbot: QtBot, desk: Desk, ticket_id: uuid.UUID | None = None) -> TicketPanel:
    panel = TicketPanel(desk.replica)
    qtbot.addWidget(panel)
    panel.resize(900, 900)
    if ticket_id is not None:
        panel.show_ticket(ticket_id)
    return panel


def _server_ticket(team: Team, ticket_id: uuid.UUID) -> Ticket:
    with team.db() as s:
        ticket = s.get(Ticket, ticket_id)
        assert ticket is not None
        s.expunge(ticket)
        return ticket


def _server_events(team: Team, ticket_id: uuid.UUID) -> list[TicketEvent]:
    with team.db() as s:
        events = list(
            s.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket_id)
                .order_by(TicketEvent.at, TicketEvent.version, TicketEvent.seq)
            )
        )
        s.expunge_all()
        return events


def test_an_agent_sees_why_each_action_is_disabled_on_a_new_ticket(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("agent")
    panel = _panel(qtbot, desk, new_ticket(desk, panel_team))

    assert not panel.triage_button.isEnabled()
    assert panel.triage_button.toolTip() == (
        "Only coordinators, leads and admins can triage tickets"
    )
    assert not panel.tier_combo.isEnabled()
    assert not panel.assignee_combo.isEnabled()
    assert panel.assign_button.toolTip() == (
        "Only coordinators, leads and admins assign tickets to someone else"
    )
    assert panel.assign_me_button.isEnabled()
    assert not panel.tell_button.isEnabled()
    assert panel.tell_button.toolTip() == (
        "Triage the ticket first; assign the ticket first, so the customer can be told who has it"
    )
    assert not panel.wait_button.isEnabled()
    assert panel.wait_button.toolTip().startswith("Cannot move the ticket to waiting on customer")
    assert not panel.resolve_button.isEnabled()
    assert panel.escalate_button.isEnabled()
    assert not panel.reopen_button.isEnabled()
    assert panel.fields["status"].text() == "New"
    assert "not triaged" in panel.fields["tier"].text()
    assert "✔ validated contact" in panel.fields["requester"].text()

    # Taking it moves "assign first" out of the way; triage is still someone else's job.
    panel.assign_me_button.click()
    assert panel.fields["assignee"].text() == "Agent"
    assert panel.message.text() == "The ticket is yours"
    assert not panel.assign_me_button.isEnabled()
    assert panel.tell_button.toolTip() == "Triage the ticket first"
    assert panel.release_button.isEnabled()


def test_a_coordinator_triages_assigns_and_tells_the_customer(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("coordinator")
    world = panel_team.world
    ticket_id = new_ticket(desk, panel_team)
    desk.sync()
    panel = _panel(qtbot, desk, ticket_id)

    panel.tier_combo.setCurrentIndex(panel.tier_combo.findData(1))
    panel.level_combo.setCurrentIndex(panel.level_combo.findData("L2"))
    panel.triage_button.click()
    assert panel.fields["status"].text() == "Triaged"
    assert panel.fields["tier"].text().startswith("Tier 1 (assessed")
    assert "30 business minutes" in panel.fields["sla"].text()

    panel.assignee_combo.setCurrentIndex(panel.assignee_combo.findData(str(world.users["agent"])))
    assert panel.assign_button.isEnabled()
    panel.assign_button.click()
    assert panel.fields["assignee"].text() == "Agent"
    assert not panel.assign_button.isEnabled()  # Agent is still the one picked
    assert panel.assign_button.toolTip() == "The ticket is already assigned to Agent"

    assert panel.tell_button.isEnabled()
    panel.tell_button.click()
    dialog = panel.tell_dialog
    assert dialog is not None
    assert dialog.isVisible()
    text = dialog.message()
    assert "Agent from our Level 2 support team has it" in text
    assert "What happens next: Agent is looking into it" in text
    assert "tier 1" in text
    dialog.editor.setPlainText(text + "\n\nBest, the support team")
    dialog.send_button.click()
    assert not dialog.isVisible()
    assert panel.fields["status"].text() == "In progress"
    assert panel.fields["sla"].text().endswith("Met")
    history = panel.history.toPlainText()
    for line in (
        "Triaged: untriaged → tier 1, Level 2",
        "Assigned to Agent",
        "REPLY TO CUSTOMER · Customer told who has it and what is next",
        "Status: triaged → in progress",
        "Best, the support team",
    ):
        assert line in history

    desk.sync()
    assert desk.replica.pending_count() == 0
    assert desk.replica.rejections() == []
    server = _server_ticket(panel_team, ticket_id)
    assert (server.tier, server.level, server.status) == (1, Level.L2, TicketStatus.IN_PROGRESS)
    assert server.assignee_id == world.users["agent"]
    assert server.first_response_at is not None
    kinds = [e.kind for e in _server_events(panel_team, ticket_id)]
    assert kinds.count(EventKind.TRIAGE) == kinds.count(EventKind.ASSIGNMENT) == 1
    assert kinds.count(EventKind.REPLY) == 1


def test_assignment_is_a_check_and_set_refused_locally_or_after_sync(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    world = panel_team.world
    first, second = (ticket_args(world) for _ in range(2))
    for args in (first, second):
        world.run("coordinator", "create_ticket", **args)
    ann, bo = panel_desk("agent"), panel_desk("agent2")
    ann_panel = _panel(qtbot, ann, uuid.UUID(first["ticket_id"]))
    bo_panel = _panel(qtbot, bo, uuid.UUID(first["ticket_id"]))

    # Both grab it; Bo has not heard of Ann's grab, so his replica accepts it optimistically...
    ann_panel.assign_me_button.click()
    ann.sync()
    bo_panel.assign_me_button.click()
    assert bo_panel.fields["assignee"].text() == "Agent2"
    # ...and the server, which saw Ann's first, refuses it; the panel says so beside the ticket
    # (not beside another one Bo is reading when the answer comes in).
    bo_panel.show_ticket(uuid.UUID(second["ticket_id"]))
    bo.sync()
    bo_panel.refresh()
    assert bo_panel.message.kind is None
    bo_panel.show_ticket(uuid.UUID(first["ticket_id"]))
    assert bo_panel.fields["assignee"].text() == "Agent"
    assert bo_panel.message.kind == "error"
    assert bo_panel.message.text() == (
        "The server refused the assignment: the ticket is now assigned to Agent; refresh and "
        "try again"
    )
    assert bo.replica.pending_count() == 0

    # A stale view: Bo's replica already knows (the pull) but his panel still shows nobody.
    bo_panel.show_ticket(uuid.UUID(second["ticket_id"]))
    ann_panel.show_ticket(uuid.UUID(second["ticket_id"]))
    ann_panel.assign_me_button.click()
    ann.sync()
    bo.sync()
    assert bo_panel.fields["assignee"].text() == "Unassigned"
    bo_panel.assign_me_button.click()
    assert bo_panel.message.text() == ("The ticket is now assigned to Agent; refresh and try again")
    assert bo.replica.pending_count() == 0, "a local refusal queues nothing"


def _triaged_and_mine(desk: Desk, team: Team) -> uuid.UUID:
    ticket_id = new_ticket(desk, team)
    desk.replica.mutate("triage_ticket", {"ticket_id": ticket_id, "tier": 2, "level": "L1"})
    desk.replica.mutate(
        "assign_ticket",
        {"ticket_id": ticket_id, "assignee_id": desk.user_id, "expected_assignee_id": None},
    )
    desk.replica.mutate("tell_customer", {"ticket_id": ticket_id, "message": "Hi, I have it."})
    return ticket_id


def test_waiting_on_the_customer_pauses_the_clock_until_resumed(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("coordinator")
    ticket_id = new_ticket(desk, panel_team)
    desk.replica.mutate("triage_ticket", {"ticket_id": ticket_id, "tier": 2, "level": "L1"})
    desk.replica.mutate(
        "assign_ticket",
        {"ticket_id": ticket_id, "assignee_id": desk.user_id, "expected_assignee_id": None},
    )
    panel = _panel(qtbot, desk, ticket_id)
    assert panel.wait_button.isEnabled()
    assert not panel.resume_button.isEnabled()

    panel.wait_button.click()
    assert panel.fields["status"].text() == "Waiting on customer"
    assert "⏸" in panel.fields["sla"].text()
    assert "Paused while waiting on the customer." in panel.fields["sla"].toolTip()
    assert not panel.wait_button.isEnabled()
    assert panel.wait_button.toolTip() == "The ticket is already waiting on customer"
    assert panel.resume_button.isEnabled()
    desk.sync()
    with panel_team.db() as s:
        [period] = s.scalars(select(WaitingPeriod).where(WaitingPeriod.ticket_id == ticket_id))
        assert period.ended_at is None

    panel.resume_button.click()
    assert panel.fields["status"].text() == "In progress"
    assert "⏸" not in panel.fields["sla"].text()
    desk.sync()
    with panel_team.db() as s:
        [period] = s.scalars(select(WaitingPeriod).where(WaitingPeriod.ticket_id == ticket_id))
        assert period.ended_at is not None


def test_escalation_is_confirmed_first_and_makes_the_ticket_billable(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("coordinator")
    ticket_id = _triaged_and_mine(desk, panel_team)
    panel = _panel(qtbot, desk, ticket_id)
    assert panel.fields["kind"].text() == "General support (not billable)"

    panel.escalate_button.click()
    box = panel.confirm_box
    assert box is not None
    assert "billable to the customer from now on" in box.text()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert panel.fields["kind"].text() == "General support (not billable)"
    assert desk.replica.pending_count() == 4

    panel.escalate_button.click()
    panel.confirm_box.button(QMessageBox.StandardButton.Yes).click()  # type: ignore[union-attr]
    assert panel.fields["kind"].text().startswith("1-on-1 tech support (billable since ")
    assert not panel.escalate_button.isEnabled()
    assert panel.escalate_button.toolTip() == "The ticket is already 1-on-1"
    assert "Escalated to 1-on-1 tech support" in panel.history.toPlainText()
    desk.sync()
    server = _server_ticket(panel_team, ticket_id)
    assert server.kind is TicketKind.ONE_ON_ONE
    assert server.escalated_at is not None


def test_extra_charges_refuse_bad_money_and_record_a_decimal_estimate(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("coordinator")
    ticket_id = _triaged_and_mine(desk, panel_team)
    panel = _panel(qtbot, desk, ticket_id)
    assert not panel.charges_button.isEnabled()
    assert panel.charges_button.toolTip() == "Nothing changed"
    assert not panel.estimate_edit.isEnabled(), "no estimate without extra charges"

    panel.charges_check.setChecked(True)
    for bad, why in (
        ("abc", "is not an amount"),
        ("-5", "cannot be negative"),
        ("12.345", "at most 2 decimal places"),
        ("1e3", "is not an amount"),
    ):
        panel.estimate_edit.setText(bad)
        assert not panel.charges_button.isEnabled()
        assert why in panel.charges_button.toolTip()
        assert panel.estimate_error.kind == "error"
        assert why in panel.estimate_error.text()
    panel.save_charges()  # even called directly, bad money is refused and nothing is queued
    assert desk.replica.pending_count() == 4

    panel.estimate_edit.clear()
    qtbot.keyClicks(panel.estimate_edit, "1,250.5")
    assert panel.estimate_error.kind is None
    assert panel.charges_button.isEnabled()
    panel.charges_button.click()
    assert panel.fields["charges"].text() == "Apply (estimate 1,250.50)"
    assert panel.estimate_edit.text() == "1,250.50"
    assert "Extra charges apply (estimate 1,250.50)" in panel.history.toPlainText()
    assert not panel.charges_button.isEnabled()

    # The customer is told in the response (seed 002): the pre-filled update says so.
    panel.tell_button.click()
    assert "extra charges apply to resolve this request (estimate: 1,250.50)" in (
        panel.tell_dialog.message()  # type: ignore[union-attr]
    )
    panel.tell_dialog.reject()  # type: ignore[union-attr]

    desk.sync()
    server = _server_ticket(panel_team, ticket_id)
    assert server.extra_charges is True
    assert server.extra_charge_estimate == Decimal("1250.50")


def test_resolve_notifies_the_customer_then_close_and_reopen(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("coordinator")
    ticket_id = _triaged_and_mine(desk, panel_team)
    panel = _panel(qtbot, desk, ticket_id)
    assert not panel.close_button.isEnabled()

    panel.resolve_button.click()
    assert panel.fields["status"].text() == "Resolved"
    history = panel.history.toPlainText()
    assert "Status: in progress → resolved" in history
    assert "Email to Ann queued" in history
    assert "Customer notified: the request is resolved." in history
    assert panel.message.text() == "Resolved; the customer is notified"
    assert panel.reopen_button.isEnabled()
    assert panel.close_button.isEnabled()

    panel.reopen_button.click()
    assert panel.fields["status"].text() == "In progress"
    panel.resolve_button.click()
    panel.close_button.click()
    assert panel.fields["status"].text() == "Closed"
    for button in (
        panel.reopen_button,
        panel.resolve_button,
        panel.triage_button,
        panel.assign_me_button,
        panel.escalate_button,
        panel.tell_button,
    ):
        assert not button.isEnabled(), button.text()
    assert panel.reopen_button.toolTip() == "A closed ticket cannot be reopened"
    assert not panel.reply_mode.isEnabled()
    assert panel.note_mode.isChecked(), "a closed ticket still takes internal notes"

    desk.sync()
    server = _server_ticket(panel_team, ticket_id)
    assert server.status is TicketStatus.CLOSED


def test_the_composer_sends_with_ctrl_enter_and_keeps_its_text_across_refreshes(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk
) -> None:
    desk = panel_desk("coordinator")
    ticket_id = _triaged_and_mine(desk, panel_team)
    other_id = new_ticket(desk, panel_team, subject="Invoice is wrong")
    panel = _panel(qtbot, desk, ticket_id)

    qtbot.keyClicks(panel.composer, "Checking the logs now")
    desk.sync()
    panel.refresh()  # a sync pull arrives while the agent types
    assert panel.composer.toPlainText() == "Checking the logs now"

    panel.note_mode.click()
    assert panel.send_button.text() == "Add note"
    qtbot.keyClick(panel.composer, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    assert panel.composer.toPlainText() == ""
    assert panel.message.text() == "Note added"

    panel.reply_mode.click()
    qtbot.keyClicks(panel.composer, "We found the cause.")
    panel.show_ticket(other_id)  # the draft waits for the ticket it was written for
    assert panel.composer.toPlainText() == ""
    panel.show_ticket(ticket_id)
    assert panel.composer.toPlainText() == "We found the cause."
    qtbot.keyClick(panel.composer, Qt.Key.Key_Enter, Qt.KeyboardModifier.ControlModifier)

    history = panel.history.toPlainText()
    assert "INTERNAL NOTE · Internal note" in history
    assert "REPLY TO CUSTOMER · Reply to customer" in history
    html = panel.history.toHtml()
    assert html.count("bgcolor") >= 3, "replies and notes are tinted, each differently"

    # A switch to a dark palette re-tints the history from the new base colour.
    before = html
    dark = QPalette(panel.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#eeeeee"))
    panel.setPalette(dark)
    assert panel.history.toHtml() != before
    assert panel.history.toPlainText() == history

    panel.send()
    assert panel.message.text() == "Write something first"
    desk.sync()
    kinds = [e.kind for e in _server_events(panel_team, ticket_id)]
    assert kinds.count(EventKind.NOTE) == 1
    assert kinds.count(EventKind.REPLY) == 2  # the update to the customer, then the reply


def test_a_ticket_the_replica_does_not_have_is_said_so(qtbot: QtBot, panel_desk: PanelDesk) -> None:
    desk = panel_desk("agent")
    panel = _panel(qtbot, desk)
    assert not panel.splitter.isVisibleTo(panel)
    assert panel.placeholder.text() == "Select a ticket to see it here."
    panel.show_ticket(uuid.uuid4())
    assert panel.placeholder.text() == "This ticket is not on this desktop (yet)."
    panel.show_ticket(None)
    assert panel.placeholder.text() == "Select a ticket to see it here."


def test_the_panel_rereads_only_for_changes_that_touch_its_ticket(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentdesk.ui.shell.sync_bridge import ReplicaChange
    from agentdesk.ui.ticket import panel as ticket_panel

    desk = panel_desk("agent")
    shown, other = new_ticket(desk, panel_team), new_ticket(desk, panel_team)
    panel = _panel(qtbot, desk, shown)
    loads: list[uuid.UUID] = []
    real = ticket_panel.load_ticket_view  # type: ignore[attr-defined]  # patched where it is used

    def counting(session: object, ticket_id: uuid.UUID) -> object:
        loads.append(ticket_id)
        return real(session, ticket_id)  # type: ignore[arg-type]

    monkeypatch.setattr(ticket_panel, "load_ticket_view", counting)
    pull = frozenset({"pull"})
    panel.changes_arrived(
        ReplicaChange(kinds=pull, tables=frozenset({"tickets"}), ticket_ids=frozenset({other}))
    )
    assert loads == []
    # Another desk's note on the shown ticket arrives: re-read, and it shows.
    desk.replica.mutate("add_note", {"ticket_id": str(shown), "body": "Seen by ops"})
    panel.changes_arrived(ReplicaChange(kinds=pull, ticket_ids=frozenset({other, shown})))
    assert loads == [shown]
    assert "Seen by ops" in panel.history.toPlainText()
    panel.changes_arrived(ReplicaChange(kinds=pull, lookups=True))
    panel.changes_arrived(ReplicaChange(kinds=frozenset({"reset"}), everything=True))
    assert loads == [shown, shown, shown]
    panel.show_ticket(None)
    panel.changes_arrived(ReplicaChange(kinds=pull, everything=True))
    assert loads == [shown, shown, shown]


def test_the_apps_panel_reads_its_card_off_the_gui_thread(
    qtbot: QtBot, panel_team: Team, panel_desk: PanelDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from agentdesk.ui.shell.sync_bridge import ReplicaChange
    from agentdesk.ui.ticket import panel as ticket_panel

    desk = panel_desk("agent")
    first, second = new_ticket(desk, panel_team), new_ticket(desk, panel_team)
    threads: list[int] = []
    real = ticket_panel.load_ticket_view  # type: ignore[attr-defined]  # patched where it is used

    def recording(session: object, ticket_id: uuid.UUID) -> object:
        threads.append(threading.get_ident())
        return real(session, ticket_id)  # type: ignore[arg-type]

    monkeypatch.setattr(ticket_panel, "load_ticket_view", recording)
    panel = TicketPanel(desk.replica, asynchronous=True)
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.cardLoaded, timeout=10_000):
        panel.show_ticket(first)
        assert panel.view is None  # nothing read on the GUI thread
    assert panel.view is not None
    assert panel.view.id == first
    # Another pick: the card on show stays (its actions act on it) until the new one is read.
    with qtbot.waitSignal(panel.cardLoaded, timeout=10_000):
        panel.show_ticket(second)
        assert panel.view.id == first
    assert panel.view.id == second
    desk.replica.mutate("add_note", {"ticket_id": str(second), "body": "Seen by ops"})
    with qtbot.waitSignal(panel.cardLoaded, timeout=10_000):
        panel.changes_arrived(
            ReplicaChange(kinds=frozenset({"pull"}), ticket_ids=frozenset({second}))
        )
    assert "Seen by ops" in panel.history.toPlainText()
    assert len(threads) == 3
    assert threading.get_ident() not in threads
