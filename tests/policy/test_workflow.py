"""The ticket workflow (seed 002) and seed 003's redirect."""

from __future__ import annotations

import pytest

from agentdesk.policy import workflow as wf
from agentdesk.policy.errors import PolicyError


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (wf.NEW, wf.TRIAGED),
        (wf.TRIAGED, wf.IN_PROGRESS),
        (wf.IN_PROGRESS, wf.WAITING_ON_CUSTOMER),
        (wf.WAITING_ON_CUSTOMER, wf.IN_PROGRESS),
        (wf.IN_PROGRESS, wf.RESOLVED),
        (wf.RESOLVED, wf.CLOSED),
        (wf.RESOLVED, wf.IN_PROGRESS),
        (wf.NEW, wf.REDIRECTED),
        (wf.REDIRECTED, wf.NEW),
    ],
)
def test_the_seed_workflow_is_allowed(current: str, target: str) -> None:
    assert wf.can_transition(current, target)
    assert wf.transition_refusal(current, target) is None
    wf.require_transition(current, target)


@pytest.mark.parametrize(
    ("current", "target", "words"),
    [
        (wf.NEW, wf.IN_PROGRESS, "not been triaged"),
        (wf.NEW, wf.RESOLVED, "not been triaged"),
        (wf.CLOSED, wf.IN_PROGRESS, "closed"),
        (wf.REDIRECTED, wf.IN_PROGRESS, "validated contacts"),
        (wf.IN_PROGRESS, wf.IN_PROGRESS, "already in progress"),
        (wf.WAITING_ON_CUSTOMER, wf.NEW, "can go to: in progress, resolved, redirected"),
    ],
)
def test_refusals_explain_themselves(current: str, target: str, words: str) -> None:
    assert not wf.can_transition(current, target)
    reason = wf.transition_refusal(current, target)
    assert reason is not None
    assert words in reason
    with pytest.raises(PolicyError) as exc:
        wf.require_transition(current, target)
    assert exc.value.field == "status"


@pytest.mark.parametrize("current", sorted(wf.OPEN_STATUSES))
def test_every_open_ticket_can_be_redirected(current: str) -> None:
    """Seed 003 (issue 15): a requester switched out mid-conversation is no longer helped,
    whatever the ticket's status; redirecting was refused once it was in progress or waiting."""
    assert wf.transition_refusal(current, wf.REDIRECTED) is None
    assert not wf.can_transition(wf.RESOLVED, wf.REDIRECTED)
    assert not wf.can_transition(wf.CLOSED, wf.REDIRECTED)


def test_closed_is_terminal_and_every_status_is_reachable_from_new() -> None:
    assert wf.TRANSITIONS[wf.CLOSED] == frozenset()
    seen, todo = {wf.NEW}, [wf.NEW]
    while todo:
        for nxt in wf.TRANSITIONS[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    assert seen == set(wf.STATUSES)


def test_unknown_status_names_the_field() -> None:
    with pytest.raises(PolicyError) as exc:
        wf.can_transition("open", wf.NEW)
    assert exc.value.field == "status"
    with pytest.raises(PolicyError) as exc:
        wf.can_transition(wf.NEW, "done")
    assert exc.value.field == "target"


def test_model_statuses_match_the_workflow() -> None:
    from agentdesk.models import TicketStatus

    assert {s.value for s in TicketStatus} == set(wf.STATUSES)
