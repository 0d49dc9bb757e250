"""The consultants' workbench: contracts, my timesheet, appointments, and the statement.

Every figure comes from :mod:`agentdesk.queries` (contracts, timesheet, appointments, statement)
read from the local replica off the GUI thread (:mod:`agentdesk.ui.background`); results land in
:class:`~.models.RowsModel` tables. Changes go through replica mutations (offline-safe, synced
later): purchases (leads and admins only, as at the server), appointments, delivered blocks,
corrections and voids. Nothing here rounds or draws: the policy does.

Dialogs open with ``open()`` (window-modal, non-blocking) so the GUI never waits and tests can
fill them in like a user.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PySide6.QtCore import QDate, QDateTime, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDateEdit,
    QDateTimeEdit,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import select

from ...models import Organisation, Role, User, new_id, utcnow
from ...queries.access import may_see_prices, statement_refusal
from ...queries.appointments import AppointmentLine, cancellation_consequence, read_appointments
from ...queries.contracts import (
    Contract,
    ContractBlock,
    ExpiringHours,
    expiring_hours,
    read_contract,
)
from ...queries.corrections import Correction
from ...queries.formatting import money_text
from ...queries.ledger import QueryError, team_timezone
from ...queries.statement import hours_text
from ...queries.timesheet import (
    BILLED_HEADER,
    BILLED_TOOLTIP,
    Timesheet,
    TimesheetEntry,
    TimesheetRow,
    read_timesheet,
    week_of,
)
from ...sync.mutators import BILLING_ADMINS, TIMEKEEPERS, TRIAGERS
from ...sync.replica import Replica
from ..background import Operation
from ..panel_widgets import (
    InlineMessage,
    MutationRunner,
    accept_cancel,
    capitalised,
    form_dialog_layout,
    show_availability,
)
from ..shown_time import to_local
from .models import Column, RowsModel

log = logging.getLogger(__name__)

__all__ = ["ConsultantWorkbench"]

Clock = Callable[[], datetime]


def _plain(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    return label


def _table(model: RowsModel[Any]) -> QTableView:
    view = QTableView()
    view.setModel(model)
    view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().hide()
    view.setAlternatingRowColors(True)
    view.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
    view.horizontalHeader().setStretchLastSection(True)
    view.setWordWrap(False)
    # Fit the columns to what arrived (the rows come from a background read, after layout).
    model.rowsInserted.connect(lambda *_: view.resizeColumnsToContents())
    model.dataChanged.connect(lambda *_: view.resizeColumnsToContents())
    return view


def _selected(view: QTableView, model: RowsModel[Any]) -> Any:
    rows = view.selectionModel().selectedRows()
    return model.row_at(rows[0].row()) if rows else None


def _qdate(day: date) -> QDate:
    return QDate(day.year, day.month, day.day)


def _pydate(edit: QDateEdit) -> date:
    d = edit.date()
    return date(d.year(), d.month(), d.day())


def _date_edit(day: date) -> QDateEdit:
    edit = QDateEdit(_qdate(day))
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("yyyy-MM-dd")
    return edit


def _datetime_edit(value: datetime) -> QDateTimeEdit:
    edit = QDateTimeEdit(QDateTime.fromSecsSinceEpoch(int(value.timestamp()) // 60 * 60))
    edit.setCalendarPopup(True)
    edit.setDisplayFormat("yyyy-MM-dd HH:mm")
    return edit


def _instant(edit: QDateTimeEdit) -> datetime:
    return datetime.fromtimestamp(edit.dateTime().toSecsSinceEpoch(), UTC)


def _uuid(data: object) -> uuid.UUID | None:
    """Combo boxes hold ids as text (Qt's findData compares Python objects by identity)."""
    return uuid.UUID(str(data)) if data else None


def _hm(seconds: int) -> str:
    minutes = -(-seconds // 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


@dataclass(frozen=True)
class _Who:
    """The signed-in person and the team's directory, read once per refresh."""

    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: Role
    tz: str
    orgs: tuple[tuple[uuid.UUID, str], ...]
    people: tuple[tuple[uuid.UUID, str], ...]


def _read_who(replica: Replica) -> _Who | None:
    state = replica.state
    if state.tenant_id is None or state.user_id is None or state.role is None:
        return None
    with replica.session() as s:
        orgs = tuple(
            (i, n)
            for i, n in s.execute(
                select(Organisation.id, Organisation.name)
                .where(Organisation.deleted.is_(False))
                .order_by(Organisation.name)
            )
        )
        people = tuple(
            (i, n)
            for i, n in s.execute(
                select(User.id, User.display_name)
                .where(User.deleted.is_(False), User.role.in_(list(TIMEKEEPERS)))
                .order_by(User.display_name)
            )
        )
        tz = team_timezone(s, state.tenant_id)
    return _Who(state.tenant_id, state.user_id, state.role, tz, orgs, people)


class _Page(QWidget):
    """Shared plumbing: a background read whose result is shown, one at a time."""

    def __init__(self, replica: Replica, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.replica = replica
        self.clock = clock
        self.who: _Who | None = None
        self.message = InlineMessage()
        self.runner = MutationRunner(replica, self.message)
        self._op: Operation[Any] | None = None
        self._again = False
        #: Date fields that start on "today": set before the team's zone is known (the first
        #: read tells it), they move to the team's today then, unless the user changed them.
        self._follow_today: list[QDateEdit] = []
        self._zone_known = False

    def _on_today(self, edit: QDateEdit) -> QDateEdit:
        self._follow_today.append(edit)
        return edit

    def _move_to_team_today(self) -> bool:
        """The team's date, not UTC's: between UTC midnight and the team's midnight "my week"
        would otherwise open on the wrong day. True when a field moved (read again)."""
        if self._zone_known or self.who is None:
            return False
        self._zone_known = True
        utc_day, today = self.clock().date(), self.today()
        moved = False
        for edit in self._follow_today:
            if _pydate(edit) == utc_day != today:
                edit.setDate(_qdate(today))
                moved = True
        return moved

    def today(self) -> date:
        tz = self.who.tz if self.who else "UTC"
        return self.clock().astimezone(ZoneInfo(tz)).date()

    def refresh(self) -> None:
        if self._op is not None and not self._op.done:
            self._again = True
            return
        self._again = False
        read = self.reader()
        self._op = Operation(read, on_success=self._loaded, on_failure=self._failed, parent=self)
        self._op.start()

    def reader(self) -> Callable[[], Any]:
        raise NotImplementedError

    def _into(self, error: InlineMessage, ok: bool) -> bool:
        """A refusal shows in the dialog the user is looking at, not behind it."""
        if not ok:
            error.show_error(self.message.text())
            self.message.clear_message()
        return ok

    def show_result(self, result: Any) -> None:
        raise NotImplementedError

    def _loaded(self, result: Any) -> None:
        # The operation marks itself done only after this slot: forget it first, or the
        # re-read asked for meanwhile would see it running and be dropped (a stale customer
        # left on screen after picking another one).
        self._op = None
        self.show_result(result)
        if self._move_to_team_today() or self._again:
            self.refresh()

    def _failed(self, exc: Exception) -> None:
        self._op = None
        if isinstance(exc, QueryError):
            self.message.show_error(exc.message)
        else:
            log.error("workbench read failed", exc_info=exc)
            self.message.show_error(f"could not read the data: {exc}")
        if self._again:
            self.refresh()


# ----------------------------------------------------------------------------- contracts


def _block_columns(show_prices: bool) -> list[Column[ContractBlock]]:
    cols: list[Column[ContractBlock]] = [
        Column("Purchased", lambda b: f"{to_local(b.purchased_at):%Y-%m-%d}"),
        Column("Hours", lambda b: hours_text(b.minutes), right=True),
    ]
    if show_prices:
        cols.append(
            Column("Price", lambda b: "" if b.price is None else money_text(b.price), right=True)
        )
    cols += [
        Column("Expires", lambda b: f"{to_local(b.expires_at):%Y-%m-%d %H:%M}"),
        Column("Used (oldest first)", lambda b: hours_text(b.drawn), right=True),
        Column("Forfeited", lambda b: hours_text(b.forfeited), right=True),
        Column("Left", lambda b: hours_text(b.remaining), right=True),
        Column("Status", lambda b: "expired" if b.expired else "valid"),
    ]
    return cols


_EXPIRING_COLUMNS: list[Column[ExpiringHours]] = [
    Column("Expires", lambda e: f"{to_local(e.expires_at):%Y-%m-%d %H:%M}"),
    Column("Customer", lambda e: e.organisation),
    Column("Hours left", lambda e: hours_text(e.remaining), right=True),
]


class ContractsPage(_Page):
    """Hour blocks of one organisation as of a date, and hours expiring across customers."""

    statementRequested = Signal(object)  # organisation id

    def __init__(self, replica: Replica, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(replica, clock, parent)
        self.org_combo = QComboBox()
        self.org_combo.setMinimumContentsLength(18)
        self.as_of_edit = self._on_today(_date_edit(clock().date()))
        self.horizon_combo = QComboBox()
        self.horizon_combo.addItem("next 14 days", 14)
        self.horizon_combo.addItem("next 30 days", 30)
        self.summary = _plain()
        self.forecast = _plain()
        self.blocks = RowsModel(_block_columns(False), key=lambda b: b.block_id, parent=self)
        self.blocks_view = _table(self.blocks)
        self.expiring = RowsModel(_EXPIRING_COLUMNS, key=lambda e: e.block_id, parent=self)
        self.expiring_view = _table(self.expiring)
        self.purchase_button = QPushButton("Record purchase…")
        self.statement_button = QPushButton("Statement…")
        self.statement_button.setEnabled(False)  # until the signed-in role is read
        self.purchase_button.clicked.connect(self.open_purchase)
        self.statement_button.clicked.connect(
            lambda: self.statementRequested.emit(_uuid(self.org_combo.currentData()))
        )
        self.contract: Contract | None = None
        self._prices_shown = False
        self.purchase_dialog: PurchaseDialog | None = None

        top = QHBoxLayout()
        top.addWidget(QLabel("Customer:"))
        top.addWidget(self.org_combo, 1)
        top.addWidget(QLabel("As of:"))
        top.addWidget(self.as_of_edit)
        top.addWidget(self.purchase_button)
        top.addWidget(self.statement_button)
        soon = QHBoxLayout()
        soon.addWidget(QLabel("Hours expiring across all customers in the"))
        soon.addWidget(self.horizon_combo)
        soon.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.forecast)
        layout.addWidget(self.blocks_view, 3)
        layout.addLayout(soon)
        layout.addWidget(self.expiring_view, 2)
        layout.addWidget(self.message)
        self.org_combo.currentIndexChanged.connect(self.refresh)
        self.as_of_edit.dateChanged.connect(self.refresh)
        self.horizon_combo.currentIndexChanged.connect(self.refresh)

    def select_org(self, org_id: uuid.UUID) -> None:
        index = self.org_combo.findData(str(org_id))
        if index >= 0:
            self.org_combo.setCurrentIndex(index)

    def reader(self) -> Callable[[], Any]:
        replica, clock = self.replica, self.clock
        org_id = _uuid(self.org_combo.currentData())
        day = _pydate(self.as_of_edit)
        days = int(self.horizon_combo.currentData())

        def read() -> tuple[_Who | None, Contract | None, tuple[ExpiringHours, ...]]:
            who = _read_who(replica)
            if who is None:
                return None, None, ()
            now = clock()
            zone = ZoneInfo(who.tz)
            end_of_day = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone)
            as_of = min(now, end_of_day.astimezone(UTC) - timedelta(microseconds=1))
            chosen = org_id or (who.orgs[0][0] if who.orgs else None)
            with replica.session() as s:
                contract = (
                    read_contract(s, chosen, as_of, show_prices=may_see_prices(who.role))
                    if chosen is not None
                    else None
                )
                soon = expiring_hours(s, now, timedelta(days=days), tenant_id=who.tenant_id)
            return who, contract, soon

        return read

    def show_result(self, result: Any) -> None:
        who, contract, soon = result
        self.who = who
        if who is None:
            return
        if self.org_combo.count() != len(who.orgs):
            self.org_combo.blockSignals(True)
            self.org_combo.clear()
            for org_id, name in who.orgs:
                self.org_combo.addItem(name, str(org_id))
            if contract is not None:
                self.org_combo.setCurrentIndex(
                    self.org_combo.findData(str(contract.organisation_id))
                )
            self.org_combo.blockSignals(False)
        allowed = who.role in BILLING_ADMINS
        self.purchase_button.setEnabled(allowed)
        self.purchase_button.setToolTip(
            "Record hours the customer bought" if allowed else "Only team leads record purchases"
        )
        show_availability(self.statement_button, statement_refusal(who.role), STATEMENT_PURPOSE)
        self.contract = contract
        if contract is not None:
            if contract.prices_shown != self._prices_shown:
                self._prices_shown = contract.prices_shown
                self.blocks.set_rows([])
                self.blocks = RowsModel(
                    _block_columns(contract.prices_shown), key=lambda b: b.block_id, parent=self
                )
                self.blocks_view.setModel(self.blocks)
                self.blocks.rowsInserted.connect(
                    lambda *_: self.blocks_view.resizeColumnsToContents()
                )
            self.blocks.set_rows(contract.blocks)
            self.summary.setText(
                f"{contract.organisation} ({contract.plan}) as of "
                f"{to_local(contract.as_of):%Y-%m-%d %H:%M}: balance "
                f"{hours_text(contract.balance)}, overage to invoice "
                f"{hours_text(contract.overage)}. Balances are replayed from the ledger."
            )
            self.forecast.setText(
                contract.forecast + (" unless used" if contract.next_expiry else "")
            )
        self.expiring.set_rows(soon)

    def open_purchase(self) -> None:
        org_id = _uuid(self.org_combo.currentData())
        if org_id is None or self.who is None or self.who.role not in BILLING_ADMINS:
            self.message.show_error("only team leads record purchases")
            return
        self.purchase_dialog = PurchaseDialog(self.org_combo.currentText(), self.clock, self)
        dialog = self.purchase_dialog

        def submit(args: dict[str, Any]) -> bool:
            args["organisation_id"] = str(org_id)
            ok = self.runner.run(
                "record_hour_purchase", args, done="Purchase recorded", what="the purchase"
            )
            if ok:
                self.refresh()
            return self._into(dialog.error, ok)

        dialog.submit = submit
        dialog.open()


class PurchaseDialog(QDialog):
    """Hours a customer bought: recorded as a new block (nobody edits a balance)."""

    def __init__(self, org_name: str, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Record an hour purchase")
        self.submit: Callable[[dict[str, Any]], bool] = lambda _a: False
        self.clock = clock
        self.hours = QDoubleSpinBox()
        self.hours.setRange(0.5, 1000)
        self.hours.setSingleStep(0.5)
        self.hours.setValue(10)
        self.price = QLineEdit()
        self.price.setPlaceholderText("optional, e.g. 1500.00")
        self.when = _datetime_edit(clock())
        self.note = QLineEdit()
        self.note.setMaxLength(2000)
        self.error = InlineMessage()
        form = QFormLayout()
        form.addRow("Customer:", _plain(org_name))
        form.addRow("Hours:", self.hours)
        form.addRow("Price:", self.price)
        form.addRow("Purchased:", self.when)
        form.addRow("Note:", self.note)
        form.addRow(
            "",
            _plain(
                "Hours must be used within 90 days of purchase or they are "
                "forfeited; they are never refunded."
            ),
        )
        buttons, self.save_button = accept_cancel(self, "Record", self.save)
        form_dialog_layout(self, form, self.error, buttons)

    def save(self) -> None:
        price: Decimal | None = None
        text = self.price.text().strip().replace(",", "")
        if text:
            try:
                price = Decimal(text)
            except InvalidOperation:
                self.error.show_error(f"the price is not a number: {self.price.text()!r}")
                return
            if price < 0 or price != price.quantize(Decimal("0.01")):
                self.error.show_error("the price must be positive, with at most 2 decimals")
                return
        when = _instant(self.when)
        if when > self.clock() + timedelta(minutes=5):
            self.error.show_error("a purchase cannot be in the future")
            return
        minutes = round(self.hours.value() * 60)
        args = {
            "block_id": str(new_id()),
            "minutes": minutes,
            "purchased_at": when.isoformat(),
            "price": None if price is None else str(price),
            "note": self.note.text().strip(),
        }
        if self.submit(args):
            self.accept()


# ----------------------------------------------------------------------------- timesheet


_ROW_COLUMNS: list[Column[TimesheetRow]] = [
    Column("Day", lambda r: f"{r.day:%a %Y-%m-%d}"),
    Column("Customer", lambda r: r.organisation),
    Column("Entries", lambda r: str(r.entries), right=True),
    Column(
        "Raw work (h:mm)",
        lambda r: _hm(r.raw_seconds),
        right=True,
        tooltip="Billable work outside scheduled blocks, before rounding",
    ),
    Column("Blocks + fees", lambda r: f"{r.scheduled + r.late_cancellation} min", right=True),
    Column(BILLED_HEADER, lambda r: f"{r.billed} min", right=True, tooltip=BILLED_TOOLTIP),
]

_ENTRY_COLUMNS: list[Column[TimesheetEntry]] = [
    Column("Day", lambda e: f"{e.day:%a %m-%d}"),
    Column("Time", lambda e: f"{e.start:%H:%M}-{e.end:%H:%M}"),
    Column("Customer", lambda e: e.organisation),
    Column(
        "Kind",
        lambda e: (
            e.kind.value.replace("_", " ") + (" (extra engineer)" if e.extra_engineer else "")
        ),
    ),
    Column("Minutes", lambda e: str(e.minutes), right=True),
    Column("Billable", lambda e: "yes" if e.billable else "no"),
    Column("Ticket", lambda e: e.ticket),
    Column("Note", lambda e: e.note),
    Column("Source", lambda e: e.source),
    Column("Flags", lambda e: "; ".join(e.flags)),
]


_CORRECTION_COLUMNS: list[Column[Correction]] = [
    Column("Entry", lambda c: f"{c.started_at:%a %m-%d %H:%M}-{c.ended_at:%H:%M}"),
    Column("Was", lambda c: f"{c.minutes} min", right=True),
    Column(
        "Now",
        lambda c: "voided" if c.replacement_minutes is None else f"{c.replacement_minutes} min",
        right=True,
    ),
    Column("By", lambda c: c.by or "(not recorded)"),
    Column("When", lambda c: f"{c.at:%Y-%m-%d %H:%M}"),
    Column("Why", lambda c: c.why),
]


class TimesheetPage(_Page):
    """My day or my week: entries, and per customer per day the raw and billed time."""

    def __init__(self, replica: Replica, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(replica, clock, parent)
        self.span_combo = QComboBox()
        self.span_combo.addItem("My day", "day")
        self.span_combo.addItem("My week", "week")
        self.day_edit = self._on_today(_date_edit(clock().date()))
        self.rows = RowsModel(_ROW_COLUMNS, key=lambda r: (r.day, r.organisation_id), parent=self)
        self.rows_view = _table(self.rows)
        self.entries = RowsModel(_ENTRY_COLUMNS, key=lambda e: (e.entry_id, e.day), parent=self)
        self.entries_view = _table(self.entries)
        self.total = _plain()
        self.corrections = RowsModel(
            _CORRECTION_COLUMNS, key=lambda c: (c.voided_id, c.at), parent=self
        )
        self.corrections_view = _table(self.corrections)
        self.corrections_label = QLabel("Corrections of my entries (who and why):")
        self.correct_button = QPushButton("Correct…")
        self.void_button = QPushButton("Void…")
        self.correct_button.clicked.connect(self.open_correction)
        self.void_button.clicked.connect(self.open_void)
        self.sheet: Timesheet | None = None
        self.correction_dialog: CorrectionDialog | None = None
        top = QHBoxLayout()
        top.addWidget(self.span_combo)
        top.addWidget(self.day_edit)
        top.addStretch(1)
        top.addWidget(self.correct_button)
        top.addWidget(self.void_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.rows_view, 2)
        layout.addWidget(self.total)
        layout.addWidget(self.entries_view, 3)
        layout.addWidget(self.corrections_label)
        layout.addWidget(self.corrections_view, 1)
        layout.addWidget(self.message)
        self.span_combo.currentIndexChanged.connect(self.refresh)
        self.day_edit.dateChanged.connect(self.refresh)

    def period(self) -> tuple[date, date]:
        day = _pydate(self.day_edit)
        return week_of(day) if self.span_combo.currentData() == "week" else (day, day)

    def reader(self) -> Callable[[], Any]:
        replica = self.replica
        start, end = self.period()

        def read() -> tuple[_Who | None, Timesheet | None]:
            who = _read_who(replica)
            if who is None:
                return None, None
            with replica.session() as s:
                return who, read_timesheet(s, who.tenant_id, who.user_id, start, end)

        return read

    def show_result(self, result: Any) -> None:
        who, sheet = result
        self.who = who
        self.sheet = sheet
        if sheet is None:
            return
        self.rows.set_rows(sheet.rows)
        self.entries.set_rows(sheet.entries)
        self.corrections.set_rows(sheet.corrections)
        self.corrections_label.setVisible(bool(sheet.corrections))
        self.corrections_view.setVisible(bool(sheet.corrections))
        flagged = f"; {sheet.flagged} entries flagged" if sheet.flagged else ""
        self.total.setText(
            f"Total billed: {sheet.billed} min ({hours_text(sheet.billed)}), the sum of the rows "
            f"above; raw billable work {_hm(sheet.raw_seconds)}{flagged}."
        )

    def selected_entry(self) -> TimesheetEntry | None:
        entry: TimesheetEntry | None = _selected(self.entries_view, self.entries)
        return entry

    def open_correction(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            self.message.show_error("select the entry to correct")
            return
        if entry.kind.value == "late_cancellation":
            self.message.show_error("a cancellation fee cannot be corrected, only voided")
            return
        dialog = self.correction_dialog = CorrectionDialog(entry, self.clock, self)

        def submit(args: dict[str, Any]) -> bool:
            ok = self.runner.run(
                "add_time_entry", args, done="Correction recorded", what="the correction"
            )
            if ok:
                self.refresh()
            return self._into(dialog.error, ok)

        dialog.submit = submit
        dialog.open()

    def open_void(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            self.message.show_error("select the entry to void")
            return
        dialog = self.correction_dialog = CorrectionDialog(entry, self.clock, self, void=True)

        def submit(args: dict[str, Any]) -> bool:
            ok = self.runner.run("void_time_entry", args, done="Entry voided", what="the void")
            if ok:
                self.refresh()
            return self._into(dialog.error, ok)

        dialog.submit = submit
        dialog.open()


class CorrectionDialog(QDialog):
    """A correction is a new entry that voids the old one (append-only ledger), with why."""

    def __init__(
        self,
        entry: TimesheetEntry,
        clock: Clock,
        parent: QWidget | None = None,
        *,
        void: bool = False,
    ) -> None:
        super().__init__(parent)
        self.entry = entry
        self.void = void
        self.clock = clock
        self.submit: Callable[[dict[str, Any]], bool] = lambda _a: False
        self.setWindowTitle("Void a time entry" if void else "Correct a time entry")
        self.start = _datetime_edit(entry.start)
        self.end = _datetime_edit(entry.end)
        self.why = QLineEdit()
        self.why.setMaxLength(2000)
        self.why.setPlaceholderText("Why? (kept in the ledger with the correction)")
        self.error = InlineMessage()
        form = QFormLayout()
        form.addRow(
            "Entry:",
            _plain(
                f"{entry.organisation}, {entry.start:%Y-%m-%d %H:%M}-"
                f"{entry.end:%H:%M}, {entry.minutes} min"
            ),
        )
        if not void:
            form.addRow("Start:", self.start)
            form.addRow("End:", self.end)
        form.addRow("Why:", self.why)
        buttons, self.save_button = accept_cancel(
            self, "Void" if void else "Save correction", self.save
        )
        form_dialog_layout(self, form, self.error, buttons)

    def save(self) -> None:
        why = self.why.text().strip()
        if not why:
            self.error.show_error("say why (the ledger keeps the reason with the change)")
            return
        if self.void:
            args: dict[str, Any] = {
                "entry_id": str(new_id()),
                "voids_id": self.entry.entry_id,
                "note": why,
            }
        else:
            start, end = _instant(self.start), _instant(self.end)
            if end < start:
                self.error.show_error("the end is before the start")
                return
            if end > self.clock() + timedelta(minutes=5):
                self.error.show_error("time cannot be recorded in the future")
                return
            args = {
                "entry_id": str(new_id()),
                "organisation_id": str(self.entry.organisation_id),
                "ticket_id": str(self.entry.ticket_id) if self.entry.ticket_id else None,
                "kind": self.entry.kind.value,
                "started_at": start.isoformat(),
                "ended_at": end.isoformat(),
                "billable": self.entry.billable,
                "extra_engineer": self.entry.extra_engineer,
                "note": why,
                "voids_id": self.entry.entry_id,
            }
        if self.submit(args):
            self.accept()


# ----------------------------------------------------------------------------- appointments


_APPOINTMENT_COLUMNS: list[Column[AppointmentLine]] = [
    Column("Start", lambda a: f"{to_local(a.starts_at):%a %Y-%m-%d %H:%M}"),
    Column("End", lambda a: f"{to_local(a.ends_at):%H:%M}"),
    Column("Customer", lambda a: a.organisation),
    Column("Consultant", lambda a: a.consultant),
    Column(
        "Extra engineer",
        lambda a: a.extra_engineer,
        tooltip="Asked for by the customer: billed in addition when delivered",
    ),
    Column("Ticket", lambda a: a.ticket),
    Column("Status", lambda a: a.status_text),
    Column("Note", lambda a: a.note),
]


class AppointmentsPage(_Page):
    """Day and week lists of my appointments or the team's; schedule, reschedule, cancel,
    and record a delivered block."""

    def __init__(self, replica: Replica, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(replica, clock, parent)
        self.whose_combo = QComboBox()
        self.whose_combo.addItem("Mine", "mine")
        self.whose_combo.addItem("Team", "team")
        self.span_combo = QComboBox()
        self.span_combo.addItem("Day", "day")
        self.span_combo.addItem("Week", "week")
        self.span_combo.setCurrentIndex(1)
        self.day_edit = self._on_today(_date_edit(clock().date()))
        self.model = RowsModel(_APPOINTMENT_COLUMNS, key=lambda a: a.id, parent=self)
        self.view = _table(self.model)
        self.schedule_button = QPushButton("Schedule…")
        self.reschedule_button = QPushButton("Reschedule…")
        self.cancel_button = QPushButton("Cancel…")
        self.delivered_button = QPushButton("Delivered")
        self.schedule_button.clicked.connect(lambda: self.open_schedule(None))
        self.reschedule_button.clicked.connect(self.open_reschedule)
        self.cancel_button.clicked.connect(self.ask_cancel)
        self.delivered_button.clicked.connect(self.record_delivered)
        self.schedule_dialog: ScheduleDialog | None = None
        self.cancel_prompt: QMessageBox | None = None
        top = QHBoxLayout()
        for w in (self.whose_combo, self.span_combo, self.day_edit):
            top.addWidget(w)
        top.addStretch(1)
        for b in (
            self.schedule_button,
            self.reschedule_button,
            self.cancel_button,
            self.delivered_button,
        ):
            top.addWidget(b)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.message)
        for combo in (self.whose_combo, self.span_combo):
            combo.currentIndexChanged.connect(self.refresh)
        self.day_edit.dateChanged.connect(self.refresh)

    def reader(self) -> Callable[[], Any]:
        replica = self.replica
        day = _pydate(self.day_edit)
        start, end = week_of(day) if self.span_combo.currentData() == "week" else (day, day)
        mine = self.whose_combo.currentData() == "mine"

        def read() -> tuple[_Who | None, tuple[AppointmentLine, ...]]:
            who = _read_who(replica)
            if who is None:
                return None, ()
            with replica.session() as s:
                return who, read_appointments(
                    s, who.tenant_id, start, end, consultant_id=who.user_id if mine else None
                )

        return read

    def show_result(self, result: Any) -> None:
        self.who, lines = result
        self.model.set_rows(lines)
        allowed = self.who is not None and self.who.role in (TIMEKEEPERS | TRIAGERS)
        for button in (
            self.schedule_button,
            self.reschedule_button,
            self.cancel_button,
            self.delivered_button,
        ):
            button.setEnabled(allowed)

    def selected(self) -> AppointmentLine | None:
        line: AppointmentLine | None = _selected(self.view, self.model)
        return line

    def _run(self, name: str, args: dict[str, Any], done: str) -> bool:
        ok = self.runner.run(name, args, done=done, what="the appointment")
        if ok:
            self.refresh()
        return ok

    def open_schedule(self, replacing: AppointmentLine | None) -> None:
        if self.who is None:
            return
        self.schedule_dialog = ScheduleDialog(self.who, self.clock, replacing, self)
        dialog = self.schedule_dialog

        def submit(args: dict[str, Any]) -> bool:
            return self._into(dialog.error, book(args))

        def book(args: dict[str, Any]) -> bool:
            if replacing is not None:
                # Book the new slot first: if it is refused, the old one still stands.
                args["replaces_id"] = str(replacing.id)
                if not self._run("schedule_appointment", args, "Rescheduled"):
                    return False
                return self._run(
                    "cancel_appointment",
                    {"appointment_id": str(replacing.id), "cancelled_at": self.clock().isoformat()},
                    "Rescheduled",
                )
            return self._run("schedule_appointment", args, "Appointment scheduled")

        dialog.submit = submit
        dialog.open()

    def open_reschedule(self) -> None:
        line = self.selected()
        if line is None or line.status.value != "scheduled":
            self.message.show_error("select a scheduled appointment to reschedule")
            return
        self.open_schedule(line)

    def ask_cancel(self) -> None:
        line = self.selected()
        if line is None or line.status.value != "scheduled":
            self.message.show_error("select a scheduled appointment to cancel")
            return
        _fee, consequence = cancellation_consequence(line.starts_at, self.clock())
        prompt = QMessageBox(
            QMessageBox.Icon.Question,
            "Cancel the appointment?",
            f"{line.organisation}, {to_local(line.starts_at):%Y-%m-%d %H:%M}.\n\n{consequence}",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        prompt.setTextFormat(Qt.TextFormat.PlainText)
        prompt.button(QMessageBox.StandardButton.Yes).setText("Cancel the appointment")
        prompt.button(QMessageBox.StandardButton.No).setText("Keep it")
        prompt.setDefaultButton(QMessageBox.StandardButton.No)
        prompt.accepted.connect(
            lambda: self._run(
                "cancel_appointment",
                {"appointment_id": str(line.id), "cancelled_at": self.clock().isoformat()},
                "Appointment cancelled",
            )
        )
        self.cancel_prompt = prompt
        prompt.open()

    def record_delivered(self) -> None:
        """A delivered appointment bills as booked, once: the mutation marks it delivered and
        records the block (and the extra engineer's) in one step, and refuses a second time."""
        line = self.selected()
        if line is None or line.status.value != "scheduled":
            self.message.show_error("select a scheduled appointment that took place")
            return
        if line.ends_at > self.clock():
            self.message.show_error("the appointment has not ended yet")
            return
        self._run(
            "deliver_appointment",
            {"appointment_id": str(line.id)},
            "Delivered: billed as scheduled",
        )


class ScheduleDialog(QDialog):
    """Start, end, consultant, ticket and any extra engineer the customer asked for."""

    def __init__(
        self,
        who: _Who,
        clock: Clock,
        replacing: AppointmentLine | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Reschedule the appointment" if replacing else "Schedule a block")
        self.submit: Callable[[dict[str, Any]], bool] = lambda _a: False
        self.replacing = replacing
        start = (
            replacing.starts_at
            if replacing
            else (clock() + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
        )
        length = (replacing.ends_at - replacing.starts_at) if replacing else timedelta(hours=1)
        self.org = QComboBox()
        for org_id, name in who.orgs:
            self.org.addItem(name, str(org_id))
        self.consultant = QComboBox()
        self.extra = QComboBox()
        self.extra.addItem("— none —", None)
        for person_id, name in who.people:
            self.consultant.addItem(name, str(person_id))
            self.extra.addItem(name, str(person_id))
        self.consultant.setCurrentIndex(
            max(
                0,
                self.consultant.findData(
                    str(replacing.consultant_id if replacing else who.user_id)
                ),
            )
        )
        self.ticket = QLineEdit()
        self.ticket.setPlaceholderText("optional: the ticket's id")
        self.start = _datetime_edit(start)
        self.end = _datetime_edit(start + length)
        self.note = QLineEdit()
        self.note.setMaxLength(2000)
        self.error = InlineMessage()
        form = QFormLayout()
        form.addRow("Customer:", self.org)
        form.addRow("Consultant:", self.consultant)
        form.addRow("Ticket:", self.ticket)
        form.addRow("Start:", self.start)
        form.addRow("End:", self.end)
        form.addRow("Extra engineer:", self.extra)
        if replacing is not None:
            if replacing.extra_engineer_id is not None:
                self.extra.setCurrentIndex(
                    max(0, self.extra.findData(str(replacing.extra_engineer_id)))
                )
            self.org.setCurrentIndex(self.org.findData(str(replacing.organisation_id)))
            self.org.setEnabled(False)
            if replacing.ticket_id:
                self.ticket.setText(str(replacing.ticket_id))
            form.addRow(
                "",
                _plain(
                    "The new slot is booked first; then the old one is "
                    "cancelled (less than 24 hours before its start bills "
                    "30 minutes)."
                ),
            )
        form.addRow("Note:", self.note)
        buttons, self.save_button = accept_cancel(self, "Book", self.save)
        form_dialog_layout(self, form, self.error, buttons)

    def save(self) -> None:
        start, end = _instant(self.start), _instant(self.end)
        if end <= start:
            self.error.show_error("the appointment must end after it starts")
            return
        ticket: str | None = self.ticket.text().strip() or None
        if ticket is not None:
            try:
                ticket = str(uuid.UUID(ticket))
            except ValueError:
                self.error.show_error("the ticket must be a ticket id (or left empty)")
                return
        extra = _uuid(self.extra.currentData())
        if extra is not None and str(extra) == self.consultant.currentData():
            self.error.show_error("the extra engineer is the consultant already")
            return
        args = {
            "appointment_id": str(new_id()),
            "organisation_id": str(self.org.currentData()),
            "consultant_id": str(self.consultant.currentData()),
            "extra_engineer_id": None if extra is None else str(extra),
            "ticket_id": ticket,
            "starts_at": start.isoformat(),
            "ends_at": end.isoformat(),
            "note": self.note.text().strip(),
        }
        if self.submit(args):
            self.accept()


# ----------------------------------------------------------------------------- statement

#: The "Statement…" buttons' tooltip for those who may have one (statement_refusal's otherwise).
STATEMENT_PURPOSE = "The customer's time statement as PDF or CSV"


class StatementDialog(QDialog):
    """Period and format of a customer's statement, saved as CSV or PDF off the GUI thread."""

    saved = Signal(str)

    def __init__(
        self,
        replica: Replica,
        who: _Who,
        org_id: uuid.UUID | None,
        clock: Clock,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Time statement")
        self.replica = replica
        self.clock = clock
        self.op: Operation[Any] | None = None
        today = clock().astimezone(ZoneInfo(who.tz)).date()
        self.org = QComboBox()
        for i, name in who.orgs:
            self.org.addItem(name, str(i))
        if org_id is not None:
            self.org.setCurrentIndex(max(0, self.org.findData(str(org_id))))
        self.start = _date_edit(today.replace(day=1))
        self.end = _date_edit(today)
        self.format = QComboBox()
        self.format.addItem("PDF (to send to the customer)", "pdf")
        self.format.addItem("CSV (for a spreadsheet)", "csv")
        self.path = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self.browse)
        where = QHBoxLayout()
        where.addWidget(self.path, 1)
        where.addWidget(browse)
        self.error = InlineMessage()
        form = QFormLayout()
        form.addRow("Customer:", self.org)
        form.addRow("From:", self.start)
        form.addRow("To:", self.end)
        form.addRow("Format:", self.format)
        form.addRow("Save as:", where)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.save_button = buttons.addButton("Save", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        form_dialog_layout(self, form, self.error, buttons)
        self.format.currentIndexChanged.connect(self._suggest)
        self.org.currentIndexChanged.connect(self._suggest)
        self._suggest()

    def _suggest(self) -> None:
        name = "".join(c if c.isalnum() else "-" for c in self.org.currentText()).strip("-")
        folder = Path(self.path.text()).parent if self.path.text() else Path.home()
        self.path.setText(
            str(
                folder / f"{name or 'statement'}-{_pydate(self.start)}-"
                f"{_pydate(self.end)}.{self.format.currentData()}"
            )
        )

    def browse(self) -> None:
        fmt = str(self.format.currentData())
        chosen, _ = QFileDialog.getSaveFileName(
            self, "Save the statement", self.path.text(), f"{fmt.upper()} files (*.{fmt})"
        )
        if chosen:
            self.path.setText(chosen)

    def save(self) -> None:
        org_id = _uuid(self.org.currentData())
        start, end = _pydate(self.start), _pydate(self.end)
        fmt = str(self.format.currentData())
        target = Path(self.path.text().strip())
        refusal = statement_refusal(self.replica.state.role)  # who is signed in now
        if refusal is not None:
            self.error.show_error(capitalised(refusal))
            return
        if org_id is None:
            self.error.show_error("choose a customer")
            return
        if not self.path.text().strip() or not target.parent.is_dir():
            self.error.show_error(f"the folder {target.parent} does not exist")
            return
        replica, clock = self.replica, self.clock
        self.save_button.setEnabled(False)
        self.error.show_info("Preparing the statement…")

        def work() -> str:
            from ...exports.statement_file import replace_file, statement_file

            with replica.session() as s:
                made = statement_file(s, org_id, start, end, fmt, now=clock())
            replace_file(target, made.body)
            return (
                f"Saved {target.name}: billed {hours_text(made.billed)}, closing balance "
                f"{hours_text(made.closing)}"
            )

        self.op = Operation(work, on_success=self._done, on_failure=self._failed, parent=self)
        self.op.start()

    def _done(self, text: str) -> None:
        self.save_button.setEnabled(True)
        self.error.show_info(text)
        self.saved.emit(self.path.text())

    def _failed(self, exc: Exception) -> None:
        self.save_button.setEnabled(True)
        self.error.show_error(exc.message if isinstance(exc, QueryError) else str(exc))


# ----------------------------------------------------------------------------- workbench


class ConsultantWorkbench(QTabWidget):
    """Contracts, timesheet and appointments in one dock; "Statement…" on the contracts."""

    def __init__(
        self, replica: Replica, *, clock: Clock = utcnow, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.replica = replica
        self.clock = clock
        self.contracts = ContractsPage(replica, clock)
        self.timesheet = TimesheetPage(replica, clock)
        self.appointments = AppointmentsPage(replica, clock)
        self.addTab(self.contracts, "Contracts")
        self.addTab(self.timesheet, "Timesheet")
        self.addTab(self.appointments, "Appointments")
        self.statement_dialog: StatementDialog | None = None
        self._who_op: Operation[Any] | None = None
        self.contracts.statementRequested.connect(self.open_statement)
        self.currentChanged.connect(lambda _i: self.refresh())

    def refresh(self) -> None:
        page = self.currentWidget()
        if isinstance(page, _Page):
            page.refresh()

    def replica_changed(self, *_args: object) -> None:
        if self.isVisible():
            self.refresh()

    def open_statement(self, org_id: uuid.UUID | None = None) -> None:
        """From the contracts view or the organisation panel (which may ask before any page of
        the workbench was read: then the directory is read off the GUI thread first)."""
        who = self.contracts.who or self.timesheet.who or self.appointments.who
        if who is not None:
            self._open_statement(who, org_id)
            return
        replica = self.replica
        self._who_op = Operation(
            lambda: _read_who(replica),
            on_success=lambda w: self._open_statement(w, org_id),
            on_failure=lambda exc: log.error(
                "could not read the team for the statement", exc_info=exc
            ),
            parent=self,
        )
        self._who_op.start()

    def _open_statement(self, who: _Who | None, org_id: uuid.UUID | None) -> None:
        if who is None:  # signed out meanwhile
            return
        refusal = statement_refusal(who.role)
        if refusal is not None:  # the buttons say so too; this is for any other way in
            self.setCurrentWidget(self.contracts)
            self.contracts.message.show_error(capitalised(refusal))
            return
        self.statement_dialog = StatementDialog(self.replica, who, org_id, self.clock, self)
        self.statement_dialog.open()
