"""The team lead's dashboard kept live: after a pull, the figures move by what the changed
tickets contribute, instead of being recomputed over the whole queue.

An incremental refresh needs each changed ticket's contribution *before* the pull as well as
after it. Rather than holding a copy of every open ticket in memory (100,000 rows read into
Python cost more than the whole dashboard's budget), the replica itself keeps the "before":
:class:`Pin` holds a read transaction open on its own connection, so SQLite's write-ahead log
keeps showing it the replica exactly as it was when the figures were computed. A refresh then
reads the same aggregates (:func:`~agentdesk.queries.dashboard.open_queue`,
:func:`~agentdesk.queries.dashboard.response_rows`, the allowance counts) over only the
affected tickets, in the old snapshot and in a new one, and moves the figures by the
difference: one rule, the same SQL for a full computation and for its delta, so the result is
the full computation's by construction (``tests/dashboard/test_live.py`` checks it against
one after random changes).

The affected tickets are the changed ones (the sync bridge's ticket ids) plus those whose
state moved with the clock alone: an SLA instant or an ageing edge passed between the two
refreshes (a range read), and for the first-response range, the responses that left its start
or entered its end. What is not a sum is kept whole: each first-response group's sorted
business times (percentiles need every value) and each group's oldest arrival, re-read for a
group whose oldest ticket was among the changed.

A refresh recomputes everything (:func:`start`) when the change is large, the clock or the
range moved backwards or a long way, the lookups changed (plans, organisations' plans,
calendars, the team's zone), the calendar year turned, or the pin is older than
:data:`MAX_PIN_AGE`. That last rule bounds the write-ahead log: SQLite cannot reset its log
while a reader holds an old snapshot, so the log grows with whatever the replica writes
until the pin moves on; a full computation first lets go, checkpoints (passively: it never
waits for the sync thread) and only then pins again.

The 1-on-1 hours (billed time, prepaid blocks) are recomputed when asked (their tables
changed, or the clock ticked), else carried over.
"""

from __future__ import annotations

import logging
import uuid
from bisect import bisect_left, insort
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Engine, false, select

from ..models import Ticket, TicketStatus
from ..policy.entitlements import calendar_year_of
from .dashboard import (
    OPEN,
    Context,
    Dashboard,
    OpenQueue,
    ResponseGroups,
    ResponseRow,
    age_bounds,
    allowance_counts,
    allowances,
    as_uuid,
    context,
    lookups_signature,
    one_on_one,
    open_queue,
    response_groups,
    response_keys,
    response_rows,
    ticket_figures,
)
from .raw import driver_rows, instant, raw
from .snapshot import Pin, pin_twins

log = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = ["MAX_CHANGED", "MAX_PIN_AGE", "LiveDashboard", "Pin", "advance", "start"]

#: More changed tickets than this and a full computation is cheaper than the delta.
MAX_CHANGED = 5_000
#: Affected tickets (changed, plus those the clock moved) above which the delta gives up.
MAX_AFFECTED = 20_000
#: The longest a snapshot is held (see the module's note on the write-ahead log), in seconds.
MAX_PIN_AGE = 300.0
#: The furthest the clock may move between two incremental refreshes.
MAX_ROLL = timedelta(hours=1)
#: Below this many removals and additions, a sorted group is edited in place.
_FEW = 64
#: SQLite's host-parameter limit is 32,766; ids are sent in chunks well below it.
_CHUNK = 2_000


@dataclass
class LiveDashboard:
    """A dashboard and what its next incremental refresh starts from."""

    dashboard: Dashboard
    pin: Pin
    tenant_id: uuid.UUID | None
    queue: OpenQueue
    responses: ResponseGroups
    used: dict[uuid.UUID, int]
    year: int
    #: :func:`~agentdesk.queries.dashboard.lookups_signature` in the snapshot, and the
    #: lookups read there (reused while the signature holds).
    signature: tuple[Any, ...]
    lookups: Context
    #: Moved by a delta from the previous one (False: computed afresh).
    moved: bool = False

    def close(self) -> None:
        self.pin.close()


class _Stale(Exception):
    """The kept state does not fit the snapshot: compute everything instead."""


