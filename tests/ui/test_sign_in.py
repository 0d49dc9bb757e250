"""The sign-in dialog: the login runs in the background, problems are said inline beside the
field to fix, the token goes to the keyring (or the dialog says it will not last)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from agentdesk.sync.client import BadRequest, Offline, ServerError, TlsError, Unauthorized
from agentdesk.sync.credentials import TokenStore
from agentdesk.sync.server_url import normalise_server
from agentdesk.ui.shell.sign_in import SignedIn, SignInDialog, describe_sign_in_error
from tests.plugins.live_team import PASSWORD, MemoryKeyring, Team, free_port, keyring_backend
from tests.ui.shell_fixtures import shell_keyring

__all__ = ["shell_keyring"]


@pytest.fixture
def no_keyring() -> Iterator[None]:
    """This computer has no usable keyring (keyring's "fail" backend)."""
    from keyring.backends.fail import Keyring as FailKeyring

    from agentdesk.sync import credentials

    with keyring_backend(FailKeyring()):  # type: ignore[no-untyped-call]
        yield
    credentials._memory.clear()


def dialog_for(
    qtbot: QtBot, server: str, user: str = "agent", password: str = PASSWORD, **kw: object
) -> SignInDialog:
    dialog = SignInDialog(server, user, **kw)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.password.setText(password)
    return dialog


def test_signing_in_keeps_the_token_in_the_keyring(
    qtbot: QtBot,
    panel_team: Team,
    shell_keyring: MemoryKeyring,
) -> None:
    dialog = dialog_for(qtbot, panel_team.url)
    assert not dialog.keyring_note.isVisible()
    with qtbot.waitSignal(dialog.signedIn, timeout=10_000) as blocker:
        dialog.sign_in_button.click()
        # Off the GUI thread: the dialog stays responsive and says it is working.
        assert dialog.sign_in_button.text() == "Signing in…"
        assert not dialog.password.isEnabled()
    signed = blocker.args[0]
    assert isinstance(signed, SignedIn)
    try:
        assert signed.login.user.username == "agent"
        assert signed.saved.persisted
        assert signed.warning is None
        assert TokenStore(panel_team.url, "agent").load() == signed.client.token
        assert dialog.result() == SignInDialog.DialogCode.Accepted
        assert dialog.password.text() == ""  # the password is not kept, not even in the form
    finally:
        signed.client.close()


def test_wrong_password_is_said_inline_and_nothing_is_kept(
    qtbot: QtBot,
    panel_team: Team,
    shell_keyring: MemoryKeyring,
) -> None:
    dialog = dialog_for(qtbot, panel_team.url, password="not the password")
    dialog.sign_in_button.click()
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10_000)
    assert dialog.error.text() == "Wrong user name or password."
    assert dialog.password.text() == ""
    assert dialog.password.hasFocus()
    assert dialog.isVisible()
    assert dialog.sign_in_button.isEnabled()
    assert not shell_keyring.secrets
    # Typing again clears the message.
    qtbot.keyClicks(dialog.password, "x")
    assert not dialog.error.isVisible()


def test_an_unreachable_server_is_said_inline(
    qtbot: QtBot,
    shell_keyring: MemoryKeyring,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    dialog = dialog_for(qtbot, url)
    dialog.sign_in_button.click()
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=15_000)
    assert dialog.error.text().startswith(f"Cannot reach {url}.")
    assert "refused" in dialog.error.text().lower()
    assert dialog.server.hasFocus()
    assert dialog.password.text() == PASSWORD  # not the password's fault: keep it


def test_the_form_is_checked_before_any_request(qtbot: QtBot) -> None:
    dialog = dialog_for(qtbot, "", password="")
    dialog.submit()
    assert "server's address" in dialog.error.text()
    dialog.server.setText("ftp://files.example.com")
    dialog.submit()
    assert "https://" in dialog.error.text()
    dialog.server.setText("support.example.com")
    dialog.username.setText("")
    dialog.submit()
    assert dialog.error.text() == "Enter your user name."
    dialog.username.setText("agent")
    dialog.submit()
    assert dialog.error.text() == "Enter your password."
    assert dialog.sign_in_button.isEnabled()  # nothing was sent


def test_without_a_keyring_the_dialog_says_so_up_front_and_after(
    qtbot: QtBot,
    panel_team: Team,
    no_keyring: None,
) -> None:
    dialog = dialog_for(qtbot, panel_team.url)
    assert dialog.keyring_note.isVisible()
    assert "you'll need to sign in again next time" in dialog.keyring_note.text()
    with qtbot.waitSignal(dialog.signedIn, timeout=10_000) as blocker:
        dialog.sign_in_button.click()
    signed = blocker.args[0]
    try:
        assert not signed.saved.persisted
        assert signed.warning is not None
        assert signed.warning.endswith("you'll need to sign in again next time.")
    finally:
        signed.client.close()


def test_local_mode_is_offered(qtbot: QtBot) -> None:
    dialog = dialog_for(qtbot, "https://support.example.com")
    assert dialog.local_button is not None
    with qtbot.waitSignal(dialog.localModeRequested):
        dialog.local_button.click()
    assert not dialog.isVisible()
    assert SignInDialog(allow_local=False).local_button is None


def test_error_messages_name_the_field_to_fix() -> None:
    assert describe_sign_in_error(Unauthorized("bad credentials", status=401)) == (
        "Wrong user name or password.",
        "password",
    )
    message, field = describe_sign_in_error(
        TlsError("the server's certificate is not trusted: self-signed certificate")
    )
    assert field == "server"
    assert "self-signed certificate" in message
    assert "CA bundle in Settings" in message
    assert describe_sign_in_error(
        Offline("cannot reach https://x.example: Name or service not known"), "https://x.example"
    ) == (
        "Cannot reach https://x.example. Check the address and your network connection; the "
        "server may be down. (Name or service not known)",
        "server",
    )
    assert describe_sign_in_error(
        BadRequest("too many failed sign-ins; wait a minute", status=429)
    ) == ("too many failed sign-ins; wait a minute", "password")
    assert describe_sign_in_error(ServerError("HTTP 500", status=500))[1] == "server"
    assert describe_sign_in_error(ValueError("not a server address"))[1] == "server"
    assert normalise_server(" support.example.com/ ") == "https://support.example.com"
    assert normalise_server("http://127.0.0.1:8765") == "http://127.0.0.1:8765"
