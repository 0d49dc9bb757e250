"""The outbox is written by the server's push, in the transaction of the change that owes the
message: the right kind, recipients and words for each change, once, and never by a desktop
replica running the same mutators."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select

from agentdesk.models import Notification, NotificationKind, utcnow
from agentdesk.models.db import session_scope
from agentdesk.policy.intake import reference
from tests.notifications.conftest import Api, ticket_args


def _kinds(api: Api) -> list[tuple[str, list[str]]]:
    return [(n.kind.value, [d.email for d in ds]) for n, ds in api.outbox()]


def test_intake_acknowledges_the_requester_once(api: Api) -> None:
    args = ticket_args(api.world, subject="Checkout <script>alert(1)</script> broken")
    assert api.push("agent", ("create_ticket", args))[0]["status"] == "applied"
    [(note, [delivery])] = api.outbox()
    assert note.kind is NotificationKind.ACKNOWLEDGEMENT
    assert delivery.email == "ann@globex.test"
    assert delivery.status.value == "queued"
    ref = reference(args["ticket_id"])
    assert ref in note.subject
    assert "\n" not in note.subject
    assert "A Support Coordinator reviews it" in note.body_text
    assert "first response within 30 business minutes" in note.body_text  # tier 1, Standard
    # Customer text is escaped in the HTML body, kept as typed in the plain one.
    assert "<script>" not in note.body_html
    assert "&lt;script&gt;" in note.body_html
    assert "<script>alert(1)</script>" in note.body_text
    assert delivery.message_id.startswith("<")
    assert delivery.message_id.endswith(">")


def test_non_validated_requester_is_redirected_and_validated_contacts_asked(api: Api) -> None:
    api.push("agent", ("create_ticket", ticket_args(api.world, who="cy")))
    got = dict(_kinds(api))
    assert set(got) == {"redirect_contacts", "redirect_requester"}  # no acknowledgement
    assert got["redirect_contacts"] == ["ann@globex.test", "bo@globex.test"]
    assert got["redirect_requester"] == ["cy@globex.test"]
    notes = {n.kind.value: n for n, _ in api.outbox()}
    assert "Cy (cy@globex.test), who is not a validated support contact" in (
        notes["redirect_contacts"].body_text
    )
    assert "Ann and Bo" in notes["redirect_requester"].body_text


def test_first_assignment_tells_who_has_it_once(api: Api) -> None:
    w = api.world
    args = ticket_args(w)
    tid = args["ticket_id"]
    agent, agent2 = str(w.users["agent"]), str(w.users["agent2"])
    api.push(
        "coordinator", ("create_ticket", args), ("triage_ticket", {"ticket_id": tid, "tier": 2})
    )
    results = api.push(
        "coordinator",
        ("assign_ticket", {"ticket_id": tid, "assignee_id": agent, "expected_assignee_id": None}),
        ("assign_ticket", {"ticket_id": tid, "assignee_id": None, "expected_assignee_id": agent}),
        ("assign_ticket", {"ticket_id": tid, "assignee_id": agent2, "expected_assignee_id": None}),
    )
    assert [r["status"] for r in results] == ["applied"] * 3
    api.push(
        "coordinator",
        ("assign_ticket", {"ticket_id": tid, "assignee_id": None, "expected_assignee_id": agent2}),
        ("assign_ticket", {"ticket_id": tid, "assignee_id": agent, "expected_assignee_id": None}),
    )
    kinds = [k for k, _ in _kinds(api)]
    assert kinds == ["acknowledgement", "assignment"]
    assignment = api.outbox()[1][0]
    assert "Agent from Acme Support has your request" in assignment.body_text
    assert "tier 2" in assignment.body_text
    assert "4 business hours" in assignment.body_text


def test_replies_charges_waiting_and_resolution_reach_the_requester(api: Api) -> None:
    w = api.world
    args = ticket_args(w)
    tid = args["ticket_id"]
    agent = str(w.users["agent"])
    api.push(
        "coordinator",
        ("create_ticket", args),
        ("triage_ticket", {"ticket_id": tid, "tier": 3}),
        ("assign_ticket", {"ticket_id": tid, "assignee_id": agent, "expected_assignee_id": None}),
    )
    api.push(
        "agent",
        ("tell_customer", {"ticket_id": tid, "message": "I have it; I will call you at 3."}),
        ("add_note", {"ticket_id": tid, "body": "internal: looks like the CDN"}),
        (
            "set_extra_charges",
            {
                "ticket_id": tid,
                "applies": True,
                "estimate": "150.00",
                "note": "A custom checkout template is outside the plan.",
            },
        ),
        (
            "change_status",
            {
                "ticket_id": tid,
                "status": "waiting_on_customer",
                "note": "Which browser do your customers use?",
            },
        ),
        ("change_status", {"ticket_id": tid, "status": "in_progress"}),
        ("change_status", {"ticket_id": tid, "status": "resolved", "note": "CDN purged."}),
    )
    got = _kinds(api)
    assert [k for k, _ in got] == [
        "acknowledgement",
        "assignment",
        "reply",
        "extra_charges",
        "waiting_on_customer",
        "resolution",
    ]
    assert all(emails == ["ann@globex.test"] for _, emails in got)
    bodies = {n.kind.value: n.body_text for n, _ in api.outbox()}
    assert "I will call you at 3." in bodies["reply"]
    assert "internal" not in "".join(bodies.values())
    assert "estimate: 150.00" in bodies["extra_charges"]
    assert "Which browser" in bodies["waiting_on_customer"]
    assert "is completed" in bodies["resolution"]
    assert "CDN purged." in bodies["resolution"]


def test_late_cancellation_notifies_the_validated_contacts(api: Api) -> None:
    w = api.world
    appt = str(uuid.uuid4())
    starts = utcnow() + timedelta(hours=3)
    api.push(
        "consultant",
        (
            "schedule_appointment",
            {
                "appointment_id": appt,
                "organisation_id": str(w.orgs["globex"]),
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=1)).isoformat(),
            },
        ),
    )
    assert _kinds(api) == []
    api.push("consultant", ("cancel_appointment", {"appointment_id": appt}))
    [(kind, emails)] = _kinds(api)
    assert kind == "late_cancellation"
    assert emails == ["ann@globex.test", "bo@globex.test"]


def test_refused_mutations_owe_nothing_and_a_replayed_group_owes_once(api: Api) -> None:
    w = api.world
    good, dup = ticket_args(w), ticket_args(w)
    dup["ticket_id"] = good["ticket_id"]
    results = api.push(
        "agent",
        ("create_ticket", good),
        ("create_ticket", dup),
        ("create_ticket", ticket_args(w, subject="Second")),
    )
    assert [r["status"] for r in results] == ["applied", "rejected", "applied"]
    assert [k for k, _ in _kinds(api)] == ["acknowledgement", "acknowledgement"]


def test_the_desktop_replica_running_the_same_mutators_queues_nothing(api: Api) -> None:
    """Mutators run on desktops too: only the server's push writes the outbox."""
    w = api.world
    w.run("agent", "create_ticket", **ticket_args(w))
    with session_scope(w.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Notification)) == 0