def start(
    engine: Engine,
    at: datetime,
    start: datetime,
    end: datetime,
    *,
    tenant_id: uuid.UUID | None = None,
) -> LiveDashboard:
    """Every figure, computed in a new pinned snapshot (the next refresh's "before").

    The two large reads, the open queue's aggregates and the range's first responses, run on
    two threads in twin snapshots (:func:`~.snapshot.pin_twins`) when those can be had at
    once, else one after the other in the one."""
    pin, twin = pin_twins(engine, checkpoint=True)
    try:
        with pin.session() as s:
            signature = lookups_signature(s, tenant_id)
            ctx = context(s, at, tenant_id)
            aside = partial(_responses, start=start, end=end)
            with _beside(twin, ctx, aside) as result:
                queue = open_queue(ctx)
                used = allowance_counts(ctx)
                weeks, hours = one_on_one(ctx, start, end)
            groups = result()
            board = Dashboard(
                at=at,
                start=start,
                end=end,
                **ticket_figures(ctx, queue, groups, start, end),
                allowances=allowances(ctx, used),
                one_on_one=hours,
                weeks=weeks,
            )
            return LiveDashboard(
                board,
                pin,
                tenant_id,
                queue,
                groups,
                used,
                calendar_year_of(at, ctx.tz),
                signature,
                ctx,
            )
    except BaseException:
        pin.close()
        raise
    finally:
        if twin is not None:
            twin.close()


def _responses(ctx: Context, *, start: datetime, end: datetime) -> ResponseGroups:
    """The first responses in ``[start, end)`` by group: the read of :func:`start` that runs
    beside the open queue's (the year's conversation counts run with the open queue: its two
    scans are the lighter half since migration 0013; docs/performance.md).

    On the second thread this reads only through ``ctx.session`` (the twin's) and plain values
    of ``ctx``; the ORM objects in ``ctx.plans`` belong to the first thread's session, and an
    attribute of theirs not yet loaded would load through it, from the wrong thread."""
    return response_groups(ctx, response_rows(ctx.session, start, end))


@contextmanager
def _beside(
    twin: Pin | None, ctx: Context, work: Callable[[Context], T]
) -> Iterator[Callable[[], T]]:
    """Runs ``work`` on a thread of its own, in ``twin``'s snapshot, while the block runs; or,
    with no twin, after the block in ``ctx``'s own session. Yields how to get its result once
    the block is done (its exception, if it raised). ``work`` reads only through the context it
    is given: the lookups it shares with the block are read, never changed (their id caches may
    fill the same entries from both threads, with equal values)."""
    if twin is None:
        yield lambda: work(ctx)
        return

    def on_twin() -> T:
        with twin.session() as s:
            return work(replace(ctx, session=s))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-read") as pool:
        future = pool.submit(on_twin)
        yield future.result  # leaving the pool waits for the thread, whatever the block did


def advance(
    live: LiveDashboard,
    at: datetime,
    start_at: datetime,
    end: datetime,
    changed: Collection[uuid.UUID],
    *,
    one_on_one_too: bool = False,
) -> LiveDashboard:
    """The dashboard after ``changed`` tickets changed (and the clock moved to ``at``, the range
    to ``[start_at, end)``), moved from ``live`` by the difference; or, when that does not
    apply (see the module's notes), computed afresh. ``live`` is spent either way: its
    snapshot is released."""
    engine = live.pin.engine
    if not _fits(live, at, start_at, end, changed):
        live.close()
        return start(engine, at, start_at, end, tenant_id=live.tenant_id)
    new = Pin(engine)
    try:
        moved = _moved(live, new, at, start_at, end, changed, one_on_one_too)
    except _Stale as why:
        log.info("dashboard: computing afresh (%s)", why)
        new.close()
        live.close()
        return start(engine, at, start_at, end, tenant_id=live.tenant_id)
    except BaseException:
        new.close()
        live.close()
        raise
    live.close()
    return moved


def _fits(
    live: LiveDashboard,
    at: datetime,
    start_at: datetime,
    end: datetime,
    changed: Collection[uuid.UUID],
) -> bool:
    before = live.dashboard
    if live.pin.closed or live.pin.age > MAX_PIN_AGE or len(changed) > MAX_CHANGED:
        return False
    if abs(at - before.at) > MAX_ROLL:
        return False
    # The range may only roll forward as a whole (the last N days) or stay (chosen dates).
    return start_at >= before.start and end - start_at == before.end - before.start


