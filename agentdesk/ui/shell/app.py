"""Desktop start-up: the Qt application, the main window and the flows around it.

:func:`run_desktop` is called by :mod:`agentdesk.desktop` with a *launcher*: the object that
starts local mode, opens replicas and builds sync engines (the UI may not import the server, so
the composition lives outside this package). :class:`DesktopController` decides when: it opens
the window at once (on a "starting" page), runs every launcher call off the GUI thread, and
handles the flows - local mode, a saved or ``--server`` team server, File > Connect..., Sign out
and the server refusing the token - by attaching and detaching workspaces on the window.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from PySide6.QtCore import QObject, QSettings, QSocketNotifier, QThreadPool, QTimer, Signal
from PySide6.QtWidgets import QApplication

from ...sync.engine import SyncStatus
from ...sync.replica import ReplicaBound
from ...sync.server_url import normalise_server
from .. import background, settings
from ..gc_pacing import CollectorPacing
from ..theme import app_icon, apply_theme
from .main_window import MainWindow, Workspace
from .sign_in import LocalPerson, SignedIn, SignInDialog
from .sync_bridge import SyncBridge

log = logging.getLogger(__name__)

__all__ = ["DesktopController", "Launcher", "MainWindow", "run_desktop"]

T = TypeVar("T")


class Launcher(Protocol):
    """The start-up composition (:class:`agentdesk.desktop.DesktopLauncher`). Every method
    blocks; the controller calls them on worker threads."""

    def choose_server(self, cli_server: str | None, saved_server: str) -> str:
        """The team server to start with, or "" for local mode."""
        ...

    def start_local(self, username: str = "") -> Workspace: ...

    def local_people(self) -> list[LocalPerson]:
        """Whom local mode can sign in as (the demo team)."""
        ...

    def local_url(self) -> str | None:
        """The running local server's (temporary) address, or None."""
        ...

    def resume(self, server_url: str, username: str, ca_bundle: str = "") -> Workspace | None: ...

    def open_signed_in(self, signed_in: SignedIn) -> Workspace: ...

    def sign_out(self, workspace: Workspace) -> str | None: ...

    def shutdown(self) -> None: ...


def describe_start_error(exc: BaseException) -> str:
    if isinstance(exc, ReplicaBound):
        return (
            f"This computer holds changes that were never sent: {exc}. Sign in as that "
            "user on that server to send them first."
        )
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return str(message)


