"""Small pieces shared by the ticket panel, the contact panel and the timer.

* :class:`InlineMessage`: where a refusal or a confirmation is shown, inside the panel that
  caused it (a message box would block the agent and hide the ticket they are reading).
* :func:`show_availability`: every action button is enabled, or disabled with the rule that
  forbids it as its tooltip, never just failing on click.
* :func:`parse_money` / :class:`MoneyEdit`: money is a ``Decimal`` typed as text. A
  ``QDoubleSpinBox`` would hand back a binary float (0.1 + 0.2 is not 0.3), so it is not used
  for money anywhere.
* Times are shown on the agent's own clock (:mod:`agentdesk.ui.shown_time`, re-exported here
  as :func:`local_text`); the rules keep working in UTC and in the team's zone.
"""

from __future__ import annotations

import html
import re
import sys
import uuid
from collections.abc import Callable, Hashable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import shiboken6
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..models import Role
from ..queries.formatting import money_text
from ..sync.replica import Replica
from .shown_time import local_text
from .sla_display import is_dark
from .writer import MutationWriter, Outcome, Step

__all__ = [
    "ElidedLabel",
    "InlineMessage",
    "MoneyEdit",
    "MutationRunner",
    "capitalised",
    "error_colour",
    "local_text",
    "parse_money",
    "roles_text",
    "show_availability",
]

_PLURAL = {
    Role.AGENT: "agents",
    Role.COORDINATOR: "coordinators",
    Role.CONSULTANT: "consultants",
    Role.LEAD: "leads",
    Role.ADMIN: "admins",
}


def roles_text(roles: Iterable[Role]) -> str:
    """``{coordinator, lead, admin}`` -> "coordinators, leads and admins" (enum order)."""
    chosen = set(roles)
    words = [_PLURAL[r] for r in Role if r in chosen]
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} and {words[-1]}"


def capitalised(text: str) -> str:
    """The rules word their reasons for the middle of a sentence; a tooltip starts one."""
    return text[:1].upper() + text[1:] if text else text


def show_availability(button: QAbstractButton, refusal: str | None, purpose: str) -> None:
    """Enable ``button`` with ``purpose`` as its tooltip, or disable it and say why not."""
    button.setEnabled(refusal is None)
    button.setToolTip(purpose if refusal is None else capitalised(refusal))


def error_colour(palette: QPalette) -> QColor:
    """A red readable on the palette's own background, light or dark."""
    return QColor("#ff6e6e" if is_dark(palette) else "#c62828")


def ok_colour(palette: QPalette) -> QColor:
    """A green readable on the palette's own background, light or dark."""
    return QColor("#81c784" if is_dark(palette) else "#2e7d32")