def _moved(
    live: LiveDashboard,
    new: Pin,
    at: datetime,
    start_at: datetime,
    end: datetime,
    changed: Collection[uuid.UUID],
    one_on_one_too: bool,
) -> LiveDashboard:
    before = live.dashboard
    with live.pin.session() as s0, new.session() as s1:
        if lookups_signature(s1, live.tenant_id) != live.signature:
            raise _Stale("plans, organisations, calendars, people or the zone changed")
        ctx1 = replace(live.lookups, session=s1, at=at)
        year = calendar_year_of(at, ctx1.tz)
        if year != live.year:
            raise _Stale("a new calendar year")
        ctx0 = replace(ctx1, session=s0, at=before.at)
        ids = list(changed)

        queue = _moved_queue(live.queue, ctx0, ctx1, ids)
        groups = _moved_responses(live, ctx0, ctx1, start_at, end, ids)
        used = _moved_counts(live.used, ctx0, ctx1, ids)
        if one_on_one_too:
            weeks, hours = one_on_one(ctx1, start_at, end)
        else:
            weeks, hours = before.weeks, before.one_on_one
        board = Dashboard(
            at=at,
            start=start_at,
            end=end,
            **ticket_figures(ctx1, queue, groups, start_at, end),
            allowances=allowances(ctx1, used),
            one_on_one=hours,
            weeks=weeks,
        )
    return LiveDashboard(
        board, new, live.tenant_id, queue, groups, used, year, live.signature, live.lookups, True
    )


def _chunks(ids: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]


# ----------------------------------------------------------------------------- open queue


def _edges(bounds: tuple[tuple[datetime | None, datetime | None], ...]) -> list[datetime]:
    return [lo for lo, _ in bounds if lo is not None]


def _clock_moved(
    ctx1: Context,
    at0: datetime,
    bounds0: tuple[tuple[datetime | None, datetime | None], ...],
    bounds1: tuple[tuple[datetime | None, datetime | None], ...],
) -> set[uuid.UUID]:
    """Tickets whose SLA state or age bucket may differ between the two clocks although they
    did not change: an instant or an arrival between the old and the new edge (closed ranges,
    closed tickets too: a superset, and what did not move contributes nothing). Index ranges,
    never a scan of the queue: ``ix_tickets_sla`` (due), ``ix_tickets_risk`` (turning at risk)
    and ``ix_tickets_dashboard`` (open arrivals)."""
    t = Ticket.__table__.c
    lo, hi = min(at0, ctx1.at), max(at0, ctx1.at)
    found: list[Any] = []
    reads: list[Any] = []
    if lo != hi:
        reads.append(
            select(raw(t.id)).where(
                t.first_response_at.is_(None),
                t.status.in_(OPEN),
                t.deleted == false(),
                t.sla_due_at.between(lo, hi),
            )
        )
        reads.append(select(raw(t.id)).where(t.sla_risk_at.between(lo, hi)))
    for e0, e1 in zip(_edges(bounds0), _edges(bounds1), strict=True):
        if e0 != e1:
            reads.append(
                select(raw(t.id)).where(
                    t.status.in_(OPEN),
                    t.deleted == false(),
                    t.arrived_at.between(min(e0, e1), max(e0, e1)),
                )
            )
    for read in reads:
        found += driver_rows(ctx1.session, read)
    return {as_uuid(r[0]) for r in found}


def _queue_of(
    ctx: Context,
    bounds: tuple[tuple[datetime | None, datetime | None], ...],
    ids: Sequence[Any],
) -> list[OpenQueue]:
    return [open_queue(ctx, bounds=bounds, ids=chunk) for chunk in _chunks(ids)]


