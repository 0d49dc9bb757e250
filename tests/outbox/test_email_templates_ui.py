"""The email template editor against a real server over HTTP (tests/plugins/live_team.py): a lead
edits a kind, previews it as the server renders it (customer text escaped), saves it and the next
email uses it; a template the server refuses is named by its part and nothing changes; Reset
goes back to the built-in wording; agents never reach the screen."""

from __future__ import annotations

import uuid

import pytest
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QLabel, QMenu, QPushButton
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from agentdesk.models import Notification, NotificationKind, NotificationTemplate
from agentdesk.sync import email_templates as api
from agentdesk.sync.client import ApiClient, BadRequest
from agentdesk.ui.admin import AdminDialog
from agentdesk.ui.admin.email_templates import EmailTemplatesTab
from agentdesk.ui.admin.refusals import FieldError, refusal_text
from agentdesk.ui.shell.main_window import MainWindow, Workspace
from tests.plugins.live_team import PASSWORD, Team, ticket_args
from tests.ui.shell_fixtures import shell_settings

__all__ = ["shell_settings"]


def _signed_in(team: Team, who: str) -> ApiClient:
    client = team.client()
    client.login(who, PASSWORD)
    return client


def _editor(
    qtbot: QtBot, team: Team, who: str = "lead", *, local: bool = False
) -> EmailTemplatesTab:
    tab = EmailTemplatesTab(_signed_in(team, who), local=local, preview_delay_ms=20)
    qtbot.addWidget(tab)
    tab.resize(1100, 700)
    tab.show()
    tab.reload()
    qtbot.waitUntil(lambda: tab.busy is None, timeout=15_000)
    return tab


def _pick(qtbot: QtBot, tab: EmailTemplatesTab, kind: str) -> None:
    for row in range(tab.kinds.count()):
        item = tab.kinds.item(row)
        if item is not None and item.data(Qt.ItemDataRole.UserRole) == kind:
            tab.kinds.setCurrentItem(item)
            break
    assert tab.kind == kind
    _previewed(qtbot, tab)


def _previewed(qtbot: QtBot, tab: EmailTemplatesTab) -> None:
    """Wait until the editor's current draft has been previewed (or refused)."""
    qtbot.waitUntil(
        lambda: (
            not tab.preview_timer.isActive()
            and tab.preview_busy is None
            and (tab.last_preview is not None or tab.preview_problem.isVisible())
        ),
        timeout=15_000,
    )


def _saved(qtbot: QtBot, tab: EmailTemplatesTab) -> None:
    qtbot.mouseClick(tab.save_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.busy is None and tab.message.isVisible(), timeout=15_000)


def _row(team: Team, kind: NotificationKind) -> tuple[str, str, str] | None:
    with team.db() as s:
        row = s.scalar(select(NotificationTemplate).where(NotificationTemplate.kind == kind))
        return None if row is None else (row.subject, row.body_text, row.body_html)


def _label(tab: EmailTemplatesTab, kind: str) -> str:
    for row in range(tab.kinds.count()):
        item = tab.kinds.item(row)
        if item is not None and item.data(Qt.ItemDataRole.UserRole) == kind:
            return item.text()
    raise KeyError(kind)


def test_a_lead_edits_previews_and_saves_and_the_next_email_uses_it(
    qtbot: QtBot, team: Team
) -> None:
    tab = _editor(qtbot, team)
    assert tab.kinds.count() == len(NotificationKind)
    _pick(qtbot, tab, "acknowledgement")
    assert tab.title.text() == "Acknowledgement"
    assert "{{ expectation }}" in tab.variables.text()
    assert "We received your request" in tab.body_text.toPlainText()
    assert not tab.save_button.isEnabled()  # nothing changed yet
    assert not tab.reset_button.isEnabled()  # the built-in wording is in use

    tab.subject.setText("Got it: {{ subject }} ({{ ref }})")
    tab.body_text.setPlainText("Hi {{ name }}, {{ team }} has your request {{ ref }}.")
    tab.body_html.setPlainText("<p>Hi {{ name }}, we have <i>{{ subject }}</i>.</p>")
    assert _label(tab, "acknowledgement") == "Acknowledgement (unsaved)"
    _previewed(qtbot, tab)
    qtbot.waitUntil(lambda: "Got it:" in tab.preview_subject.text(), timeout=15_000)
    assert tab.preview_text.toPlainText().startswith("Hi Ann Lee, Acme Support has your request")
    assert _row(team, NotificationKind.ACKNOWLEDGEMENT) is None  # a preview saves nothing

    _saved(qtbot, tab)
    assert tab.message.text().startswith("Saved")
    assert _label(tab, "acknowledgement") == "Acknowledgement (your wording)"
    assert not tab.save_button.isEnabled()
    assert tab.reset_button.isEnabled()
    assert _row(team, NotificationKind.ACKNOWLEDGEMENT) == (
        "Got it: {{ subject }} ({{ ref }})",
        "Hi {{ name }}, {{ team }} has your request {{ ref }}.",
        "<p>Hi {{ name }}, we have <i>{{ subject }}</i>.</p>",
    )
    # Read back by another desktop: the team's wording, marked as such.
    again = _editor(qtbot, team)
    _pick(qtbot, again, "acknowledgement")
    assert again.subject.text() == "Got it: {{ subject }} ({{ ref }})"
    assert _label(again, "acknowledgement") == "Acknowledgement (your wording)"

    # The next request's acknowledgement is worded so, customer text escaped in the HTML.
    agent = team.desk("agent")
    agent.sync()
    agent.replica.mutate("create_ticket", ticket_args(team.world, subject="<b>Invoices</b>"))
    agent.sync()
    with team.db() as s:
        note = s.scalars(select(Notification)).one()
        assert note.subject.startswith("Got it: <b>Invoices</b> (AD-")
        assert "<i>&lt;b&gt;Invoices&lt;/b&gt;</i>" in note.body_html


