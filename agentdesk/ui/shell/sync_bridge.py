"""The sync engine's loop on its own thread, reported to the GUI thread as Qt signals.

The engine (:mod:`agentdesk.sync.engine`) knows nothing of Qt: it calls plain observers on the
sync thread, and the replica calls its listeners on whatever thread committed (the sync thread
for a pull, the GUI thread for a local mutation). :class:`SyncBridge` turns both into signals
that always arrive on the GUI thread, through the event loop, so a slot never runs inside the
replica's commit or on the wrong thread.

The queue needs more than "something changed": it updates rows in place
(:meth:`~agentdesk.ui.queue.model.QueueModel.apply_changes`) and so needs *which* tickets a pull
touched. The engine tells its page observers (:meth:`SyncEngine.add_page_observer`) what each
committed page changed, so the bridge collects the ticket ids of the page (tickets, their
events and waiting periods) plus the tickets of the pending mutations the page rebased (a
refused mutation is undone locally without the server sending that row). That is O(changes),
where asking the replica "what has a version above the old cursor" would scan every ticket on
every page. Pulls are reported from the page observer only (it runs right after the commit, on
the sync thread); the replica's listener reports local mutations. Changes arriving faster than
the GUI takes them are merged into one delivery.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal

from ...sync.engine import AppliedPage, SyncEngine, SyncStatus
from ...sync.protocol import Change, Mutation, PullResponse
from ...sync.replica import RejectionInfo, Replica

log = logging.getLogger(__name__)

__all__ = ["LOOKUP_TABLES", "ReplicaChange", "SyncBridge"]

#: Tables the queue shows through joins (names, plans, validated marks): a change re-reads
#: those lookups rather than single rows.
LOOKUP_TABLES = frozenset({"plans", "calendars", "organisations", "contacts", "users"})
#: Tables whose rows belong to one ticket (``ticket_id``): a change there changes that ticket.
TICKET_CHILD_TABLES = frozenset({"ticket_events", "waiting_periods"})
#: Mutations that change a contact (the queue's validated mark) rather than one ticket.
CONTACT_MUTATIONS = frozenset({"validate_contact", "invalidate_contact", "swap_contact"})


@dataclass(frozen=True)
class ReplicaChange:
    """What changed in the replica since the last delivery (several commits merged)."""

    kinds: frozenset[str] = frozenset()
    #: Tables with rows in the pulled pages (empty for a local mutation).
    tables: frozenset[str] = frozenset()
    ticket_ids: frozenset[uuid.UUID] = frozenset()
    #: The organisations and people named by the changed rows (``organisation_id``,
    #: ``person_id``): the contact panel and the timer re-read only for their own.
    organisation_ids: frozenset[uuid.UUID] = frozenset()
    person_ids: frozenset[uuid.UUID] = frozenset()
    #: Plans, calendars, organisations, contacts or users changed.
    lookups: bool = False
    #: The replica started over (a reset): everything must be re-read.
    everything: bool = False

    def merged(self, other: ReplicaChange) -> ReplicaChange:
        return ReplicaChange(
            kinds=self.kinds | other.kinds,
            tables=self.tables | other.tables,
            ticket_ids=self.ticket_ids | other.ticket_ids,
            organisation_ids=self.organisation_ids | other.organisation_ids,
            person_ids=self.person_ids | other.person_ids,
            lookups=self.lookups or other.lookups,
            everything=self.everything or other.everything,
        )

    @property
    def empty(self) -> bool:
        """Nothing a view shows can differ (e.g. a pull that found the replica up to date)."""
        return not (
            self.tables
            or self.ticket_ids
            or self.lookups
            or self.everything
            or "mutate" in self.kinds
        )


def _uuid(raw: Any) -> uuid.UUID | None:
    if isinstance(raw, uuid.UUID):
        return raw
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


def change_of_mutations(mutations: Iterable[Mutation]) -> ReplicaChange:
    """The tickets (and lookups) some local mutations touch, from their arguments."""
    tickets: set[uuid.UUID] = set()
    orgs: set[uuid.UUID] = set()
    lookups = False
    for m in mutations:
        ticket_id = _uuid(m.args.get("ticket_id"))
        if ticket_id is not None:
            tickets.add(ticket_id)
        org_id = _uuid(m.args.get("organisation_id"))
        if org_id is not None:
            orgs.add(org_id)
        if m.name in CONTACT_MUTATIONS:
            lookups = True
    return ReplicaChange(
        ticket_ids=frozenset(tickets), organisation_ids=frozenset(orgs), lookups=lookups
    )


def _change_of_rows(changes: Iterable[Change], *, reset: bool) -> ReplicaChange:
    tickets: set[uuid.UUID] = set()
    tables: set[str] = set()
    orgs: set[uuid.UUID] = set()
    people: set[uuid.UUID] = set()
    lookups = False
    for change in changes:
        tables.add(change.table)
        org_id = _uuid(change.values.get("organisation_id"))
        if org_id is not None:
            orgs.add(org_id)
        person_id = _uuid(change.values.get("person_id"))
        if person_id is not None:
            people.add(person_id)
        if change.table == "tickets":
            tickets.add(change.id)
        elif change.table in TICKET_CHILD_TABLES:
            ticket_id = _uuid(change.values.get("ticket_id"))
            if ticket_id is not None:
                tickets.add(ticket_id)
        elif change.table in LOOKUP_TABLES:
            lookups = True
    return ReplicaChange(
        tables=frozenset(tables),
        ticket_ids=frozenset(tickets),
        organisation_ids=frozenset(orgs),
        person_ids=frozenset(people),
        lookups=lookups,
        everything=reset,
    )


def change_of_page(page: PullResponse) -> ReplicaChange:
    """The tickets (and lookups) the server's rows of a pull page touch."""
    return _change_of_rows(page.changes, reset=page.reset)


