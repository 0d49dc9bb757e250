"""The contact-validation panel, beside the ticket: may this requester be helped, and on what.

For the shown ticket's requester and organisation it answers, from the replica and the rules:

* is the requester a validated support contact (seed 003), in a mark nobody can miss;
* the organisation's plan, its allotment of validated contacts (used / total) and who holds
  the slots (:func:`agentdesk.policy.contacts.allotment_usage`);
* the entitlement this calendar year (seed 000): conversations used of the allowance (or
  unlimited), the review bonus and whether the organisation qualifies. Conversations are the
  organisation's tickets that arrived in the team's calendar year (its time zone is the
  replica's ``Tenant.timezone``), redirected ones excluded, as the server counts them;
* whether the ticket's channel is included in the plan.

Actions: validate the requester (if a slot is free), swap them in for a validated contact,
switch a validated contact out, and redirect the ticket (seed 003: not worked; the validated
contacts are notified and asked how to proceed; the ticket records it). A refused action is
disabled with the rules' own sentence (``ContactRefused.message``) as its tooltip.
"""

from __future__ import annotations

import html
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import shiboken6
from PySide6.QtCore import QEvent, Qt, Signal, Slot
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ...models import Contact, Organisation, Plan, Tenant, Ticket, TicketStatus, utcnow
from ...policy import contacts as contact_rules
from ...policy import entitlements, workflow
from ...policy.errors import PolicyError
from ...policy.plans import SupportPlan
from ...policy.zones import zone_or_utc
from ...queries.access import statement_refusal
from ...queries.conversations import conversations_in_year
from ...sync.replica import Replica
from .. import background
from ..panel_widgets import (
    InlineMessage,
    MutationRunner,
    error_colour,
    ok_colour,
    plain_label,
    rich_label,
    show_availability,
)
from ..shell.sync_bridge import ReplicaChange
from ..writer import Outcome, Step

log = logging.getLogger(__name__)

__all__ = ["ContactPanel", "ContactView", "load_contact_view"]

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class ContactView:
    """Everything the panel shows for one ticket, copied out of the replica."""

    ticket_id: uuid.UUID
    status: TicketStatus
    channel: str
    arrived_at: datetime
    requester: contact_rules.Contact
    organisation_id: uuid.UUID
    organisation_name: str
    verified_reviews: int
    recent_reviews: int
    plan: SupportPlan
    catalogue: tuple[SupportPlan, ...]
    contacts: tuple[contact_rules.Contact, ...]
    tz: str
    year: int
    #: The organisation's conversations in the team's current calendar year.
    used_this_year: int
    #: Conversations of the ticket's own year that arrived before it (its entitlement check).
    used_before_ticket: int
    ticket_year: int

    @property
    def usage(self) -> contact_rules.AllotmentUsage:
        return contact_rules.allotment_usage(self.plan, self.contacts)

    def contact(self, contact_id: str) -> contact_rules.Contact | None:
        return next((c for c in self.contacts if c.id == contact_id), None)


class ContactDataError(Exception):
    """The replica holds data the rules refuse (e.g. a contact without an email address)."""


class ContactDataLoading(Exception):
    """The ticket is here but its requester, organisation or plan has not arrived yet: nothing
    can be said about validation or entitlement until it has (never assert a rule on missing
    data)."""


def _policy_contact(c: Contact) -> contact_rules.Contact:
    return contact_rules.Contact(id=str(c.id), name=c.name, email=c.email, validated=c.validated)