class DesktopController(QObject):
    """Drives the window through start-up, sign-in, switching servers and sign-out."""

    #: A workspace is shown and syncing.
    attached = Signal(object)
    #: Something could not start; the message is on the window too.
    failed = Signal(str)

    #: How long the GUI waits for the sync thread when switching workspaces; a longer request
    #: in flight finishes in the background and the old workspace is closed after it.
    SWITCH_WAIT = 3.0

    def __init__(
        self,
        window: MainWindow,
        launcher: Launcher,
        *,
        server: str | None = None,
        store: QSettings | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.window = window
        self.launcher = launcher
        self.store = store if store is not None else window.store
        self.cli_server = server
        self.dialog: SignInDialog | None = None
        self._attempt = 0
        self._ops: set[background.Operation[Any]] = set()
        self._message_action: Callable[[], None] | None = None
        self._shut_down = False
        window.connectRequested.connect(self.connect_to_server)
        window.signOutRequested.connect(self.sign_out)
        window.messageActionRequested.connect(self._message_button)
        window.settingsApplied.connect(self._settings_applied)

    # ------------------------------------------------------------------ flows

    def start(self) -> None:
        """Local mode, or the ``--server`` / saved team server."""
        saved = normalise_server(settings.SERVER_URL.read(self.store))
        server = self.launcher.choose_server(self.cli_server, saved)
        if server:
            # The last user belongs to the saved server; another server starts blank.
            user = settings.LAST_USER.read(self.store) if server == saved else ""
            self.open_server(server, user)
        else:
            self.open_local()

    def open_local(self) -> None:
        """Local mode, as the demo user chosen last time (the team lead at first)."""
        attempt = self._next_attempt()
        self.window.show_starting(local=True)
        username = settings.LOCAL_USER.read(self.store)
        self._run(
            lambda: self.launcher.start_local(username),
            lambda ws: self._attach(attempt, ws),
            lambda exc: self._start_failed(
                attempt, "Local mode could not start", exc, retry=self.open_local
            ),
        )

    def open_server(self, server_url: str, username: str) -> None:
        """Resume the saved sign-in to a team server, or ask for one."""
        attempt = self._next_attempt()
        self.window.show_starting(local=False)
        ca = settings.CA_BUNDLE.read(self.store)

        def resumed(ws: Workspace | None) -> None:
            if ws is None:
                if attempt == self._attempt:
                    self.show_sign_in(server_url, username)
                return
            self._attach(attempt, ws)

        self._run(
            lambda: self.launcher.resume(server_url, username, ca),
            resumed,
            lambda exc: self._resume_failed(attempt, server_url, username, exc),
        )

    def connect_to_server(self) -> None:
        """File > Connect...: sign in to a team server (the current workspace stays until the
        sign-in succeeds)."""
        ws = self.window.workspace
        url = "" if ws is None or ws.local else ws.server_url
        self.show_sign_in(
            url or settings.SERVER_URL.read(self.store), settings.LAST_USER.read(self.store)
        )

    def show_sign_in(self, server_url: str = "", username: str = "", message: str = "") -> None:
        if self.dialog is not None:
            self.dialog.raise_()
            self.dialog.activateWindow()
            return
        if self.window.workspace is None:
            self.window.show_message(
                "Sign in to continue",
                "Sign in to your team's server, or work in local mode.",
                button="Sign in…",
            )
            self._message_action = lambda: self.show_sign_in(server_url, username)
        dialog = SignInDialog(
            server_url,
            username,
            ca_bundle=settings.CA_BUNDLE.read(self.store),
            message=message,
            local_people=self.launcher.local_people(),
            local_user=self._local_user(),
            parent=self.window,
        )
        dialog.signedIn.connect(self._signed_in)
        dialog.localModeRequested.connect(self._choose_local)
        dialog.finished.connect(self._dialog_closed)
        self.dialog = dialog
        dialog.open()

    def sign_out(self) -> None:
        """Revoke the token (in the background), forget it, and ask for a sign-in."""
        ws = self.window.workspace
        if ws is None:
            return
        self._next_attempt()
        bridge = self.window.detach(self.SWITCH_WAIT)
        self.window.show_message("Signing out…", busy=True)
        server = "" if ws.local else ws.server_url
        user = ws.user.username

        def revoke() -> None:
            self._run(
                lambda: self.launcher.sign_out(ws),
                lambda problem: self._signed_out(ws, server, user, problem),
                lambda exc: self._signed_out(ws, server, user, str(exc)),
            )

        self._after(bridge, revoke)

    def shutdown(self) -> None:
        """Stop syncing and close the workspace (quitting); safe to call twice."""
        if self._shut_down:
            return
        self._shut_down = True
        self._attempt += 1
        if self.dialog is not None:
            self.dialog.reject()
        ws = self.window.workspace
        if ws is not None:
            bridge = self.window.detach()
            if bridge is not None and bridge.running:
                log.warning("quitting with the sync thread still running")
            else:
                ws.close()

    # ------------------------------------------------------------------ callbacks

    def _attach(self, attempt: int, ws: Workspace) -> None:
        if attempt != self._attempt or self._shut_down:
            ws.close()  # superseded (the agent chose something else meanwhile)
            return
        if self.window.workspace is not None:
            self._release()
        bridge = self.window.attach(ws)
        bridge.statusChanged.connect(lambda status: self._status(bridge, status))
        self.attached.emit(ws)

    def _release(self) -> None:
        """Detach the current workspace and close it once its sync thread has ended."""
        ws = self.window.workspace
        if ws is None:
            return
        bridge = self.window.detach(self.SWITCH_WAIT)
        self._after(bridge, ws.close)

    def _after(self, bridge: SyncBridge | None, fn: Callable[[], None]) -> None:
        """Run ``fn`` once ``bridge``'s thread has ended (now, if it has)."""
        if bridge is None or not bridge.running:
            if bridge is not None:
                bridge.deleteLater()
            fn()
            return

        def ended() -> None:
            bridge.deleteLater()
            fn()

        bridge.finished.connect(ended)

    def _status(self, bridge: SyncBridge, status: SyncStatus) -> None:
        """The server stopped accepting the token (expired or revoked elsewhere)."""
        if status.state != "signed_out" or self.window.bridge is not bridge:
            return
        ws = self.window.workspace
        if ws is None:
            return
        if ws.local:
            log.info("local mode's sign-in ended; signing in again")
            self._release()
            self.open_local()
            return
        self._release()
        self.show_sign_in(
            ws.server_url,
            ws.user.username,
            "The server asked you to sign in again. Your local changes are kept "
            "and sent once you do.",
        )

    def _local_user(self) -> str:
        """Who local mode is (or was last) signed in as."""
        ws = self.window.workspace
        if ws is not None and ws.local:
            return ws.user.username
        return settings.LOCAL_USER.read(self.store)

    def _signed_in(self, signed: SignedIn) -> None:
        local = self.launcher.local_url()
        if local is not None and signed.server_url.rstrip("/") == local:
            # The local server's port changes on every start: remembering it as a team server
            # would make the next start ask for a sign-in to a dead address. It is local mode,
            # as the user who signed in.
            signed.client.close()
            self._choose_local(signed.username)
            return
        settings.SERVER_URL.write(self.store, signed.server_url)
        settings.LAST_USER.write(self.store, signed.username)
        self.store.sync()
        attempt = self._next_attempt()
        warning = signed.warning
        self._release()
        self.window.show_starting(local=False)

        def opened(ws: Workspace) -> None:
            self._attach(attempt, ws)
            if warning:
                self.window.status_bar.showMessage(f"Signed in. {warning}", 20_000)

        def failed(exc: Exception) -> None:
            signed.client.close()
            self._start_failed(
                attempt,
                "Could not open your workspace",
                exc,
                retry=self.connect_to_server,
                button="Sign in…",
            )

        self._run(lambda: self.launcher.open_signed_in(signed), opened, failed)

    def _choose_local(self, username: str = "") -> None:
        settings.SERVER_URL.write(self.store, "")
        if username:
            settings.LOCAL_USER.write(self.store, username)
        self.store.sync()
        ws = self.window.workspace
        if ws is not None and ws.local and (not username or ws.user.username == username):
            return
        self._release()
        self.open_local()

    def _dialog_closed(self, _result: int) -> None:
        self.dialog = None

    def _signed_out(self, ws: Workspace, server: str, user: str, problem: str | None) -> None:
        ws.close()
        if self._shut_down:
            return
        self.show_sign_in(server, user, problem or "Signed out. Sign in again to continue.")

    def _start_failed(
        self,
        attempt: int,
        title: str,
        exc: BaseException,
        *,
        retry: Callable[[], None],
        button: str = "Try again",
    ) -> None:
        if attempt != self._attempt or self._shut_down:
            return
        message = describe_start_error(exc)
        log.error("%s: %s", title, message, exc_info=exc)
        self.window.show_message(title, message, button=button)
        self._message_action = retry
        self.failed.emit(message)

    def _resume_failed(
        self, attempt: int, server_url: str, username: str, exc: BaseException
    ) -> None:
        if attempt != self._attempt:
            return
        log.warning("could not resume the sign-in to %s: %s", server_url, exc)
        self.show_sign_in(server_url, username, describe_start_error(exc))

    def _message_button(self) -> None:
        if self._message_action is not None:
            self._message_action()

    def _settings_applied(self, changed: list[str]) -> None:
        if settings.THEME.key in changed:
            app = QApplication.instance()
            if isinstance(app, QApplication):
                apply_theme(app, settings.THEME.read(self.store))

    # ------------------------------------------------------------------ plumbing

    def _next_attempt(self) -> int:
        self._attempt += 1
        return self._attempt

    def _run(
        self, fn: Callable[[], T], ok: Callable[[T], None], fail: Callable[[Exception], None]
    ) -> None:
        op: background.Operation[T] = background.Operation(fn, parent=self)
        self._ops.add(op)

        def done_ok(value: T) -> None:
            self._ops.discard(op)
            ok(value)

        def done_fail(exc: Exception) -> None:
            self._ops.discard(op)
            fail(exc)

        op.succeeded.connect(done_ok)
        op.failed.connect(done_fail)
        op.start()

    def busy(self) -> bool:
        """A launcher call is still running (tests wait on this)."""
        return bool(self._ops)


def run_desktop(server: str | None, launcher: Launcher) -> int:
    """Run the desktop until the agent quits; called by :func:`agentdesk.desktop.main`."""
    app = QApplication.instance() or QApplication(sys.argv)
    assert isinstance(app, QApplication)
    app.setApplicationName("AgentDesk")
    app.setOrganizationName("AgentDesk")
    app.setApplicationDisplayName("AgentDesk")
    app.setWindowIcon(app_icon())
    store = QSettings()
    apply_theme(app, settings.THEME.read(store))
    window = MainWindow(store)
    controller = DesktopController(window, launcher, server=server, store=store)
    app.aboutToQuit.connect(controller.shutdown)
    window.show()
    controller.start()
    restore_signals = quit_on_signals(app, window.close)
    pacing = CollectorPacing(app)
    pacing.start()
    try:
        return app.exec()
    finally:
        pacing.stop()
        restore_signals()
        controller.shutdown()
        # A launcher call still running (a local-mode start, say) finishes before the launcher
        # shuts down, so nothing it started outlives the app.
        QThreadPool.globalInstance().waitForDone(30_000)
        launcher.shutdown()


def quit_on_signals(app: QApplication, close: Callable[[], object]) -> Callable[[], None]:
    """Ctrl+C in a terminal or SIGTERM from a session manager closes the window as the Quit
    action does (layout saved, sync stopped, the local server stopped cleanly) instead of
    killing the process mid-write. Returns a function that restores the previous handlers.

    Python runs a signal handler only when the interpreter gets control, which it does not
    while Qt's event loop waits; the wakeup file descriptor turns the signal into a socket
    event Qt's loop watches (qutebrowser does the same).
    """
    reader, writer = socket.socketpair()
    reader.setblocking(False)
    writer.setblocking(False)
    previous_fd = signal.set_wakeup_fd(writer.fileno())
    notifier = QSocketNotifier(reader.fileno(), QSocketNotifier.Type.Read, app)

    def drain() -> None:
        try:
            while reader.recv(64):
                pass
        except BlockingIOError:
            pass

    def handle(signum: int, _frame: object) -> None:
        log.info("received %s: closing", signal.Signals(signum).name)
        QTimer.singleShot(0, close)
        QTimer.singleShot(0, app.quit)

    notifier.activated.connect(drain)
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, handle) for sig in handled}

    def restore() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signal.set_wakeup_fd(previous_fd)
        notifier.setEnabled(False)
        notifier.deleteLater()
        reader.close()
        writer.close()

    return restore