class InlineMessage(QLabel):
    """One line (wrapping) for the outcome of the last action; hidden when there is none."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setVisible(False)
        self.kind: str | None = None

    def show_error(self, text: str) -> None:
        self._show("error", capitalised(text))

    def show_info(self, text: str) -> None:
        self._show("info", capitalised(text))

    def clear_message(self) -> None:
        self.kind = None
        self.setText("")
        self.setVisible(False)

    def _show(self, kind: str, text: str) -> None:
        self.kind = kind
        # From the application's palette, not our own: that one may hold the last error colour.
        base = QApplication.palette(self)
        palette = QPalette(self.palette())
        role = QPalette.ColorRole.WindowText
        palette.setColor(role, error_colour(base) if kind == "error" else base.color(role))
        self.setPalette(palette)
        self.setText(text)
        self.setVisible(True)


# --------------------------------------------------------------------------------- money

_MONEY_PLAIN = re.compile(r"\d+(\.\d+)?")
_MONEY_GROUPED = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")
#: Numeric(12, 2) in the schema: ten digits before the point, two after.
_MAX_WHOLE_DIGITS = 10


def parse_money(text: str) -> Decimal:
    """A non-negative amount with at most two decimals, e.g. "150", "1,250.50".

    Raises ``ValueError`` with a sentence for the agent. Exponents, "NaN", "Infinity" and
    stray characters are refused even though ``Decimal`` would take some of them.
    """
    raw = text.strip().replace(" ", "")
    if not raw:
        raise ValueError("enter an amount, e.g. 150 or 1,250.50")
    if raw.startswith("-"):
        raise ValueError("an amount cannot be negative")
    if not (_MONEY_PLAIN.fullmatch(raw) or _MONEY_GROUPED.fullmatch(raw)):
        raise ValueError(
            f"{text.strip()!r} is not an amount: use digits with an optional decimal point, "
            "e.g. 1,250.50"
        )
    digits = raw.replace(",", "")
    whole, _, cents = digits.partition(".")
    if len(cents) > 2:
        raise ValueError("use at most 2 decimal places")
    if len(whole.lstrip("0")) > _MAX_WHOLE_DIGITS:
        raise ValueError("the amount is too large")
    try:
        return Decimal(digits).quantize(Decimal("0.01"))
    except InvalidOperation:  # pragma: no cover - the patterns above only let numbers through
        raise ValueError(f"{text.strip()!r} is not an amount") from None


class MoneyEdit(QLineEdit):
    """A line edit for an optional amount; :meth:`problem` says what is wrong with it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("e.g. 1,250.00")
        self.setMaxLength(32)

    def amount(self) -> Decimal | None:
        """The amount, or None when empty; raises ``ValueError`` when it is not an amount."""
        if not self.text().strip():
            return None
        return parse_money(self.text())

    def problem(self) -> str | None:
        try:
            self.amount()
        except ValueError as exc:
            return str(exc)
        return None

    def set_amount(self, amount: Decimal | None) -> None:
        self.setText("" if amount is None else money_text(amount))


# --------------------------------------------------------------------------------- mutations


class MutationRunner:
    """Sends a panel's mutations through the replica's one writer (:mod:`agentdesk.ui.writer`)
    and keeps track of them until the server has answered.

    :meth:`submit` queues the mutations and returns at once; when the writer has applied them
    (optimistic, offline-safe) the panel's ``then`` runs, and a local refusal is shown in the
    panel's :class:`InlineMessage` instead of raising. The server may still refuse later (a
    check-and-set conflict, a slot taken meanwhile by another desk); that arrives with a sync
    pull as a stored rejection, and :meth:`report_server_refusals` shows it in the panel that
    made the change, once, next to the thing (``context``) it was about.
    """

    def __init__(self, replica: Replica, message: InlineMessage) -> None:
        self.replica = replica
        self.message = message
        self._issued: dict[tuple[uuid.UUID, int], tuple[Hashable, str]] = {}
        self._reported: set[tuple[uuid.UUID, int]] = set()

    @property
    def writer(self) -> MutationWriter:
        return MutationWriter.of(self.replica)

    def submit(
        self,
        *steps: Step,
        context: Hashable = None,
        then: Callable[[Outcome], None] | None = None,
    ) -> None:
        """Queue ``steps`` (applied in order, stopping at the first refusal) and return at
        once. The refusal, or the last applied step's ``done``, is shown when the outcome
        arrives; ``then(outcome)`` runs after that (re-read what changed)."""

        def reply(outcome: Outcome) -> None:
            self._record(outcome, context)
            if shiboken6.isValid(self.message):  # the panel may be gone by now
                self._show(outcome)
            if then is not None:
                then(outcome)

        self.writer.submit(steps, reply)

    def run(
        self,
        name: str,
        args: Mapping[str, Any],
        *,
        done: str | None,
        what: str,
        context: Hashable = None,
    ) -> bool:
        """Apply one mutation through the writer and wait for the answer (for a caller that
        needs it before going on; :meth:`submit` does not wait)."""
        outcome = self.writer.apply_now([Step(name, args, what, done)])
        self._record(outcome, context)
        self._show(outcome)
        return outcome.ok

    def _record(self, outcome: Outcome, context: Hashable) -> None:
        for key, step in zip(outcome.applied, outcome.steps, strict=False):
            self._issued[key] = (context, step.what)

    def _show(self, outcome: Outcome) -> None:
        if outcome.refusal is not None:
            self.message.show_error(outcome.refusal)
            return
        done = [s.done for s in outcome.steps if s.done]
        if done:
            self.message.show_info(done[-1])

    def report_server_refusals(self, context: Hashable = None) -> list[str]:
        """Show the server's refusals of changes made here about ``context`` (not yet shown);
        returns their texts."""
        if not self._issued:
            return []
        # The state first: a pull landing between the two reads then only delays pruning.
        state = self.replica.state
        shown = []
        refused: set[tuple[uuid.UUID, int]] = set()
        for r in self.replica.rejections():
            key = (r.client_id, r.mutation_id)
            refused.add(key)
            issued = self._issued.get(key)
            if issued is None or key in self._reported or issued[0] != context:
                continue
            self._reported.add(key)
            text = f"the server refused {issued[1]}: {r.message}"
            shown.append(text)
        if shown:
            self.message.show_error("\n".join(shown))
        # Everything up to the acknowledged id has been answered (a refusal arrives in the
        # same pull as the acknowledgement): accepted changes, and refusals already shown, no
        # longer need watching. A refusal about something not shown now waits for it.
        answered = [
            k
            for k in self._issued
            if k[0] == state.client_id
            and k[1] <= state.last_mutation_id
            and (k not in refused or k in self._reported)
        ]
        for key in answered:
            del self._issued[key]
            self._reported.discard(key)
        return shown