def load_contact_view(
    session: Session, ticket_id: uuid.UUID, now: datetime, tenant_id: uuid.UUID | None
) -> ContactView | None:
    """One ticket's contact and entitlement picture; None when the replica lacks the ticket,
    :class:`ContactDataLoading` when it lacks the requester, organisation or plan (yet).

    Conversations are counted by :mod:`agentdesk.queries.conversations`, the count the server
    and the create-ticket mutator use.
    """
    ticket = session.get(Ticket, ticket_id)
    if ticket is None or ticket.deleted:
        return None
    org = session.get(Organisation, ticket.organisation_id)
    requester = session.get(Contact, ticket.requester_id)
    plan_row = session.get(Plan, org.plan_id) if org is not None else None
    if org is None or requester is None or plan_row is None:
        missing = [
            what
            for what, row in (("requester", requester), ("organisation", org), ("plan", plan_row))
            if row is None
        ]
        raise ContactDataLoading(" and ".join(missing))
    tenant = session.get(Tenant, tenant_id) if tenant_id is not None else None
    tz, _ = zone_or_utc(tenant.timezone if tenant is not None else "UTC")
    try:
        plan = plan_row.to_policy()
        catalogue = tuple(
            p.to_policy() for p in session.scalars(select(Plan).where(Plan.deleted.is_(False)))
        )
        contacts = tuple(
            _policy_contact(c)
            for c in session.scalars(
                select(Contact)
                .where(Contact.organisation_id == org.id, Contact.deleted.is_(False))
                .order_by(Contact.name, Contact.id)
            )
        )
        requester_rule = _policy_contact(requester)
        year = entitlements.calendar_year_of(now, tz)
        ticket_year = entitlements.calendar_year_of(ticket.arrived_at, tz)
    except PolicyError as exc:
        raise ContactDataError(f"{exc.field}: {exc.message}") from None

    used_this_year = conversations_in_year(session, org.id, year, tz)
    used_before = conversations_in_year(
        session, org.id, ticket_year, tz, before=(ticket.arrived_at, ticket.id)
    )
    return ContactView(
        ticket_id=ticket.id,
        status=ticket.status,
        channel=ticket.channel,
        arrived_at=ticket.arrived_at,
        requester=requester_rule,
        organisation_id=org.id,
        organisation_name=org.name,
        verified_reviews=org.verified_reviews,
        recent_reviews=org.recent_reviews,
        plan=plan,
        catalogue=catalogue,
        contacts=contacts,
        tz=tz,
        year=year,
        used_this_year=used_this_year,
        used_before_ticket=used_before,
        ticket_year=ticket_year,
    )


def open_tickets_of(session: Session, organisation_id: uuid.UUID, contact_id: uuid.UUID) -> int:
    """How many open tickets ``contact_id`` asked (read through the organisation's index)."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Ticket)
            .where(
                Ticket.organisation_id == organisation_id,
                Ticket.requester_id == contact_id,
                Ticket.deleted.is_(False),
                Ticket.status.in_([TicketStatus(s) for s in sorted(workflow.OPEN_STATUSES)]),
            )
        )
        or 0
    )


# --------------------------------------------------------------------------------- rules


def validate_refusal(view: ContactView) -> str | None:
    result = contact_rules.validate_contact(view.plan, view.contacts, view.requester.id)
    return result.message if isinstance(result, contact_rules.ContactRefused) else None


def swap_refusal(view: ContactView, out_id: str | None) -> str | None:
    """Why the requester cannot be swapped in for ``out_id`` (the contact picked)."""
    if view.requester.validated:
        return f"{view.requester.display} is already a validated contact; nothing to swap in."
    if not view.usage.holders:
        return (
            f"{view.organisation_name} has no validated contact to swap out; validate "
            f"{view.requester.name} instead."
        )
    if out_id is None:
        return "Pick the validated contact to swap out."
    result = contact_rules.swap_contact(view.plan, view.contacts, out_id, view.requester.id)
    return result.message if isinstance(result, contact_rules.ContactRefused) else None


def switch_out_refusal(view: ContactView, out_id: str | None) -> str | None:
    if not view.usage.holders:
        return f"{view.organisation_name} has no validated contacts to switch out."
    if out_id is None:
        return "Pick the validated contact to switch out."
    result = contact_rules.invalidate_contact(view.plan, view.contacts, out_id)
    return result.message if isinstance(result, contact_rules.ContactRefused) else None


def redirect_refusal(view: ContactView) -> str | None:
    if view.requester.validated:
        return "The requester is a validated contact; work the ticket instead."
    return workflow.transition_refusal(view.status.value, TicketStatus.REDIRECTED.value)


def entitlement(view: ContactView) -> entitlements.EntitlementDecision:
    """This ticket's request checked as the server checked it when it arrived."""
    return entitlements.check_request(
        view.plan,
        channel=view.channel,
        verified_reviews=view.verified_reviews,
        reviews_last_6_months=view.recent_reviews,
        conversations_this_year=view.used_before_ticket,
        year=view.ticket_year,
        catalogue=view.catalogue,
    )


