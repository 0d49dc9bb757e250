"""Signing in to a team server: server address, user name, password.

The login runs off the GUI thread (:mod:`agentdesk.ui.background`); what went wrong is said
inline, next to the field to fix, in words an agent can act on (the server cannot be reached, the
password is wrong, the certificate is not trusted). The token goes to the OS keyring through
:class:`~agentdesk.sync.credentials.TokenStore`; the password is sent once and kept nowhere.
When this computer has no usable keyring the dialog says so up front: the sign-in then lasts
until the app quits.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ...policy.sla import SlaState
from ...sync.client import (
    ApiClient,
    ApiError,
    BadRequest,
    Forbidden,
    LoginResult,
    Offline,
    ServerError,
    TlsError,
    Unauthorized,
)
from ...sync.credentials import SaveOutcome, TokenStore, keyring_status
from ...sync.server_url import normalise_server
from .. import background
from ..sla_display import sla_colour

log = logging.getLogger(__name__)

__all__ = ["LocalPerson", "SignInDialog", "SignedIn", "describe_sign_in_error", "sign_in"]


@dataclass(frozen=True)
class LocalPerson:
    """Someone local mode can sign in as (a demo user): ``label`` is "Name (duty)"."""

    username: str
    label: str


@dataclass(frozen=True)
class SignedIn:
    """A successful sign-in: the client holds the token, the keyring (maybe) a copy."""

    server_url: str
    username: str
    login: LoginResult
    client: ApiClient
    saved: SaveOutcome

    @property
    def warning(self) -> str | None:
        """What to tell the agent when the sign-in will not survive a restart."""
        if self.saved.persisted:
            return None
        problem = self.saved.problem or "the sign-in could not be kept"
        # A sentence of its own ("Signed in. This computer has no ..."): capital first letter.
        return f"{problem[:1].upper()}{problem[1:]}: you'll need to sign in again next time."


def sign_in(
    server_url: str,
    username: str,
    password: str,
    *,
    ca_bundle: str = "",
    token_key: str | None = None,
) -> SignedIn:
    """Log in and keep the token (blocking: run it in the background).

    ``token_key`` names the server in the keyring when it is not the URL (local mode, whose
    port changes on every start).
    """
    client = ApiClient(server_url, ca_bundle=ca_bundle or None)
    try:
        result = client.login(username, password)
    except BaseException:
        client.close()
        raise
    saved = TokenStore(token_key or client.base_url, username).save(result.token)
    return SignedIn(client.base_url, username, result, client, saved)


def describe_sign_in_error(exc: BaseException, server_url: str = "") -> tuple[str, str]:
    """``(message, field)`` for a failed sign-in; field is "server", "username" or "password"."""
    where = server_url or "the server"
    if isinstance(exc, ValueError):
        return ("Enter the server's address, like https://support.example.com.", "server")
    if isinstance(exc, Unauthorized):
        return ("Wrong user name or password.", "password")
    if isinstance(exc, TlsError):
        return (
            f"The server's certificate is not trusted ({_detail(exc.message)}). If your "
            "team uses its own certificate authority, set its CA bundle in Settings.",
            "server",
        )
    if isinstance(exc, Offline):
        return (
            f"Cannot reach {where}. Check the address and your network connection; the "
            f"server may be down. ({_detail(exc.message)})",
            "server",
        )
    if isinstance(exc, Forbidden):
        return (exc.message or "This account may not sign in here.", "username")
    if isinstance(exc, BadRequest):
        field = (
            "password"
            if exc.status == 429
            else (exc.field if exc.field in ("username", "password") else "username")
        )
        return (exc.message or "The server refused the sign-in.", field)
    if isinstance(exc, ServerError):
        return (f"The server had a problem ({exc.message}). Try again in a moment.", "server")
    if isinstance(exc, ApiError):
        return (exc.message, "server")
    return (f"Signing in failed unexpectedly ({type(exc).__name__}).", "server")


def _detail(message: str) -> str:
    """The tail of a client error: "cannot reach http://h: Connection refused" -> the cause."""
    return message.split(": ", 1)[-1] if ": " in message else message


class SignInDialog(QDialog):
    """Ask for a server, user and password; emits :attr:`signedIn` with a :class:`SignedIn`."""

    signedIn = Signal(object)
    #: The agent chose to work in local mode instead, as the demo user named (the dialog
    #: closes).
    localModeRequested = Signal(str)

    def __init__(
        self,
        server_url: str = "",
        username: str = "",
        *,
        ca_bundle: str = "",
        allow_local: bool = True,
        message: str = "",
        local_people: Sequence[LocalPerson] = (),
        local_user: str = "",
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("signInDialog")
        self.setWindowTitle("Sign in to a team server")
        self.setMinimumWidth(440)
        self.ca_bundle = ca_bundle
        self.result_value: SignedIn | None = None
        self._operation: background.Operation[SignedIn] | None = None
        self._attempt = 0

        self.intro = QLabel(message or "Sign in with the account your team lead gave you.")
        self.intro.setWordWrap(True)
        self.server = QLineEdit(server_url)
        self.server.setPlaceholderText("https://support.example.com")
        self.server.setAccessibleName("Server address")
        self.username = QLineEdit(username)
        self.username.setPlaceholderText("user name")
        self.username.setAccessibleName("User name")
        self.password = QLineEdit()
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setAccessibleName("Password")
        for edit in (self.server, self.username, self.password):
            edit.textEdited.connect(self._edited)

        self.error = QLabel()
        self.error.setObjectName("signInError")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setAccessibleName("Sign-in problem")
        self.error.hide()

        self.keyring_note = QLabel()
        self.keyring_note.setObjectName("keyringNote")
        self.keyring_note.setWordWrap(True)
        self.keyring_note.setForegroundRole(QPalette.ColorRole.PlaceholderText)
        problem = keyring_status()
        if problem is not None:
            self.keyring_note.setText(
                f"{problem[0].upper()}{problem[1:]}: you'll need to sign in again next time "
                "you start AgentDesk."
            )
        self.keyring_note.setVisible(problem is not None)

        form = QFormLayout()
        form.addRow("&Server:", self.server)
        form.addRow("&User:", self.username)
        form.addRow("&Password:", self.password)

        self.buttons = QDialogButtonBox()
        self.sign_in_button = QPushButton("Sign in")
        self.sign_in_button.setDefault(True)
        self.buttons.addButton(self.sign_in_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.addButton(QDialogButtonBox.StandardButton.Cancel)
        self.local_button: QPushButton | None = None
        #: Whom local mode signs in as: the demo team's people and roles, so every role can
        #: be tried without a team server (None when local mode is not offered).
        self.local_person: QComboBox | None = None
        local_row: QFormLayout | None = None
        if allow_local:
            self.local_button = QPushButton("Work in local mode")
            self.local_button.setToolTip(
                "Use the server built into AgentDesk on this computer (demo team, no network)"
            )
            self.buttons.addButton(self.local_button, QDialogButtonBox.ButtonRole.ActionRole)
            self.local_button.clicked.connect(self._choose_local)
            if local_people:
                self.local_person = QComboBox()
                self.local_person.setAccessibleName("Local mode as")
                self.local_person.setToolTip(
                    "The demo team member local mode signs in as: try any role"
                )
                for person in local_people:
                    self.local_person.addItem(person.label, person.username)
                index = self.local_person.findData(local_user) if local_user else -1
                self.local_person.setCurrentIndex(max(index, 0))
                local_row = QFormLayout()
                local_row.addRow("Local mode &as:", self.local_person)
        self.buttons.accepted.connect(self.submit)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(self.intro)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(self.keyring_note)
        if local_row is not None:
            layout.addLayout(local_row)
        layout.addWidget(self.buttons)

        first_empty = next(
            (e for e in (self.server, self.username, self.password) if not e.text()), self.password
        )
        first_empty.setFocus()

    # ------------------------------------------------------------------ actions

    def submit(self) -> None:
        """Validate the form, then sign in off the GUI thread."""
        if self._operation is not None and not self._operation.done:
            return
        url = normalise_server(self.server.text())
        user = self.username.text().strip()
        password = self.password.text()
        if not url:
            self.show_error(
                "Enter the server's address, like https://support.example.com.", "server"
            )
            return
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.show_error(
                "The server's address starts with https:// (or http://) and names "
                "a host, like https://support.example.com.",
                "server",
            )
            return
        if not user:
            self.show_error("Enter your user name.", "username")
            return
        if not password:
            self.show_error("Enter your password.", "password")
            return
        self.server.setText(url)
        self._set_busy(True)
        self._attempt += 1
        attempt = self._attempt
        ca = self.ca_bundle
        self._operation = background.Operation(
            lambda: sign_in(url, user, password, ca_bundle=ca),
            on_success=lambda result: self._succeeded(attempt, result),
            on_failure=lambda exc: self._failed(attempt, url, exc),
            parent=self,
        )
        self._operation.start()

    def show_error(self, message: str, field: str = "server") -> None:
        self.error.setText(message)
        colour = sla_colour(SlaState.BREACHED, self.palette())
        self.error.setStyleSheet(f"color: {colour.name()};" if colour else "")
        self.error.show()
        target = {"server": self.server, "username": self.username, "password": self.password}.get(
            field, self.server
        )
        target.setFocus()
        target.selectAll()

    def reject(self) -> None:
        self._attempt += 1  # a sign-in still running is abandoned: its result is ignored
        super().reject()

    # ------------------------------------------------------------------ internals

    def _choose_local(self) -> None:
        self._attempt += 1
        person = self.local_person.currentData() if self.local_person is not None else ""
        self.localModeRequested.emit(str(person or ""))
        super().reject()

    def _edited(self, _text: str) -> None:
        self.error.hide()

    def _set_busy(self, busy: bool) -> None:
        for widget in (self.server, self.username, self.password, self.sign_in_button):
            widget.setEnabled(not busy)
        if self.local_button is not None:
            self.local_button.setEnabled(not busy)
        self.sign_in_button.setText("Signing in…" if busy else "Sign in")
        if busy:
            self.error.hide()

    def _succeeded(self, attempt: int, result: SignedIn) -> None:
        if attempt != self._attempt:
            result.client.close()
            return
        self._set_busy(False)
        self.password.clear()
        self.result_value = result
        self.signedIn.emit(result)
        self.accept()

    def _failed(self, attempt: int, url: str, exc: Exception) -> None:
        if attempt != self._attempt:
            return
        self._set_busy(False)
        message, field = describe_sign_in_error(exc, url)
        if not isinstance(exc, ApiError | ValueError):
            log.error("sign-in failed unexpectedly", exc_info=exc)
        if field == "password":
            self.password.clear()
        self.show_error(message, field)
