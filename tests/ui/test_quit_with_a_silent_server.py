"""Quitting (and signing out) stops the sync thread at once, even while it waits for a server
that never answers; the client then serves the sign-out's token revocation again."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from agentdesk.sync.client import ApiClient, Offline
from agentdesk.sync.engine import SyncEngine
from agentdesk.sync.replica import Replica
from agentdesk.ui.shell.sync_bridge import SyncBridge
from tests.plugins.silent_server import SilentServer


def test_stopping_the_bridge_does_not_wait_for_the_network(
    qtbot: QtBot, silent_server: SilentServer, tmp_path: Path
) -> None:
    replica = Replica(tmp_path / "replica.sqlite3")
    replica.configure(
        server_url=silent_server.url,
        tenant_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        username="ann",
        role="agent",
    )
    client = ApiClient(silent_server.url, token="t", read_timeout=60)
    bridge = SyncBridge(replica, SyncEngine(replica, client))
    bridge.start()
    silent_server.wait_for_request()
    time.sleep(0.1)
    assert bridge.running
    began = time.monotonic()
    with qtbot.waitSignal(bridge.finished, timeout=5000):
        assert bridge.stop(timeout=15)
    assert time.monotonic() - began < 1.0
    assert not bridge.running
    client.read_timeout = 0.2
    with pytest.raises(Offline, match="cannot reach"):
        client.logout()  # what signing out does next: it goes out (and times out here)
    client.close()
    replica.close()
