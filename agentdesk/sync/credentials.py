"""Sign-in tokens in the OS keyring, never in files or logs; passwords are never stored.

Entries live under service ``agentdesk`` with username ``"<server_url>|<user>"``, so one person
signed in to two servers (a team's and local mode) keeps two tokens. When the machine has no
usable keyring (a headless Linux box without Secret Service, a locked keychain), the token is
kept in this process's memory only and :meth:`TokenStore.save` says so, so the UI can warn
"you will need to sign in again next time" instead of silently writing a secret to disk.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

log = logging.getLogger(__name__)

SERVICE = "agentdesk"

#: Tokens of this process, whether or not the keyring also holds them.
_memory: dict[str, str] = {}
_memory_lock = threading.Lock()


@dataclass(frozen=True)
class SaveOutcome:
    """Whether the token will survive a restart, and if not, a reason to show."""

    persisted: bool
    problem: str | None = None


def _unusable(backend: KeyringBackend) -> str | None:
    """Why a backend cannot keep secrets, or None if it can.

    keyring answers "no backend" not by failing but by installing a stand-in: ``fail``
    raises on every call, ``null`` silently forgets. Neither keeps a token across restarts.
    """
    module = type(backend).__module__
    if module == "keyring.backends.fail":
        return "no system keyring is available on this computer"
    if module == "keyring.backends.null":
        return "the system keyring is disabled"
    return None


def keyring_status() -> str | None:
    """None when tokens can be kept across restarts, else the reason they cannot."""
    try:
        return _unusable(keyring.get_keyring())
    except Exception as exc:  # backend discovery can fail in backend-specific ways
        return f"the system keyring failed to load ({type(exc).__name__})"


def account_key(server_url: str, username: str) -> str:
    return f"{server_url.strip().rstrip('/')}|{username}"


class TokenStore:
    """The token of one user on one server."""

    def __init__(self, server_url: str, username: str) -> None:
        self.key = account_key(server_url, username)

    def __repr__(self) -> str:
        return f"TokenStore({self.key!r})"

    def save(self, token: str) -> SaveOutcome:
        with _memory_lock:
            _memory[self.key] = token
        problem = keyring_status()
        if problem is None:
            try:
                keyring.set_password(SERVICE, self.key, token)
                return SaveOutcome(persisted=True)
            except keyring.errors.KeyringLocked:
                problem = "the system keyring is locked"
            except Exception as exc:  # backends raise their own types
                problem = f"the system keyring refused the token ({type(exc).__name__})"
        # Never the token itself, never the exception text (a backend may echo the secret).
        log.warning("sign-in for %s kept in memory only: %s", self.key, problem)
        return SaveOutcome(persisted=False, problem=problem)

    def load(self) -> str | None:
        with _memory_lock:
            token = _memory.get(self.key)
        if token is not None:
            return token
        if keyring_status() is not None:
            return None
        try:
            token = keyring.get_password(SERVICE, self.key)
        except Exception as exc:  # backends raise their own types
            log.warning(
                "could not read the token for %s from the keyring (%s)",
                self.key,
                type(exc).__name__,
            )
            return None
        if token is not None:
            with _memory_lock:
                _memory[self.key] = token
        return token

    def clear(self) -> None:
        """Forget the token everywhere (sign-out, or the server refused it)."""
        with _memory_lock:
            _memory.pop(self.key, None)
        if keyring_status() is not None:
            return
        try:
            keyring.delete_password(SERVICE, self.key)
        except keyring.errors.PasswordDeleteError:
            pass
        except Exception as exc:  # backends raise their own types
            log.warning(
                "could not remove the token for %s from the keyring (%s)",
                self.key,
                type(exc).__name__,
            )
