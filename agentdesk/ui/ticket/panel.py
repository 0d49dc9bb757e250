"""The ticket panel: details, history, the reply/note composer and the workflow actions.

It reads one ticket from the local replica (:mod:`agentdesk.queries.ticket_card`) and changes it
only through ``replica.mutate`` (optimistic, so it works offline; the sync engine sends it
later).
A refusal the replica makes at once is shown inline; a refusal the server makes later (a
check-and-set conflict on assignment, say) arrives with a sync pull as a stored rejection, and
the panel shows it beside the ticket it concerns.

Every action button is enabled or disabled from the rules, with the reason as its tooltip
(:func:`agentdesk.ui.ticket.view.action_refusals`). :meth:`TicketPanel.refresh` re-reads and
re-renders without touching what the agent is typing: the composer, the picked tier and level,
the assignee picked and an unsaved estimate all survive a sync pull.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import shiboken6
from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QFont, QKeyEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ...models import Level, Role, TicketKind, TicketStatus, utcnow
from ...policy import workflow
from ...policy.sla import SlaState
from ...queries.formatting import money_text
from ...queries.ticket_card import HistoryItem, TicketView, load_ticket_view
from ...sync.replica import Replica
from .. import background
from ..flow_layout import FlowLayout
from ..icons import icon
from ..panel_widgets import (
    InlineMessage,
    MoneyEdit,
    MutationRunner,
    accept_cancel,
    capitalised,
    error_colour,
    local_text,
    ok_colour,
    plain_label,
    rich_label,
    show_availability,
)
from ..shell.sync_bridge import ReplicaChange
from ..shown_time import ago_text
from ..sla_display import LOADING, due_text, sla_colour, sla_text, sla_tooltip
from ..writer import Outcome, Step
from .view import (
    TRIAGE_REQUEST,
    Action,
    Me,
    action_refusals,
    assign_picker_refusal,
    assignee_choices,
    reopen_target,
    sla_of,
    target_words,
    tell_customer_message,
)

log = logging.getLogger(__name__)

__all__ = ["ComposerEdit", "TellCustomerDialog", "TicketPanel"]

Clock = Callable[[], datetime]

_TIER_LABELS = {
    1: "Tier 1 — production down",
    2: "Tier 2 — production impacted",
    3: "Tier 3 — low impact / how-to",
    4: "Tier 4 — cosmetic",
}
_LEVEL_LABELS = {
    Level.L1: "Level 1 — general usage",
    Level.L2: "Level 2 — API, SSO, scripting, integrations",
}
_ROLE_WORDS = {
    Role.AGENT: "agent",
    Role.COORDINATOR: "coordinator",
    Role.LEAD: "team lead",
    Role.CONSULTANT: "consultant",
    Role.ADMIN: "administrator",
}

_PURPOSE = {
    Action.TRIAGE: "Record the assessed severity tier and route to Level 1 or Level 2",
    Action.ASSIGN_ME: "Take this ticket",
    Action.ASSIGN_OTHER: "Assign the ticket to the person picked in the list",
    Action.RELEASE: "Leave the ticket unassigned",
    Action.TELL: "Tell the customer who has the request and what happens next",
    Action.WAIT: "Wait for the customer's answer: the response clock pauses",
    Action.RESUME: "The customer answered: back to work, the response clock runs again",
    Action.ESCALATE: "Escalate general support to 1-on-1 tech support: time becomes billable",
    Action.CHARGES: "Record whether extra charges apply, with an estimate",
    Action.RESOLVE: "Mark the request resolved; the customer is notified",
    Action.CLOSE: "Close the resolved ticket",
    Action.REOPEN: "Reopen the ticket",
    Action.ASK_TRIAGE: "Only coordinators assess the severity: add a note asking one to triage "
    "this ticket (it waits in their Triage view)",
    Action.REDIRECT: "Do not work the ticket (seed 003): the requester is not a validated "
    "contact; the organisation's validated contacts are notified and asked how to proceed",
    Action.REPLY: "Send the text to the customer (Ctrl+Enter)",
    Action.NOTE: "Add the text as an internal note the customer never sees (Ctrl+Enter)",
}


class ComposerEdit(QPlainTextEdit):
    """The reply/note text; Ctrl+Enter asks to send (a key handler rather than a shortcut, so
    it works whether or not the window is active)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.send_requested: Callable[[], None] | None = None
        self.setPlaceholderText("Write a reply or an internal note… (Ctrl+Enter sends)")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        ctrl = event.modifiers() & Qt.KeyboardModifier.ControlModifier
        if ctrl and event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()
            if self.send_requested is not None:
                self.send_requested()
            return
        super().keyPressEvent(event)


class TellCustomerDialog(QDialog):
    """The update of seed 002 step 2, pre-filled and editable before it is sent."""

    def __init__(self, message: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Tell the customer who has it and what is next")
        self.editor = QPlainTextEdit(message)
        self.error = InlineMessage()
        buttons, self.send_button = accept_cancel(self, "Send to customer", self._accept_if_written)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("The customer receives this message as the first update:"))
        layout.addWidget(self.editor)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(560, 360)

    def message(self) -> str:
        return self.editor.toPlainText().strip()

    def _accept_if_written(self) -> None:
        if not self.message():
            self.error.show_error("the message is empty")
            return
        self.accept()


