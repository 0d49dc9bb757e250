"""Preferences: the team server, appearance and time zone, notifications, the idle prompt, the
CA bundle.

Every field edits one :class:`~agentdesk.ui.settings.Setting` and shows its documented reason as
the tooltip. Nothing is written until OK, and OK refuses values that cannot work (a server
address that is not http(s), a CA bundle file that does not exist), saying why beside the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import available_timezones

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ...policy.errors import PolicyError
from ...policy.sla import SlaState
from ...policy.zones import zone
from ...sync.server_url import normalise_server
from .. import settings
from ..sla_display import sla_colour
from ..theme import THEMES

__all__ = ["SettingsDialog"]


class SettingsDialog(QDialog):
    """Edit the preferences in ``store``; :attr:`applied` lists the keys that changed."""

    applied = Signal(list)

    def __init__(self, store: QSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        self.store = store

        self.server = QLineEdit(settings.SERVER_URL.read(store))
        self.server.setPlaceholderText("empty: local mode on this computer")
        self.server.setToolTip(settings.SERVER_URL.doc)
        self.server_note = QLabel("Used from the next start; File ▸ Connect… switches now.")
        self.server_note.setWordWrap(True)

        self.ca_bundle = QLineEdit(settings.CA_BUNDLE.read(store))
        self.ca_bundle.setPlaceholderText("the system's certificate authorities")
        self.ca_bundle.setToolTip(settings.CA_BUNDLE.doc)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_ca)
        ca_row = QHBoxLayout()
        ca_row.addWidget(self.ca_bundle, 1)
        ca_row.addWidget(browse)

        self.theme = QComboBox()
        for value, text in THEMES.items():
            self.theme.addItem(text, value)
        self.theme.setCurrentIndex(max(0, self.theme.findData(settings.THEME.read(store))))
        self.theme.setToolTip(settings.THEME.doc)

        # Editable: a zone can be typed ("Europe/Berlin") as well as picked; OK checks it.
        self.time_zone = QComboBox()
        self.time_zone.setEditable(True)
        self.time_zone.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.time_zone.addItem("")
        self.time_zone.addItems(sorted(available_timezones()))
        zone_edit = self.time_zone.lineEdit()
        if zone_edit is not None:  # always, the combo being editable
            zone_edit.setPlaceholderText("this computer's own zone")
        self.time_zone.setCurrentText(settings.TIME_ZONE.read(store))
        self.time_zone.setToolTip(settings.TIME_ZONE.doc)

        self.notify_tier1 = QCheckBox("A new tier-1 (production down) ticket arrives")
        self.notify_tier1.setChecked(settings.NOTIFY_TIER1.read(store))
        self.notify_tier1.setToolTip(settings.NOTIFY_TIER1.doc)
        self.notify_breach = QCheckBox("A ticket assigned to me is about to breach its target")
        self.notify_breach.setChecked(settings.NOTIFY_BREACH.read(store))
        self.notify_breach.setToolTip(settings.NOTIFY_BREACH.doc)

        self.idle_minutes = QSpinBox()
        self.idle_minutes.setRange(0, 240)
        self.idle_minutes.setSuffix(" min")
        self.idle_minutes.setSpecialValueText("Off")
        self.idle_minutes.setValue(settings.IDLE_MINUTES.read(store))
        self.idle_minutes.setToolTip(settings.IDLE_MINUTES.doc)

        self.error = QLabel()
        self.error.setObjectName("settingsError")
        self.error.setWordWrap(True)
        self.error.hide()

        form = QFormLayout()
        form.addRow("Team &server:", self.server)
        form.addRow("", self.server_note)
        # addRow(str, layout) makes a plain label that shows the "&" literally: give it a
        # buddy so the mnemonic works and the ampersand is not shown.
        ca_label = QLabel("&CA bundle:")
        ca_label.setBuddy(self.ca_bundle)
        form.addRow(ca_label, ca_row)
        form.addRow("&Theme:", self.theme)
        form.addRow("Time &zone:", self.time_zone)
        form.addRow("Notify me when:", self.notify_tier1)
        form.addRow("", self.notify_breach)
        form.addRow("&Idle prompt after:", self.idle_minutes)

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)

    def accept(self) -> None:
        problem = self.problem()
        if problem is not None:
            message, widget = problem
            self.error.setText(message)
            colour = sla_colour(SlaState.BREACHED, self.palette())
            self.error.setStyleSheet(f"color: {colour.name()};" if colour else "")
            self.error.show()
            widget.setFocus()
            return
        self.applied.emit(self.save())
        super().accept()

    def problem(self) -> tuple[str, QWidget] | None:
        """Why the form cannot be saved as it is, and the field to fix; None when it can."""
        url = normalise_server(self.server.text())
        if url:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return (
                    "The team server's address starts with https:// and names a host, "
                    "like https://support.example.com (empty: local mode).",
                    self.server,
                )
        ca = self.ca_bundle.text().strip()
        if ca and not Path(ca).expanduser().is_file():
            return (f"There is no CA bundle file at {ca}.", self.ca_bundle)
        tz = self.time_zone.currentText().strip()
        if tz:
            try:
                zone(tz)
            except PolicyError as exc:
                return (
                    f"Time zone: {exc.message} (pick one from the list, or leave it empty "
                    "for this computer's own).",
                    self.time_zone,
                )
        return None

    def save(self) -> list[str]:
        """Write the fields; returns the keys whose value changed."""
        values: dict[settings.Setting[Any], Any] = {
            settings.SERVER_URL: normalise_server(self.server.text()),
            settings.CA_BUNDLE: str(Path(self.ca_bundle.text().strip()).expanduser())
            if self.ca_bundle.text().strip()
            else "",
            settings.THEME: str(self.theme.currentData()),
            settings.TIME_ZONE: self.time_zone.currentText().strip(),
            settings.NOTIFY_TIER1: self.notify_tier1.isChecked(),
            settings.NOTIFY_BREACH: self.notify_breach.isChecked(),
            settings.IDLE_MINUTES: self.idle_minutes.value(),
        }
        changed = []
        for setting, value in values.items():
            if setting.read(self.store) != value:
                setting.write(self.store, value)
                changed.append(setting.key)
        self.store.sync()
        return changed

    def _browse_ca(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(
            self, "CA bundle", self.ca_bundle.text(), "Certificates (*.pem *.crt *.cer);;All (*)"
        )
        if path:
            self.ca_bundle.setText(path)
