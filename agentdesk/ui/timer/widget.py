"""The billable timer: always visible (a toolbar widget and a tray menu), kept in the replica.

Seed 001 bills 1-on-1 time per customer per day, rounded up once a day to 30 minutes; general
support is not billable until it escalates to 1-on-1. DESIGN.md: one running timer per person,
persisted the moment it starts, so a crash or a kill loses nothing.

So the timer holds no state of its own. The running timer *is* the replica's
:class:`~agentdesk.models.RunningTimer` row of the signed-in user (``deleted`` False): starting
writes it (``start_timer``, with a client-made UUIDv7 and the start instant), stopping turns it
into a :class:`~agentdesk.models.TimeEntry` (``stop_timer``) in one mutation. A restarted app
reads the same row and carries on from the original start; the stop is recorded exactly once
because the entry id is made here, before the mutation is queued. All of it is replica
mutations, so it works offline and syncs later.

What the widget shows is computed, never stored: the elapsed time (a 1 s ``QTimer`` updating
the labels only, from values read at the last :meth:`TimerWidget.refresh`), and today's raw vs
billed minutes for the customer, with :func:`agentdesk.policy.billing.bill_days` over the
customer's time entries of the team's local day (voided entries left out) plus the running
timer as a provisional item, and "next 30-min increment in mm:ss" from the same bill.

The reads are :mod:`agentdesk.queries.timer` (the running timer, the ticket, today's work) and
:mod:`agentdesk.queries.balances` (today's bill, the prepaid balance). Manual time, corrections,
voids and a forgotten timer's end are dialogs (:mod:`.dialogs`); idle time is :mod:`.idle`; the
tray menu is :mod:`.tray`.

The clock is injectable (``clock=``) so tests move time instead of sleeping.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta

import shiboken6
from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Slot
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractButton,
    QHBoxLayout,
    QLabel,
    QMenu,
    QPushButton,
    QToolButton,
    QWidget,
)

from ...models import Role, TicketKind, new_id, utcnow
from ...policy import billing
from ...policy.billing import WorkItem
from ...queries.balances import (
    Prepaid,
    PrepaidFigures,
    RunningInfo,
    TodayTotals,
    prepaid_figures,
    today_totals,
    zone_of,
)
from ...queries.timer import (
    Clock,
    EntryInfo,
    TicketInfo,
    TimerView,
    read_timer,
    recent_entries,
)
from ...sync.bounds import MAX_SPAN
from ...sync.mutators import TIMEKEEPERS
from ...sync.replica import Replica
from .. import background
from ..icons import icon
from ..panel_widgets import (
    ElidedLabel,
    InlineMessage,
    MutationRunner,
    local_text,
    plain_tooltip,
    show_availability,
)
from ..settings import IDLE_MINUTES
from ..shell.sync_bridge import ReplicaChange
from ..writer import Outcome, Step
from .dialogs import ForgottenTimerDialog, TimeEntryDialog, VoidEntryDialog
from .idle import IdleMonitor, IdlePrompt

log = logging.getLogger(__name__)

__all__ = ["TimerWidget", "elapsed_text", "prepaid_text"]


def elapsed_text(elapsed: timedelta) -> str:
    """ "1:02:03": whole seconds, never negative (a clock set back shows 0:00:00)."""
    total = max(int(elapsed.total_seconds()), 0)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}"


def _mm_ss(value: timedelta) -> str:
    total = max(int(value.total_seconds()), 0)
    minutes, seconds = divmod(total, 60)
    return f"{minutes:02d}:{seconds:02d}"


def _minutes_text(value: timedelta) -> str:
    """Whole minutes, towards zero; a first minute under way is "<1m", not "0m" (beside
    "30m billed", "0m" reads as a billing error)."""
    total = max(int(value.total_seconds()), 0)
    if 0 < total < 60:
        return "<1m"
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m"


def prepaid_text(prepaid: Prepaid | None, left: billing.Balance | None) -> tuple[str, str]:
    """The toolbar's prepaid-hours label and its tooltip."""
    rule = (
        "Prepaid 1-on-1 hours must be used within 90 days of purchase or they are "
        "forfeited; they are never refunded. Each day's billed time draws on the oldest "
        "valid block first."
    )
    if prepaid is None:
        return (
            "No prepaid hours",
            "This customer has bought no 1-on-1 hours: billable time is invoiced as it is worked.",
        )
    if left is None:
        expired = local_text(prepaid.last_expired)
        return ("Prepaid hours expired", f"The last block expired {expired}. {rule}")
    minutes = timedelta(minutes=left.total_minutes)
    if left.total_minutes <= 0:
        text = "Prepaid: none left"
    else:
        text = f"Prepaid: {_minutes_text(minutes)} left"
    if left.next_expiry is not None and left.next_expiry_minutes > 0:
        expiring = _minutes_text(timedelta(minutes=left.next_expiry_minutes))
        text += f" · {expiring} expire {local_text(left.next_expiry)[:10]}"
    lines = [
        f"Block bought {local_text(b.purchased_at)[:10]}: "
        f"{_minutes_text(timedelta(minutes=b.purchased_minutes))}, "
        f"{_minutes_text(timedelta(minutes=b.used_minutes))} used, "
        f"{_minutes_text(timedelta(minutes=b.remaining_minutes))} left, "
        f"expires {local_text(b.expires_at)}"
        for b in left.blocks
        if b.expires_at > left.as_of
    ]
    if left.total_minutes <= 0:
        lines.append("Billable time beyond the prepaid hours is invoiced as overage.")
    return text, "\n".join([*lines, rule])


