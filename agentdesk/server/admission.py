"""Admission to the database: at most as many requests at once as the process has connections.

A sync handler holds its session's connection from its first query until the dependency that
opened the session exits, and FastAPI exits it only after validating the response - on another
worker thread. With as many threads as connections, a request that had finished its query could
wait for a thread while holding its connection, and every thread could be waiting for a
connection: nothing moved until the pool's 30 s timeout answered 503s. Oversizing the pool (the
old 40 threads + 10 overflow per process) only moved that point, and three processes then asked
PostgreSQL for more connections than it allows.

So requests are admitted here first, on the event loop, holding neither a thread nor a
connection while they wait: with no more requests admitted than the pool has connections, an
admitted request always finds one. A long-poll steps out while it waits for the team's version
to move (it holds no connection then), so 200 desktops' polls do not fill the slots.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
from anyio.lowlevel import RunVar
from starlette.types import ASGIApp, Receive, Scope, Send

#: Where the middleware leaves a request's admission, for :meth:`DatabaseGate.stepped_out`.
_SCOPE_KEY = "agentdesk.admission"


@dataclass
class _Admission:
    held: bool


class DatabaseGate:
    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError(f"the database gate needs at least one slot, got {slots}")
        self.slots = slots
        # One semaphore per event loop: tests run an app under several loops in turn.
        self._semaphore: RunVar[anyio.Semaphore] = RunVar(f"agentdesk_gate_{id(self)}")

    def _slots(self) -> anyio.Semaphore:
        try:
            return self._semaphore.get()
        except LookupError:
            semaphore = anyio.Semaphore(self.slots)
            self._semaphore.set(semaphore)
            return semaphore

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """ASGI middleware around the router: a request is admitted before its dependencies
        run and leaves after the last of them has exited (connection returned)."""

        async def admit(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            slots = self._slots()
            await slots.acquire()
            admission = _Admission(held=True)
            scope[_SCOPE_KEY] = admission
            try:
                await app(scope, receive, send)
            finally:
                if admission.held:
                    slots.release()

        return admit

    @asynccontextmanager
    async def stepped_out(self, scope: Scope) -> AsyncIterator[None]:
        """Give the request's slot to others while it waits without the database (a
        long-poll), and take one again before it goes on."""
        admission = scope.get(_SCOPE_KEY)
        if not isinstance(admission, _Admission) or not admission.held:
            yield
            return
        slots = self._slots()
        admission.held = False
        slots.release()
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await slots.acquire()
            admission.held = True
