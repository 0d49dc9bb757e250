"""The one writer of local mutations: a click queues its change and returns at once.

Why: ``Replica.mutate`` takes the replica's write lock, and a pull page being applied on the sync
thread holds that lock for tens of milliseconds. Called from a click, the GUI thread waited
behind it. Here every local mutation goes through one worker thread, in the order the clicks
made them (Home Assistant's recorder and Anki's task manager work this way): the GUI thread
only puts a request on a queue, and hears back on the GUI thread, through a signal, when the
request was applied or refused. One thread means one order: a "stop then start" never
interleaves with another click's mutation, and nothing writes the replica from the GUI thread.

A request is a batch of :class:`Step` s applied in order, stopping at the first refusal (a
switch is "stop, then start": the start is not tried when the stop was refused, and the stop
stays recorded when the start is refused). Each request is taken off the queue exactly once
and never retried, so it is applied at most once; :meth:`MutationWriter.close` applies every
request already queued before it returns (the app closes it before the replica), so a click
made just before quitting is not lost. A request made after that is refused, in words.

There is one writer per replica (:meth:`MutationWriter.of`), shared by every panel. Tests set
:data:`SYNCHRONOUS` (the panels' tests do, through a fixture) to apply requests inline, so a
click's effect can be asserted right after the click.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from PySide6.QtCore import QObject, Qt, Signal

from ..models import utcnow
from ..sync.mutators import MutationRejected
from ..sync.replica import Replica, ReplicaError

log = logging.getLogger(__name__)

__all__ = ["SYNCHRONOUS", "MutationWriter", "Outcome", "Step"]

#: Apply requests inline on the calling thread (tests only).
SYNCHRONOUS = False

#: What a request made after the writer closed is told.
CLOSED = "AgentDesk is closing: this change was not made"


@dataclass(frozen=True)
class Step:
    """One mutation of a request. ``what`` names it in a refusal ("stopping the timer");
    ``done`` is what the panel says once it was applied (None: nothing)."""

    name: str
    args: Mapping[str, Any]
    what: str
    done: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of a request: the steps applied (with their replica mutation ids, as
    ``(client_id, mutation_id)``) and, if one was refused, the reason; later steps were not
    tried."""

    steps: tuple[Step, ...]
    applied: tuple[tuple[uuid.UUID, int], ...]
    refusal: str | None = None

    @property
    def ok(self) -> bool:
        return self.refusal is None


@dataclass
class _Request:
    steps: tuple[Step, ...]
    client_time: datetime
    reply: Callable[[Outcome], None] | None
    outcome: Outcome | None = None
    #: Set once applied or refused (only :meth:`MutationWriter.apply_now` waits on it).
    finished: threading.Event = field(default_factory=threading.Event)


_STOP = object()


class MutationWriter(QObject):
    """Applies local mutations on its own thread, one request at a time, in order.

    ``outcomeReady`` (and each request's ``reply``) is delivered on the GUI thread.
    """

    outcomeReady = Signal(object)
    _wakeup = Signal()

    _writers: ClassVar[weakref.WeakKeyDictionary[Replica, MutationWriter]] = (
        weakref.WeakKeyDictionary()
    )

    def __init__(self, replica: Replica, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.replica = replica
        self._queue: queue.SimpleQueue[_Request | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._done: list[_Request] = []
        self._scheduled = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._wakeup.connect(self._deliver, Qt.ConnectionType.QueuedConnection)

    @classmethod
    def of(cls, replica: Replica) -> MutationWriter:
        """The replica's one writer (made on first use, on the GUI thread)."""
        writer = cls._writers.get(replica)
        if writer is None:
            writer = cls._writers[replica] = cls(replica)
        return writer

    @classmethod
    def close_for(cls, replica: Replica) -> None:
        """Close the replica's writer, if it has one (see :meth:`close`)."""
        writer = cls._writers.get(replica)
        if writer is not None:
            writer.close()

    @property
    def closed(self) -> bool:
        return self._closed

    # ------------------------------------------------------------------ the GUI thread

    def submit(self, steps: Sequence[Step], reply: Callable[[Outcome], None] | None = None) -> None:
        """Queue ``steps`` as one request and return at once; ``reply(outcome)`` runs on the
        GUI thread once they were applied or refused. The mutations carry the time of the
        click, not of their turn in the queue."""
        request = _Request(tuple(steps), utcnow(), reply)
        if self._closed:
            self._finish(request, Outcome(request.steps, (), CLOSED))
            self._deliver()
            return
        if SYNCHRONOUS:
            self._apply(request)
            self._deliver()
            return
        self._ensure_thread()
        self._queue.put(request)

    def apply_now(self, steps: Sequence[Step]) -> Outcome:
        """Queue ``steps`` and wait for their outcome: for callers that still need the answer
        before they go on (a dialog that closes only on success). It keeps the writer's one
        order, but the caller waits as a direct ``mutate`` would; prefer :meth:`submit`."""
        request = _Request(tuple(steps), utcnow(), None)
        if self._closed:
            return Outcome(request.steps, (), CLOSED)
        if SYNCHRONOUS or threading.current_thread() is self._thread:
            self._apply(request)
        else:
            self._ensure_thread()
            self._queue.put(request)
            request.finished.wait()
        self._deliver()
        assert request.outcome is not None
        return request.outcome

    def close(self) -> None:
        """Apply everything already queued, stop the thread, deliver the last outcomes; later
        requests are refused (:data:`CLOSED`). Waits for a pull page holding the write lock,
        never for the network."""
        if self._closed:
            return
        self._closed = True
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()
        self._deliver()
        if MutationWriter._writers.get(self.replica) is self:
            del MutationWriter._writers[self.replica]

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="agentdesk-writer", daemon=True)
            self._thread.start()

    def _deliver(self) -> None:
        with self._lock:
            done, self._done = self._done, []
            self._scheduled = False
        for request in done:
            assert request.outcome is not None
            # Dropped here, on the GUI thread: the writer thread may still hold the request,
            # and a reply is bound to panels it must never be the one to free (see
            # agentdesk/ui/background.py).
            reply, request.reply = request.reply, None
            if reply is not None:
                try:
                    reply(request.outcome)
                except Exception:  # one panel's bug must not cost another its outcome
                    log.exception("a mutation's reply failed")
            self.outcomeReady.emit(request.outcome)

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        while True:
            request = self._queue.get()
            if request is _STOP:
                return
            assert isinstance(request, _Request)
            self._apply(request)

    def _apply(self, request: _Request) -> None:
        applied: list[tuple[uuid.UUID, int]] = []
        refusal: str | None = None
        for step in request.steps:
            try:
                client_id = self.replica.state.client_id
                mutation_id = self.replica.mutate(
                    step.name, step.args, client_time=request.client_time
                )
            except MutationRejected as exc:
                refusal = exc.message
            except ReplicaError as exc:
                refusal = str(exc)
            except Exception as exc:  # reported like a refusal, never retried
                log.exception("applying %s failed", step.name)
                refusal = f"{step.what} failed: {exc}"
            else:
                applied.append((client_id, mutation_id))
                continue
            break
        self._finish(request, Outcome(request.steps, tuple(applied), refusal))

    def _finish(self, request: _Request, outcome: Outcome) -> None:
        request.outcome = outcome
        with self._lock:
            self._done.append(request)
            schedule = not self._scheduled
            self._scheduled = True
        request.finished.set()
        if schedule and not SYNCHRONOUS:
            self._wakeup.emit()
