""" "New ticket" (Ctrl+N): an agent logs a phone call or a chat as a ticket.

The choices (organisations, their contacts and plans) are read off the GUI thread; the ticket
is created with the same ``create_ticket`` mutation as everywhere (optimistic on the replica,
checked again by the server), so the rules - entitlement, channel, validated contact - are the
mutator's. Before saving, the dialog shows the plan's channel rule (seed 003: chat for Premium
and Enterprise, phone for Enterprise only) and whether the caller is a validated contact.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy.orm import Session

from ...models import new_id
from ...policy.intake import TIER_WORDS
from ...queries.intake import IntakeChoices, OrganisationChoice, channel_rule, intake_choices
from ...sync.replica import Replica
from ..background import run_in_background
from ..panel_widgets import InlineMessage, MutationRunner

CHANNELS = (("phone", "Phone call"), ("chat", "Chat"), ("email", "Email"), ("portal", "Portal"))


class NewTicketDialog(QDialog):
    created = Signal(object)  # the new ticket's id

    def __init__(self, replica: Replica, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("New ticket")
        self.setObjectName("newTicketDialog")
        self.replica = replica
        self.choices: IntakeChoices | None = None
        self.organisation = QComboBox()
        self.organisation.setObjectName("organisation")
        self.contact = QComboBox()
        self.contact.setObjectName("contact")
        self.channel = QComboBox()
        for value, label in CHANNELS:
            self.channel.addItem(label, value)
        self.urgency = QComboBox()
        for tier, (label, words) in sorted(TIER_WORDS.items()):
            self.urgency.addItem(f"Tier {tier}: {label}", tier)
            self.urgency.setItemData(self.urgency.count() - 1, words, Qt.ItemDataRole.ToolTipRole)
        self.urgency.setCurrentIndex(2)
        self.subject = QLineEdit()
        self.subject.setMaxLength(300)
        self.subject.setPlaceholderText("What the customer needs, in a line")
        self.description = QPlainTextEdit()
        self.description.setPlaceholderText("Notes from the call or chat")
        self.rule = QLabel()
        self.rule.setObjectName("channelRule")
        self.rule.setTextFormat(Qt.TextFormat.PlainText)
        self.rule.setWordWrap(True)
        self.validation = QLabel()
        self.validation.setTextFormat(Qt.TextFormat.PlainText)
        self.validation.setWordWrap(True)
        self.message = InlineMessage()
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.runner = MutationRunner(replica, self.message)

        form = QFormLayout()
        form.addRow("Organisation", self.organisation)
        form.addRow("Caller", self.contact)
        form.addRow("Channel", self.channel)
        form.addRow("", self.rule)
        form.addRow("", self.validation)
        form.addRow("Urgency", self.urgency)
        form.addRow("Subject", self.subject)
        form.addRow("Description", self.description)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        self.save_button = self.buttons.button(QDialogButtonBox.StandardButton.Save)
        self.save_button.setText("Create ticket")
        self.save_button.setEnabled(False)
        self.buttons.accepted.connect(self.save)
        self.buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.resize(560, 520)

        self.organisation.currentIndexChanged.connect(self._org_changed)
        self.contact.currentIndexChanged.connect(self._explain)
        self.channel.currentIndexChanged.connect(self._explain)
        self.subject.textChanged.connect(self._explain)
        self.loading = run_in_background(self._read, self._loaded, self._failed, parent=self)

    def _read(self) -> IntakeChoices:
        with Session(self.replica.engine) as session:
            return intake_choices(session)

    def _failed(self, exc: Exception) -> None:
        self.message.show_error(f"could not read the organisations: {exc}")

    def _loaded(self, choices: IntakeChoices) -> None:
        self.choices = choices
        self.organisation.blockSignals(True)
        for org in choices.organisations:
            self.organisation.addItem(f"{org.name} ({org.plan})", str(org.id))
        self.organisation.blockSignals(False)
        self._org_changed()

    def _org(self) -> OrganisationChoice | None:
        if self.choices is None or self.organisation.currentIndex() < 0:
            return None
        return self.choices.organisations[self.organisation.currentIndex()]

    def _org_changed(self, *_args: object) -> None:
        org = self._org()
        self.contact.blockSignals(True)
        self.contact.clear()
        for c in org.contacts if org else ():
            mark = "validated" if c.validated else "not validated"
            self.contact.addItem(f"{c.name} <{c.email}> ({mark})", str(c.id))
        self.contact.blockSignals(False)
        self._explain()

    def _explain(self, *_args: object) -> None:
        org = self._org()
        if org is None or self.choices is None:
            self.rule.setText("")
            self.save_button.setEnabled(False)
            return
        included, words = channel_rule(
            org, str(self.channel.currentData()), self.choices.plans_with
        )
        self.rule.setText(("✔ " if included else "⚠ ") + words)
        index = self.contact.currentIndex()
        if index < 0:
            self.validation.setText(
                "⚠ This organisation has no contacts yet: add the caller as a contact first."
            )
        elif org.contacts[index].validated:
            self.validation.setText("✔ The caller is a validated support contact.")
        else:
            self.validation.setText(
                "⚠ The caller is not a validated support contact: the ticket will be "
                "redirected and the organisation's validated contacts asked how to proceed."
            )
        self.save_button.setEnabled(index >= 0 and bool(self.subject.text().strip()))

    def save(self) -> None:
        org = self._org()
        if org is None or self.contact.currentIndex() < 0:
            return
        ticket_id = new_id()
        args: dict[str, Any] = {
            "ticket_id": str(ticket_id),
            "subject": self.subject.text().strip(),
            "description": self.description.toPlainText(),
            "channel": str(self.channel.currentData()),
            "organisation_id": str(org.id),
            "requester_id": str(self.contact.currentData()),
            "stated_urgency": int(self.urgency.currentData()),
        }
        if self.runner.run("create_ticket", args, done=None, what="the new ticket"):
            self.created.emit(ticket_id)
            self.accept()
