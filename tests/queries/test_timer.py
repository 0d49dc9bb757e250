"""The timer's rules that need no replica nor Qt: what is wrong with a manual entry."""

from __future__ import annotations

from datetime import datetime, timedelta

from agentdesk.queries.timer import entry_problem


def test_entry_problems_in_words() -> None:
    now = datetime.fromisoformat("2026-03-03T15:00:00+00:00")
    hour = timedelta(hours=1)
    assert entry_problem(now - hour, now, now) is None
    assert entry_problem(now + hour, now + 2 * hour, now) == (
        "The start is in the future: record time once it has been worked."
    )
