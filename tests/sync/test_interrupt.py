"""Stopping never waits for a server that does not answer: the request in flight is cut,
later ones are refused until the client is resumed, then requests go out again."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from pathlib import Path

import pytest

from agentdesk.sync.client import ApiClient, Offline
from agentdesk.sync.engine import SyncEngine
from agentdesk.sync.replica import Replica
from tests.plugins.silent_server import SilentServer


def test_interrupt_cuts_a_request_waiting_for_an_answer(silent_server: SilentServer) -> None:
    client = ApiClient(silent_server.url, token="t", read_timeout=60)
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            client.me()
        except Offline as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call, daemon=True)
    caller.start()
    silent_server.wait_for_request()
    time.sleep(0.1)  # the caller is now blocked reading
    assert caller.is_alive()
    began = time.monotonic()
    client.interrupt()
    caller.join(5)
    assert not caller.is_alive()
    assert time.monotonic() - began < 1.0
    [error] = outcome
    assert isinstance(error, Offline)
    assert "stopped talking" in str(error)
    with pytest.raises(Offline, match="stopped talking"):
        client.me()  # refused at once while interrupted
    client.resume()
    client.read_timeout = 0.2
    with pytest.raises(Offline, match="cannot reach") as err:
        client.me()  # out again: this one waits for its (short) timeout, then says so
    assert "stopped" not in str(err.value)
    client.close()


def test_a_stopping_sync_loop_does_not_wait_for_the_server(
    silent_server: SilentServer, tmp_path: Path
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
    engine = SyncEngine(replica, client)
    stop = threading.Event()
    loop = threading.Thread(target=engine.run, args=(stop,), daemon=True)
    loop.start()
    silent_server.wait_for_request()
    time.sleep(0.1)
    began = time.monotonic()
    stop.set()
    engine.interrupt()
    loop.join(5)
    assert not loop.is_alive()
    assert time.monotonic() - began < 1.0
    engine.resume()
    client.close()
    replica.close()


def test_a_connection_made_while_interrupting_is_closed_not_leaked(
    silent_server: SilentServer,
) -> None:
    """The race: interrupt() lands between connecting and registering the connection."""
    from urllib3.connection import HTTPConnection

    from agentdesk.sync.client import _Connections, _Interrupted

    connections = _Connections()
    connections.interrupt()
    host, port = silent_server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)))
    with pytest.raises(_Interrupted):
        connections.opened(HTTPConnection(host, int(port)), sock)
    assert sock.fileno() == -1