class TimerWidget(QWidget):
    """The timer for the toolbar. ``set_current_ticket`` tells it the selected ticket;
    ``toggle`` starts (on that ticket) or stops. ``settings`` is where ``IDLE_MINUTES`` is
    read (the application's QSettings by default)."""

    def __init__(
        self,
        replica: Replica,
        parent: QWidget | None = None,
        *,
        clock: Clock = utcnow,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.replica = replica
        self._clock = clock
        self._settings = settings if settings is not None else QSettings()
        self._ticket_id: uuid.UUID | None = None
        self._ticket: TicketInfo | None = None
        self._running: RunningInfo | None = None
        self._running_ticket: TicketInfo | None = None
        self._read_generation = 0
        #: The selected ticket the shown figures were read for (the read runs on a worker).
        self._read_for: uuid.UUID | None = None
        self._user_id: uuid.UUID | None = None
        self._role: Role | None = None
        self._tz = "UTC"
        self._customer: tuple[uuid.UUID, str] | None = None
        self._day: date | None = None
        self._items: list[WorkItem] = []
        self._observers: list[Callable[[], None]] = []
        self._split_tried: set[uuid.UUID] = set()
        self.totals: TodayTotals | None = None
        #: The selected customer's prepaid hours now (None: none bought, or all expired).
        self.balance: billing.Balance | None = None
        self._prepaid: Prepaid | None = None
        self._prepaid_shown: tuple[datetime, RunningInfo | None] | None = None
        self._prepaid_generation = 0
        self.idle_prompt: IdlePrompt | None = None
        self.entry_dialog: TimeEntryDialog | None = None
        self.void_dialog: VoidEntryDialog | None = None
        self.forgotten_dialog: ForgottenTimerDialog | None = None
        self._build()
        self._runner = MutationRunner(replica, self.message)
        self.idle_monitor = IdleMonitor(clock, self)
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self.tick)
        self._ticker.start()
        self.refresh()

    def _build(self) -> None:
        self.elapsed_label = QLabel()
        font = self.elapsed_label.font()
        font.setBold(True)
        font.setStyleHint(QFont.StyleHint.Monospace)
        self.elapsed_label.setFont(font)
        # Elided, not clipped or widening: the toolbar keeps its buttons on screen.
        self.subject_label = ElidedLabel()
        self.subject_label.setMaximumWidth(260)
        self.toggle_button = QPushButton("Start")
        self.toggle_button.clicked.connect(self.toggle)
        self.switch_button = QPushButton("Switch here")
        self.switch_button.clicked.connect(self.switch_to_current)
        self.totals_label = ElidedLabel()
        self.prepaid_label = ElidedLabel()
        self.more_button = QToolButton()
        self.more_button.setText("Time…")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self.more_button)
        self.add_time_action = menu.addAction("Add or correct time…")
        self.add_time_action.triggered.connect(self.open_time_entry_dialog)
        self.void_action = menu.addAction("Void an entry…")
        self.void_action.triggered.connect(self.open_void_dialog)
        self.more_button.setMenu(menu)
        self.message = InlineMessage()
        self.message.setMaximumWidth(360)
        # The look (issue 15): icons on the buttons, the menu button an icon alone.
        self.toggle_button.setIcon(icon("timer"))
        self.switch_button.setIcon(icon("timer-switch"))
        self.more_button.setIcon(icon("time-menu"))
        self.more_button.setToolTip("Add or correct time, or void an entry")
        if not self.more_button.icon().isNull():
            self.more_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(QLabel("Timer"))
        layout.addWidget(self.elapsed_label)
        layout.addWidget(self.subject_label)
        layout.addWidget(self.toggle_button)
        layout.addWidget(self.switch_button)
        layout.addWidget(self.totals_label)
        layout.addWidget(self.prepaid_label)
        layout.addWidget(self.more_button)
        layout.addWidget(self.message)

    # ------------------------------------------------------------------ public API

    @property
    def running(self) -> RunningInfo | None:
        return self._running

    def now(self) -> datetime:
        return self._clock()

    def add_observer(self, observer: Callable[[], None]) -> None:
        """``observer()`` runs after every refresh and tick (the tray menu follows the timer
        this way, without a Python-side signal emitted every second)."""
        self._observers.append(observer)

    def set_current_ticket(self, ticket_id: uuid.UUID | None) -> None:
        self._ticket_id = ticket_id
        self._render_state()  # until the read arrives, start and switch say it is loading
        self.refresh()

    @Slot(object)
    def replica_changed(self, _change: object = None) -> None:
        """Connect the app's "replica changed" signal here (GUI thread only)."""
        self.refresh()

    @Slot(object)
    def changes_arrived(self, change: ReplicaChange) -> None:
        """The sync bridge's ``changesArrived``: re-read only when the change can touch what
        the timer shows (the user's running timer; time entries or hour blocks of the customer
        shown; the tickets it names; the team's zone; names; a reset), not on every pull of a
        busy team's queue."""
        mine = self._user_id in change.person_ids and "running_timers" in change.tables
        shown = {
            t
            for t in (self._ticket_id, self._running.ticket_id if self._running else None)
            if t is not None
        }
        orgs = {self._customer[0]} if self._customer is not None else set()
        if (
            change.everything
            or change.lookups
            or bool(shown & change.ticket_ids)
            or mine
            or "tenants" in change.tables
            or bool(orgs & change.organisation_ids)
        ):
            self.refresh()

    def refresh(self) -> None:
        """Re-read the running timer, the selected ticket and today's entries for the
        customer (a few indexed reads) on a worker, then redraw; the answer to the latest
        request is shown."""
        state = self.replica.state
        self._user_id, self._role = state.user_id, state.role
        self._read_generation += 1
        generation, replica = self._read_generation, self.replica
        user_id, tenant_id, ticket_id = state.user_id, state.tenant_id, self._ticket_id
        now = self._clock()

        def work() -> TimerView:
            with replica.session() as s:
                return read_timer(
                    s, user_id=user_id, tenant_id=tenant_id, ticket_id=ticket_id, now=now
                )

        def done(view: TimerView) -> None:
            op.deleteLater()
            if generation == self._read_generation and shiboken6.isValid(self):
                self._read_for = ticket_id
                self._show_view(view)

        def failed(exc: Exception) -> None:
            op.deleteLater()
            log.error("reading the timer failed: %s", exc, exc_info=exc)

        op: background.Operation[TimerView] = background.Operation(
            work, on_success=done, on_failure=failed, parent=self
        )
        op.start()

    def _show_view(self, view: TimerView) -> None:
        self._tz, self._running, self._ticket = view.tz, view.running, view.ticket
        self.idle_monitor.watch(view.running is not None)
        self._running_ticket = view.running_ticket
        self._customer, self._day, self._items = view.customer, view.day, list(view.items)
        self._prepaid = None
        self._prepaid_shown = None
        if self._split_at_escalation():
            return  # queued: its outcome refreshes
        self._render_state()
        self.tick()

    def toggle(self) -> None:
        """Start on the selected ticket, or stop the running timer (the shortcut's action)."""
        if self._running is not None:
            self.stop()
        else:
            self.start()

    def start(self) -> bool:
        refusal = self._start_refusal()
        if refusal is not None:
            self.message.show_error(refusal)
            return False
        assert self._ticket is not None
        self._queue(self._start_step(self._ticket, self._clock(), "timer started"))
        return True

    def stop(self) -> bool:
        if self._running is None:
            self.message.show_error("no timer is running")
            return False
        now = self._clock()
        if now - self._running.started_at > MAX_SPAN:
            self.open_forgotten_timer_dialog(self._running, now)
            return False
        self._queue(self._stop_step(self._running, now, "timer stopped"))
        return True

    def open_forgotten_timer_dialog(self, running: RunningInfo, now: datetime) -> None:
        def submit(at: datetime, answer: Callable[[str | None], None]) -> None:
            self._queue(
                self._stop_step(running, at, "timer stopped at the time you gave"),
                then=lambda outcome: answer(outcome.refusal),
            )

        _discard(self.forgotten_dialog)
        dialog = ForgottenTimerDialog(running, now, submit, self)
        self.forgotten_dialog = dialog
        dialog.open()

    def switch_to_current(self) -> bool:
        """Stop the running timer and start one on the selected ticket, at the same instant
        (two mutations: the stopped time is recorded even if the start is refused)."""
        refusal = self._switch_refusal()
        if refusal is not None:
            self.message.show_error(refusal)
            return False
        assert self._running is not None
        assert self._ticket is not None
        now = self._clock()
        self._queue(
            self._stop_step(self._running, now, None),
            self._start_step(self._ticket, now, f"switched to {self._ticket.organisation_name}"),
        )
        return True

    # ------------------------------------------------------------------ reading

    def recent_entries(self) -> list[EntryInfo]:
        """Entries of the customer (last 30 days) this user may correct or void."""
        if self._customer is None or self._user_id is None:
            return []
        mine_only = self._role not in TIMEKEEPERS
        with self.replica.session() as s:
            return recent_entries(
                s, self._customer[0], self._clock(), person_id=self._user_id if mine_only else None
            )

    # ------------------------------------------------------------------ rules

    def _start_refusal(self) -> str | None:
        if self._user_id is None:
            return "sign in first"
        if self._running is not None:
            return (
                f"a timer is already running on {self._running.organisation_name}: stop "
                "it first (one running timer per person)"
            )
        if self._ticket_id != self._read_for:
            return "the selected ticket is still loading"
        if self._ticket is None:
            return "select a ticket to time its organisation"
        return None

    def _switch_refusal(self) -> str | None:
        if self._running is None:
            return "no timer is running: start one instead"
        if self._ticket_id != self._read_for:
            return "the selected ticket is still loading"
        if self._ticket is None:
            return "select the ticket to switch to"
        if self._ticket.ticket_id == self._running.ticket_id:
            return "the timer is already on this ticket"
        return None

    # ------------------------------------------------------------------ mutations

    def _queue(self, *steps: Step, then: Callable[[Outcome], None] | None = None) -> None:
        """Hand ``steps`` to the writer; once applied (or refused, shown inline) ``then`` runs
        and the timer re-reads."""

        def applied(outcome: Outcome) -> None:
            if then is not None:
                then(outcome)
            self.refresh()

        self._runner.submit(*steps, then=applied)

    @staticmethod
    def _start_step(ticket: TicketInfo, at: datetime, done: str | None) -> Step:
        return Step(
            "start_timer",
            {
                "timer_id": new_id(),
                "organisation_id": ticket.organisation_id,
                "ticket_id": ticket.ticket_id,
                "started_at": at,
                # Seed 001: general support is not billable; 1-on-1 time is.
                "billable": ticket.kind is TicketKind.ONE_ON_ONE,
            },
            "starting the timer",
            done,
        )

    @staticmethod
    def _stop_step(running: RunningInfo, at: datetime, done: str | None) -> Step:
        return Step(
            "stop_timer",
            {"timer_id": running.timer_id, "entry_id": new_id(), "ended_at": at},
            "stopping the timer",
            done,
        )

    def _split_at_escalation(self) -> bool:
        """Seed 001: once general support escalates to 1-on-1, time from then on is billable.
        A non-billable timer on a ticket that has since escalated is stopped at the escalation
        and a billable one started from that instant (once: the new timer is billable)."""
        running = self._running
        if running is None or running.billable or running.ticket_id is None:
            return False
        if running.timer_id in self._split_tried:
            return False  # tried and refused (shown inline): never loop on it
        ticket = self._running_ticket
        if ticket is None or ticket.kind is not TicketKind.ONE_ON_ONE:
            return False
        at = max(ticket.escalated_at or running.started_at, running.started_at)
        at = min(at, self._clock())
        self._split_tried.add(running.timer_id)
        self._queue(
            self._stop_step(running, at, None),
            self._start_step(
                ticket,
                at,
                "the ticket escalated to 1-on-1: the timer is billable from the escalation on",
            ),
        )
        return True

    # ------------------------------------------------------------------ display

    def _render_state(self) -> None:
        running = self._running
        if running is not None:
            self.toggle_button.setText("Stop")
            self.toggle_button.setEnabled(True)
            self.toggle_button.setToolTip(
                f"Stop timing {running.organisation_name} (started "
                f"{local_text(running.started_at)})"
            )
            what = running.organisation_name
            if running.ticket_subject:
                what += f" · {running.ticket_subject}"
            if not running.billable:
                # First, not last: the toolbar elides the end of a long subject.
                what = f"Not billable (general support) · {what}"
            self.subject_label.setText(what)
            self.subject_label.setToolTip(plain_tooltip(what))
        else:
            self.toggle_button.setText("Start")
            refusal = self._start_refusal()
            purpose = (
                f"Start timing {self._ticket.organisation_name} on this ticket"
                if self._ticket is not None
                else ""
            )
            show_availability(self.toggle_button, refusal, purpose)
            self.subject_label.setText("No timer running")
            self.subject_label.setToolTip("")
        switch_purpose = (
            f"Stop the running timer and start one on {self._ticket.subject}"
            if self._ticket is not None
            else ""
        )
        show_availability(self.switch_button, self._switch_refusal(), switch_purpose)
        can_record = self._customer is not None
        self.add_time_action.setEnabled(can_record)
        self.void_action.setEnabled(can_record)
        self.more_button.setToolTip(
            "Add, correct or void time"
            if can_record
            else "Select a ticket to record time for its organisation"
        )

    def _show_prepaid(self, now: datetime, running: RunningInfo | None) -> None:
        """The customer's prepaid balance, recomputed once a minute while time runs. The
        ledger read and replay (the heaviest part of a tick) run on a worker
        (``queries.balances.prepaid_figures``); the answer to the latest request is shown."""
        minute = (now.replace(second=0, microsecond=0), running)
        if minute == self._prepaid_shown or self._customer is None:
            return
        self._prepaid_shown = minute
        self._prepaid_generation += 1
        generation, replica = self._prepaid_generation, self.replica
        org_id, person, tz = self._customer[0], str(self._user_id), self._tz

        def work() -> PrepaidFigures:
            with replica.session() as s:
                return prepaid_figures(s, org_id, running, person, tz, now)

        def done(result: PrepaidFigures) -> None:
            op.deleteLater()
            if generation != self._prepaid_generation:
                return  # a newer request is on its way
            self._prepaid, self.balance = result.prepaid, result.balance
            text, tip = prepaid_text(result.prepaid, result.balance)
            self.prepaid_label.setText(text)
            self.prepaid_label.setToolTip(tip)

        def failed(exc: Exception) -> None:
            op.deleteLater()
            log.error("prepaid balance failed: %s", exc, exc_info=exc)

        op: background.Operation[PrepaidFigures] = background.Operation(
            work, on_success=done, on_failure=failed, parent=self
        )
        op.start()

    def tick(self) -> None:
        """The 1 s tick: labels only, from the values read at the last refresh."""
        now = self._clock()
        running = self._running
        if self._day is not None and now.astimezone(zone_of(self._tz)).date() != self._day:
            self.refresh()  # the team's day turned: today's entries are other entries
            return
        self.elapsed_label.setText(
            elapsed_text(now - running.started_at) if running is not None else "0:00:00"
        )
        self.totals = None
        if self._customer is not None and self._day is not None and self._user_id is not None:
            self.totals = today_totals(
                self._items,
                self._customer[0],
                self._day,
                self._tz,
                running,
                str(self._user_id),
                now,
            )
            t = self.totals
            text = (
                f"Today, {self._customer[1]}: {_minutes_text(t.raw)} raw billable · "
                f"{t.billed_minutes}m billed"
            )
            if t.raw > timedelta(0):
                text += (
                    f" · next {t.increment_minutes}-min increment in {_mm_ss(t.to_next_increment)}"
                )
            self.totals_label.setText(text)
            self.totals_label.setToolTip(
                "Billable 1-on-1 time outside scheduled blocks is added up per customer per "
                f"day and rounded up once to {t.increment_minutes}-minute increments "
                "(the running timer counts provisionally)."
            )
            self._show_prepaid(now, running)
        else:
            self.totals_label.setText("")
            self.prepaid_label.setText("")
            self.prepaid_label.setToolTip("")
        self.check_idle()
        for observer in list(self._observers):
            owner = getattr(observer, "__self__", None)
            if isinstance(owner, QObject) and not shiboken6.isValid(owner):
                self._observers.remove(observer)  # its widget was deleted
                continue
            observer()

    def idle_minutes(self) -> int:
        return IDLE_MINUTES.read(self._settings)

    def check_idle(self) -> None:
        """Offer to discard idle time once the agent has been away ``IDLE_MINUTES``."""
        running = self._running
        if running is None or self.idle_prompt is not None:
            return
        limit = self.idle_minutes()
        if limit <= 0:
            return
        now = self._clock()
        idle_since = max(self.idle_monitor.last_input, running.started_at)
        if now - idle_since < timedelta(minutes=limit):
            return
        minutes = int((now - idle_since).total_seconds() // 60)
        _discard(self.idle_prompt)
        prompt = IdlePrompt(idle_since, minutes, running.timer_id, self)
        prompt.buttonClicked.connect(self._idle_answered)
        self.idle_prompt = prompt
        prompt.open()

    def _idle_answered(self, button: QAbstractButton) -> None:
        prompt = self.idle_prompt
        self.idle_prompt = None
        if prompt is None:
            return
        _discard(prompt)
        self.idle_monitor.note_input()
        if button is prompt.keep_button:
            self.message.show_info(f"kept the idle {prompt.minutes} minutes")
            return
        running = self._running
        if running is None or running.timer_id != prompt.timer_id:
            self.message.show_error("the timer changed meanwhile; nothing was discarded")
            return
        # The stop names the timer: if it changed since the last read, the writer refuses it
        # and nothing is discarded.
        ticket = self._running_ticket
        steps = [
            self._stop_step(
                running, prompt.idle_start, f"discarded the idle {prompt.minutes} minutes"
            )
        ]
        gone = button is prompt.discard_button and ticket is None
        if button is prompt.discard_button and ticket is not None:
            steps.append(
                self._start_step(
                    ticket,
                    self._clock(),
                    f"discarded the idle {prompt.minutes} minutes; timing again",
                )
            )

        def then(outcome: Outcome) -> None:
            if outcome.ok and gone:
                self.message.show_error("the ticket is gone; the timer stays stopped")

        self._queue(*steps, then=then)

    # ------------------------------------------------------------------ manual time

    def open_time_entry_dialog(self) -> None:
        if self._customer is None:
            self.message.show_error("select a ticket to record time for its organisation")
            return
        org_id, org_name = self._customer
        ticket = (
            self._ticket
            if (self._ticket is not None and self._ticket.organisation_id == org_id)
            else None
        )
        entries = self.recent_entries()

        def submit(values: dict[str, object], answer: Callable[[str | None], None]) -> None:
            self._add_entry(org_id, ticket.ticket_id if ticket else None, values, answer)

        _discard(self.entry_dialog)
        dialog = TimeEntryDialog(
            organisation_name=org_name,
            ticket_subject=ticket.subject if ticket else None,
            entries=entries,
            billable_default=ticket is None or ticket.kind is TicketKind.ONE_ON_ONE,
            clock=self._clock,
            submit=submit,
            parent=self,
        )
        self.entry_dialog = dialog
        dialog.open()

    def _add_entry(
        self,
        org_id: uuid.UUID,
        ticket_id: uuid.UUID | None,
        values: dict[str, object],
        answer: Callable[[str | None], None],
    ) -> None:
        args = {"entry_id": new_id(), "organisation_id": org_id, "ticket_id": ticket_id, **values}
        correcting = values.get("voids_id") is not None
        self._queue(
            Step(
                "add_time_entry",
                args,
                "the correction" if correcting else "the manual time",
                "time corrected" if correcting else "time added",
            ),
            then=lambda outcome: answer(outcome.refusal),
        )

    def open_void_dialog(self) -> None:
        if self._customer is None:
            self.message.show_error("select a ticket to void time of its organisation")
            return

        def submit(entry_id: uuid.UUID, reason: str, answer: Callable[[str | None], None]) -> None:
            self._queue(
                Step(
                    "void_time_entry",
                    {"entry_id": new_id(), "voids_id": entry_id, "note": reason},
                    "voiding the entry",
                    "the entry was voided",
                ),
                then=lambda outcome: answer(outcome.refusal),
            )

        _discard(self.void_dialog)
        dialog = VoidEntryDialog(self.recent_entries(), submit, self)
        self.void_dialog = dialog
        dialog.open()


def _discard(dialog: QObject | None) -> None:
    """Drop the previous instance of a dialog the widget re-creates on each use."""
    if dialog is not None:
        dialog.deleteLater()