def _moved_queue(
    q0: OpenQueue, ctx0: Context, ctx1: Context, changed: list[uuid.UUID]
) -> OpenQueue:
    """``q0`` (the open queue at ``ctx0``'s clock and snapshot) at ``ctx1``'s: minus the
    affected tickets' old aggregates, plus their new ones; oldest arrivals re-read for the
    groups whose oldest ticket was among them."""
    bounds1 = age_bounds(ctx1)
    affected = list(set(changed).union(_clock_moved(ctx1, q0.at, q0.age_bounds, bounds1)))
    if len(affected) > MAX_AFFECTED:
        raise _Stale(f"{len(affected)} tickets affected")
    olds = _queue_of(ctx0, q0.age_bounds, affected)
    news = _queue_of(ctx1, bounds1, affected)

    def moved(a: int, name: str) -> int:
        gone: int = sum(getattr(q, name) for q in olds)
        came: int = sum(getattr(q, name) for q in news)
        return a - gone + came

    def moved_map(base: dict[Any, int], name: str) -> dict[Any, int]:
        return {
            k: v
            - sum(getattr(q, name).get(k, 0) for q in olds)
            + sum(getattr(q, name).get(k, 0) for q in news)
            for k, v in base.items()
        }

    def moved_tuple(base: tuple[int, ...], name: str) -> tuple[int, ...]:
        out = list(base)
        for sign, parts in ((-1, olds), (1, news)):
            for q in parts:
                for i, v in enumerate(getattr(q, name)):
                    out[i] += sign * v
        return tuple(out)

    if set(q0.by_plan) != set(ctx1.plans):
        raise _Stale("the plans changed")

    groups = _moved_groups(q0, olds, news, ctx1)
    agents = tuple(
        sorted(
            (key, g[0], g[1], g[2], g[3])
            for key, g in groups.items()
            if key not in (_UNASSIGNED, _UNTRIAGED) and g[0]
        )
    )
    return OpenQueue(
        ctx1.at,
        moved(q0.total, "total"),
        moved_map(q0.by_tier, "by_tier"),
        moved_map(q0.by_level, "by_level"),
        moved_map(q0.by_plan, "by_plan"),
        moved_tuple(q0.sla, "sla"),
        moved_tuple(q0.ages, "ages"),
        bounds1,
        agents,
        (groups[_UNASSIGNED][0], groups[_UNASSIGNED][1]),
        (groups[_UNTRIAGED][0], groups[_UNTRIAGED][1]),
    )


def _moved_groups(
    q0: OpenQueue, olds: list[OpenQueue], news: list[OpenQueue], ctx1: Context
) -> dict[Any, list[Any]]:
    """Per group (an assignee, the unassigned, the untriaged): [count, oldest, at risk, late]
    moved by the affected tickets; an oldest arrival that may have left is re-read."""
    groups: dict[Any, list[Any]] = {
        uid: [n, oldest, risk, late] for uid, n, oldest, risk, late in q0.agents
    }
    groups[_UNASSIGNED] = [q0.unassigned[0], q0.unassigned[1], 0, 0]
    groups[_UNTRIAGED] = [q0.untriaged[0], q0.untriaged[1], 0, 0]
    recount: set[Any] = set()
    for sign, parts in ((-1, olds), (1, news)):
        for q in parts:
            for key, n, oldest, risk, late in _group_rows(q):
                g = groups.setdefault(key, [0, None, 0, 0])
                g[0] += sign * n
                g[2] += sign * risk
                g[3] += sign * late
                if n and sign < 0 and (oldest is None or g[1] is None or oldest <= g[1]):
                    recount.add(key)  # its oldest ticket left (or changed): re-read
                elif n and sign > 0 and oldest is not None and key not in recount:
                    g[1] = oldest if g[1] is None else min(g[1], oldest)
    for key, g in groups.items():
        if g[0] < 0 or g[2] < 0 or g[3] < 0:
            raise _Stale("a group's count went negative")
        if g[0] == 0:
            g[1] = None
        elif key in recount:
            g[1] = _oldest(ctx1, key)
    return groups


_UNASSIGNED = "unassigned"
_UNTRIAGED = "untriaged"


def _group_rows(q: OpenQueue) -> Iterator[tuple[Any, int, datetime | None, int, int]]:
    yield from q.agents
    yield (_UNASSIGNED, q.unassigned[0], q.unassigned[1], 0, 0)
    yield (_UNTRIAGED, q.untriaged[0], q.untriaged[1], 0, 0)


def _oldest(ctx: Context, key: Any) -> datetime | None:
    """A group's oldest open arrival now: an assignee's (a range of ``ix_tickets_open``),
    the unassigned's, or the untriaged's (the status index)."""
    t = Ticket.__table__.c
    if key == _UNTRIAGED:
        found = ctx.session.scalar(
            select(raw(t.arrived_at))
            .where(t.deleted == false(), t.status == TicketStatus.NEW)
            .order_by(t.arrived_at)
            .limit(1)
        )
        return None if found is None else instant(found)
    q = open_queue(ctx, bounds=(), assignee=None if key == _UNASSIGNED else key)
    if key == _UNASSIGNED:
        return q.unassigned[1]
    return next((oldest for uid, _n, oldest, _r, _l in q.agents if uid == key), None)


