"""The desktop's start-up composition: which server, which replica, which sign-in.

This module joins layers the UI may not: it starts local mode (the embedded server, i.e.
``agentdesk.server`` code) and hands the UI plain objects - a
:class:`~agentdesk.ui.shell.main_window.Workspace` holding the replica, the API client and the
sync engine. Every method of
:class:`DesktopLauncher` blocks (network, disk, starting a server); the UI calls them from its
background operations, never on the GUI thread.

* **Local mode** (no ``--server``, no saved server): the embedded server is started (seeded with
  the demo team on the first start) and the desktop signs in as the local user: with the token
  kept from last time when the keyring has it, else with local mode's password over HTTP.
* **A team server** (``--server URL``, or the one saved in Settings): with a token in the keyring
  and a replica already bound to that user, the workspace opens at once, *without* the network -
  the desktop works offline and the sync engine asks the server when it can. Otherwise the UI
  shows the sign-in dialog.
* **Replicas**: one SQLite file per server and user under ``<data dir>/replicas/``, so switching
  servers or users never mixes their data or strands unsent changes. Local mode's replica and
  keyring entry are named ``local`` rather than by URL: its port changes on every start.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .local_mode import LOCAL_PEOPLE, LocalMode, local_password, start_local_mode
from .models import User
from .paths import data_dir
from .sync.client import ApiClient, ApiError, Unauthorized, UserInfo
from .sync.credentials import TokenStore
from .sync.engine import SyncEngine
from .sync.replica import Replica
from .sync.server_url import normalise_server, normalise_url
from .ui.shell.app import run_desktop
from .ui.shell.main_window import Workspace
from .ui.shell.sign_in import LocalPerson, SignedIn

log = logging.getLogger(__name__)

__all__ = ["LOCAL_KEY", "DesktopLauncher", "main", "replica_path"]

#: The server name of local mode in replica file names and keyring entries.
LOCAL_KEY = "local"
LOCAL_LABEL = "Local mode"
#: Local mode's long-poll, in seconds. Changes still arrive at once (a poke answers as soon as
#: the version moves); this only bounds an idle poke, and it is kept below the embedded
#: server's graceful-shutdown wait (2 s), so quitting never has to cut a poke off.
LOCAL_POKE_WAIT = 1.5


def replica_path(server_key: str, username: str, base: Path | None = None) -> Path:
    """``<data dir>/replicas/<hash>.sqlite3``: one file per server and user."""
    digest = hashlib.sha256(f"{normalise_url(server_key)}|{username}".encode()).hexdigest()
    return (base or data_dir()) / "replicas" / f"{digest[:20]}.sqlite3"


def server_label(url: str) -> str:
    """How a team server is named in the title and status bar: its host (and port)."""
    parts = urlsplit(url)
    return parts.netloc or url


class LocalModeClosed(RuntimeError):
    """The app is quitting: local mode is not (re)started."""


class DesktopLauncher:
    """Builds workspaces for the UI (see the module docstring); thread-safe."""

    def __init__(
        self,
        *,
        demo_tickets: int | None = None,
        engine_options: dict[str, Any] | None = None,
    ) -> None:
        #: Demo size on local mode's first start (None: the demo's default).
        self.demo_tickets = demo_tickets
        self.engine_options = dict(engine_options or {})
        self._lock = threading.Lock()
        self._local: LocalMode | None = None
        self._closed = False

    @property
    def local_mode(self) -> LocalMode | None:
        return self._local

    @staticmethod
    def choose_server(cli_server: str | None, saved_server: str) -> str:
        """``--server`` wins, then the server saved in Settings; neither means local mode ("").
        A bare host name means https."""
        return normalise_server(cli_server or "") or normalise_server(saved_server)

    # ------------------------------------------------------------------ local mode

    @staticmethod
    def local_people() -> list[LocalPerson]:
        """Whom local mode can sign in as: the demo team, in its order (the lead first of the
        people who work tickets is the default)."""
        return [LocalPerson(username, label) for username, label in LOCAL_PEOPLE]

    def local_url(self) -> str | None:
        """The running local server's address (its port changes on every start), or None.
        A sign-in to it is local mode, never a team server to remember."""
        mode = self._local
        return normalise_url(mode.url) if mode is not None else None

    def start_local(self, username: str = "") -> Workspace:
        """Start (or reuse) local mode and sign in to it as ``username`` (a demo user; "" is
        the team lead); blocks for seconds on a first start."""
        with self._lock:
            if self._closed:
                raise LocalModeClosed("AgentDesk is quitting")
            if self._local is None:
                self._local = start_local_mode(demo_tickets=self.demo_tickets)
                log.info(
                    "local mode at %s (demo created now: %s)",
                    self._local.url,
                    self._local.seeded_now,
                )
            mode = self._local
        username = username or mode.username
        password = mode.password if username == mode.username else local_password(username)
        store = TokenStore(LOCAL_KEY, username)
        client = ApiClient(mode.url)
        try:
            user = self._reuse_token(client, store)
            if user is None:
                result = client.login(username, password)
                # Kept or not, it does not matter much: local mode can always sign in again.
                store.save(result.token)
                user = result.user
            return self._open(
                client, user, LOCAL_KEY, LOCAL_LABEL, local=True, poke_wait=LOCAL_POKE_WAIT
            )
        except BaseException:
            client.close()
            raise

    @staticmethod
    def _reuse_token(client: ApiClient, store: TokenStore) -> UserInfo | None:
        token = store.load()
        if token is None:
            return None
        client.token = token
        try:
            return client.me()
        except Unauthorized:
            store.clear()
            client.token = None
            return None

    # ------------------------------------------------------------------ team servers

    def resume(self, server_url: str, username: str, ca_bundle: str = "") -> Workspace | None:
        """The saved sign-in to a team server, if there is one; no network needed.

        Returns None when the agent must sign in: no token kept, or no replica of this user yet
        (its first sign-in needs the server to say who the user is). A token the server no
        longer accepts is found by the sync engine, which then reports "signed out".
        """
        url = normalise_url(server_url)
        if not url or not username:
            return None
        store = TokenStore(url, username)
        token = store.load()
        path = replica_path(url, username)
        if token is None or not path.exists():
            return None
        replica = Replica(path)
        try:
            user = self._user_of(replica, url, username)
        except BaseException:
            replica.close()
            raise
        if user is None:
            replica.close()
            return None
        client = ApiClient(url, token=token, ca_bundle=ca_bundle or None)
        engine = SyncEngine(replica, client, **self.engine_options)
        return Workspace(
            replica=replica,
            client=client,
            engine=engine,
            user=user,
            server_label=server_label(url),
            token_key=url,
            local=False,
        )

    @staticmethod
    def _user_of(replica: Replica, url: str, username: str) -> UserInfo | None:
        state = replica.state
        if not state.configured or state.server_url != url or state.username != username:
            return None
        assert state.user_id is not None
        assert state.role is not None
        assert state.tenant_id is not None
        with replica.session() as s:
            row = s.get(User, state.user_id)
            display = row.display_name if row is not None else username
        return UserInfo(
            id=state.user_id,
            username=username,
            display_name=display,
            role=state.role,
            tenant_id=state.tenant_id,
        )

    def open_signed_in(self, signed_in: SignedIn) -> Workspace:
        """The workspace of a sign-in made in the sign-in dialog."""
        url = normalise_url(signed_in.server_url)
        return self._open(
            signed_in.client, signed_in.login.user, url, server_label(url), local=False
        )

    # ------------------------------------------------------------------ common

    def _open(
        self,
        client: ApiClient,
        user: UserInfo,
        key: str,
        label: str,
        *,
        local: bool,
        **engine_defaults: Any,
    ) -> Workspace:
        path = replica_path(key, user.username)
        path.parent.mkdir(parents=True, exist_ok=True)
        replica = Replica(path)
        try:
            replica.configure(
                server_url=key,
                tenant_id=user.tenant_id,
                user_id=user.id,
                username=user.username,
                role=user.role,
                timezone=user.team_timezone,
            )
        except BaseException:
            replica.close()
            raise
        engine = SyncEngine(replica, client, **{**engine_defaults, **self.engine_options})
        return Workspace(
            replica=replica,
            client=client,
            engine=engine,
            user=user,
            server_label=label,
            token_key=key,
            local=local,
        )

    def sign_out(self, workspace: Workspace) -> str | None:
        """Revoke the token on the server and forget it here. The sync loop must be stopped.

        Returns a problem to tell the agent (the server could not be reached to revoke it), or
        None. The token is removed from this computer either way.
        """
        try:
            workspace.client.logout()
        except ApiError as exc:
            log.info("sign-out: the server could not revoke the token (%s)", exc.message)
            return (
                f"The server could not be reached to end the sign-in ({exc.message}); it "
                "was removed from this computer and expires on its own."
            )
        finally:
            TokenStore(workspace.token_key, workspace.user.username).clear()
        return None

    def shutdown(self) -> None:
        """Stop local mode (idempotent); later :meth:`start_local` calls refuse."""
        with self._lock:
            self._closed = True
            mode, self._local = self._local, None
        if mode is not None:
            mode.stop()


def main(server: str | None = None, *, demo_tickets: int | None = None) -> int:
    """``agentdesk`` with no subcommand: the desktop app."""
    return run_desktop(server, DesktopLauncher(demo_tickets=demo_tickets))
