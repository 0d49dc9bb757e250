"""Who corrected or voided recorded time, when and why: the history the ledger keeps.

The ledger is append-only: a correction is a new entry that voids an earlier one, a void a
zero-length entry that does (``voids_id`` on both). The statement and the timesheet list only
the live entries, so this reads the other side, for the customer ("this was corrected, by whom,
why") and for the consultant ("my entry was changed"). ``recorded_by_id`` names whoever wrote
the correcting entry (often a lead, not the person whose time it is); entries from before that
column existed fall back to the person.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ..models import TimeEntry, User

__all__ = ["Correction", "read_corrections"]

#: A statement or a timesheet lists at most this many corrections (newest first beyond it is
#: not useful on paper; the ledger still has every one).
MAX_CORRECTIONS = 500


@dataclass(frozen=True)
class Correction:
    """One voided entry and what replaced it (nothing, for a void)."""

    voided_id: uuid.UUID
    organisation_id: uuid.UUID
    person_id: uuid.UUID
    person: str
    started_at: datetime
    """The voided entry's start and end, as first recorded."""
    ended_at: datetime
    replacement_started_at: datetime | None
    """The correcting entry's times; None when the entry was voided without a replacement."""
    replacement_ended_at: datetime | None
    by: str
    """Who made the correction ("" for corrections older than that record)."""
    at: datetime
    why: str

    @property
    def minutes(self) -> int:
        return _ceil_minutes(self.ended_at - self.started_at)

    @property
    def replacement_minutes(self) -> int | None:
        if self.replacement_started_at is None or self.replacement_ended_at is None:
            return None
        return _ceil_minutes(self.replacement_ended_at - self.replacement_started_at)

    @property
    def text(self) -> str:
        """One sentence for a timesheet row or a statement line."""
        now = (
            "voided"
            if self.replacement_minutes is None
            else f"corrected to {self.replacement_minutes} min"
        )
        by = f" by {self.by}" if self.by else ""
        return f"{self.minutes} min {now}{by} on {self.at:%Y-%m-%d}: {self.why}"


def _ceil_minutes(span: timedelta) -> int:
    return -(-int(span.total_seconds()) // 60)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def read_corrections(
    session: Session,
    *,
    since: datetime,
    until: datetime,
    tz: str = "UTC",
    org_id: uuid.UUID | None = None,
    person_id: uuid.UUID | None = None,
) -> tuple[Correction, ...]:
    """Corrections and voids of entries that started in [since, until), oldest entry first,
    with times in the team's zone ``tz`` (as the timesheet and the statement show them).

    One query over the indexed ``voids_id`` (the correcting entry joined to the voided one).
    The people are outer joins, so SQLite looks them up only for the corrections found: as an
    inner join it looked up the person of every entry of the window first (a year's statement:
    20,000 look-ups for no correction, 15 -> 9 ms; docs/performance.md).
    """
    zone = ZoneInfo(tz)

    def local(value: datetime) -> datetime:
        return _aware(value).astimezone(zone)

    fix, old = aliased(TimeEntry), aliased(TimeEntry)
    person, author = aliased(User), aliased(User)
    query = (
        select(
            old.id,
            old.organisation_id,
            old.person_id,
            person.display_name,
            old.started_at,
            old.ended_at,
            fix.source,
            fix.started_at,
            fix.ended_at,
            author.display_name,
            fix.created_at,
            fix.note,
        )
        .join(old, old.id == fix.voids_id)
        .outerjoin(person, person.id == old.person_id)
        .outerjoin(author, author.id == fix.recorded_by_id)
        .where(
            fix.deleted.is_(False),
            old.deleted.is_(False),
            old.started_at >= since,
            old.started_at < until,
        )
        .order_by(old.started_at, fix.created_at)
        .limit(MAX_CORRECTIONS)
    )
    if org_id is not None:
        query = query.where(old.organisation_id == org_id)
    if person_id is not None:
        query = query.where(old.person_id == person_id)
    return tuple(
        Correction(
            voided_id=vid,
            organisation_id=org,
            person_id=pid,
            person=pname or "someone",
            started_at=local(start),
            ended_at=local(end),
            replacement_started_at=None if source == "void" else local(fstart),
            replacement_ended_at=None if source == "void" else local(fend),
            by=by or "",
            at=local(at),
            why=why,
        )
        for (
            vid,
            org,
            pid,
            pname,
            start,
            end,
            source,
            fstart,
            fend,
            by,
            at,
            why,
        ) in session.execute(query)
    )