def test_the_preview_shows_customer_text_escaped(qtbot: QtBot, team: Team) -> None:
    tab = _editor(qtbot, team)
    _pick(qtbot, tab, "resolution")
    preview = tab.last_preview
    assert preview is not None
    # The sample request's subject holds markup, as a customer's may.
    assert "<b>Checkout shows &lt;Error 500&gt; &amp; no payments</b>" in preview.body_html
    assert "Checkout shows <Error 500> & no payments" in tab.preview_subject.text()
    # Rendered, the HTML preview shows the customer's text as text, not as markup.
    assert "Checkout shows <Error 500> & no payments" in tab.preview_html.toPlainText()
    assert "Checkout shows <Error 500> & no payments" in tab.preview_text.toPlainText()
    # A draft cannot opt out of the escaping.
    tab.body_html.setPlainText("<p>{{ subject|safe }}</p>")
    _previewed(qtbot, tab)
    qtbot.waitUntil(lambda: tab.preview_problem.isVisible(), timeout=15_000)
    assert "HTML body" in tab.preview_problem.text()
    assert "'safe' filter" in tab.preview_problem.text()


@pytest.mark.parametrize(
    ("field", "source", "words"),
    [
        ("body_html", "<p>{{ nope }} for {{ name }}</p>", "uses 'nope', which"),
        ("body_text", "Hi {{ name ", "does not compile"),
        ("subject", "{% if %}x{% endif %}", "does not compile"),
    ],
)
def test_a_template_the_server_refuses_is_named_by_its_part_and_changes_nothing(
    qtbot: QtBot, team: Team, field: str, source: str, words: str
) -> None:
    client = _signed_in(team, "lead")
    saved = api.save_template(
        client, "resolution", api.Draft("Done: {{ subject }}", "Done, {{ name }}.", "<p>Done</p>")
    )
    tab = _editor(qtbot, team)
    _pick(qtbot, tab, "resolution")
    assert tab.subject.text() == "Done: {{ subject }}"
    widget = tab.fields[field]
    if field == "subject":
        tab.subject.setText(source)
    else:
        widget.setPlainText(source)  # type: ignore[union-attr]
    _previewed(qtbot, tab)
    shown = {"subject": "Subject", "body_text": "Plain-text body", "body_html": "HTML body"}
    assert tab.preview_problem.text().startswith(f"No preview: {shown[field]}: ")
    _saved(qtbot, tab)
    assert tab.message.kind == "error"
    assert tab.message.text().startswith(f"Not saved: {shown[field]}: ")
    assert words in tab.message.text()
    assert widget.hasFocus()  # the part to fix
    assert _row(team, NotificationKind.RESOLUTION) == (
        saved.draft.subject,
        saved.draft.body_text,
        saved.draft.body_html,
    )
    assert _label(tab, "resolution") == "Resolution (your wording, unsaved)"  # kept to fix
    assert tab.save_button.isEnabled()


def test_reset_goes_back_to_the_built_in_wording(qtbot: QtBot, team: Team) -> None:
    client = _signed_in(team, "lead")
    built_in = next(t for t in api.list_templates(client) if t.kind == "assignment")
    api.save_template(client, "assignment", api.Draft("Ours", "Ours, {{ name }}.", "<p>Ours</p>"))
    tab = _editor(qtbot, team)
    _pick(qtbot, tab, "assignment")
    assert tab.subject.text() == "Ours"
    tab.body_text.setPlainText("Edited, not saved, {{ name }}.")
    qtbot.mouseClick(tab.reset_button, Qt.MouseButton.LeftButton)
    prompt = tab.reset_prompt
    assert prompt is not None
    assert "your team's wording" in prompt.text()
    keep = prompt.button(prompt.StandardButton.No)
    qtbot.mouseClick(keep, Qt.MouseButton.LeftButton)
    assert _row(team, NotificationKind.ASSIGNMENT) is not None  # "Keep it" keeps it
    assert tab.body_text.toPlainText() == "Edited, not saved, {{ name }}."

    qtbot.mouseClick(tab.reset_button, Qt.MouseButton.LeftButton)
    confirm = tab.reset_prompt.findChild(QPushButton, "confirmResetTemplate")  # type: ignore[union-attr]
    assert confirm is not None
    qtbot.mouseClick(confirm, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.busy is None and tab.message.isVisible(), timeout=15_000)
    assert tab.message.text() == "Back to the built-in wording."
    assert _row(team, NotificationKind.ASSIGNMENT) is None
    assert tab.draft() == built_in.draft
    assert _label(tab, "assignment") == "Assignment"
    assert not tab.reset_button.isEnabled()
    _previewed(qtbot, tab)
    assert "Sam Rivera has your request" in tab.preview_subject.text()


