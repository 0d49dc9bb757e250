"""uvicorn's server, taught to let held long-polls go before it waits for open requests.

uvicorn's graceful shutdown stops accepting, then waits for running requests, and after its
timeout cancels them. A poke is a request held up to ~25 s on purpose, so every stop (the
desktop closing local mode, a service restart) waited for the timeout and then cancelled the
polls mid-flight: a 500 for the desktop and a traceback in the log. Closing the notifier first
answers the polls at once, and the shutdown finishes as soon as real work has.
"""

from __future__ import annotations

from types import FrameType

import uvicorn
from fastapi import FastAPI

from .deps import ServerState
from .settings import ServerSettings


def proxy_options(settings: ServerSettings) -> dict[str, object]:
    """uvicorn's options for ``X-Forwarded-For``: believed only from the trusted proxies.

    uvicorn's own default trusts 127.0.0.1, so any process on the server machine (or a proxy
    that passes the header through unchanged) could pick the address a sign-in is throttled by.
    """
    trusted = list(settings.trusted_proxies)
    return {"proxy_headers": bool(trusted), "forwarded_allow_ips": trusted or ""}


class AgentDeskServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._state: ServerState = app.state.agentdesk

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """SIGINT/SIGTERM (uvicorn's own handler)."""
        self._state.notifier.close()
        super().handle_exit(sig, frame)

    def request_exit(self) -> None:
        """Stop from another thread (the embedded server)."""
        self._state.notifier.close()
        self.should_exit = True