def change_of_applied(applied: AppliedPage) -> ReplicaChange:
    """What a committed pull page changed: its rows, plus the tickets of the local mutations
    it rebased; a reset changes everything."""
    kind = "reset" if applied.reset else "pull"
    return (
        ReplicaChange(kinds=frozenset({kind}))
        .merged(_change_of_rows(applied.changes, reset=applied.reset))
        .merged(change_of_mutations(applied.rebased))
    )


@dataclass
class _Inbox:
    """Changes on their way to the GUI thread, guarded by the bridge's lock."""

    #: Committed, waiting for the GUI thread to take them.
    ready: ReplicaChange = field(default_factory=ReplicaChange)
    rejections: list[RejectionInfo] = field(default_factory=list)
    scheduled: bool = False


class SyncBridge(QObject):
    """Runs ``engine.run`` on a thread of its own; create, connect, then :meth:`start`.

    Every public signal is emitted on the GUI thread (the thread owning the bridge).
    """

    #: The engine's :class:`~agentdesk.sync.engine.SyncStatus` changed.
    statusChanged = Signal(object)
    #: The replica committed a change of this kind ("mutate", "pull" or "reset").
    replicaChanged = Signal(str)
    #: The details of the latest committed changes (a :class:`ReplicaChange`).
    changesArrived = Signal(object)
    #: The server refused local mutations the agent has not seen yet (``RejectionInfo`` list).
    rejectionsArrived = Signal(list)
    #: The loop ended on its own (the server no longer accepts the sign-in), or was stopped.
    finished = Signal()

    _wakeup = Signal()
    _status = Signal(object)
    _ended = Signal()

    def __init__(self, replica: Replica, engine: SyncEngine, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.replica = replica
        self.engine = engine
        self._lock = threading.Lock()
        self._inbox = _Inbox()
        self._announced: set[tuple[uuid.UUID, int]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._last_status: SyncStatus | None = None
        queued = Qt.ConnectionType.QueuedConnection
        self._wakeup.connect(self._deliver, queued)
        self._status.connect(self._deliver_status, queued)
        self._ended.connect(self._deliver_ended, queued)
        engine.add_observer(self._on_status)
        engine.add_page_observer(self._on_page)
        replica.add_listener(self._on_replica)

    # ------------------------------------------------------------------ control

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def status(self) -> SyncStatus | None:
        """The last status delivered to the GUI thread (None before the first)."""
        return self._last_status

    def start(self) -> None:
        if self._closed:
            raise RuntimeError("a stopped SyncBridge cannot start again; make a new one")
        if self.running:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="agentdesk-sync", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> bool:
        """Stop the loop and wait for its thread; True when it ended within ``timeout``.

        The loop checks for the stop every 50-100 ms, and a request in flight is cut
        (:meth:`SyncEngine.interrupt`) rather than waited for: a server that does not answer
        must not hold up quitting. A page being applied to the replica finishes first.
        Nothing is delivered after this returns.
        """
        self._closed = True
        self._stop.set()
        thread, self._thread = self._thread, None
        stopped = True
        if thread is not None:
            self.engine.interrupt()
            thread.join(timeout)
            stopped = not thread.is_alive()
            if stopped:
                self.engine.resume()  # the client serves the sign-out's token revocation
            else:
                log.warning("the sync thread did not stop within %.0f s", timeout)
        self.replica.remove_listener(self._on_replica)
        self.engine.remove_page_observer(self._on_page)
        return stopped

    def nudge(self) -> None:
        """Sync soon (thread-safe): e.g. after the agent asked to retry."""
        self.engine.nudge("mutate")

    # ------------------------------------------------------------------ the sync thread

    def _run(self) -> None:
        try:
            self.engine.run(self._stop)
        except Exception:  # the engine handles its own errors; this is a last resort
            log.exception("the sync loop failed")
        finally:
            self._ended.emit()

    # ------------------------------------------------------------------ callbacks (any thread)

    def _on_status(self, status: SyncStatus) -> None:
        if not self._closed:
            self._status.emit(status)

    def _on_replica(self, kind: str) -> None:
        """A replica listener: runs right after a commit, on the committing thread. Only
        local mutations are taken from here; pulls come through :meth:`_on_page`."""
        if self._closed or kind != "mutate":
            return
        change = ReplicaChange(kinds=frozenset({kind}))
        try:
            change = change.merged(self._newest_mutation())
        except Exception:
            log.exception("could not read what the replica changed")
            change = change.merged(ReplicaChange(everything=True))
        self._post(change, [])

    def _on_page(self, applied: AppliedPage) -> None:
        """The engine's page observer: runs on the sync thread right after a pull page (or a
        reset) was committed, with what it changed."""
        if self._closed:
            return
        kind = "reset" if applied.reset else "pull"
        change = ReplicaChange(kinds=frozenset({kind}), everything=applied.reset)
        rejections: list[RejectionInfo] = []
        try:
            change = change_of_applied(applied)
            rejections = self._fresh_rejections()
        except Exception:  # never let bookkeeping break a sync, nor lose a change
            log.exception("could not read the changes of a pull page")
            change = change.merged(ReplicaChange(everything=True))
        self._post(change, rejections)

    def _newest_mutation(self) -> ReplicaChange:
        ids = self.replica.outbox_ids()
        if not ids:
            return ReplicaChange()
        return change_of_mutations(self.replica.outbox_batch(1, after=ids[-1] - 1))

    def _fresh_rejections(self) -> list[RejectionInfo]:
        fresh = []
        for r in self.replica.unseen_rejections():
            key = (r.client_id, r.mutation_id)
            if key not in self._announced:
                self._announced.add(key)
                fresh.append(r)
        return fresh

    def _post(self, change: ReplicaChange, rejections: list[RejectionInfo]) -> None:
        with self._lock:
            inbox = self._inbox
            inbox.ready = inbox.ready.merged(change)
            inbox.rejections.extend(rejections)
            schedule = not inbox.scheduled
            inbox.scheduled = True
        if schedule:
            self._wakeup.emit()

    # ------------------------------------------------------------------ the GUI thread

    def _deliver(self) -> None:
        with self._lock:
            inbox = self._inbox
            change, inbox.ready = inbox.ready, ReplicaChange()
            rejections, inbox.rejections = inbox.rejections, []
            inbox.scheduled = False
        if self._closed or (change.empty and not rejections):
            return
        for kind in ("reset", "pull", "mutate"):
            if kind in change.kinds:
                self.replicaChanged.emit(kind)
        if change.kinds:
            self.changesArrived.emit(change)
        if rejections:
            self.rejectionsArrived.emit(rejections)

    def _deliver_status(self, status: SyncStatus) -> None:
        if self._closed:
            return
        self._last_status = status
        self.statusChanged.emit(status)

    def _deliver_ended(self) -> None:
        self.finished.emit()
