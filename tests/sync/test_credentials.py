"""Tokens live in the OS keyring, or only in memory when there is none: never in files or logs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import keyring.backends.fail
import keyring.backends.null
import pytest
from keyring.errors import KeyringLocked

from agentdesk.sync import credentials
from agentdesk.sync.credentials import TokenStore, account_key, keyring_status
from tests.plugins.live_team import MemoryKeyring, keyring_backend

URL = "https://support.example:8443"
TOKEN = "s3cr3t-token-0123456789abcdef"


@pytest.fixture(autouse=True)
def _forget_memory() -> Iterator[None]:
    yield
    credentials._memory.clear()


def _files_mention(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_a_token_round_trips_through_the_keyring(memory_keyring: MemoryKeyring) -> None:
    store = TokenStore(URL + "/", "agent")
    assert store.key == f"{URL}|agent" == account_key(URL, "agent")
    assert store.save(TOKEN).persisted
    assert memory_keyring.secrets == {("agentdesk", f"{URL}|agent"): TOKEN}
    credentials._memory.clear()  # a restart: only the keyring remembers
    assert TokenStore(URL, "agent").load() == TOKEN
    assert TokenStore(URL, "lead").load() is None
    assert TokenStore("https://other.example", "agent").load() is None
    store.clear()
    assert memory_keyring.secrets == {}
    assert TokenStore(URL, "agent").load() is None
    store.clear()  # clearing twice is harmless


@pytest.mark.parametrize("backend", [keyring.backends.fail.Keyring, keyring.backends.null.Keyring])
def test_without_a_keyring_the_token_stays_in_memory_and_says_so(
    backend: type[keyring.backend.KeyringBackend],
    isolated_dirs: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with keyring_backend(backend()):
        assert keyring_status() is not None
        outcome = TokenStore(URL, "agent").save(TOKEN)
        assert not outcome.persisted
        assert outcome.problem is not None
        assert "keyring" in outcome.problem
        assert TokenStore(URL, "agent").load() == TOKEN  # this session still works
        credentials._memory.clear()
        assert TokenStore(URL, "agent").load() is None  # next start: sign in again
    assert TOKEN not in caplog.text
    assert _files_mention(isolated_dirs, TOKEN) == []


class _LockedKeyring(MemoryKeyring):
    def set_password(self, service: str, username: str, password: str) -> None:
        raise KeyringLocked("the user dismissed the unlock prompt")


class _BrokenKeyring(MemoryKeyring):
    def get_password(self, service: str, username: str) -> str | None:
        raise OSError("dbus went away")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise OSError(f"dbus went away while storing {password}")


def test_a_locked_or_broken_keyring_is_reported_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    with keyring_backend(_LockedKeyring()):
        outcome = TokenStore(URL, "agent").save(TOKEN)
    assert outcome.problem == "the system keyring is locked"
    credentials._memory.clear()
    with keyring_backend(_BrokenKeyring()):
        outcome = TokenStore(URL, "agent").save(TOKEN)
        assert not outcome.persisted
        credentials._memory.clear()
        assert TokenStore(URL, "agent").load() is None
    assert TOKEN not in caplog.text, "a backend's error text may echo the secret"
