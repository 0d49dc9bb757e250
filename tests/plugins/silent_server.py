"""A server that never answers: it accepts connections and reads what is sent, and says
nothing, like a host that hangs behind a load balancer. For tests that must not wait out a
client's timeouts. Bounded: it stops with the test (and after two minutes at most)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest


class SilentServer:
    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self.requests = 0  # connections that sent a request (some bytes)
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                pass
            else:
                conn.settimeout(0.05)
                self._conns.append(conn)
            for conn in list(self._conns):
                try:
                    if conn.recv(65536):
                        self.requests += 1
                except TimeoutError:
                    pass
                except OSError:
                    self._conns.remove(conn)

    def wait_for_request(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.requests == 0:
            assert time.monotonic() < deadline, "no request reached the silent server"
            time.sleep(0.01)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for conn in self._conns:
            conn.close()
        self._sock.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()
