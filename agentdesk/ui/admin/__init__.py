"""Admin screens for leads and admins: people, business calendars, support plans and
organisations, without the command line.

Every change goes to the server's REST API through the sync client's session
(:mod:`agentdesk.sync.admin`), on a worker thread: the server's rules judge it as for any client,
a refusal shows the server's message with the field it names, and nothing is half-saved (one
transaction per change). Lists are re-read from the server after each change; other desktops
see the change with their next pull. Agents, consultants and coordinators do not get these
screens (:data:`ADMIN_ROLES`); the server refuses them the writes anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction
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
from ...policy.calendar import BusinessCalendar
from ...policy.errors import PolicyError
from ...sync import admin as api
from ...sync.client import ApiClient, ApiError
from .. import background

__all__ = ["ADMIN_ROLES", "AdminDialog", "attach", "calendar_preview", "detach", "parse_hours",
           "parse_target"]

ADMIN_ROLES = frozenset({Role.LEAD, Role.ADMIN})
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class FieldError(Exception):
    """A form value that cannot be sent as typed; ``field`` is the API's name for it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


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

    def __init__(self, client: ApiClient, title: str) -> None:
        super().__init__()
        self.client = client
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
        layout = QHBoxLayout(self)
        layout.addWidget(self.items, 1)
        layout.addLayout(right, 2)
        self.rows: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.busy: background.Operation[Any] | None = None
        self.last_error: ApiError | FieldError | None = None

    # subclasses: fetch(), label(row), show_row(row | None), body() -> (id | None, dict), send()

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

        self.busy = background.run_in_background(lambda: self.send(row_id, body), done,
                                                 self._failed, parent=self)

    def _failed(self, exc: Exception) -> None:
        self.busy = None
        if isinstance(exc, ApiError | FieldError):
            self.last_error = exc
            field = getattr(exc, "field", None)
            text = exc.message if isinstance(exc, ApiError) else str(exc).split(": ", 1)[-1]
            self.error.setText(f"Not saved: {field}: {text}" if field else f"Not saved: {text}")
        else:
            self.error.setText(f"Not saved: {exc}")

    def _picked(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        wanted = item.data(Qt.ItemDataRole.UserRole)
        self.current = next((r for r in self.rows if r["id"] == wanted), None)
        self.error.clear()
        self.show_row(self.current)


class PeopleTab(_Tab):
    def __init__(self, client: ApiClient, can_grant_admin: bool) -> None:
        super().__init__(client, "People")
        self.username = QLineEdit()
        self.display_name = QLineEdit()
        self.email = QLineEdit()
        self.role = QComboBox()
        for role in Role:
            if role is not Role.ADMIN or can_grant_admin:
                self.role.addItem(role.value, role.value)
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("only for a new member")
        self.active = QCheckBox("Active (unticked: their sign-ins stop working)")
        for label, widget in (("Username", self.username), ("Name", self.display_name),
                              ("Email", self.email), ("Role", self.role),
                              ("Password", self.password), ("", self.active)):
            self.form.addRow(label, widget)
        self.show_row(None)

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
        self.active.setEnabled(row is not None)

    def body(self) -> dict[str, Any]:
        if self.current is None:
            return {"username": self.username.text().strip(),
                    "display_name": self.display_name.text().strip(),
                    "email": self.email.text().strip() or None,
                    "role": self.role.currentData(), "password": self.password.text()}
        return {"display_name": self.display_name.text().strip(),
                "role": self.role.currentData(), "active": self.active.isChecked()}

    def send(self, row_id: uuid.UUID | None, body: dict[str, Any]) -> dict[str, Any]:
        if row_id is None:
            return api.create_user(self.client, body)
        return api.update_user(self.client, row_id, body)


class CalendarsTab(_Tab):
    def __init__(self, client: ApiClient, today: Callable[[], date] = date.today) -> None:
        super().__init__(client, "Calendars")
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
        self.form.addRow("Next two weeks", self.preview)
        for edit in (self.tz, self.country, *self.hours.values()):
            edit.textChanged.connect(self.update_preview)
        self.holidays.textChanged.connect(self.update_preview)
        self.show_row(None)

    def fetch(self) -> list[dict[str, Any]]:
        return api.list_calendars(self.client)

    def label(self, row: dict[str, Any]) -> str:
        return f"{row['name']} ({row['tz']})"

    def show_row(self, row: dict[str, Any] | None) -> None:
        row = row or {"name": "", "tz": "America/New_York", "hours": {}, "holidays": [],
                      "holiday_country": None}
        self.name.setText(row["name"])
        self.tz.setText(row["tz"])
        for day, edit in self.hours.items():
            edit.setText(", ".join(f"{a}-{b}" for a, b in row["hours"].get(day, [])))
        self.country.setText(row.get("holiday_country") or "")
        self.holidays.setPlainText("\n".join(row.get("holidays", [])))
        self._overrides = row.get("overrides", {})
        self.update_preview()

    def calendar_data(self) -> dict[str, Any]:
        return {
            "tz": self.tz.text().strip(),
            "hours": {day: parse_hours(edit.text(), f"hours.{day}")
                      for day, edit in self.hours.items()},
            "holidays": [d.strip() for d in self.holidays.toPlainText().splitlines()
                         if d.strip()],
            "overrides": getattr(self, "_overrides", {}),
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
    def __init__(self, client: ApiClient) -> None:
        super().__init__(client, "Plans")
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

    def fetch(self) -> list[dict[str, Any]]:
        calendars = api.list_calendars(self.client)
        self._calendars = [(c["name"], c["id"]) for c in calendars]
        return api.list_plans(self.client)

    def reload(self, select: str | None = None) -> None:
        super().reload(select)

    def label(self, row: dict[str, Any]) -> str:
        self._fill_calendars()
        return f"{row['name']} (rank {row['rank']})"

    def _fill_calendars(self) -> None:
        wanted = [("Team default (office hours)", None), *getattr(self, "_calendars", [])]
        if [self.calendar.itemData(i) for i in range(self.calendar.count())] != [
                v for _, v in wanted]:
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
        self.calendar.setCurrentIndex(max(0, self.calendar.findData(
            row["calendar_id"] if row else None)))
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
            "key": self.key.text().strip(), "name": self.name.text().strip(),
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
    def __init__(self, client: ApiClient) -> None:
        super().__init__(client, "Organisations")
        self.new_button.hide()  # organisations arrive through intake and the API
        self.name = QLineEdit()
        self.plan = QComboBox()
        self.verified = QSpinBox()
        self.verified.setRange(0, 1_000_000)
        self.recent = QSpinBox()
        self.recent.setRange(0, 1_000_000)
        self.form.addRow("Name", self.name)
        self.form.addRow("Plan", self.plan)
        self.form.addRow("Verified reviews", self.verified)
        self.form.addRow("Reviews, last 6 months", self.recent)
        note = QLabel("Seed 000: 5 more conversations a year with at least 25 verified reviews "
                      "and 10 in the last six months. Validated contacts are switched in the "
                      "contact panel of a ticket. The first 100 organisations by name are "
                      "listed.")
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.PlainText)
        self.form.addRow(note)

    def fetch(self) -> list[dict[str, Any]]:
        self._plans = [(p["name"], p["id"]) for p in api.list_plans(self.client)]
        return api.list_organisations(self.client)

    def label(self, row: dict[str, Any]) -> str:
        if self.plan.count() != len(getattr(self, "_plans", [])):
            self.plan.clear()
            for text, value in self._plans:
                self.plan.addItem(text, value)
        return str(row["name"])

    def show_row(self, row: dict[str, Any] | None) -> None:
        if row is None:
            return
        self.name.setText(row["name"])
        self.plan.setCurrentIndex(max(0, self.plan.findData(row["plan_id"])))
        self.verified.setValue(row["verified_reviews"])
        self.recent.setValue(row["recent_reviews"])

    def body(self) -> dict[str, Any]:
        if self.current is None:
            raise FieldError("organisation", "pick an organisation first")
        return {"name": self.name.text().strip(), "plan_id": self.plan.currentData(),
                "verified_reviews": self.verified.value(),
                "recent_reviews": self.recent.value()}

    def send(self, row_id: uuid.UUID | None, body: dict[str, Any]) -> dict[str, Any]:
        assert row_id is not None
        return api.update_organisation(self.client, row_id, body)


class AdminDialog(QDialog):
    """The four admin tabs; each loads its rows from the server when first shown."""

    def __init__(self, client: ApiClient, role: Role, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("adminDialog")
        self.setWindowTitle("Team administration")
        self.resize(980, 680)
        self.people = PeopleTab(client, can_grant_admin=role is Role.ADMIN)
        self.calendars = CalendarsTab(client)
        self.plans = PlansTab(client)
        self.organisations = OrganisationsTab(client)
        self.tabs = QTabWidget()
        for tab, title in ((self.people, "People"), (self.calendars, "Calendars"),
                           (self.plans, "Plans"), (self.organisations, "Organisations")):
            self.tabs.addTab(tab, title)
        layout = QVBoxLayout(self)
        layout.addWidget(self.tabs)
        for tab in (self.people, self.calendars, self.plans, self.organisations):
            tab.reload()


def attach(window: Any, workspace: Any) -> QAction | None:
    """File > Team administration… for leads and admins (None: not theirs)."""
    if workspace.user.role not in ADMIN_ROLES:
        return None
    action = QAction("Team &administration…", window)
    action.setObjectName("adminAction")

    def open_dialog() -> None:
        dialog = AdminDialog(workspace.client, workspace.user.role, window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        window.admin_dialog = dialog
        dialog.show()

    action.triggered.connect(open_dialog)
    window.file_menu_admin = action
    window.menuBar().actions()[0].menu().insertAction(window.settings_action, action)
    return action


def detach(window: Any) -> None:
    action = getattr(window, "file_menu_admin", None)
    if action is not None:
        window.menuBar().actions()[0].menu().removeAction(action)
        action.deleteLater()
        window.file_menu_admin = None
    dialog = getattr(window, "admin_dialog", None)
    if dialog is not None:
        dialog.close()
        window.admin_dialog = None
