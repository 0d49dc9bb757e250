"""The timer's dialogs: manual time and corrections (:class:`TimeEntryDialog`), a forgotten timer's
real end (:class:`ForgottenTimerDialog`) and voiding an entry (:class:`VoidEntryDialog`).

Each takes a ``submit`` callable from the widget that queues the mutation with the writer and,
once it was applied or refused, calls the dialog back with the refusal to show (None: recorded,
the dialog closes). So a dialog knows nothing of the replica, and stays open on a refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import shiboken6
from PySide6.QtCore import QDateTime
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QDialog,
    QFormLayout,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)

from ...queries.balances import RunningInfo
from ...queries.timer import Clock, EntryInfo, entry_problem
from ...sync.bounds import MAX_SPAN
from ..panel_widgets import (
    InlineMessage,
    accept_cancel,
    form_dialog_layout,
    local_text,
    plain_label,
    show_availability,
)
from ..shown_time import to_local

__all__ = ["Answer", "ForgottenTimerDialog", "TimeEntryDialog", "VoidEntryDialog", "entry_label"]


#: How the widget answers a dialog's submit: the refusal to show, or None (recorded).
Answer = Callable[[str | None], None]


def _answer(dialog: QDialog, error: InlineMessage, refusal: str | None) -> None:
    """Close on success, or stay open with the refusal (unless the dialog is gone by now)."""
    if not shiboken6.isValid(dialog):
        return
    if refusal:
        error.show_error(refusal)
        return
    dialog.accept()


def entry_label(e: EntryInfo) -> str:
    """How an entry reads in the correction and void pickers."""
    minutes = int((e.ended_at - e.started_at).total_seconds() // 60)
    end = to_local(e.ended_at)
    text = f"{local_text(e.started_at)} to {end:%H:%M} ({minutes} min)"
    if not e.billable:
        text += ", not billable"
    if e.note:
        text += f": {e.note[:40]}"
    return text


class TimeEntryDialog(QDialog):
    """Add time by hand, or correct an entry (the correction replaces it: the old entry is
    voided by reference, never edited). ``submit(values, answer)`` queues the mutation;
    ``answer(refusal)`` comes back with None once it was recorded."""

    def __init__(
        self,
        *,
        organisation_name: str,
        ticket_subject: str | None,
        entries: Sequence[EntryInfo],
        billable_default: bool,
        clock: Clock,
        submit: Callable[[dict[str, object], Answer], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add or correct time")
        self._clock = clock
        self._submit = submit
        self._entries = {str(e.entry_id): e for e in entries}
        self.replaces_combo = QComboBox()
        self.replaces_combo.addItem("— nothing: this is new time —", None)
        for e in entries:
            self.replaces_combo.addItem(entry_label(e), str(e.entry_id))
        self.replaces_combo.currentIndexChanged.connect(self._replaces_changed)
        now = clock()
        self.start_edit = self._datetime_edit(now - timedelta(minutes=30))
        self.end_edit = self._datetime_edit(now)
        self.billable_check = QCheckBox("Billable (1-on-1 tech support)")
        self.billable_check.setChecked(billable_default)
        self.note_edit = QLineEdit()
        self.note_edit.setMaxLength(2000)
        self.error = InlineMessage()
        form = QFormLayout()
        form.addRow("Customer:", plain_label(organisation_name))
        if ticket_subject:
            form.addRow("Ticket:", plain_label(ticket_subject))
        form.addRow("Replaces:", self.replaces_combo)
        form.addRow("Start:", self.start_edit)
        form.addRow("End:", self.end_edit)
        form.addRow("", self.billable_check)
        form.addRow("Note:", self.note_edit)
        buttons, self.save_button = accept_cancel(self, "Add time", self.save)
        for edit in (self.start_edit, self.end_edit):
            edit.dateTimeChanged.connect(self._check)
        form_dialog_layout(self, form, self.error, buttons)
        self._check()

    @staticmethod
    def _datetime_edit(value: datetime) -> QDateTimeEdit:
        edit = QDateTimeEdit()
        edit.setDisplayFormat("yyyy-MM-dd HH:mm")
        edit.setCalendarPopup(True)
        edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(value.timestamp()) // 60 * 60))
        return edit

    @staticmethod
    def _value(edit: QDateTimeEdit) -> datetime:
        return datetime.fromtimestamp(edit.dateTime().toSecsSinceEpoch(), UTC)

    def set_span(self, start: datetime, end: datetime) -> None:
        self.start_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(start.timestamp())))
        self.end_edit.setDateTime(QDateTime.fromSecsSinceEpoch(int(end.timestamp())))

    def span(self) -> tuple[datetime, datetime]:
        return self._value(self.start_edit), self._value(self.end_edit)

    def _replaces_changed(self) -> None:
        picked = self._entries.get(str(self.replaces_combo.currentData()))
        if picked is not None:
            self.set_span(picked.started_at, picked.ended_at)
            self.billable_check.setChecked(picked.billable)
            self.note_edit.setText(picked.note)
        self.save_button.setText("Save correction" if picked is not None else "Add time")
        self._check()

    def problem(self) -> str | None:
        start, end = self.span()
        return entry_problem(start, end, self._clock())

    def _check(self) -> None:
        problem = self.problem()
        if problem:
            self.error.show_error(problem)
        else:
            self.error.clear_message()
        show_availability(self.save_button, problem, "Record this time")

    def save(self) -> None:
        problem = self.problem()
        if problem:
            self.error.show_error(problem)
            return
        start, end = self.span()
        replaces = self.replaces_combo.currentData()
        self._submit(
            {
                "started_at": start,
                "ended_at": end,
                "billable": self.billable_check.isChecked(),
                "note": self.note_edit.text().strip(),
                "voids_id": uuid.UUID(replaces) if replaces else None,
            },
            self._answered,
        )

    def _answered(self, refusal: str | None) -> None:
        _answer(self, self.error, refusal)


class ForgottenTimerDialog(QDialog):
    """A timer left running past a day's work (``MAX_SPAN``) cannot be stopped "now": the
    server refuses an entry that long. The person says when the work ended instead (between the
    start and the longest span allowed), and the entry ends there."""

    #: The first guess: a working day after the start.
    GUESS = timedelta(hours=8)

    def __init__(
        self,
        running: RunningInfo,
        now: datetime,
        submit: Callable[[datetime, Answer], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("When did the work end?")
        self._submit = submit
        self._latest = min(running.started_at + MAX_SPAN, now)
        hours = int((now - running.started_at).total_seconds() // 3600)
        explanation = plain_label(
            f"The timer on {running.organisation_name} has been running for {hours} hours, since "
            f"{local_text(running.started_at)}. It was probably left running: say when the work "
            "ended. Record any further work as manual entries, one per day."
        )
        explanation.setWordWrap(True)
        self.end_edit = TimeEntryDialog._datetime_edit(
            min(running.started_at + self.GUESS, self._latest)
        )
        self.end_edit.setMinimumDateTime(
            QDateTime.fromSecsSinceEpoch(int(running.started_at.timestamp()))
        )
        self.end_edit.setMaximumDateTime(
            QDateTime.fromSecsSinceEpoch(int(self._latest.timestamp()) // 60 * 60)
        )
        self.error = InlineMessage()
        buttons, self.stop_button = accept_cancel(self, "Stop at this time", self.save)
        form = QFormLayout()
        form.addRow("Work ended:", self.end_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(explanation)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def ended_at(self) -> datetime:
        return TimeEntryDialog._value(self.end_edit)

    def save(self) -> None:
        self._submit(self.ended_at(), self._answered)

    def _answered(self, refusal: str | None) -> None:
        _answer(self, self.error, refusal)


class VoidEntryDialog(QDialog):
    """Remove an entry without replacing it, saying why (the ledger keeps both)."""

    def __init__(
        self,
        entries: Sequence[EntryInfo],
        submit: Callable[[uuid.UUID, str, Answer], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Void a time entry")
        self._submit = submit
        self.entry_combo = QComboBox()
        for e in entries:
            self.entry_combo.addItem(entry_label(e), str(e.entry_id))
        self.reason_edit = QLineEdit()
        self.reason_edit.setMaxLength(2000)
        self.reason_edit.setPlaceholderText("Why is this time removed?")
        self.error = InlineMessage()
        form = QFormLayout()
        form.addRow("Entry:", self.entry_combo)
        form.addRow("Reason:", self.reason_edit)
        buttons, self.void_button = accept_cancel(self, "Void entry", self.save)
        form_dialog_layout(self, form, self.error, buttons)
        if not entries:
            self.error.show_error("there is no entry to void")
            self.void_button.setEnabled(False)

    def save(self) -> None:
        data = self.entry_combo.currentData()
        if not data:
            self.error.show_error("pick the entry to void")
            return
        reason = self.reason_edit.text().strip()
        if not reason:
            self.error.show_error("say why the time is removed")
            return
        self._submit(uuid.UUID(str(data)), reason, self._answered)

    def _answered(self, refusal: str | None) -> None:
        _answer(self, self.error, refusal)
