"""The server running inside another process (the desktop's local mode, tests, benchmarks):
uvicorn on a loopback socket in a background thread, stopped cleanly."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from .app import create_app
from .serving import AgentDeskServer, proxy_options
from .settings import ServerSettings


class EmbeddedServer:
    """Serve the API on ``host`` (loopback by default) on a free port, or on ``port``.

    The socket is bound before the thread starts, so :attr:`url` is valid at once and no other
    program can take the port in between.
    """

    def __init__(
        self,
        settings: ServerSettings,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        log_level: str = "warning",
    ) -> None:
        self.settings = settings
        # IPPROTO_TCP explicitly: otherwise asyncio leaves Nagle on for accepted connections and
        # each keep-alive request can wait ~40 ms for a delayed ACK.
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.host, self.port = self._sock.getsockname()[:2]
        self.app = create_app(settings)
        config = uvicorn.Config(
            self.app,
            log_level=log_level,
            lifespan="on",
            timeout_graceful_shutdown=2,
            **proxy_options(self.app.state.agentdesk.settings),  # type: ignore[arg-type]
        )
        self._server = AgentDeskServer(config, self.app)
        self._thread = threading.Thread(target=self._serve, name="agentdesk-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self, timeout: float = 30.0) -> EmbeddedServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the embedded server did not start")
            time.sleep(0.01)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._server.request_exit()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