def _tint(palette: QPalette, colour: str, share: float) -> str:
    """The palette's base colour with a little of ``colour`` mixed in (display only)."""
    base = palette.color(QPalette.ColorRole.Base)
    tint = QColor(colour)
    mixed = QColor(
        round(base.red() * (1 - share) + tint.red() * share),
        round(base.green() * (1 - share) + tint.green() * share),
        round(base.blue() * (1 - share) + tint.blue() * share),
    )
    return str(mixed.name())


class TicketPanel(QWidget):
    """One ticket, worked through the seeds' workflow. ``clock`` is injectable for tests."""

    #: The card was read and rendered (after a background read: the newest one).
    cardLoaded = Signal()

    def __init__(
        self,
        replica: Replica,
        parent: QWidget | None = None,
        *,
        clock: Clock = utcnow,
        asynchronous: bool = False,
    ) -> None:
        super().__init__(parent)
        self.replica = replica
        self._clock = clock
        #: Read the card on a worker (the app's window): a busy replica never stalls the GUI
        #: thread. Tests of the panel alone read inline, to assert right after a call.
        self._async = asynchronous
        self._reads = 0
        self._reading = False
        self._ticket_id: uuid.UUID | None = None
        self._view: TicketView | None = None
        self._me: Me | None = None
        self._drafts: dict[uuid.UUID, str] = {}
        self._rendered_history: tuple[HistoryItem, ...] | None = None
        self._rendered_fields: dict[str, Any] = {}
        self.tell_dialog: TellCustomerDialog | None = None
        self.confirm_box: QMessageBox | None = None
        self.sla_state: SlaState | None = None
        self._build()
        self._runner = MutationRunner(replica, self.message)
        self._sla_timer = QTimer(self)
        self._sla_timer.setInterval(1000)
        self._sla_timer.timeout.connect(self._update_sla)
        self.refresh()

    # ------------------------------------------------------------------ building

    def _build(self) -> None:
        self.title = plain_label()
        font = QFont(self.title.font())
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.fields: dict[str, QLabel] = {}
        # Two columns of facts (what the ticket is | where it stands) so the whole card fits
        # above the history without scrolling; the requester line is long and spans both.
        details = QGridLayout()
        details.setHorizontalSpacing(10)
        details.setVerticalSpacing(3)
        details.setColumnStretch(1, 1)
        details.setColumnStretch(3, 1)
        # Organisation, plan and channel share a line: the contact panel beside this one
        # spells them out with the allotment and entitlement.
        spanning = (
            ("requester", "Requester"),
            ("customer", "Customer"),
            ("reference", "Reference"),
        )
        left = (("tier", "Severity"), ("level", "Level"), ("kind", "Kind"), ("arrived", "Arrived"))
        right = (
            ("status", "Status"),
            ("assignee", "Assignee"),
            ("sla", "Response target"),
            ("first_response", "First response"),
        )
        for row, (key, caption) in enumerate(spanning):
            details.addWidget(_caption(caption), row, 0)
            details.addWidget(self._field(key), row, 1, 1, 3)
        for column, group in ((0, left), (2, right)):
            for row, (key, caption) in enumerate(group, start=len(spanning)):
                details.addWidget(_caption(caption), row, column)
                details.addWidget(self._field(key), row, column + 1)
        last = len(spanning) + max(len(left), len(right))
        details.addWidget(_caption("Extra charges"), last, 0)
        details.addWidget(self._field("charges"), last, 1, 1, 3)

        # Triage
        self.tier_combo = QComboBox()
        for tier, text in _TIER_LABELS.items():
            self.tier_combo.addItem(text, tier)
        self.level_combo = QComboBox()
        for level, text in _LEVEL_LABELS.items():
            self.level_combo.addItem(text, level.value)
        self.triage_button = QPushButton("Triage")
        self.triage_button.clicked.connect(self.triage)
        # For those who may not triage (seed 002: a coordinator assesses the severity).
        self.ask_triage_button = QPushButton("Ask a coordinator to triage")
        self.ask_triage_button.clicked.connect(self.ask_for_triage)

        # Assignment
        self.assign_me_button = QPushButton("Assign to me")
        self.assign_me_button.clicked.connect(self.assign_to_me)
        self.assignee_combo = QComboBox()
        self.assignee_combo.setMinimumContentsLength(14)
        self.assignee_combo.currentIndexChanged.connect(self._update_actions)
        self.assign_button = QPushButton("Assign")
        self.assign_button.clicked.connect(self.assign_to_selected)
        self.release_button = QPushButton("Unassign")
        self.release_button.clicked.connect(self.release)

        # Workflow
        self.tell_button = QPushButton("Tell customer…")
        self.tell_button.clicked.connect(self.open_tell_customer)
        self.wait_button = QPushButton("Wait on customer")
        self.wait_button.clicked.connect(self.wait_on_customer)
        self.resume_button = QPushButton("Resume")
        self.resume_button.clicked.connect(self.resume)
        self.escalate_button = QPushButton("Escalate to 1-on-1…")
        self.escalate_button.clicked.connect(self.confirm_escalation)
        self.resolve_button = QPushButton("Resolve")
        self.resolve_button.clicked.connect(self.resolve)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close_ticket)
        self.reopen_button = QPushButton("Reopen")
        self.reopen_button.clicked.connect(self.reopen)
        # Seed 003's next step for a requester who is not (any longer) validated: shown only
        # then, first in the row, since replying and resolving are refused.
        self.redirect_button = QPushButton("Redirect to validated contacts")
        self.redirect_button.clicked.connect(self.redirect)

        # Extra charges
        self.charges_check = QCheckBox("Extra charges apply")
        self.charges_check.toggled.connect(self._update_actions)
        self.estimate_edit = MoneyEdit()
        self.estimate_edit.textChanged.connect(self._update_actions)
        self.charges_button = QPushButton("Save charges")
        self.charges_button.clicked.connect(self.save_charges)
        self.estimate_error = InlineMessage()

        actions = QGridLayout()
        actions.addWidget(QLabel("Triage:"), 0, 0)
        actions.addWidget(self.tier_combo, 0, 1)
        actions.addWidget(self.level_combo, 0, 2)
        actions.addWidget(self.triage_button, 0, 3)
        actions.addWidget(self.ask_triage_button, 0, 4)
        actions.addWidget(QLabel("Assignment:"), 1, 0)
        actions.addWidget(self.assign_me_button, 1, 1)
        picker = QHBoxLayout()
        picker.addWidget(self.assignee_combo, 1)
        picker.addWidget(self.assign_button)
        actions.addLayout(picker, 1, 2)
        actions.addWidget(self.release_button, 1, 3)
        actions.addWidget(QLabel("Extra charges:"), 2, 0)
        actions.addWidget(self.charges_check, 2, 1)
        estimate = QHBoxLayout()
        estimate.addWidget(QLabel("Estimate:"))
        estimate.addWidget(self.estimate_edit, 1)
        actions.addLayout(estimate, 2, 2)
        actions.addWidget(self.charges_button, 2, 3)
        actions.addWidget(self.estimate_error, 3, 1, 1, 3)
        for button, name in (
            (self.triage_button, "triage"),
            (self.ask_triage_button, "ask-triage"),
            (self.assign_me_button, "assign-me"),
            (self.assign_button, "assign"),
            (self.release_button, "unassign"),
            (self.tell_button, "tell-customer"),
            (self.wait_button, "wait"),
            (self.resume_button, "resume"),
            (self.escalate_button, "escalate"),
            (self.resolve_button, "resolve"),
            (self.close_button, "close"),
            (self.reopen_button, "reopen"),
            (self.redirect_button, "redirect"),
            (self.charges_button, "charges"),
        ):
            button.setIcon(icon(name))
        flow = FlowLayout()  # wraps: which buttons show depends on the ticket
        for button in (
            self.redirect_button,
            self.tell_button,
            self.wait_button,
            self.resume_button,
            self.escalate_button,
            self.resolve_button,
            self.close_button,
            self.reopen_button,
        ):
            flow.addWidget(button)

        self.message = InlineMessage()
        #: Shown when the ticket left the queue's list (resolved, changed elsewhere) while on
        #: show: it stays here until the agent picks another, and this says why it is missing.
        self.left_view_note = QLabel()
        self.left_view_note.setObjectName("leftViewNote")
        self.left_view_note.setTextFormat(Qt.TextFormat.PlainText)
        self.left_view_note.setWordWrap(True)
        self.left_view_note.hide()
        self._left_view: str | None = None
        #: Whether the sync engine reaches the server (the main window says): a reply made
        #: offline is queued, and the panel must not claim it was sent.
        self._online = True

        # The card's top never scrolls away: the subject, what can be done next (the workflow
        # buttons, the triage/assignment/charges controls), the outcome of the last action and
        # the facts; the history and the composer share the rest.
        header = QWidget()
        header.setObjectName("ticketHeader")
        header_layout = QVBoxLayout(header)
        header_layout.setContentsMargins(0, 0, 0, 0)
        header_layout.addWidget(self.left_view_note)
        header_layout.addWidget(self.title)
        header_layout.addLayout(flow)
        header_layout.addLayout(actions)
        header_layout.addWidget(self.message)
        # The facts stand apart from the actions: a rule and some air between them.
        header_layout.addSpacing(6)
        rule = QFrame()
        rule.setFrameShape(QFrame.Shape.HLine)
        rule.setFrameShadow(QFrame.Shadow.Sunken)
        header_layout.addWidget(rule)
        header_layout.addSpacing(4)
        header_layout.addLayout(details)

        self.history = QTextBrowser()
        self.history.setOpenLinks(False)
        self.history.setPlaceholderText("No history yet.")
        # Never fewer than about eight lines, however much the card above it holds.
        self.history.setMinimumHeight(self.history.fontMetrics().lineSpacing() * 8)
        #: Whether the history follows its end (the newest entry) as it grows: the document
        #: is laid out lazily, so the scroll range is only right later (rangeChanged).
        self._history_at_end = True
        self._history_to_end = False
        bar = self.history.verticalScrollBar()
        bar.rangeChanged.connect(self._history_range_changed)
        bar.actionTriggered.connect(self._history_scrolled)

        self.reply_mode = QPushButton("Reply to customer")
        self.note_mode = QPushButton("Internal note")
        self._modes = QButtonGroup(self)
        for button in (self.reply_mode, self.note_mode):
            button.setCheckable(True)
            self._modes.addButton(button)
        self._modes.setExclusive(True)
        self.reply_mode.setChecked(True)
        self._modes.buttonToggled.connect(self._mode_changed)
        self.composer = ComposerEdit()
        self.composer.send_requested = self.send
        self.send_button = QPushButton("Send reply")
        self.send_button.setIcon(icon("send"))
        self.reply_mode.setIcon(icon("reply"))
        self.note_mode.setIcon(icon("note"))
        self.send_button.clicked.connect(self.send)
        composer = QWidget()
        composer_layout = QVBoxLayout(composer)
        composer_layout.setContentsMargins(0, 0, 0, 0)
        modes = QHBoxLayout()
        modes.addWidget(self.reply_mode)
        modes.addWidget(self.note_mode)
        modes.addStretch(1)
        modes.addWidget(self.send_button)
        composer_layout.addLayout(modes)
        composer_layout.addWidget(self.composer)

        self.splitter = QSplitter(Qt.Orientation.Vertical)
        self.splitter.setObjectName("ticketPanelSplitter")
        self.splitter.addWidget(self.history)
        self.splitter.addWidget(composer)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 1)
        self.placeholder = QLabel("Select a ticket to see it here.")
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.card = QWidget()
        card_layout = QVBoxLayout(self.card)
        card_layout.setContentsMargins(0, 0, 0, 0)
        card_layout.addWidget(header)
        card_layout.addWidget(self.splitter, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.card)

    def _field(self, key: str) -> QLabel:
        # Our markup only where the text was escaped first (requester, customer).
        label = rich_label() if key in ("requester", "customer") else plain_label()
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.fields[key] = label
        return label

    # ------------------------------------------------------------------ public API

    @property
    def ticket_id(self) -> uuid.UUID | None:
        return self._ticket_id

    @property
    def view(self) -> TicketView | None:
        return self._view

    def set_online(self, online: bool) -> None:
        self._online = online

    def set_left_view(self, where: str | None) -> None:
        """``where``: the list the shown ticket is no longer in (e.g. the “All open” view), or
        None while it is listed."""
        self._left_view = where
        self._render_left_view()

    def _render_left_view(self) -> None:
        view, where = self._view, self._left_view
        if view is None or where is None:
            self.left_view_note.hide()
            return
        status = workflow.label(view.status.value)
        self.left_view_note.setText(
            f"No longer in {where} (it is {status} now). It stays here until you pick another "
            "ticket."
        )
        self.left_view_note.show()

    def show_ticket(self, ticket_id: uuid.UUID | None) -> None:
        """Show another ticket; the unsent text of the previous one is kept as its draft."""
        if ticket_id == self._ticket_id:
            self.refresh()
            return
        if self._ticket_id is not None:
            text = self.composer.toPlainText()
            if text:
                self._drafts[self._ticket_id] = text
            else:
                self._drafts.pop(self._ticket_id, None)
        self._ticket_id = ticket_id
        self._rendered_history = None
        self._rendered_fields = {}
        self.message.clear_message()
        self.composer.setPlainText(self._drafts.get(ticket_id, "") if ticket_id else "")
        self.refresh()

    @Slot(object)
    def replica_changed(self, _change: object = None) -> None:
        """Connect the app's "replica changed" signal here (GUI thread only)."""
        self.refresh()

    @Slot(object)
    def changes_arrived(self, change: ReplicaChange) -> None:
        """The sync bridge's ``changesArrived``: re-read only when the change can touch the
        ticket on show (its rows, events or waits; the people, plans and contacts it names; a
        reset), not on every pull of a busy team's queue."""
        shown = self._ticket_id
        if shown is not None and (
            change.everything or change.lookups or shown in change.ticket_ids
        ):
            self.refresh()

    def refresh(self, *, inline: bool = False) -> None:
        """Re-read the ticket and re-render it, leaving what the agent is typing alone.

        With ``asynchronous`` the read runs on a worker and the card on show stays (actions
        act on the card the agent sees) until the newest read's result is rendered. ``inline``:
        read here, right after this panel's own mutation wrote the replica on this thread, so
        the card shows its outcome at once."""
        state = self.replica.state
        self._me = (
            Me(state.user_id, state.role)
            if state.user_id is not None and state.role is not None
            else None
        )
        self._reads += 1
        ticket_id, replica, generation = self._ticket_id, self.replica, self._reads
        if ticket_id is None or inline or not self._async:
            self._reading = False
            view = None
            if ticket_id is not None:
                with replica.session() as s:
                    view = load_ticket_view(s, ticket_id)
            self._show(view)
            return

        def read() -> TicketView | None:
            with replica.session() as s:
                return load_ticket_view(s, ticket_id)

        def done(result: object) -> None:
            if not shiboken6.isValid(self):
                return  # the panel was closed while the worker read
            op.deleteLater()
            if generation != self._reads:
                return  # another ticket picked, or a newer change arrived: its read follows
            self._reading = False
            if isinstance(result, Exception):
                log.error("reading ticket %s failed: %s", ticket_id, result, exc_info=result)
                self.message.show_error(f"Could not read this ticket from the local copy: {result}")
                return
            assert result is None or isinstance(result, TicketView)
            self._show(result)

        op: background.Operation[TicketView | None] = background.Operation(
            read, on_success=done, on_failure=done, parent=self
        )
        self._reading = True
        op.start()

    @property
    def card_pending(self) -> bool:
        """A read of the card is on its way (the card on show is the one before it)."""
        return self._reading

    def _show(self, view: TicketView | None) -> None:
        self._view = view
        shown = view is not None and self._me is not None
        self.card.setVisible(shown)
        self.placeholder.setVisible(not shown)
        if self._ticket_id is None:
            self.placeholder.setText("Select a ticket to see it here.")
        elif self._me is None:
            self.placeholder.setText("Sign in to work on tickets.")
        elif view is None:
            self.placeholder.setText("This ticket is not on this desktop (yet).")
        if view is None:
            self._sla_timer.stop()
            self.cardLoaded.emit()
            return
        self._render_details(view)
        self._render_left_view()
        self._render_inputs(view)
        self._render_history(view)
        self._update_actions()
        self._runner.report_server_refusals(view.id)
        if not self._sla_timer.isActive():
            self._sla_timer.start()
        self.cardLoaded.emit()

    def changeEvent(self, event: QEvent) -> None:
        """A palette change (light/dark switch) re-tints the history and the marks."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._view is not None:
            self._rendered_history = None
            self._render_details(self._view)
            self._render_history(self._view)

    # ------------------------------------------------------------------ rendering

    def _render_details(self, view: TicketView) -> None:
        palette = self.palette()
        self.title.setText(view.subject)
        if "requester" in view.missing:
            # Not arrived yet: no "unknown contact <>", and no verdict on validation.
            self.fields["requester"].setText(
                f"{LOADING} (the requester's details arrive with the next sync)"
            )
        else:
            mark = (
                ("✔ validated contact", ok_colour(palette))
                if view.requester_validated
                else ("✖ not a validated contact", error_colour(palette))
            )
            self.fields["requester"].setText(
                f"{html.escape(view.requester_name)} &lt;{html.escape(view.requester_email)}&gt; "
                f"<span style='color:{mark[1].name()}; font-weight:bold'>{mark[0]}</span>"
            )
        self.fields["customer"].setText(
            f"{html.escape(view.organisation_name)} · "
            f"{html.escape(view.plan_name or LOADING)} plan · via {view.channel}"
        )
        self.fields["reference"].setText(str(view.id))
        self.fields["reference"].setToolTip(
            "The ticket's reference: search for any part of it (six characters or more) in "
            "the Every ticket view"
        )
        if view.tier is not None:
            tier_text = f"Tier {view.tier} (assessed; customer stated {view.stated_urgency})"
        else:
            tier_text = f"Stated urgency {view.stated_urgency} (not triaged yet)"
        self.fields["tier"].setText(tier_text)
        self.fields["level"].setText(_LEVEL_LABELS[view.level])
        if view.kind is TicketKind.ONE_ON_ONE:
            since = local_text(view.escalated_at, empty="")
            kind = "1-on-1 tech support (billable" + (f" since {since})" if since else ")")
        else:
            kind = "General support (not billable)"
        self.fields["kind"].setText(kind)
        self.fields["status"].setText(workflow.label(view.status.value).capitalize())
        self.fields["assignee"].setText(view.assignee_name or "Unassigned")
        if view.extra_charges:
            estimate = view.extra_charge_estimate
            self.fields["charges"].setText(
                f"Apply (estimate {money_text(estimate)})"
                if estimate is not None
                else "Apply (no estimate yet)"
            )
        else:
            self.fields["charges"].setText("None")
        self._update_sla()

    def _update_sla(self) -> None:
        """The response clock only (the 1 s tick): no replica read."""
        view = self._view
        label = self.fields["sla"]
        if view is None:
            return
        now = self._clock()
        # Relative times ("2 h ago, 14:02 CET") move with the clock: they tick with the SLA.
        for key, at, empty in (
            ("arrived", view.arrived_at, "—"),
            ("first_response", view.first_response_at, "None yet"),
        ):
            self.fields[key].setText(ago_text(at, now, empty=empty))
            self.fields[key].setToolTip(local_text(at, empty=""))
        status = sla_of(view, now)
        if status is None:
            label.setText("— (the plan is not known on this desktop yet)")
            label.setToolTip("")
            return
        text = f"{target_words(view)}, {due_text(status, now)} · {sla_text(status)}"
        if status.state not in (SlaState.MET, SlaState.MET_LATE):
            text += f" ({status.state.value.replace('_', ' ')})"
        label.setText(text)
        label.setToolTip(
            sla_tooltip(
                status,
                tier=view.effective_tier,
                triaged=view.tier is not None,
                calendar=view.calendar,
                plan_name=view.plan_name,
                now=now,
            )
        )
        palette = QPalette(label.palette())
        colour = sla_colour(status.state, self.palette())
        role = QPalette.ColorRole.WindowText
        palette.setColor(role, colour if colour is not None else self.palette().color(role))
        label.setPalette(palette)
        self.sla_state = status.state

    def _changed(self, key: str, value: Any) -> bool:
        """Whether ``value`` differs from what was last rendered for ``key`` (inputs are only
        reset when the ticket itself changed, not on every refresh)."""
        if key in self._rendered_fields and self._rendered_fields[key] == value:
            return False
        self._rendered_fields[key] = value
        return True

    def _render_inputs(self, view: TicketView) -> None:
        if self._changed("tier", view.effective_tier):
            self.tier_combo.setCurrentIndex(self.tier_combo.findData(view.effective_tier))
        if self._changed("level", view.level):
            self.level_combo.setCurrentIndex(self.level_combo.findData(view.level.value))
        self.triage_button.setText("Re-triage" if view.tier is not None else "Triage")
        if self._changed("charges", (view.extra_charges, view.extra_charge_estimate)):
            self.charges_check.setChecked(view.extra_charges)
            self.estimate_edit.set_amount(view.extra_charge_estimate)
        picked = self.assignee_combo.currentData()
        people = [
            (p.id, f"{p.name} — {_ROLE_WORDS.get(p.role, p.role.value)}, {p.load} open")
            for p in assignee_choices(view)
        ]
        if self._changed("members", tuple(people)):
            self.assignee_combo.blockSignals(True)
            self.assignee_combo.clear()
            self.assignee_combo.addItem("Choose a person…", None)
            for pid, name in people:
                self.assignee_combo.addItem(name, str(pid))
            index = self.assignee_combo.findData(picked) if picked else 0
            self.assignee_combo.setCurrentIndex(max(index, 0))
            self.assignee_combo.blockSignals(False)

    def _render_history(self, view: TicketView) -> None:
        if view.history == self._rendered_history:
            return
        bar = self.history.verticalScrollBar()
        # A new ticket, a reply just sent, or a reader already at the end: show the newest.
        at_end = (
            self._rendered_history is None
            or self._history_to_end
            or bar.value() >= bar.maximum() - 4
        )
        self._history_to_end = False
        previous = bar.value()
        self._rendered_history = view.history
        self._history_at_end = at_end
        self.history.setHtml(history_html(view.history, self.palette()))
        bar.setValue(bar.maximum() if at_end else previous)

    def _history_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._history_at_end:
            self.history.verticalScrollBar().setValue(maximum)

    def _history_scrolled(self, _action: int) -> None:
        """The reader scrolled: follow the end again only once they are back at it."""
        bar = self.history.verticalScrollBar()
        self._history_at_end = bar.sliderPosition() >= bar.maximum() - 4

    def _assign_target(self) -> uuid.UUID | None:
        data = self.assignee_combo.currentData()
        return uuid.UUID(data) if data else None

    def _refusals(self) -> Mapping[Action, str | None]:
        if self._view is None or self._me is None:
            return dict.fromkeys(Action, "no ticket is shown")
        return action_refusals(self._view, self._me, assign_to=self._assign_target())

    def _update_actions(self, *_args: object) -> None:
        view = self._view
        if view is None or self._me is None:
            return
        refusals = self._refusals()
        for action, button in (
            (Action.TRIAGE, self.triage_button),
            (Action.ASSIGN_ME, self.assign_me_button),
            (Action.ASSIGN_OTHER, self.assign_button),
            (Action.RELEASE, self.release_button),
            (Action.TELL, self.tell_button),
            (Action.WAIT, self.wait_button),
            (Action.RESUME, self.resume_button),
            (Action.ESCALATE, self.escalate_button),
            (Action.RESOLVE, self.resolve_button),
            (Action.CLOSE, self.close_button),
            (Action.REOPEN, self.reopen_button),
            (Action.REDIRECT, self.redirect_button),
            (Action.ASK_TRIAGE, self.ask_triage_button),
        ):
            show_availability(button, refusals[action], _PURPOSE[action])
        self.ask_triage_button.setVisible(refusals[Action.ASK_TRIAGE] is None)
        self.redirect_button.setVisible(refusals[Action.REDIRECT] is None)
        target = reopen_target(view.status)
        self.reopen_button.setText("Reopen as new" if target is TicketStatus.NEW else "Reopen")
        triage = refusals[Action.TRIAGE]
        for combo in (self.tier_combo, self.level_combo):
            combo.setEnabled(triage is None)
            combo.setToolTip(_PURPOSE[Action.TRIAGE] if triage is None else capitalised(triage))
        picker = assign_picker_refusal(view, self._me)
        self.assignee_combo.setEnabled(picker is None)
        self.assignee_combo.setToolTip(
            "The person to assign the ticket to" if picker is None else capitalised(picker)
        )
        self._update_charges(refusals[Action.CHARGES], view)
        self._update_composer(refusals)

    def _update_charges(self, refusal: str | None, view: TicketView) -> None:
        self.charges_check.setEnabled(refusal is None)
        self.estimate_edit.setEnabled(refusal is None and self.charges_check.isChecked())
        problem = self.estimate_edit.problem() if self.charges_check.isChecked() else None
        if problem:
            self.estimate_error.show_error(problem)
        else:
            self.estimate_error.clear_message()
        if refusal is None:
            if problem:
                refusal = problem
            elif self._charges_input() == (view.extra_charges, view.extra_charge_estimate):
                refusal = "nothing changed"
        show_availability(self.charges_button, refusal, _PURPOSE[Action.CHARGES])

    def _charges_input(self) -> tuple[bool, Any]:
        applies = self.charges_check.isChecked()
        try:
            return applies, self.estimate_edit.amount() if applies else None
        except ValueError:
            return applies, "invalid"

    def _update_composer(self, refusals: Mapping[Action, str | None]) -> None:
        reply = refusals[Action.REPLY]
        show_availability(self.reply_mode, reply, _PURPOSE[Action.REPLY])
        if reply is not None and self.reply_mode.isChecked():
            self.note_mode.setChecked(True)
        self.note_mode.setToolTip(_PURPOSE[Action.NOTE])
        replying = self.reply_mode.isChecked()
        self.send_button.setText("Send reply" if replying else "Add note")
        self.send_button.setToolTip(_PURPOSE[Action.REPLY if replying else Action.NOTE])

    def _mode_changed(self, *_args: object) -> None:
        if self._view is not None:
            self._update_composer(self._refusals())

    # ------------------------------------------------------------------ mutations

    def _mutate(
        self,
        name: str,
        args: dict[str, Any],
        done: str,
        what: str,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Queue one mutation with the replica's writer and return at once; once applied,
        ``then`` runs and the panel re-reads. A local refusal is shown inline, never raised."""
        if self._view is None:
            return

        def applied(outcome: Outcome) -> None:
            if not outcome.ok:
                return
            if then is not None:
                then()
            self.refresh()

        self._runner.submit(Step(name, args, what, done), context=self._view.id, then=applied)

    def _refuse_if(self, action: Action) -> bool:
        refusal = self._refusals()[action]
        if refusal is not None:
            self.message.show_error(refusal)
            return True
        return False

    def triage(self) -> None:
        if self._view is None or self._refuse_if(Action.TRIAGE):
            return
        tier = int(self.tier_combo.currentData())
        level = str(self.level_combo.currentData())
        self._mutate(
            "triage_ticket",
            {"ticket_id": self._view.id, "tier": tier, "level": level},
            f"triaged as tier {tier}, Level {level[-1]}",
            "the triage",
        )

    def assign_to_me(self) -> None:
        if self._view is None or self._me is None or self._refuse_if(Action.ASSIGN_ME):
            return
        self._assign(self._me.user_id, "the ticket is yours")

    def assign_to_selected(self) -> None:
        target = self._assign_target()
        if self._view is None or target is None or self._refuse_if(Action.ASSIGN_OTHER):
            return
        self._assign(target, f"assigned to {self._view.member_name(target)}")

    def release(self) -> None:
        if self._view is None or self._refuse_if(Action.RELEASE):
            return
        self._assign(None, "the ticket is unassigned")

    def _assign(self, assignee: uuid.UUID | None, done: str) -> None:
        """A check-and-set against the assignee this panel shows: if someone else took the
        ticket meanwhile, the replica (now) or the server (at sync) refuses and says who."""
        assert self._view is not None
        self._mutate(
            "assign_ticket",
            {
                "ticket_id": self._view.id,
                "assignee_id": assignee,
                "expected_assignee_id": self._view.assignee_id,
            },
            done,
            "the assignment",
        )

    def open_tell_customer(self) -> None:
        if self._view is None or self._refuse_if(Action.TELL):
            return
        _discard(self.tell_dialog)
        dialog = TellCustomerDialog(tell_customer_message(self._view), self)
        ticket_id = self._view.id
        dialog.accepted.connect(lambda: self._tell(ticket_id, dialog.message()))
        self.tell_dialog = dialog
        dialog.open()

    def _tell(self, ticket_id: uuid.UUID, message: str) -> None:
        if self._view is None or self._view.id != ticket_id:
            self.message.show_error("another ticket is shown now; the update was not sent")
            return
        self._mutate(
            "tell_customer",
            {"ticket_id": ticket_id, "message": message},
            "the customer was told who has it and what is next",
            "the update",
        )

    def _status(self, target: TicketStatus, done: str) -> None:
        assert self._view is not None
        self._mutate(
            "change_status",
            {"ticket_id": self._view.id, "status": target.value},
            done,
            f"the move to {workflow.label(target.value)}",
        )

    def wait_on_customer(self) -> None:
        if self._view is not None and not self._refuse_if(Action.WAIT):
            self._status(
                TicketStatus.WAITING_ON_CUSTOMER,
                "waiting on the customer: the response clock is paused",
            )

    def resume(self) -> None:
        if self._view is not None and not self._refuse_if(Action.RESUME):
            self._status(TicketStatus.IN_PROGRESS, "back in progress")

    def resolve(self) -> None:
        if self._view is not None and not self._refuse_if(Action.RESOLVE):
            self._status(TicketStatus.RESOLVED, "resolved; the customer is notified")

    def ask_for_triage(self) -> None:
        if self._view is None or self._refuse_if(Action.ASK_TRIAGE):
            return
        me = self._view.member_name(self._me.user_id) if self._me is not None else "Someone"
        self._mutate(
            "add_note",
            {
                "ticket_id": self._view.id,
                "kind": "note",
                "body": f"{me} {TRIAGE_REQUEST}: assess its severity and "
                "route it to Level 1 or Level 2 (it waits in the Triage view).",
            },
            "a coordinator is asked to triage it (a note; the ticket waits in their Triage view)",
            "the request for triage",
        )

    def redirect(self) -> None:
        if self._view is not None and not self._refuse_if(Action.REDIRECT):
            self._mutate(
                "redirect_ticket",
                {"ticket_id": self._view.id},
                "redirected; the validated contacts are asked how to proceed",
                "the redirect",
            )

    def close_ticket(self) -> None:
        if self._view is not None and not self._refuse_if(Action.CLOSE):
            self._status(TicketStatus.CLOSED, "closed")

    def reopen(self) -> None:
        if self._view is None or self._refuse_if(Action.REOPEN):
            return
        target = reopen_target(self._view.status)
        if target is not None:
            self._status(target, "reopened")

    def confirm_escalation(self) -> None:
        if self._view is None or self._refuse_if(Action.ESCALATE):
            return
        _discard(self.confirm_box)
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Escalate to 1-on-1?",
            "Escalate this general support ticket to 1-on-1 tech support?\n\n"
            "Time spent on it is billable to the customer from now on.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        yes = box.button(QMessageBox.StandardButton.Yes)
        yes.setText("Escalate")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        ticket_id = self._view.id

        def answered(button: QAbstractButton) -> None:
            if button is yes:
                self._escalate(ticket_id)

        box.buttonClicked.connect(answered)
        self.confirm_box = box
        box.open()

    def _escalate(self, ticket_id: uuid.UUID) -> None:
        if self._view is None or self._view.id != ticket_id:
            return
        self._mutate(
            "escalate_ticket",
            {"ticket_id": ticket_id},
            "escalated to 1-on-1: time is billable from now on",
            "the escalation",
        )

    def save_charges(self) -> None:
        if self._view is None:
            return
        problem = self.estimate_edit.problem() if self.charges_check.isChecked() else None
        if problem:
            self.estimate_error.show_error(problem)
            return
        if self._refuse_if(Action.CHARGES):
            return
        applies, estimate = self._charges_input()
        self._mutate(
            "set_extra_charges",
            {
                "ticket_id": self._view.id,
                "applies": applies,
                "estimate": str(estimate) if estimate is not None else None,
            },
            "extra charges recorded" if applies else "no extra charges",
            "the extra charges",
        )

    def send(self) -> None:
        """Send the composer's text as a reply or an internal note (Ctrl+Enter)."""
        if self._view is None:
            return
        body = self.composer.toPlainText().strip()
        if not body:
            self.message.show_error("write something first")
            return
        reply = self.reply_mode.isChecked()
        if self._refuse_if(Action.REPLY if reply else Action.NOTE):
            return
        ticket_id = self._view.id
        self._history_to_end = True  # what was just sent is what the agent wants to see

        def sent() -> None:
            """Clear the composer, unless the agent moved on to another ticket meanwhile (that
            draft is theirs) or typed on (their new text stays)."""
            self._drafts.pop(ticket_id, None)
            if self._ticket_id == ticket_id and self.composer.toPlainText().strip() == body:
                self.composer.clear()

        self._mutate(
            "add_note",
            {"ticket_id": ticket_id, "body": body, "kind": "reply" if reply else "note"},
            (
                "reply sent"
                if self._online
                else "reply queued: it is sent when this desktop is back online"
            )
            if reply
            else "note added",
            "the reply" if reply else "the note",
            then=sent,
        )


