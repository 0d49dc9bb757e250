"""The email template editor (Team administration > Email templates, leads and admins).

Each kind of notification has a subject, a plain-text and an HTML body (Jinja2). The server
renders every message and so alone judges a template: the preview beside the editor is the
server's rendering of the draft with its sample data (customer text escaped in the HTML body
exactly as in a real message), a Save the server refuses names the part and the reason and
changes nothing, and Reset to default goes back to the built-in wording. Every call runs on a
worker (:mod:`agentdesk.ui.background`); a preview answer that arrives after the draft changed
again is dropped.

Unsaved edits are kept per kind while the dialog is open, so looking at another kind loses
nothing; the list marks them. The preview never fetches anything: images and links in a
template are not loaded or followed.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, QTimer, QUrl
from PySide6.QtGui import QFont, QFontDatabase
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTabWidget,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from ...sync import email_templates as api
from ...sync.client import ApiClient, ApiError
from .. import background
from ..panel_widgets import InlineMessage, plain_label
from .refusals import refusal_text, refused_field

__all__ = ["FIELD_NAMES", "EmailTemplatesTab", "PreviewBrowser"]

#: The parts of a template as the server names them, and as the editor shows them.
FIELD_NAMES = {"subject": "Subject", "body_text": "Plain-text body", "body_html": "HTML body"}
#: How long typing must pause before the draft is sent for a preview.
PREVIEW_DELAY_MS = 400


class PreviewBrowser(QTextBrowser):
    """Shows a rendered HTML body and loads nothing it names (images, style sheets): a
    preview is not the place to reach a server, and a link is not followed either."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)

    def loadResource(self, type: int, name: QUrl | str) -> Any:
        return None


