"""Admin screens for leads and admins: people, business calendars, support plans and
organisations, without the command line.

Every change goes to the server's REST API through the sync client's session
(:mod:`agentdesk.sync.admin`), on a worker thread: the server's rules judge it as for any client,
a refusal shows the server's message with the field it names, and nothing is half-saved (one
transaction per change). Lists are re-read from the server after each change; other desktops
see the change with their next pull. Everyone else (agents, consultants, coordinators) opens
them read-only: people, calendars and plans, without edit buttons (:data:`ADMIN_ROLES` edit);
the server refuses them the writes anyway.

A password typed for a reset lives only in its dialog's fields and the one request that sends
it: it is never logged, stored, or put in QSettings, and the fields are emptied once sent.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, get_args
from zoneinfo import ZoneInfo

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QStandardItemModel
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ...models import Role
from ...models.support import Membership
from ...policy.calendar import BusinessCalendar
from ...policy.errors import PolicyError
from ...sync import admin as api
from ...sync.client import ApiClient, ApiError
from .. import background
from .email_templates import EmailTemplatesTab
from .refusals import FieldError, refusal_text

__all__ = [
    "ADMIN_ROLES",
    "AdminDialog",
    "PasswordDialog",
    "attach",
    "calendar_preview",
    "detach",
    "overrides_text",
    "parse_hours",
    "parse_overrides",
    "parse_target",
]

ADMIN_ROLES = frozenset({Role.LEAD, Role.ADMIN})
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_hours(text: str, field: str) -> list[list[str]]:
    """``"08:00-12:00, 13:00-17:00"`` -> ``[["08:00", "12:00"], ["13:00", "17:00"]]``."""
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        bounds = [b.strip() for b in part.split("-")]
        if len(bounds) != 2 or not all(bounds):
            raise FieldError(field, f"write intervals as 08:00-17:00, not {part!r}")
        out.append(bounds)
    return out


def parse_overrides(text: str) -> dict[str, list[list[str]]]:
    """One line a date: ``2026-12-24 08:00-12:00`` (changed hours) or ``2026-12-31 closed``.

    Only the shape is read here; the rules engine judges the dates and times (on the server
    and in the preview), naming ``overrides.<date>`` when one is wrong."""
    out: dict[str, list[list[str]]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        day, _, rest = line.partition(" ")
        rest = rest.strip()
        if not rest:
            raise FieldError(
                "overrides",
                f"line {n}: write a date then its hours (2026-12-24 08:00-12:00) or 'closed'",
            )
        if day in out:
            raise FieldError("overrides", f"line {n}: {day} is listed twice")
        out[day] = [] if rest.lower() == "closed" else parse_hours(rest, f"overrides.{day}")
    return out


def overrides_text(overrides: dict[str, list[list[str]]]) -> str:
    return "\n".join(
        f"{day} " + (", ".join(f"{a}-{b}" for a, b in windows) or "closed")
        for day, windows in sorted(overrides.items())
    )


def parse_target(text: str, field: str) -> dict[str, int] | None:
    """``"30m"``, ``"4h"``, ``"1d"`` (business days); blank: the default target."""
    raw = text.strip().lower()
    if not raw:
        return None
    number, unit = raw[:-1], raw[-1]
    if not number.isdigit() or unit not in "mhd":
        raise FieldError(field, f"write a target as 30m, 4h or 1d, not {text!r}")
    n = int(number)
    if unit == "d":
        return {"business_days": n}
    return {"minutes": n * (60 if unit == "h" else 1)}


def target_text(target: dict[str, int] | None) -> str:
    if not target:
        return ""
    if "business_days" in target:
        return f"{target['business_days']}d"
    minutes = target.get("minutes", 0)
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def since_text(instant: str | None) -> str:
    """An organisation's "member since" instant (the server's ISO text) as its UTC date."""
    if not instant:
        return ""
    return datetime.fromisoformat(instant).astimezone(UTC).date().isoformat()


def since_instant(text: str) -> str | None:
    """What to send for a typed "member since": nothing for a blank, midnight UTC for a date
    written YYYY-MM-DD, anything else as typed (the server says what is wrong with it)."""
    text = text.strip()
    if not text:
        return None
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        return f"{text}T00:00:00Z"
    return text


def calendar_preview(data: dict[str, Any], start: date, days: int = 14) -> list[str]:
    """The open hours of ``days`` local days from ``start``, one line each, computed with the
    rules engine from the form's values (a calendar the server would refuse says why)."""
    try:
        cal = BusinessCalendar.from_dict(data)
    except PolicyError as exc:
        return [f"{exc.field}: {exc.message}"]
    zone = ZoneInfo(cal.tz)
    lines = []
    for n in range(days):
        day = start + timedelta(days=n)
        begin = datetime.combine(day, time.min, tzinfo=zone)
        end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
        open_for = cal.between(begin, end)
        label = day.strftime("%a %d %b")
        if cal.is_holiday(day):
            lines.append(f"{label}: holiday")
        elif not open_for:
            lines.append(f"{label}: closed")
        else:
            first = cal.next_open(begin).astimezone(zone)
            hours, rest = divmod(int(open_for.total_seconds() // 60), 60)
            lines.append(f"{label}: open from {first:%H:%M}, {hours}h {rest:02d}m in all")
    return lines


class _Tab(QWidget):
    """A list of rows read from the server and a form that saves one; errors name the field."""

    changed = Signal()

    def __init__(self, client: ApiClient, title: str, read_only: bool = False) -> None:
        super().__init__()
        self.client = client
        self.read_only = read_only
        self.setObjectName(f"admin:{title}")
        self.items = QListWidget()
        self.items.setAccessibleName(f"{title} list")
        self.items.currentItemChanged.connect(lambda item, _old: self._picked(item))
        self.form = QFormLayout()
        self.error = QLabel()
        self.error.setTextFormat(Qt.TextFormat.PlainText)
        self.error.setWordWrap(True)
        self.error.setObjectName("adminError")
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save)
        self.new_button = QPushButton("New")
        self.new_button.clicked.connect(self.new)
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        right = QVBoxLayout()
        right.addLayout(self.form)
        right.addWidget(self.error)
        right.addStretch(1)
        right.addLayout(buttons)
        self.right = right
        layout = QHBoxLayout(self)
        layout.addWidget(self.items, 1)
        layout.addLayout(right, 2)
        self.rows: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.busy: background.Operation[Any] | None = None
        self.last_error: ApiError | FieldError | None = None

    # subclasses: fetch(), label(row), show_row(row | None), body() -> (id | None, dict), send()

    def lock(self) -> None:
        """Read-only: the values stay readable (and selectable), nothing can be sent. Called
        by subclasses once their form is built."""
        if not self.read_only:
            return
        for button in self.findChildren(QPushButton):
            button.hide()
        for widget in self.findChildren(QWidget):
            if isinstance(widget, QSpinBox):
                widget.setReadOnly(True)
                widget.setButtonSymbols(QSpinBox.ButtonSymbols.NoButtons)
            elif isinstance(widget, QLineEdit | QPlainTextEdit):
                widget.setReadOnly(True)
            elif isinstance(widget, QComboBox | QCheckBox):
                widget.setEnabled(False)
        self.preview_only()

    def preview_only(self) -> None:
        """Widgets that stay usable in read-only mode (a subclass re-enables them here)."""

    def fetch(self) -> list[dict[str, Any]]:
        raise NotImplementedError

    def label(self, row: dict[str, Any]) -> str:
        raise NotImplementedError

    def show_row(self, row: dict[str, Any] | None) -> None:
        raise NotImplementedError

    def send(self, row_id: uuid.UUID | None, body: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def body(self) -> dict[str, Any]:
        raise NotImplementedError

    def reload(self, select: str | None = None) -> None:
        def done(rows: list[dict[str, Any]]) -> None:
            self.rows = rows
            self.items.blockSignals(True)  # re-listing is not a new choice: keep the message
            try:
                self.items.clear()
                for row in rows:
                    item = QListWidgetItem(self.label(row))
                    item.setData(Qt.ItemDataRole.UserRole, row["id"])
                    self.items.addItem(item)
                    if row["id"] == select:
                        self.items.setCurrentItem(item)
                        self.current = row
                        self.show_row(row)
            finally:
                self.items.blockSignals(False)
            self.busy = None

        def failed(exc: Exception) -> None:
            self.busy = None
            self.error.setText(f"Could not load: {getattr(exc, 'message', exc)}")

        self.busy = background.run_in_background(self.fetch, done, failed, parent=self)

    def new(self) -> None:
        self.items.clearSelection()
        self.current = None
        self.error.clear()
        self.show_row(None)

    def save(self) -> None:
        """Send the form; the server's refusal (with its field) shows under the form."""
        if self.read_only:
            return
        self.error.clear()
        try:
            body = self.body()
        except FieldError as exc:
            self._failed(exc)
            return
        row_id = uuid.UUID(str(self.current["id"])) if self.current else None

        def done(saved: dict[str, Any]) -> None:
            self.busy = None
            self.last_error = None
            self.error.setText("Saved.")
            self.changed.emit()
            self.reload(select=str(saved.get("id")))

        self.busy = background.run_in_background(
            lambda: self.send(row_id, body), done, self._failed, parent=self
        )

    def _failed(self, exc: Exception, label: QLabel | None = None) -> None:
        """Show why a change was refused, naming the field (once, however the server's
        message begins), under the form it came from."""
        self.busy = None
        label = label or self.error
        if isinstance(exc, ApiError | FieldError):
            self.last_error = exc
        label.setText(refusal_text(exc))

    def _picked(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        wanted = item.data(Qt.ItemDataRole.UserRole)
        self.current = next((r for r in self.rows if r["id"] == wanted), None)
        self.error.clear()
        self.show_row(self.current)


class PasswordDialog(QDialog):
    """Asks for a member's new password twice (typed blind). It keeps the text nowhere but its
    two fields, which ``take()`` empties as it hands the password over."""

    def __init__(self, member: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("passwordDialog")
        self.setWindowTitle(f"Reset the password of {member}")
        self.setMinimumWidth(440)
        self.first = QLineEdit()
        self.second = QLineEdit()
        for edit, name in ((self.first, "New password"), (self.second, "New password again")):
            edit.setEchoMode(QLineEdit.EchoMode.Password)
            edit.setAccessibleName(name)
            edit.textChanged.connect(self._check)
        self.hint = QLabel()
        self.hint.setTextFormat(Qt.TextFormat.PlainText)
        self.hint.setWordWrap(True)
        note = QLabel(
            f"{member} is signed out everywhere at once and signs in again with "
            "the new password. Tell them the password in person or by phone."
        )
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.PlainText)
        self.ok = QPushButton("Reset password")
        self.ok.setObjectName("resetPasswordOk")
        self.ok.setDefault(True)
        self.ok.clicked.connect(self.accept)
        cancel = QPushButton("Cancel")
        cancel.clicked.connect(self.reject)
        form = QFormLayout()
        form.addRow("New password", self.first)
        form.addRow("Again", self.second)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(cancel)
        buttons.addWidget(self.ok)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addLayout(form)
        layout.addWidget(self.hint)
        layout.addLayout(buttons)
        self.rejected.connect(self._forget)
        self._check()

    def _check(self) -> None:
        """The two must match; the server judges the length and says so naming the field."""
        first, second = self.first.text(), self.second.text()
        same = first == second
        self.ok.setEnabled(bool(first) and same)
        self.hint.setText("" if same or not second else "The two passwords differ.")

    def take(self) -> str:
        password = self.first.text()
        self._forget()
        return password

    def _forget(self) -> None:
        self.first.clear()
        self.second.clear()


class PeopleTab(_Tab):
    def __init__(self, client: ApiClient, can_grant_admin: bool, read_only: bool = False) -> None:
        super().__init__(client, "People", read_only)
        self.username = QLineEdit()
        self.display_name = QLineEdit()
        self.email = QLineEdit()
        self.role = QComboBox()
        for role in Role:
            self.role.addItem(role.value, role.value)
        if not can_grant_admin:
            # Listed (an admin's row shows their role) but not choosable: only an admin grants
            # it, and the server refuses it to anyone else anyway.
            model = self.role.model()
            assert isinstance(model, QStandardItemModel)  # QComboBox's own model
            admin_item = model.item(self.role.findData(Role.ADMIN.value))
            assert admin_item is not None
            admin_item.setEnabled(False)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("only for a new member")
        self.active = QCheckBox("Active (unticked: their sign-ins stop working)")
        for label, widget in (
            ("Username", self.username),
            ("Name", self.display_name),
            ("Email", self.email),
            ("Role", self.role),
            ("Password", self.password),
            ("", self.active),
        ):
            self.form.addRow(label, widget)
        self.reset_button = QPushButton("Reset password…")
        self.reset_button.setObjectName("resetPasswordButton")
        self.reset_button.clicked.connect(self.ask_password)
        reset_row = QHBoxLayout()
        reset_row.addWidget(self.reset_button)
        reset_row.addStretch(1)
        self.form.addRow("", reset_row)
        self.password_dialog: PasswordDialog | None = None
        if read_only:
            for label in ("Email", "Password"):  # the server shares no emails with non-leads
                self.form.setRowVisible(self._row_of(label), False)
        self.show_row(None)
        self.lock()

    def _row_of(self, label: str) -> int:
        for row in range(self.form.rowCount()):
            item = self.form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            widget = item.widget() if item is not None else None
            if isinstance(widget, QLabel) and widget.text() == label:
                return row
        raise KeyError(label)

    def ask_password(self) -> None:
        """A dialog for the chosen member's new password; OK sends it on a worker."""
        if self.current is None or self.read_only:
            return
        member = dict(self.current)
        dialog = PasswordDialog(str(member["display_name"]), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.password_dialog = dialog

        def accepted() -> None:
            self.reset_password(
                uuid.UUID(str(member["id"])), dialog.take(), str(member["display_name"])
            )

        def gone() -> None:
            self.password_dialog = None

        dialog.accepted.connect(accepted)
        dialog.destroyed.connect(gone)
        dialog.open()

    def reset_password(self, user_id: uuid.UUID, password: str, member: str) -> None:
        self.error.clear()

        def done(_: None) -> None:
            self.busy = None
            self.last_error = None
            self.error.setText(f"Password of {member} reset; their sign-ins were revoked.")

        self.busy = background.run_in_background(
            lambda: api.reset_password(self.client, user_id, password),
            done,
            self._failed,
            parent=self,
        )

    def fetch(self) -> list[dict[str, Any]]:
        return api.list_users(self.client)

    def label(self, row: dict[str, Any]) -> str:
        state = "" if row.get("active", True) else " (deactivated)"
        return f"{row['display_name']} · {row['role']}{state}"

    def show_row(self, row: dict[str, Any] | None) -> None:
        self.username.setText(row["username"] if row else "")
        self.username.setReadOnly(row is not None)
        self.display_name.setText(row["display_name"] if row else "")
        self.email.setEnabled(row is None)
        self.password.setEnabled(row is None)
        self.role.setCurrentIndex(max(0, self.role.findData(row["role"] if row else "agent")))
        self.active.setChecked(bool(row["active"]) if row else True)
        self.active.setEnabled(row is not None and not self.read_only)
        self.reset_button.setEnabled(row is not None)

    def body(self) -> dict[str, Any]:
        if self.current is None:
            return {
                "username": self.username.text().strip(),
                "display_name": self.display_name.text().strip(),
                "email": self.email.text().strip() or None,
                "role": self.role.currentData(),
                "password": self.password.text(),
            }
        return {
            "display_name": self.display_name.text().strip(),
            "role": self.role.currentData(),
            "active": self.active.isChecked(),
        }

    def send(self, row_id: uuid.UUID | None, body: dict[str, Any]) -> dict[str, Any]:
        if row_id is None:
            return api.create_user(self.client, body)
        return api.update_user(self.client, row_id, body)


class CalendarsTab(_Tab):
    def __init__(
        self, client: ApiClient, today: Callable[[], date] = date.today, read_only: bool = False
    ) -> None:
        super().__init__(client, "Calendars", read_only)
        self._today = today
        self.name = QLineEdit()
        self.tz = QLineEdit()
        self.tz.setPlaceholderText("America/New_York")
        self.hours = {day: QLineEdit() for day in DAYS}
        self.country = QLineEdit()
        self.country.setPlaceholderText("US (public holidays from the holidays package)")
        self.holidays = QPlainTextEdit()
        self.holidays.setPlaceholderText("One date a line: 2026-12-24")
        self.holidays.setMaximumHeight(70)
        self.overrides = QPlainTextEdit()
        self.overrides.setPlaceholderText(
            "One date a line: 2026-12-24 08:00-12:00, or 2026-12-31 closed"
        )
        self.overrides.setAccessibleName("Changed hours on one-off dates")
        self.overrides.setMaximumHeight(70)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setAccessibleName("Next two weeks' open hours")
        self.form.addRow("Name", self.name)
        self.form.addRow("Time zone", self.tz)
        for day, edit in self.hours.items():
            edit.setPlaceholderText("closed, or 08:00-12:00, 13:00-17:00")
            self.form.addRow(day.title(), edit)
        self.form.addRow("Holiday country", self.country)
        self.form.addRow("Extra holidays", self.holidays)
        self.form.addRow("Changed hours", self.overrides)
        self.form.addRow("Next two weeks", self.preview)
        for edit in (self.tz, self.country, *self.hours.values()):
            edit.textChanged.connect(self.update_preview)
        self.holidays.textChanged.connect(self.update_preview)
        self.overrides.textChanged.connect(self.update_preview)
        self.show_row(None)
        self.lock()

    def fetch(self) -> list[dict[str, Any]]:
        return api.list_calendars(self.client)

    def label(self, row: dict[str, Any]) -> str:
        return f"{row['name']} ({row['tz']})"

    def show_row(self, row: dict[str, Any] | None) -> None:
        row = row or {
            "name": "",
            "tz": "America/New_York",
            "hours": {},
            "holidays": [],
            "holiday_country": None,
        }
        self.name.setText(row["name"])
        self.tz.setText(row["tz"])
        for day, edit in self.hours.items():
            edit.setText(", ".join(f"{a}-{b}" for a, b in row["hours"].get(day, [])))
        self.country.setText(row.get("holiday_country") or "")
        self.holidays.setPlainText("\n".join(row.get("holidays", [])))
        self.overrides.setPlainText(overrides_text(row.get("overrides", {})))
        self.update_preview()

    def calendar_data(self) -> dict[str, Any]:
        return {
            "tz": self.tz.text().strip(),
            "hours": {
                day: parse_hours(edit.text(), f"hours.{day}") for day, edit in self.hours.items()
            },
            "holidays": [d.strip() for d in self.holidays.toPlainText().splitlines() if d.strip()],
            "overrides": parse_overrides(self.overrides.toPlainText()),
            "holiday_country": self.country.text().strip() or None,
        }

    def update_preview(self) -> None:
        try:
            data = self.calendar_data()
        except FieldError as exc:
            self.preview.setPlainText(str(exc))
            return
        self.preview.setPlainText("\n".join(calendar_preview(data, self._today())))

    def body(self) -> dict[str, Any]:
        return {"name": self.name.text().strip(), **self.calendar_data()}

    def send(self, row_id: uuid.UUID | None, body: dict[str, Any]) -> dict[str, Any]:
        return api.save_calendar(self.client, row_id, body)


class PlansTab(_Tab):
    def __init__(self, client: ApiClient, read_only: bool = False) -> None:
        super().__init__(client, "Plans", read_only)
        self.key = QLineEdit()
        self.name = QLineEdit()
        self.rank = QSpinBox()
        self.rank.setRange(-1000, 1000)
        self.channels = {c: QCheckBox(c) for c in ("portal", "chat", "phone")}
        self.allotment = QSpinBox()
        self.allotment.setRange(0, 10_000)
        self.conversations = QLineEdit()
        self.conversations.setPlaceholderText("blank: unlimited")
        self.bonus = QSpinBox()
        self.bonus.setRange(0, 10_000)
        self.calendar = QComboBox()
        self.targets = {tier: QLineEdit() for tier in (1, 2, 3, 4)}
        channel_row = QHBoxLayout()
        for box in self.channels.values():
            channel_row.addWidget(box)
        for label, widget in (("Key", self.key), ("Name", self.name), ("Rank", self.rank)):
            self.form.addRow(label, widget)
        self.form.addRow("Channels", channel_row)
        self.form.addRow("Contact allotment", self.allotment)
        self.form.addRow("Conversations a year", self.conversations)
        self.form.addRow("Review bonus", self.bonus)
        self.form.addRow("Calendar", self.calendar)
        for tier, edit in self.targets.items():
            edit.setPlaceholderText("default (30m, 4h, 1d, 2d)")
            self.form.addRow(f"Tier {tier} target", edit)
        self.show_row(None)
        self.lock()

    def fetch(self) -> list[dict[str, Any]]:
        calendars = api.list_calendars(self.client)
        self._calendars = [(c["name"], c["id"]) for c in calendars]
        return api.list_plans(self.client)

    def label(self, row: dict[str, Any]) -> str:
        self._fill_calendars()
        return f"{row['name']} (rank {row['rank']})"

    def _fill_calendars(self) -> None:
        wanted = [("Team default (office hours)", None), *getattr(self, "_calendars", [])]
        if [self.calendar.itemData(i) for i in range(self.calendar.count())] != [
            v for _, v in wanted
        ]:
            self.calendar.clear()
            for text, value in wanted:
                self.calendar.addItem(text, value)

    def show_row(self, row: dict[str, Any] | None) -> None:
        self._fill_calendars()
        self.key.setText(row["key"] if row else "")
        self.name.setText(row["name"] if row else "")
        self.rank.setValue(row["rank"] if row else 0)
        for channel, box in self.channels.items():
            box.setChecked(channel in (row["channels"] if row else ["portal"]))
        self.allotment.setValue(row["contact_allotment"] if row else 1)
        per_year = row["conversations_per_year"] if row else None
        self.conversations.setText("" if per_year is None else str(per_year))
        self.bonus.setValue(row["review_bonus_conversations"] if row else 0)
        self.calendar.setCurrentIndex(
            max(0, self.calendar.findData(row["calendar_id"] if row else None))
        )
        targets = row["response_targets"] if row else {}
        for tier, edit in self.targets.items():
            edit.setText(target_text(targets.get(str(tier))))

    def body(self) -> dict[str, Any]:
        per_year = self.conversations.text().strip()
        if per_year and not per_year.isdigit():
            raise FieldError("conversations_per_year", "a whole number, or blank for unlimited")
        targets = {}
        for tier, edit in self.targets.items():
            found = parse_target(edit.text(), f"response_targets.{tier}")
            if found is not None:
                targets[str(tier)] = found
        return {
            "key": self.key.text().strip(),
            "name": self.name.text().strip(),
            "rank": self.rank.value(),
            "channels": [c for c, box in self.channels.items() if box.isChecked()],
            "contact_allotment": self.allotment.value(),
            "conversations_per_year": int(per_year) if per_year else None,
            "review_bonus_conversations": self.bonus.value(),
            "calendar_id": self.calendar.currentData(),
            "response_targets": targets,
        }

    def send(self, row_id: uuid.UUID | None, body: dict[str, Any]) -> dict[str, Any]:
        return api.save_plan(self.client, row_id, body)


class OrganisationsTab(_Tab):
    """Organisations (name, plan, membership and since when, review counts) and, below, the
    chosen one's contacts.

    Contacts are added unvalidated and their name, email and phone changed here; validating
    one takes a slot of the plan's allotment (seed 003's swap), which is the sync mutators'
    rule: it is done in a ticket's contact panel, never by a plain write."""

    def __init__(self, client: ApiClient) -> None:
        super().__init__(client, "Organisations")
        self.name = QLineEdit()
        self.plan = QComboBox()
        self.membership = QComboBox()
        self.membership.setAccessibleName("Membership")
        for state in get_args(Membership):
            self.membership.addItem(state, state)
        self.member_since = QLineEdit()
        self.member_since.setAccessibleName("Member since")
        self.member_since.setPlaceholderText("YYYY-MM-DD, blank if not known")
        self.verified = QSpinBox()
        self.verified.setRange(0, 1_000_000)
        self.recent = QSpinBox()
        self.recent.setRange(0, 1_000_000)
        self.form.addRow("Name", self.name)
        self.form.addRow("Plan", self.plan)
        self.form.addRow("Membership", self.membership)
        self.form.addRow("Member since", self.member_since)
        self.form.addRow("Verified reviews", self.verified)
        self.form.addRow("Reviews, last 6 months", self.recent)
        note = QLabel(
            "Seed 000: 5 more conversations a year with at least 25 verified reviews "
            "and 10 in the last six months. The first 100 organisations by name are "
            "listed."
        )
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.PlainText)
        self.form.addRow(note)
        self.contacts = QListWidget()
        self.contacts.setAccessibleName("Contacts of the organisation")
        self.contacts.setMaximumHeight(120)
        self.contacts.currentItemChanged.connect(lambda item, _old: self._contact_picked(item))
        self.contact_name = QLineEdit()
        self.contact_email = QLineEdit()
        self.contact_phone = QLineEdit()
        self.contact_phone.setPlaceholderText("optional")
        self.new_contact_button = QPushButton("New contact")
        self.new_contact_button.clicked.connect(self.new_contact)
        self.save_contact_button = QPushButton("Save contact")
        self.save_contact_button.clicked.connect(self.save_contact)
        contact_buttons = QHBoxLayout()
        contact_buttons.addWidget(self.new_contact_button)
        contact_buttons.addStretch(1)
        contact_buttons.addWidget(self.save_contact_button)
        self.contact_form = QFormLayout()
        self.contact_form.addRow(
            QLabel(
                "Contacts (validated ones hold a slot of the plan's "
                "allotment; validate in a ticket's contact panel)"
            )
        )
        self.contact_form.addRow(self.contacts)
        self.contact_form.addRow("Contact name", self.contact_name)
        self.contact_form.addRow("Email", self.contact_email)
        self.contact_form.addRow("Phone", self.contact_phone)
        self.contact_form.addRow(contact_buttons)
        self.contact_error = QLabel()
        self.contact_error.setTextFormat(Qt.TextFormat.PlainText)
        self.contact_error.setWordWrap(True)
        self.contact_error.setObjectName("adminError")
        self.contact_form.addRow(self.contact_error)
        self.right.insertLayout(2, self.contact_form)
        self.contact_rows: list[dict[str, Any]] = []
        self.current_contact: dict[str, Any] | None = None
        self._plans: list[tuple[str, Any]] = []
        self._show_contacts_for(None)

    def fetch(self) -> list[dict[str, Any]]:
        self._plans = [(p["name"], p["id"]) for p in api.list_plans(self.client)]
        return api.list_organisations(self.client)

    def label(self, row: dict[str, Any]) -> str:
        if [self.plan.itemData(i) for i in range(self.plan.count())] != [v for _, v in self._plans]:
            self.plan.clear()
            for text, value in self._plans:
                self.plan.addItem(text, value)
        return str(row["name"])

    def show_row(self, row: dict[str, Any] | None) -> None:
        self.name.setText(row["name"] if row else "")
        self.plan.setCurrentIndex(max(0, self.plan.findData(row["plan_id"] if row else None)))
        state = row["membership"] if row else "active"
        if self.membership.findData(state) < 0:  # e.g. intake's "unknown": shown, not offered
            self.membership.addItem(state, state)
        self.membership.setCurrentIndex(self.membership.findData(state))
        self.member_since.setText(since_text(row["member_since"]) if row else "")
        self.verified.setValue(row["verified_reviews"] if row else 0)
        self.recent.setValue(row["recent_reviews"] if row else 0)
        self._show_contacts_for(row)

    def body(self) -> dict[str, Any]:
        """The form's values; for an organisation already saved, only those that differ from
        it (a PATCH): a "member since" shown as a date is not re-sent as that day's midnight
        unless it was edited. The date is sent as typed (as midnight UTC when it is written
        YYYY-MM-DD): the server judges it and names the field when it is not a date."""
        since = self.member_since.text().strip()
        values: dict[str, Any] = {
            "name": self.name.text().strip(),
            "plan_id": self.plan.currentData(),
            "membership": self.membership.currentData(),
            "member_since": since_instant(since),
            "verified_reviews": self.verified.value(),
            "recent_reviews": self.recent.value(),
        }
        row = self.current
        if row is None:
            return values
        shown = {**row, "member_since": since_instant(since_text(row["member_since"]))}
        return {k: v for k, v in values.items() if v != shown.get(k)}

    def send(self, row_id: uuid.UUID | None, body: dict[str, Any]) -> dict[str, Any]:
        return api.save_organisation(self.client, row_id, body)

    # ----------------------------------------------------------------- contacts

    def _show_contacts_for(self, row: dict[str, Any] | None) -> None:
        self.contacts.clear()
        self.contact_rows = []
        self.current_contact = None
        self.contact_error.clear()
        self._fill_contact(None)
        has_org = row is not None
        for widget in (
            self.contacts,
            self.contact_name,
            self.contact_email,
            self.contact_phone,
            self.new_contact_button,
            self.save_contact_button,
        ):
            widget.setEnabled(has_org)
        if row is not None:
            self.load_contacts(uuid.UUID(str(row["id"])))

    def load_contacts(self, organisation_id: uuid.UUID, select: str | None = None) -> None:
        def done(detail: dict[str, Any]) -> None:
            self.busy = None
            if self.current is None or self.current["id"] != detail["id"]:
                return  # another organisation was picked meanwhile
            self.contact_rows = list(detail["contacts"])
            self.contacts.blockSignals(True)
            try:
                self.contacts.clear()
                for contact in self.contact_rows:
                    mark = " ✓ validated" if contact["validated"] else ""
                    item = QListWidgetItem(f"{contact['name']} <{contact['email']}>{mark}")
                    item.setData(Qt.ItemDataRole.UserRole, contact["id"])
                    self.contacts.addItem(item)
                    if contact["id"] == select:
                        self.contacts.setCurrentItem(item)
                        self.current_contact = contact
                        self._fill_contact(contact)
            finally:
                self.contacts.blockSignals(False)

        def failed(exc: Exception) -> None:
            self.busy = None
            self.error.setText(f"Could not load the contacts: {getattr(exc, 'message', exc)}")

        self.busy = background.run_in_background(
            lambda: api.get_organisation(self.client, organisation_id), done, failed, parent=self
        )

    def _fill_contact(self, contact: dict[str, Any] | None) -> None:
        self.contact_name.setText(contact["name"] if contact else "")
        self.contact_email.setText(contact["email"] if contact else "")
        self.contact_phone.setText((contact.get("phone") or "") if contact else "")

    def _contact_picked(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        wanted = item.data(Qt.ItemDataRole.UserRole)
        self.current_contact = next((c for c in self.contact_rows if c["id"] == wanted), None)
        self.contact_error.clear()
        self._fill_contact(self.current_contact)

    def new_contact(self) -> None:
        self.contacts.clearSelection()
        self.current_contact = None
        self.contact_error.clear()
        self._fill_contact(None)

    def save_contact(self) -> None:
        """Add the typed contact to the chosen organisation, or change the chosen contact."""
        if self.current is None:
            return
        self.contact_error.clear()
        org_id = uuid.UUID(str(self.current["id"]))
        contact_id = uuid.UUID(str(self.current_contact["id"])) if self.current_contact else None
        phone = self.contact_phone.text().strip() or None
        body: dict[str, Any] = {
            "name": self.contact_name.text().strip(),
            "email": self.contact_email.text().strip(),
            "phone": phone,
        }

        def send() -> dict[str, Any]:
            if contact_id is None:
                return api.create_contact(self.client, org_id, body)
            return api.update_contact(self.client, contact_id, body)

        def done(saved: dict[str, Any]) -> None:
            self.busy = None
            self.last_error = None
            self.contact_error.setText("Contact saved.")
            self.changed.emit()
            self.load_contacts(org_id, select=str(saved["id"]))

        self.busy = background.run_in_background(
            send, done, lambda exc: self._failed(exc, self.contact_error), parent=self
        )


class AdminDialog(QDialog):
    """The admin tabs; each loads its rows from the server when first shown. Roles outside
    :data:`ADMIN_ROLES` get people, calendars and plans read-only (no edit buttons), and
    neither organisations nor the email templates (the server refuses them those)."""

    def __init__(
        self, client: ApiClient, role: Role, parent: QWidget | None = None, *, local: bool = False
    ) -> None:
        super().__init__(parent)
        self.read_only = role not in ADMIN_ROLES
        self.setObjectName("adminDialog")
        self.setWindowTitle(
            "Team administration (read-only)" if self.read_only else "Team administration"
        )
        self.resize(1100, 740)
        self.people = PeopleTab(
            client, can_grant_admin=role is Role.ADMIN, read_only=self.read_only
        )
        self.calendars = CalendarsTab(client, read_only=self.read_only)
        self.plans = PlansTab(client, read_only=self.read_only)
        self.organisations = None if self.read_only else OrganisationsTab(client)
        self.tabs = QTabWidget()
        shown: list[tuple[_Tab, str]] = [
            (self.people, "People"),
            (self.calendars, "Calendars"),
            (self.plans, "Plans"),
        ]
        if self.organisations is not None:
            shown.append((self.organisations, "Organisations"))
        for tab, title in shown:
            self.tabs.addTab(tab, title)
        self.email_templates = (
            None if self.read_only else EmailTemplatesTab(client, local=local, parent=self)
        )
        if self.email_templates is not None:
            self.tabs.addTab(self.email_templates, "Email templates")
        layout = QVBoxLayout(self)
        if self.read_only:
            note = QLabel("Read-only: team leads and admins change these settings.")
            note.setObjectName("adminReadOnlyNote")
            note.setTextFormat(Qt.TextFormat.PlainText)
            layout.addWidget(note)
        layout.addWidget(self.tabs)
        for tab, _title in shown:
            tab.reload()
        if self.email_templates is not None:
            self.email_templates.reload()

    def show_email_templates(self) -> None:
        if self.email_templates is not None:
            self.tabs.setCurrentWidget(self.email_templates)


def attach(window: Any, workspace: Any) -> QAction:
    """File > Team administration… (read-only for roles outside :data:`ADMIN_ROLES`), and for
    those roles File > Email templates…, the same dialog opened on that tab."""
    editing = workspace.user.role in ADMIN_ROLES
    action = QAction("Team &administration…" if editing else "Team &settings (read-only)…", window)
    action.setObjectName("adminAction")

    def open_dialog() -> AdminDialog:
        dialog = getattr(window, "admin_dialog", None)
        if isinstance(dialog, AdminDialog) and dialog.isVisible():
            dialog.raise_()
            dialog.activateWindow()
            return dialog
        dialog = AdminDialog(
            workspace.client, workspace.user.role, window, local=bool(workspace.local)
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda _obj=None: _forget_dialog(window, dialog))
        window.admin_dialog = dialog
        dialog.show()
        return dialog

    menu = window.menuBar().actions()[0].menu()
    action.triggered.connect(lambda: open_dialog())
    window.file_menu_admin = action
    menu.insertAction(window.settings_action, action)
    window.file_menu_templates = None
    if editing:
        templates = QAction("Email &templates…", window)
        templates.setObjectName("emailTemplatesAction")
        templates.triggered.connect(lambda: open_dialog().show_email_templates())
        window.file_menu_templates = templates
        menu.insertAction(window.settings_action, templates)
    return action


def _forget_dialog(window: Any, dialog: AdminDialog) -> None:
    if getattr(window, "admin_dialog", None) is dialog:
        window.admin_dialog = None


def detach(window: Any) -> None:
    menu = window.menuBar().actions()[0].menu()
    for name in ("file_menu_admin", "file_menu_templates"):
        action = getattr(window, name, None)
        if action is not None:
            menu.removeAction(action)
            action.deleteLater()
            setattr(window, name, None)
    dialog = getattr(window, "admin_dialog", None)
    if dialog is not None:
        dialog.close()
        window.admin_dialog = None