def _caption(text: str) -> QLabel:
    label = QLabel(text + ":")
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
    label.setEnabled(False)  # the disabled palette greys captions, so the values stand out
    return label


def _discard(dialog: QObject | None) -> None:
    """Drop the previous instance of a dialog the panel re-creates on each use."""
    if dialog is not None:
        dialog.deleteLater()


def history_html(items: tuple[HistoryItem, ...], palette: QPalette) -> str:
    """The history as rich text: replies, internal notes and notifications each on their own
    tint of the palette's base colour (readable in light and dark), changes plain."""
    muted = palette.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text).name()
    tints = {
        "reply": _tint(palette, "#1e88e5", 0.16),
        "note": _tint(palette, "#fbc02d", 0.22),
        "notification": _tint(palette, "#43a047", 0.14),
    }
    badges = {"reply": "REPLY TO CUSTOMER", "note": "INTERNAL NOTE", "notification": "EMAIL"}
    parts = []
    for item in items:
        body = (
            f"<p style='white-space:pre-wrap; margin-top:4px'>{html.escape(item.body)}</p>"
            if item.body
            else ""
        )
        badge = badges.get(item.style)
        badge_html = f"<small><b>{badge}</b></small> · " if badge else ""
        inner = (
            f"{badge_html}<b>{html.escape(item.title)}</b><br>"
            f"<small style='color:{muted}'>{html.escape(item.who)} · "
            f"{html.escape(local_text(item.at))}</small>{body}"
        )
        bg = tints.get(item.style)
        style = f" bgcolor='{bg}'" if bg else ""
        parts.append(
            f"<table width='100%' cellpadding='6' cellspacing='0'{style}><tr><td>{inner}"
            "</td></tr></table><div style='font-size:4px'>&nbsp;</div>"
        )
    return "".join(parts)
