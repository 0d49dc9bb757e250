"""User preferences, declared once with type, default and the reason they exist.

Preferences and UI state (window geometry, splitters, column layout, last view) live in
QSettings; data lives in the replica under the platformdirs user data directory; secrets live
in the OS keyring. Nothing here ever holds a password or a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from PySide6.QtCore import QSettings

T = TypeVar("T", bool, int, str)


@dataclass(frozen=True)
class Setting(Generic[T]):
    key: str
    type: type[T]
    default: T
    doc: str
    choices: tuple[T, ...] | None = None

    def read(self, store: QSettings) -> T:
        raw = store.value(self.key, self.default)
        value: T = _coerce(self.type, raw, self.default)
        if self.choices is not None and value not in self.choices:
            return self.default
        return value

    def write(self, store: QSettings, value: T) -> None:
        if not isinstance(value, self.type):
            raise TypeError(f"{self.key} takes {self.type.__name__}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{self.key} must be one of {self.choices}, got {value!r}")
        store.setValue(self.key, value)


def _coerce(kind: type[Any], raw: Any, default: Any) -> Any:
    # QSettings returns strings from INI files and native types from the registry/plist.
    try:
        if kind is bool:
            if isinstance(raw, str):
                return raw.strip().lower() in ("1", "true", "yes", "on")
            return bool(raw)
        if kind is int:
            return int(raw)
        return str(raw)
    except (TypeError, ValueError):
        return default


SERVER_URL = Setting(
    "connection/server_url",
    str,
    "",
    "The team server to sync with. Empty: local mode (an embedded server on this computer).",
)
LAST_USER = Setting(
    "connection/last_user",
    str,
    "",
    "The last user signed in to the team server, offered again in the sign-in dialog.",
)
LOCAL_USER = Setting(
    "connection/local_user",
    str,
    "",
    "The demo user local mode signs in as (empty: the team lead).",
)
CA_BUNDLE = Setting(
    "connection/ca_bundle",
    str,
    "",
    "A CA bundle file for servers with a private certificate authority (TLS stays verified).",
)
THEME = Setting(
    "appearance/theme",
    str,
    "system",
    "Follow the system's light/dark palette, or force one.",
    choices=("system", "light", "dark"),
)
TIME_ZONE = Setting(
    "appearance/time_zone",
    str,
    "",
    "The time zone every time is shown in (empty: this computer's own). Response targets keep "
    "counting business hours on each customer plan's own calendar.",
)
NOTIFY_TIER1 = Setting(
    "notifications/new_tier1",
    bool,
    True,
    "Tray message when a new tier-1 (production down) ticket arrives.",
)
NOTIFY_BREACH = Setting(
    "notifications/my_breach_warning",
    bool,
    True,
    "Tray message when a ticket assigned to me is about to breach its response target.",
)
IDLE_MINUTES = Setting(
    "timer/idle_minutes",
    int,
    10,
    "Minutes without keyboard or mouse input before the running timer offers to discard the "
    "idle stretch (0 turns the prompt off).",
)

ALL_SETTINGS: tuple[Setting[Any], ...] = (
    SERVER_URL,
    LAST_USER,
    LOCAL_USER,
    CA_BUNDLE,
    THEME,
    TIME_ZONE,
    NOTIFY_TIER1,
    NOTIFY_BREACH,
    IDLE_MINUTES,
)
