"""An agent's day at a glance (issue 15): handled today, first responses in time, at risk.

Umbrella's Premium plan answers a stated tier 2 within 2 business hours, on New York office
hours (08:00-17:00 ET); at risk in its last quarter (30 minutes). NOW is Friday 12:00 ET.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from agentdesk.queries.agent_stats import AgentStats, agent_stats
from tests.queries.conftest import NOW, Ledger

#: The agent's midnight (New York), the start of "today".
MIDNIGHT = datetime(2026, 11, 20, 5, 0, tzinfo=UTC)


def _ticket(ledger: Ledger, arrived: datetime, *, take: bool = True) -> uuid.UUID:
    ledger.at(arrived)
    ticket = ledger.ticket(
        organisation_id=str(ledger.world.orgs["umbrella"]),
        requester_id=str(ledger.world.contacts["fay"]),
        stated_urgency=2,
    )
    if take:
        ledger.world.run(
            "agent",
            "assign_ticket",
            ticket_id=str(ticket),
            assignee_id=str(ledger.user("agent")),
            expected_assignee_id=None,
        )
    return ticket


def _reply(ledger: Ledger, ticket: uuid.UUID, at: datetime) -> None:
    ledger.at(at).world.run(
        "agent", "add_note", ticket_id=str(ticket), kind="reply", body="Looking into it now."
    )


def test_the_agents_day_counts_what_they_did_and_what_is_at_risk(ledger: Ledger) -> None:
    # Yesterday's work is not today's.
    yesterday = _ticket(ledger, NOW - timedelta(days=1, hours=3))
    _reply(ledger, yesterday, NOW - timedelta(days=1, hours=2))
    _ticket(ledger, datetime(2026, 11, 20, 13, 0, tzinfo=UTC))  # overdue: due 15:00 UTC
    _ticket(ledger, datetime(2026, 11, 20, 15, 20, tzinfo=UTC))  # at risk: 20 min left
    in_time = _ticket(ledger, datetime(2026, 11, 20, 16, 0, tzinfo=UTC))
    _reply(ledger, in_time, datetime(2026, 11, 20, 16, 30, tzinfo=UTC))
    late = _ticket(ledger, datetime(2026, 11, 20, 13, 0, tzinfo=UTC))
    _reply(ledger, late, datetime(2026, 11, 20, 15, 30, tzinfo=UTC))
    # Someone else's risk is not in my queue.
    _ticket(ledger, datetime(2026, 11, 20, 15, 20, tzinfo=UTC), take=False)

    with ledger.session() as s:
        mine = agent_stats(s, ledger.user("agent"), NOW, MIDNIGHT)
        theirs = agent_stats(s, ledger.user("agent2"), NOW, MIDNIGHT)
    assert mine == AgentStats(
        handled_today=4, responses_today=2, responses_met=1, at_risk=1, overdue=1
    )
    assert mine.text() == ("Today: 4 handled · 1/2 first responses in time · 1 at risk · 1 overdue")
    assert theirs == AgentStats(0, 0, 0, 0, 0)
    assert theirs.text() == "Today: 0 handled · nothing at risk in my queue"
