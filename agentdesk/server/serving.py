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
