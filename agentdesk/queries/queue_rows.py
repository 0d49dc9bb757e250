"""The queue's rows: the cells of one listed ticket, read by primary key (Qt-free).

The queue model reads rows lazily, a block of neighbouring rows at a time, only for rows a view
shows (:func:`read_rows`), and re-reads the tickets a sync pull changed together with whether
each is still listed and under which key (:func:`read_changes`, on a worker thread).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, String, and_, case, false, select, type_coerce

from ..policy.sla import SlaStatus
from ..policy.workflow import label
from .queue import (
    ROW_COLUMNS,
    SLA_VIEWS,
    TICKETS,
    WAITS,
    Column,
    Key,
    QueueQuery,
    filter_clauses,
    from_joined,
    id_bytes,
    is_queue_order,
    parse_utc,
    pauses_of,
    queue_key,
    sort_value,
    uuid_of,
)
from .sla_clock import LOADING, SlaClock, SlaInputs

__all__ = ["ChangedRow", "QueueRow", "read_changes", "read_rows", "row_key"]

#: Tickets read per statement (SQLite's bound-parameter limit is far above; a bounded IN list
#: keeps each statement's plan a primary-key lookup).
CHUNK = 500


#: Row columns read raw (no SQLAlchemy result processing): converted by QueueRow only as needed.
_RAW_ROW = {
    "id",
    "assignee_id",
    "organisation_id",
    "requester_id",
    "plan_id",
    "arrived_at",
    "first_response_at",
    "level",
    "status",
}


class QueueRow:
    """One ticket's row, read lazily. Attribute names match the SQL labels; ids other than the
    plan's stay in the replica's raw form (only "is there an assignee" is ever asked of them)."""

    __slots__ = (
        "_queue_key",
        "arrived_at",
        "arrived_raw",
        "assignee_id",
        "assignee_name",
        "channel",
        "display",
        "first_response_at",
        "inputs",
        "kid",
        "level",
        "organisation_id",
        "organisation_name",
        "plan_id",
        "plan_rank",
        "requester_email",
        "requester_id",
        "requester_name",
        "requester_validated",
        "sla_second",
        "sla_status",
        "status",
        "subject",
        "tier",
        "urgency",
        "version",
    )

    def __init__(
        self, r: Any, pauses: Sequence[tuple[datetime, datetime | None]], clock: SlaClock
    ) -> None:
        self.kid: bytes = id_bytes(r.id)
        self.version: int = r.version
        self.subject: str = r.subject
        self.channel: str = r.channel
        self.level: str = str(r.level)
        self.status: str = str(r.status)
        self.tier: int | None = r.tier
        self.urgency: int = r.urgency
        self.plan_rank: int = r.plan_rank
        self.arrived_raw: Any = r.arrived_at
        arrived = parse_utc(r.arrived_at)
        assert arrived is not None
        self.arrived_at: datetime = arrived
        self.first_response_at: datetime | None = parse_utc(r.first_response_at)
        self.assignee_id: Any = r.assignee_id
        self.assignee_name: str | None = r.assignee_name
        self.organisation_id: Any = r.organisation_id
        self.organisation_name: str | None = r.organisation_name
        self.plan_id: uuid.UUID | None = uuid_of(r.plan_id)
        self.requester_id: Any = r.requester_id
        self.requester_name: str | None = r.requester_name
        self.requester_email: str | None = r.requester_email
        self.requester_validated: bool = bool(r.requester_validated)
        self._queue_key: bytes | None = None
        self.inputs = SlaInputs(
            self.arrived_at, self.urgency, self.plan_id, self.first_response_at, pauses_of(pauses)
        )
        self.sla_second = -1
        self.sla_status: SlaStatus | None = None
        plan = clock.plan(self.plan_id)
        if self.requester_name is None:
            # The contact row has not arrived yet: say so, assert nothing about validation.
            requester = LOADING
        elif self.requester_validated:
            requester = f"✓ {self.requester_name}"
        else:
            requester = f"⚠ {self.requester_name} (not validated)"
        self.display: list[str] = [
            f"T{self.urgency}" if self.tier is not None else f"T{self.urgency}?",
            "",
            plan.name if plan is not None else (LOADING if self.plan_id is not None else "—"),
            self.organisation_name or LOADING,
            requester,
            self.subject,
            self.channel.capitalize(),
            self.level,
            label(self.status).capitalize(),
            self.assignee_name or "Unassigned",
            "",
        ]

    @property
    def id(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.kid)

    @property
    def queue_key(self) -> bytes:
        if self._queue_key is None:
            self._queue_key = queue_key(self.urgency, self.plan_rank, self.arrived_raw, self.kid)
        return self._queue_key

    def fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ROW_COLUMNS}

    def tooltip(self, column: int) -> str | None:
        if column == Column.TIER:
            if self.tier is not None:
                return f"Severity tier {self.tier} (assessed at triage)"
            return (
                f"Not triaged yet: the customer's stated urgency ({self.urgency}) "
                "stands in until a coordinator assesses the severity"
            )
        if column == Column.REQUESTER:
            if self.requester_name is None:
                return (
                    "The requester's details are still arriving from the server; whether "
                    "they are a validated contact is shown once they are here."
                )
            who = f"{self.requester_name} <{self.requester_email or 'no email address'}>"
            if self.requester_validated:
                return f"{who}\nA validated support contact of {self.organisation_name}."
            return (
                f"{who}\nNot a validated support contact: requests from this person are "
                "not worked until the organisation's validated contacts say how to "
                "proceed."
            )
        if column == Column.SUBJECT:
            return self.subject
        return None


def row_select(ids: Sequence[uuid.UUID]) -> Select[Any]:
    return (
        select(
            *(
                (type_coerce(col, String) if name in _RAW_ROW else col).label(name)
                for name, col in ROW_COLUMNS.items()
            )
        )
        .select_from(from_joined())
        .where(TICKETS.c.id.in_(ids))
    )


def read_pauses(
    conn: Connection, ids: Sequence[uuid.UUID]
) -> dict[bytes, list[tuple[datetime, datetime | None]]]:
    """Waiting periods of these tickets, by ticket id bytes."""
    found: dict[bytes, list[tuple[datetime, datetime | None]]] = {}
    stmt = select(WAITS.c.ticket_id, WAITS.c.started_at, WAITS.c.ended_at).where(
        WAITS.c.ticket_id.in_(ids), WAITS.c.deleted == false()
    )
    for w in conn.execute(stmt):
        found.setdefault(w.ticket_id.bytes, []).append((w.started_at, w.ended_at))
    return found


def read_rows(conn: Connection, clock: SlaClock, ids: Sequence[uuid.UUID]) -> dict[bytes, QueueRow]:
    """These tickets' rows by id bytes; a ticket no longer in the replica is absent."""
    if not clock.loaded:
        clock.load(conn)
    found: dict[bytes, QueueRow] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        pauses = read_pauses(conn, chunk)
        for r in conn.execute(row_select(chunk)):
            row = QueueRow(r, pauses.get(id_bytes(r.id), ()), clock)
            found[row.kid] = row
    return found