# --------------------------------------------------------------------------------- widget


class ContactPanel(QWidget):
    """Contact validation and entitlement for the shown ticket. ``clock`` is for tests."""

    #: "Statement…" on the organisation: the window opens the workbench's statement dialog.
    statementRequested = Signal(object)  # organisation id

    def __init__(
        self, replica: Replica, parent: QWidget | None = None, *, clock: Clock = utcnow
    ) -> None:
        super().__init__(parent)
        self.replica = replica
        self._clock = clock
        self._ticket_id: uuid.UUID | None = None
        self._view: ContactView | None = None
        #: The open "switch out?" question, if any (tests answer it).
        self.confirm_box: QMessageBox | None = None
        self._build()
        self._runner = MutationRunner(replica, self.message)
        self._generation = 0
        self.refresh()

    def _build(self) -> None:
        self.mark = plain_label()
        font = QFont(self.mark.font())
        font.setPointSizeF(font.pointSizeF() * 1.6)
        font.setBold(True)
        self.mark.setFont(font)
        self.mark.setWordWrap(True)
        self.requester_label = rich_label()  # the requester's name is escaped into it
        self.requester_label.setWordWrap(True)
        self.fields: dict[str, QLabel] = {}
        form = QFormLayout()
        for key, caption in (
            ("organisation", "Organisation"),
            ("plan", "Plan"),
            ("allotment", "Validated contacts"),
            ("conversations", "Conversations"),
            ("bonus", "Review bonus"),
            ("channel", "Channel"),
            ("request", "This request"),
        ):
            label = rich_label()  # names in these are escaped (html.escape) into our markup
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = label
            form.addRow(caption + ":", label)

        self.validate_button = QPushButton("Validate")
        self.validate_button.clicked.connect(self.validate_requester)
        self.holder_combo = QComboBox()
        self.holder_combo.currentIndexChanged.connect(self._update_actions)
        self.swap_button = QPushButton("Swap in")
        self.swap_button.clicked.connect(self.swap_requester_in)
        self.switch_out_button = QPushButton("Switch out")
        self.switch_out_button.clicked.connect(self.switch_out)
        self.redirect_button = QPushButton("Redirect the ticket")
        self.redirect_button.clicked.connect(self.redirect)
        self.statement_button = QPushButton("Statement…")
        self.statement_button.clicked.connect(self._request_statement)
        self.message = InlineMessage()

        buttons = QHBoxLayout()
        buttons.addWidget(self.validate_button)
        buttons.addWidget(self.redirect_button)
        buttons.addStretch(1)
        buttons.addWidget(self.statement_button)
        holder_buttons = QHBoxLayout()
        holder_buttons.addWidget(self.swap_button)
        holder_buttons.addWidget(self.switch_out_button)
        holder_buttons.addStretch(1)

        content = QWidget()
        body = QVBoxLayout(content)
        body.addWidget(self.mark)
        body.addWidget(self.requester_label)
        body.addLayout(form)
        body.addLayout(buttons)
        body.addWidget(QLabel("A validated contact holding a slot:"))
        body.addWidget(self.holder_combo)
        body.addLayout(holder_buttons)
        body.addWidget(self.message)
        body.addStretch(1)
        self.body = QScrollArea()
        self.body.setWidget(content)
        self.body.setWidgetResizable(True)
        self.body.setFrameShape(QFrame.Shape.NoFrame)
        self.placeholder = QLabel("Select a ticket to check its requester.")
        self.placeholder.setWordWrap(True)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.placeholder)
        layout.addWidget(self.body)

    # ------------------------------------------------------------------ public API

    @property
    def view(self) -> ContactView | None:
        return self._view

    def show_ticket(self, ticket_id: uuid.UUID | None) -> None:
        if ticket_id != self._ticket_id:
            self.message.clear_message()
        self._ticket_id = ticket_id
        self.refresh()

    @Slot(object)
    def replica_changed(self, _change: object = None) -> None:
        """Connect the app's "replica changed" signal here (GUI thread only)."""
        self.refresh()

    @Slot(object)
    def changes_arrived(self, change: ReplicaChange) -> None:
        """The sync bridge's ``changesArrived``: re-read only when the change can touch the
        ticket shown (its row; its organisation's tickets, which the year's conversations
        count; contacts, organisations and plans; the team's zone; a reset), not on every
        pull of a busy team's queue."""
        if self._ticket_id is None:
            return
        view = self._view
        if (
            change.everything
            or change.lookups
            or self._ticket_id in change.ticket_ids
            or "tenants" in change.tables
            or view is None
            or view.organisation_id in change.organisation_ids
        ):
            self.refresh()

    def refresh(self) -> None:
        """Re-read the shown ticket's contact picture on a worker (the year's conversation
        count is the heaviest part), then render; the answer to the latest request is shown."""
        self._generation += 1
        generation, ticket_id = self._generation, self._ticket_id
        if ticket_id is None:
            self._show(None, None)
            return
        replica, now, tenant_id = self.replica, self._clock(), self.replica.state.tenant_id

        def work() -> tuple[ContactView | None, str | None]:
            try:
                with replica.session() as s:
                    return load_contact_view(s, ticket_id, now, tenant_id), None
            except ContactDataError as exc:
                return None, f"The organisation's data cannot be checked: {exc}"
            except ContactDataLoading as exc:
                return None, (
                    f"Loading the ticket's {exc}… Validation and entitlement are "
                    "shown once they have arrived."
                )

        def done(result: tuple[ContactView | None, str | None]) -> None:
            op.deleteLater()
            if generation == self._generation and shiboken6.isValid(self):
                self._show(*result)

        def failed(exc: Exception) -> None:
            op.deleteLater()
            log.error("reading the contact panel failed: %s", exc, exc_info=exc)

        op: background.Operation[tuple[ContactView | None, str | None]] = background.Operation(
            work, on_success=done, on_failure=failed, parent=self
        )
        op.start()

    def _show(self, view: ContactView | None, problem: str | None) -> None:
        self._view = view
        self.body.setVisible(view is not None)
        self.placeholder.setVisible(view is None)
        if view is None:
            self.placeholder.setText(
                problem
                or (
                    "Select a ticket to check its requester."
                    if self._ticket_id is None
                    else "This ticket is not on this desktop (yet)."
                )
            )
            return
        self._render(view)
        self._update_actions()
        self._runner.report_server_refusals(view.ticket_id)

    def changeEvent(self, event: QEvent) -> None:
        """A palette change (light/dark switch) re-colours the marks."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._view is not None:
            self._render(self._view)

    # ------------------------------------------------------------------ rendering

    def _render(self, view: ContactView) -> None:
        palette = self.palette()
        requester = view.requester
        role = QPalette.ColorRole.WindowText
        mark_palette = QPalette(self.mark.palette())
        if requester.validated:
            self.mark.setText("✔ Validated contact")
            mark_palette.setColor(role, ok_colour(palette))
            note = f"{html.escape(requester.display)} may be helped on this plan."
        else:
            self.mark.setText("✖ Not a validated contact")
            mark_palette.setColor(role, error_colour(palette))
            note = (
                f"{html.escape(requester.display)} is not validated: the request is not "
                "worked; it is redirected to the organisation's validated contacts."
            )
        self.mark.setPalette(mark_palette)
        self.requester_label.setText(note)

        self.fields["organisation"].setText(html.escape(view.organisation_name))
        channels = ", ".join(sorted(view.plan.channels)) or "none"
        self.fields["plan"].setText(f"{html.escape(view.plan.name)} (channels: {channels})")

        usage = view.usage
        # Names only: eight addresses in a row fill the panel; the addresses are in the
        # tooltip and in the holder picker below.
        holders = ", ".join(html.escape(h.name) for h in usage.holders) or "nobody"
        allotment = f"{usage.used} of {usage.total} used — held by {holders}"
        self.fields["allotment"].setToolTip(
            "\n".join(h.display for h in usage.holders) or "No validated contacts yet."
        )
        if usage.over_allotment:
            allotment += (
                f". <b>Over the allotment by {usage.over_by}</b>: switch "
                f"{usage.over_by} out before anyone new is validated"
            )
        elif usage.free:
            allotment += f" ({usage.free} free)"
        self.fields["allotment"].setText(allotment)

        allowance = entitlements.conversation_allowance(
            view.plan, view.verified_reviews, view.recent_reviews
        )
        if allowance is None:
            conversations = (
                f"{view.used_this_year} in {view.year} (unlimited on {html.escape(view.plan.name)})"
            )
        else:
            left = max(allowance - view.used_this_year, 0)
            conversations = (
                f"{view.used_this_year} of {allowance} used in {view.year} ({left} left)"
            )
        self.fields["conversations"].setText(conversations)

        plan = view.plan
        if plan.unlimited or plan.review_bonus_conversations == 0:
            bonus = f"not offered on {html.escape(plan.name)}"
        else:
            rule = (
                f"+{plan.review_bonus_conversations} for ≥{plan.min_verified_reviews} verified "
                f"reviews and ≥{plan.min_recent_reviews} in the last 6 months"
            )
            have = f"{view.verified_reviews} verified, {view.recent_reviews} recent"
            qualifies = entitlements.review_bonus_applies(
                plan, view.verified_reviews, view.recent_reviews
            )
            bonus = f"{rule}: {'qualifies' if qualifies else 'does not qualify'} ({have})"
        self.fields["bonus"].setText(bonus)

        decision = entitlement(view)
        ok, bad = ok_colour(palette).name(), error_colour(palette).name()
        if decision.channel_allowed:
            channel = (
                f"<span style='color:{ok}'>✔</span> {view.channel.capitalize()} is "
                f"included in {html.escape(plan.name)}"
            )
        else:
            channel = f"<span style='color:{bad}'>✖</span> {html.escape(decision.reason)}"
        self.fields["channel"].setText(channel)
        if decision.allowed:
            request = f"<span style='color:{ok}'>✔</span> {html.escape(decision.reason)}"
        elif decision.code == "channel_not_in_plan":
            request = f"<span style='color:{bad}'>✖</span> not entitled on this channel (see above)"
        else:
            request = f"<span style='color:{bad}'>✖</span> {html.escape(decision.reason)}"
        self.fields["request"].setText(request)

        picked = self.holder_combo.currentData()
        self.holder_combo.blockSignals(True)
        self.holder_combo.clear()
        for holder in usage.holders:
            self.holder_combo.addItem(holder.display, holder.id)
        index = self.holder_combo.findData(picked) if picked else -1
        self.holder_combo.setCurrentIndex(index if index >= 0 else (0 if usage.holders else -1))
        self.holder_combo.blockSignals(False)
        self.validate_button.setText(f"Validate {requester.name}")
        self.swap_button.setText(f"Swap {requester.name} in for them")
        self.switch_out_button.setText("Switch them out")

    def _picked_holder(self) -> str | None:
        data = self.holder_combo.currentData()
        return str(data) if data else None

    def _update_actions(self, *_args: object) -> None:
        view = self._view
        if view is None:
            return
        picked = self._picked_holder()
        show_availability(
            self.validate_button,
            validate_refusal(view),
            f"Validate {view.requester.name} as a support contact (takes a free slot)",
        )
        show_availability(
            self.swap_button,
            swap_refusal(view, picked),
            f"Switch the picked contact out and {view.requester.name} in",
        )
        show_availability(
            self.switch_out_button,
            switch_out_refusal(view, picked),
            "Switch the picked contact out (frees their slot)",
        )
        self.holder_combo.setEnabled(bool(view.usage.holders))
        refusal = redirect_refusal(view)
        purpose = "Do not work the ticket; notify the validated contacts"
        if refusal is None:
            routing = contact_rules.route_request(view.plan, view.contacts, view.requester.id)
            purpose = routing.history
        show_availability(self.redirect_button, refusal, purpose)
        show_availability(
            self.statement_button,
            statement_refusal(self.replica.state.role),
            "The organisation's time statement as PDF or CSV",
        )

    # ------------------------------------------------------------------ actions

    def _request_statement(self) -> None:
        if self._view is not None and statement_refusal(self.replica.state.role) is None:
            self.statementRequested.emit(self._view.organisation_id)

    def _run(self, name: str, args: dict[str, object], done: str, what: str) -> None:
        """Queue the mutation with the replica's writer; re-read once it was applied."""
        assert self._view is not None

        def applied(outcome: Outcome) -> None:
            if outcome.ok:
                self.refresh()

        self._runner.submit(
            Step(name, args, what, done), context=self._view.ticket_id, then=applied
        )

    def _refused(self, refusal: str | None) -> bool:
        if refusal is not None:
            self.message.show_error(refusal)
        return refusal is not None

    @staticmethod
    def _next_step(view: ContactView) -> str:
        """After the requester is validated on a redirected ticket, what the agent does next
        (the ticket is not reopened behind their back: the validated contacts may have asked
        for something else)."""
        if view.status is TicketStatus.REDIRECTED:
            return "; use Reopen on the ticket to work it"
        return ""

    def validate_requester(self) -> None:
        view = self._view
        if view is None or self._refused(validate_refusal(view)):
            return
        self._run(
            "validate_contact",
            {"contact_id": view.requester.id},
            f"{view.requester.name} is now a validated contact{self._next_step(view)}",
            f"validating {view.requester.name}",
        )

    def swap_requester_in(self) -> None:
        view = self._view
        picked = self._picked_holder()
        if view is None or self._refused(swap_refusal(view, picked)) or picked is None:
            return
        leaving = view.contact(picked)
        name = leaving.name if leaving is not None else "the contact"
        self._run(
            "swap_contact",
            {"out_id": picked, "in_id": view.requester.id},
            f"swapped {name} out and {view.requester.name} in{self._next_step(view)}",
            f"the swap of {name} for {view.requester.name}",
        )

    def switch_out(self) -> None:
        """Ask first: switching a contact out stops the work on every open ticket they asked
        (seed 003), not only on the one shown."""
        view = self._view
        picked = self._picked_holder()
        if view is None or self._refused(switch_out_refusal(view, picked)) or picked is None:
            return
        leaving = view.contact(picked)
        name = leaving.name if leaving is not None else "the contact"
        with self.replica.session() as s:
            open_tickets = open_tickets_of(s, view.organisation_id, uuid.UUID(picked))
        if open_tickets:
            tickets = "1 open ticket" if open_tickets == 1 else f"{open_tickets} open tickets"
            consequence = (
                f"{name} has {tickets}. Once switched out, none of them can be replied to or "
                "resolved: each must be redirected to the validated contacts, or "
                f"{name} validated again."
            )
        else:
            consequence = f"{name} has no open tickets."
        if self.confirm_box is not None:
            self.confirm_box.deleteLater()
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "Switch out a validated contact?",
            f"Switch {name} out of {view.organisation_name}'s validated support contacts?"
            f"\n\n{consequence}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
            self,
        )
        box.setTextFormat(Qt.TextFormat.PlainText)
        yes = box.button(QMessageBox.StandardButton.Yes)
        yes.setText("Switch out")
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        ticket_id = view.ticket_id

        def answered(button: QAbstractButton) -> None:
            shown = self._view
            if button is yes and shown is not None and shown.ticket_id == ticket_id:
                self._run(
                    "invalidate_contact",
                    {"contact_id": picked},
                    f"{name} was switched out",
                    f"switching {name} out",
                )

        box.buttonClicked.connect(answered)
        self.confirm_box = box
        box.open()

    def redirect(self) -> None:
        view = self._view
        if view is None or self._refused(redirect_refusal(view)):
            return
        routing = contact_rules.route_request(view.plan, view.contacts, view.requester.id)
        notified = ", ".join(c.name for c in routing.notify)
        done = (
            f"redirected; {notified} notified and asked how to proceed"
            if notified
            else "redirected; the organisation has no validated contacts to notify"
        )
        self._run("redirect_ticket", {"ticket_id": view.ticket_id}, done, "the redirect")