def test_unsaved_edits_survive_looking_at_another_kind(qtbot: QtBot, team: Team) -> None:
    tab = _editor(qtbot, team)
    _pick(qtbot, tab, "reply")
    tab.subject.setText("Re: {{ subject }}")
    _pick(qtbot, tab, "resolution")
    assert tab.subject.text() != "Re: {{ subject }}"
    assert _label(tab, "reply") == "Reply (unsaved)"
    _pick(qtbot, tab, "reply")
    assert tab.subject.text() == "Re: {{ subject }}"
    assert "Re: Checkout shows" in tab.preview_subject.text()
    tab.subject.setText("Re: [{{ ref }}] {{ subject }}")  # the built-in again: nothing to save
    assert _label(tab, "reply") == "Reply"
    assert not tab.save_button.isEnabled()


def _first_menu(window: MainWindow) -> QMenu:
    menu = window.menuBar().actions()[0].menu()
    assert isinstance(menu, QMenu)
    return menu


def _menu_names(window: MainWindow) -> set[str]:
    return {a.objectName() for a in _first_menu(window).actions()}


def test_leads_open_it_from_the_file_menu_and_agents_never_reach_it(
    qtbot: QtBot, team: Team, shell_settings: QSettings
) -> None:
    for who in ("agent", "lead"):
        desk = team.desk(who)
        window = MainWindow(shell_settings)
        qtbot.addWidget(window)
        window.attach(
            Workspace(
                replica=desk.replica,
                client=desk.client,
                engine=desk.engine,
                user=desk.login.user,
                server_label="test",
                token_key=team.url,
            )
        )
        try:
            if who == "agent":
                assert "emailTemplatesAction" not in _menu_names(window)
                admin = next(
                    a for a in _first_menu(window).actions() if a.objectName() == "adminAction"
                )
                admin.trigger()
                dialog = window.admin_dialog  # type: ignore[attr-defined]
                assert isinstance(dialog, AdminDialog)
                assert dialog.email_templates is None
                assert "Email templates" not in [
                    dialog.tabs.tabText(i) for i in range(dialog.tabs.count())
                ]
                continue
            [action] = [
                a for a in _first_menu(window).actions() if a.objectName() == "emailTemplatesAction"
            ]
            assert action.text() == "Email &templates…"
            action.trigger()
            dialog = window.admin_dialog  # type: ignore[attr-defined]
            assert isinstance(dialog, AdminDialog)
            tab = dialog.email_templates
            assert tab is not None
            assert dialog.tabs.currentWidget() is tab
            qtbot.waitUntil(
                lambda t=tab: t.kinds.count() == len(NotificationKind),  # type: ignore[misc]
                timeout=15_000,
            )
            action.trigger()  # again: the open dialog comes forward, no second one
            assert window.admin_dialog is dialog  # type: ignore[attr-defined]
        finally:
            window.detach()
        assert "emailTemplatesAction" not in _menu_names(window)
    # And the server refuses an agent the templates whatever the desktop shows.
    agent_tab = _editor(qtbot, team, "agent")
    assert agent_tab.message.text().startswith("Could not load the templates: ")
    assert agent_tab.kinds.count() == 0
    assert not agent_tab.save_button.isEnabled()


def test_local_mode_says_that_nothing_is_sent(qtbot: QtBot, team: Team) -> None:
    tab = _editor(qtbot, team, local=True)
    note = tab.findChild(QLabel, "templatesLocalNote")
    assert note is not None
    assert "Email delivery is off" in note.text()
    assert tab.kinds.count() == len(NotificationKind)  # the local server's templates, editable


def test_refusals_name_the_field_once() -> None:
    names = {"body_html": "HTML body"}
    refused = BadRequest("body_html uses 'x', which ...", status=422, field="body_html")
    assert refusal_text(refused, names) == "Not saved: HTML body: uses 'x', which ..."
    assert refusal_text(refused) == "Not saved: body_html: body_html uses 'x', which ..."
    pydantic = BadRequest("body.subject: too short", status=422, field="body.subject")
    assert refusal_text(pydantic, {"subject": "Subject"}) == "Not saved: Subject: too short"
    assert refusal_text(FieldError("hours.mon", "write 08:00-17:00")) == (
        "Not saved: hours.mon: write 08:00-17:00"
    )
    assert refusal_text(BadRequest("no", status=409)) == "Not saved: no"
    assert refusal_text(ValueError(str(uuid.UUID(int=0)))).startswith("Not saved: 0000")
