"""The corrections' read finds corrections first and looks people up only for them (SQLite)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from agentdesk.models.db import make_engine, make_session_factory, sqlite_url
from agentdesk.models.migrate import upgrade
from agentdesk.queries.corrections import read_corrections


def test_people_are_looked_up_after_the_corrections_are_found(tmp_path: Path) -> None:
    """A year's statement has ~20,000 entries and usually no correction: an inner join to the
    people made SQLite look up each entry's person before asking whether anything voided it."""
    engine = make_engine(sqlite_url(tmp_path / "replica.sqlite3"))
    upgrade(engine)
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "voids_id" in statement and "display_name" in statement:
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    with make_session_factory(engine)() as s:
        found = read_corrections(
            s,
            since=datetime(2026, 1, 1, tzinfo=UTC),
            until=datetime(2027, 1, 1, tzinfo=UTC),
            org_id=uuid.uuid4(),
        )
    assert found == ()
    ((statement, params),) = seen
    raw = engine.raw_connection()
    try:
        plan = [row[3] for row in raw.cursor().execute(f"EXPLAIN QUERY PLAN {statement}", params)]
    finally:
        raw.close()
    steps = [s for s in plan if s.startswith("SEARCH")]
    assert "ix_time_entries_org_started" in steps[0], plan
    assert "ix_time_entries_voids_id" in steps[1], plan  # the corrections, before any person
    assert all("users" in s and "LEFT-JOIN" in s for s in steps[2:]), plan
    engine.dispose()