# --------------------------------------------------------------------------- user text


class ElidedLabel(QLabel):
    """One line of plain text that gives up width before its window does: it shows what fits,
    ending in "…" (the tooltip, set by its owner, says the rest).

    A plain QLabel's minimum width is its whole text, so a long customer name or balance in a
    toolbar would push the buttons beside it off the edge and widen the window.
    """

    MINIMUM_CHARACTERS = 8

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(False)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        least = self.fontMetrics().averageCharWidth() * self.MINIMUM_CHARACTERS
        return QSize(min(hint.width(), least), hint.height())

    def shown_text(self) -> str:
        """What is on screen: the text, elided to the label's width."""
        return self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, self.contentsRect().width()
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        self.style().drawItemText(
            painter,
            self.contentsRect(),
            int(self.alignment()),
            self.palette(),
            self.isEnabled(),
            self.shown_text(),
            self.foregroundRole(),
        )


def accept_cancel(
    dialog: QDialog, accept: str, on_accept: Callable[[], None]
) -> tuple[QDialogButtonBox, QPushButton]:
    """Cancel, and one accept button named for what it does ("Book", "Void entry"): the
    accept runs ``on_accept`` (which closes the dialog itself once the work is recorded, so a
    refusal can be shown in the dialog), Cancel rejects."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
    button = buttons.addButton(accept, QDialogButtonBox.ButtonRole.AcceptRole)
    buttons.accepted.connect(on_accept)
    buttons.rejected.connect(dialog.reject)
    return buttons, button


def form_dialog_layout(
    dialog: QDialog, form: QFormLayout, error: QWidget, buttons: QDialogButtonBox
) -> QVBoxLayout:
    """The form dialogs' one layout: the fields, the inline refusal under them, the buttons."""
    layout = QVBoxLayout(dialog)
    layout.addLayout(form)
    layout.addWidget(error)
    layout.addWidget(buttons)
    return layout


def plain_label(text: str = "") -> QLabel:
    """A label for text someone typed (a subject, a name, a note): shown as it was typed.

    Qt labels guess rich text by default, so a subject of ``<img src=...>`` would be rendered
    (and fetched); ``PlainText`` shows it literally.
    """
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def rich_label() -> QLabel:
    """A label whose markup is ours and whose user text went through ``html.escape``: rich text
    said explicitly, since an escaped string without a tag would be guessed plain and show
    its ``&lt;`` entities."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    return label


def plain_tooltip(text: str) -> str:
    """A tooltip showing ``text`` literally (tooltips guess rich text and cannot be told)."""
    return f"<p>{html.escape(text)}</p>" if text else ""


def tray_text(text: str) -> str:
    """Text for a tray balloon: freedesktop notification servers (Linux) read the body as
    markup, other platforms show it as it is."""
    return html.escape(text) if sys.platform.startswith("linux") else text