class EmailTemplatesTab(QWidget):
    """The kinds on the left, the chosen one's three parts in the middle, the server's preview
    of them on the right."""

    def __init__(
        self,
        client: ApiClient,
        *,
        local: bool = False,
        preview_delay_ms: int = PREVIEW_DELAY_MS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.client = client
        self.setObjectName("admin:Email templates")
        self.templates: dict[str, api.Template] = {}
        #: Edits not saved yet, by kind (dropped once equal to the saved template again).
        self.drafts: dict[str, api.Draft] = {}
        self.kind: str | None = None
        self.busy: background.Operation[Any] | None = None
        self.preview_busy: background.Operation[Any] | None = None
        self.last_preview: api.Preview | None = None
        self.reset_prompt: QMessageBox | None = None
        self._filling = False
        self._preview_asked = 0  # which draft the newest preview request was for

        self.kinds = QListWidget()
        self.kinds.setAccessibleName("Email templates list")
        self.kinds.setMaximumWidth(230)
        self.kinds.currentItemChanged.connect(lambda item, _old: self._picked(item))

        self.title = plain_label()
        title_font = QFont(self.title.font())
        title_font.setBold(True)
        self.title.setFont(title_font)
        self.sent_when = plain_label()
        self.sent_when.setWordWrap(True)
        self.variables = plain_label()
        self.variables.setObjectName("templateVariables")
        self.variables.setWordWrap(True)
        self.variables.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        fixed = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.subject = QLineEdit()
        self.subject.setAccessibleName(FIELD_NAMES["subject"])
        self.body_text = QPlainTextEdit()
        self.body_text.setAccessibleName(FIELD_NAMES["body_text"])
        self.body_html = QPlainTextEdit()
        self.body_html.setAccessibleName(FIELD_NAMES["body_html"])
        for body in (self.body_text, self.body_html):
            body.setFont(fixed)
            body.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
            body.textChanged.connect(self._edited)
        self.subject.textChanged.connect(self._edited)
        self.fields: dict[str, QLineEdit | QPlainTextEdit] = {
            "subject": self.subject,
            "body_text": self.body_text,
            "body_html": self.body_html,
        }

        self.message = InlineMessage()
        self.message.setObjectName("adminError")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.save_button = QPushButton("Save")
        self.save_button.setObjectName("saveTemplateButton")
        self.save_button.clicked.connect(self.save)
        self.reset_button = QPushButton("Reset to default…")
        self.reset_button.setObjectName("resetTemplateButton")
        self.reset_button.setToolTip("Use the built-in wording for this kind again")
        self.reset_button.clicked.connect(self.ask_reset)

        form = QFormLayout()
        form.addRow(FIELD_NAMES["subject"], self.subject)
        form.addRow(FIELD_NAMES["body_text"], self.body_text)
        form.addRow(FIELD_NAMES["body_html"], self.body_html)
        buttons = QHBoxLayout()
        buttons.addWidget(self.reset_button)
        buttons.addStretch(1)
        buttons.addWidget(self.save_button)
        editor = QWidget()
        editor_layout = QVBoxLayout(editor)
        editor_layout.setContentsMargins(0, 0, 0, 0)
        editor_layout.addWidget(self.title)
        editor_layout.addWidget(self.sent_when)
        editor_layout.addWidget(self.variables)
        editor_layout.addLayout(form, 1)
        editor_layout.addWidget(self.message)
        editor_layout.addLayout(buttons)

        self.preview_subject = plain_label()
        self.preview_subject.setObjectName("previewSubject")
        self.preview_subject.setWordWrap(True)
        self.preview_subject.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.preview_problem = InlineMessage()
        self.preview_problem.setObjectName("previewProblem")
        self.preview_problem.setTextFormat(Qt.TextFormat.PlainText)
        self.preview_html = PreviewBrowser()
        self.preview_html.setAccessibleName("HTML email preview")
        self.preview_text = QPlainTextEdit()
        self.preview_text.setReadOnly(True)
        self.preview_text.setFont(fixed)
        self.preview_text.setAccessibleName("Plain-text email preview")
        self.preview_tabs = QTabWidget()
        self.preview_tabs.addTab(self.preview_html, "HTML")
        self.preview_tabs.addTab(self.preview_text, "Plain text")
        preview = QGroupBox("Preview with sample data")
        preview_layout = QVBoxLayout(preview)
        preview_layout.addWidget(self.preview_subject)
        preview_layout.addWidget(self.preview_problem)
        preview_layout.addWidget(self.preview_tabs, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(editor)
        split.addWidget(preview)
        split.setSizes([1, 1])
        row = QHBoxLayout()
        row.addWidget(self.kinds)
        row.addWidget(split, 1)
        layout = QVBoxLayout(self)
        if local:
            note = plain_label(
                "Local mode: these templates word the emails kept in this computer's outbox. "
                "Email delivery is off, so nothing is sent; on a team server, its leads "
                "manage the templates the same way."
            )
            note.setObjectName("templatesLocalNote")
            note.setWordWrap(True)
            layout.addWidget(note)
        layout.addLayout(row, 1)

        self.preview_timer = QTimer(self)
        self.preview_timer.setSingleShot(True)
        self.preview_timer.setInterval(preview_delay_ms)
        self.preview_timer.timeout.connect(self.preview)
        self._show(None)

    # ----------------------------------------------------------------- reading

    def reload(self) -> None:
        """Read every kind's template from the server (unsaved edits are kept)."""
        self.message.show_info("Loading the templates…")

        def done(rows: list[api.Template]) -> None:
            self.busy = None
            self.message.clear_message()
            self.templates = {t.kind: t for t in rows}
            wanted = self.kind or (rows[0].kind if rows else None)
            self.kinds.blockSignals(True)
            try:
                self.kinds.clear()
                for template in rows:
                    item = QListWidgetItem()
                    item.setData(Qt.ItemDataRole.UserRole, template.kind)
                    self.kinds.addItem(item)
                    self._label(item)
                    if template.kind == wanted:
                        self.kinds.setCurrentItem(item)
            finally:
                self.kinds.blockSignals(False)
            self._show(wanted)

        def failed(exc: Exception) -> None:
            self.busy = None
            self.message.show_error(f"Could not load the templates: {_reason(exc)}")

        self.busy = background.run_in_background(
            lambda: api.list_templates(self.client), done, failed, parent=self
        )

    def _label(self, item: QListWidgetItem) -> None:
        kind = str(item.data(Qt.ItemDataRole.UserRole))
        template = self.templates.get(kind)
        if template is None:
            return
        marks = []
        if template.customised:
            marks.append("your wording")
        if kind in self.drafts:
            marks.append("unsaved")
        item.setText(template.title + (f" ({', '.join(marks)})" if marks else ""))
        item.setToolTip(template.sent_when)

    def _relabel(self, kind: str) -> None:
        for row in range(self.kinds.count()):
            item = self.kinds.item(row)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == kind:
                self._label(item)

    def _picked(self, item: QListWidgetItem | None) -> None:
        if item is None:
            return
        self.message.clear_message()
        self._show(str(item.data(Qt.ItemDataRole.UserRole)))

    def _show(self, kind: str | None) -> None:
        """Fill the editor with ``kind``'s unsaved draft, else its saved template."""
        self.kind = kind
        template = self.templates.get(kind) if kind is not None else None
        draft = self.drafts.get(kind) if kind is not None else None
        if template is not None and draft is None:
            draft = template.draft
        self._filling = True
        try:
            self.subject.setText(draft.subject if draft else "")
            self.body_text.setPlainText(draft.body_text if draft else "")
            self.body_html.setPlainText(draft.body_html if draft else "")
        finally:
            self._filling = False
        self.title.setText(template.title if template else "")
        self.sent_when.setText(template.sent_when if template else "")
        self.variables.setText(
            "Can use: " + ", ".join(f"{{{{ {v} }}}}" for v in template.variables)
            if template
            else ""
        )
        for widget in (*self.fields.values(), self.save_button, self.reset_button):
            widget.setEnabled(template is not None)
        self._clear_preview()
        self._update_buttons()
        if template is not None:
            self.preview()

    def draft(self) -> api.Draft:
        """The editor's three parts as typed."""
        return api.Draft(
            self.subject.text(), self.body_text.toPlainText(), self.body_html.toPlainText()
        )

    def _edited(self) -> None:
        if self._filling or self.kind is None or self.kind not in self.templates:
            return
        draft = self.draft()
        if draft == self.templates[self.kind].draft:
            self.drafts.pop(self.kind, None)
        else:
            self.drafts[self.kind] = draft
        self._relabel(self.kind)
        self._update_buttons()
        self.preview_timer.start()

    def _update_buttons(self) -> None:
        template = self.templates.get(self.kind) if self.kind is not None else None
        unsaved = self.kind in self.drafts
        self.save_button.setEnabled(template is not None and unsaved)
        self.reset_button.setEnabled(template is not None and (template.customised or unsaved))

    # ----------------------------------------------------------------- preview

    def preview(self) -> None:
        """Ask the server to render the editor's draft with its sample data."""
        self.preview_timer.stop()
        kind = self.kind
        if kind is None or kind not in self.templates:
            return
        draft = self.draft()
        self._preview_asked += 1
        asked = self._preview_asked

        def done(shown: api.Preview) -> None:
            self.preview_busy = None
            if asked != self._preview_asked:
                return  # the draft changed meanwhile: its own preview is on its way
            self.last_preview = shown
            self.preview_problem.clear_message()
            self.preview_subject.setText(f"Subject: {shown.subject}")
            self.preview_html.setHtml(shown.body_html)
            self.preview_text.setPlainText(shown.body_text)

        def failed(exc: Exception) -> None:
            self.preview_busy = None
            if asked != self._preview_asked:
                return
            text = refusal_text(exc, FIELD_NAMES).removeprefix("Not saved: ")
            self.preview_problem.show_error(
                f"No preview: {text}"
                + (
                    " (the preview below is of the last version that rendered)"
                    if self.last_preview is not None
                    else ""
                )
            )

        self.preview_busy = background.run_in_background(
            lambda: api.preview_template(self.client, kind, draft), done, failed, parent=self
        )

    def _clear_preview(self) -> None:
        self._preview_asked += 1  # an answer still on its way is for another kind
        self.last_preview = None
        self.preview_problem.clear_message()
        self.preview_subject.setText("")
        self.preview_html.clear()
        self.preview_text.clear()

    # ----------------------------------------------------------------- changes

    def save(self) -> None:
        """Send the draft; the server's refusal names the part and changes nothing."""
        kind = self.kind
        if kind is None or self.busy is not None or kind not in self.templates:
            return
        draft = self.draft()
        self.message.clear_message()
        self.save_button.setEnabled(False)

        def done(saved: api.Template) -> None:
            self.busy = None
            self.templates[kind] = saved
            if self.drafts.get(kind) == saved.draft:
                self.drafts.pop(kind)
            self._relabel(kind)
            if self.kind == kind:
                self.message.show_info(
                    f"Saved: the next {saved.title.lower()} emails use this wording."
                )
            self._update_buttons()

        def failed(exc: Exception) -> None:
            self.busy = None
            self._update_buttons()
            if self.kind != kind:
                return
            self.message.show_error(refusal_text(exc, FIELD_NAMES))
            widget = self.fields.get(refused_field(exc) or "")
            if widget is not None:
                widget.setFocus()

        self.busy = background.run_in_background(
            lambda: api.save_template(self.client, kind, draft), done, failed, parent=self
        )

    def ask_reset(self) -> None:
        """Ask before the team's wording for this kind is thrown away."""
        kind = self.kind
        template = self.templates.get(kind) if kind is not None else None
        if kind is None or template is None:
            return
        what = "your team's wording" if template.customised else "your unsaved changes"
        prompt = QMessageBox(
            QMessageBox.Icon.Question,
            "Reset to the built-in template?",
            f"{template.title}: {what} will be replaced by the built-in wording. Emails "
            "already queued keep the wording they were written with.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        prompt.setTextFormat(Qt.TextFormat.PlainText)
        yes = prompt.button(QMessageBox.StandardButton.Yes)
        yes.setText("Reset to default")
        yes.setObjectName("confirmResetTemplate")
        prompt.button(QMessageBox.StandardButton.No).setText("Keep it")
        prompt.setDefaultButton(QMessageBox.StandardButton.No)
        prompt.accepted.connect(lambda: self.reset(kind))
        self.reset_prompt = prompt
        prompt.open()

    def reset(self, kind: str) -> None:
        if self.busy is not None:
            return
        self.message.clear_message()

        def done(built_in: api.Template) -> None:
            self.busy = None
            self.templates[kind] = built_in
            self.drafts.pop(kind, None)
            self._relabel(kind)
            if self.kind == kind:
                self._show(kind)
                self.message.show_info("Back to the built-in wording.")

        def failed(exc: Exception) -> None:
            self.busy = None
            if self.kind == kind:
                self.message.show_error(f"Not reset: {_reason(exc)}")

        self.busy = background.run_in_background(
            lambda: api.reset_template(self.client, kind), done, failed, parent=self
        )


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, ApiError) else str(exc)