def row_key(row: QueueRow, query: QueueQuery, clock: SlaClock, now: datetime) -> Key:
    """The row's sort key under ``query``'s order (the same key :func:`fetch_keys` builds)."""
    if is_queue_order(query.sort_column):
        return row.queue_key
    value = sort_value(query.sort_column, row.fields(), clock, row.inputs, now)
    return (value, row.queue_key)


@dataclass(frozen=True)
class ChangedRow:
    """A changed ticket as re-read: its row, and its key when ``query`` still lists it."""

    row: QueueRow
    key: Key | None


def read_changes(
    conn: Connection, clock: SlaClock, query: QueueQuery, ids: Sequence[uuid.UUID], now: datetime
) -> dict[bytes, ChangedRow]:
    """Re-read the tickets a sync pull changed, with the query's filter evaluated in the same
    statement (SLA views: then the exact state test); a ticket gone from the replica is absent.
    """
    if not clock.loaded:
        clock.load(conn)
    wanted_state = SLA_VIEWS.get(query.view)
    matches = case((and_(*filter_clauses(query, clock, now)), 1), else_=0)
    ordered = sorted(ids, key=lambda t: t.bytes)
    found: dict[bytes, ChangedRow] = {}
    for start in range(0, len(ordered), CHUNK):
        chunk = ordered[start : start + CHUNK]
        pauses = read_pauses(conn, chunk)
        for r in conn.execute(row_select(chunk).add_columns(matches.label("matches"))):
            row = QueueRow(r, pauses.get(id_bytes(r.id), ()), clock)
            listed = bool(r.matches)
            if listed and wanted_state is not None:
                listed = clock.state(row.inputs, now) is wanted_state
            found[row.kid] = ChangedRow(row, row_key(row, query, clock, now) if listed else None)
    return found