# ----------------------------------------------------------------------------- first responses


def _moved_responses(
    live: LiveDashboard,
    ctx0: Context,
    ctx1: Context,
    start_at: datetime,
    end: datetime,
    changed: list[Any],
) -> ResponseGroups:
    """The range's response groups after the changed tickets, and after the range rolled:
    responses that left its start (read in the old snapshot) or entered its end (the new)."""
    before = live.dashboard
    s0, s1 = ctx0.session, ctx1.session
    t = Ticket.__table__.c
    affected = set(changed)
    for session, lo, hi in ((s0, before.start, start_at), (s1, before.end, end)):
        if hi > lo:
            rows = driver_rows(
                session,
                select(raw(t.id)).where(t.first_response_at >= lo, t.first_response_at < hi),
            )
            affected.update(as_uuid(r[0]) for r in rows)
    if len(affected) > MAX_AFFECTED:
        raise _Stale(f"{len(affected)} responses affected")
    ids = list(affected)
    old = [r for chunk in _chunks(ids) for r in response_rows(s0, before.start, before.end, chunk)]
    new = [r for chunk in _chunks(ids) for r in response_rows(s1, start_at, end, chunk)]
    return _edited(live.responses, ctx1, old, new)


def _edited(
    groups: ResponseGroups, ctx: Context, old: list[ResponseRow], new: list[ResponseRow]
) -> ResponseGroups:
    """``groups`` less the ``old`` responses, plus the ``new`` (a new mapping: the kept one is
    left as it was)."""
    removed: dict[tuple[str, Any], list[int]] = defaultdict(list)
    added: dict[tuple[str, Any], list[int]] = defaultdict(list)
    met: Counter[tuple[str, Any]] = Counter()
    keys_of: dict[tuple[Any, Any, Any], tuple[tuple[str, Any], ...]] = {}
    for rows, into, sign in ((old, removed, -1), (new, added, 1)):
        for took, ok, urgency, org, assignee, _tid in rows:
            keys = keys_of.get((urgency, org, assignee))
            if keys is None:
                keys = keys_of[(urgency, org, assignee)] = response_keys(
                    ctx, urgency, org, assignee
                )
            for key in keys:
                into[key].append(took)
                if ok:
                    met[key] += sign
    out = dict(groups)
    for key in set(removed) | set(added):
        took, n_met = groups.get(key, ([], 0))
        gone, came = Counter(removed.get(key, ())), Counter(added.get(key, ()))
        same = gone & came  # a changed ticket whose response did not change: nothing to edit
        gone, came = gone - same, came - same
        if gone or came:
            took = _sorted_edit(took, list(gone.elements()), list(came.elements()))
        n_met += met[key]
        if n_met < 0 or n_met > len(took):
            raise _Stale("a response group's count went out of range")
        if took:
            out[key] = (took, n_met)
        else:
            out.pop(key, None)
    return out


def _sorted_edit(values: list[int], removed: list[int], added: list[int]) -> list[int]:
    """A sorted copy of ``values`` less ``removed`` plus ``added``."""
    if len(removed) + len(added) <= _FEW:
        out = list(values)
        for v in removed:
            i = bisect_left(out, v)
            if i == len(out) or out[i] != v:
                raise _Stale("a response to remove was not counted")
            del out[i]
        for v in added:
            insort(out, v)
        return out
    gone = Counter(removed)
    kept = []
    for v in values:
        if gone[v]:
            gone[v] -= 1
        else:
            kept.append(v)
    if +gone:
        raise _Stale("a response to remove was not counted")
    kept += added
    kept.sort()
    return kept


# ----------------------------------------------------------------------------- allowances


def _moved_counts(
    used: dict[uuid.UUID, int], ctx0: Context, ctx1: Context, changed: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """This year's conversation counts moved by what the changed tickets count for, before
    and after (the allowance rule's own query over those tickets only)."""
    if not changed:
        return used
    out = dict(used)
    for ctx, sign in ((ctx0, -1), (ctx1, 1)):
        for chunk in _chunks(changed):
            for org, n in allowance_counts(ctx, chunk).items():
                out[org] = out.get(org, 0) + sign * n
    if any(n < 0 for n in out.values()):
        raise _Stale("a conversation count went negative")
    return {org: n for org, n in out.items() if n}
