"""The intake API over real HTTP: every check outcome at the door is kept and routed, keys are
shown once and stored hashed, and hostile input gets a clear 4xx, never a 500."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import func, select

from agentdesk.models import (
    ApiKey,
    Contact,
    Notification,
    NotificationDelivery,
    Organisation,
    Ticket,
    TicketStatus,
)
from agentdesk.models.db import session_scope
from agentdesk.policy.intake import reference
from agentdesk.server.intake.service import HOLDING_ORGANISATION
from tests.intake.conftest import Door


def _sent(door: Door, ticket_id: str) -> dict[str, list[str]]:
    with session_scope(door.world.sessions) as s:
        rows = s.execute(
            select(Notification.kind, NotificationDelivery.email)
            .join(NotificationDelivery, NotificationDelivery.notification_id == Notification.id)
            .where(Notification.ticket_id == uuid.UUID(ticket_id))
            .order_by(NotificationDelivery.email)
        ).all()
    out: dict[str, list[str]] = {}
    for kind, email in rows:
        out.setdefault(kind.value, []).append(email)
    return out


def _checks(body: dict[str, object]) -> dict[str, bool]:
    return {c["name"]: c["passed"] for c in body["checks"]}  # type: ignore[attr-defined]


def test_a_validated_contact_is_accepted_and_acknowledged(door: Door) -> None:
    r = door.file()
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "accepted"
    assert all(_checks(body).values())
    assert body["reference"] == reference(body["ticket_id"])
    assert "30 business minutes" in body["expectation"]
    assert body["next_steps"][0].startswith("A Support Coordinator reviews")
    with session_scope(door.world.sessions) as s:
        ticket = s.get(Ticket, uuid.UUID(body["ticket_id"]))
        assert ticket is not None
        assert ticket.status is TicketStatus.NEW
        assert ticket.channel == "portal"
    assert _sent(door, body["ticket_id"]) == {"acknowledgement": ["ann@globex.test"]}


def test_a_non_validated_contact_is_redirected_and_the_validated_ones_asked(door: Door) -> None:
    body = door.file(email="CY@globex.test").json()  # case-insensitive match on the email
    assert body["status"] == "redirected"
    assert _checks(body)["Validated contact"] is False
    assert _checks(body)["Contact"] is True
    assert _sent(door, body["ticket_id"]) == {
        "redirect_contacts": ["ann@globex.test", "bo@globex.test"],
        "redirect_requester": ["cy@globex.test"],
    }


def test_an_unknown_sender_is_recorded_as_a_contact_then_redirected(door: Door) -> None:
    body = door.file(email="zed@globex.test", name="Zed Zo").json()
    assert body["status"] == "redirected"
    assert _checks(body)["Contact"] is False
    with session_scope(door.world.sessions) as s:
        contact = s.scalar(select(Contact).where(Contact.email == "zed@globex.test"))
        assert contact is not None
        assert contact.name == "Zed Zo"
        assert not contact.validated
    # A second request from the same address finds the recorded contact.
    again = door.file(email="zed@globex.test").json()
    assert _checks(again)["Contact"] is True


def test_a_redirect_answer_never_lists_the_validated_contacts(door: Door) -> None:
    body = door.file(email="cy@globex.test").json()
    checks = {c["name"]: c for c in body["checks"]}
    assert "validated support contacts" in checks["Validated contact"]["words"]
    assert "ann@globex.test" not in str(body)
    assert "bo@globex.test" not in str(body)


def test_a_long_address_with_no_name_is_recorded_within_the_name_column(door: Door) -> None:
    """The address stands in for a missing name; contacts.name holds 200 characters and
    PostgreSQL refuses more (once a 500)."""
    email = "z" * 230 + "@globex.test"
    r = door.file(email=email)  # no name
    assert r.status_code == 201, r.text
    with session_scope(door.world.sessions) as s:
        contact = s.scalar(select(Contact).where(Contact.email == email))
        assert contact is not None
        assert contact.name == email[:200]


def test_a_channel_not_on_the_plan_is_kept_and_flagged(door: Door) -> None:
    body = door.file(email="dee@initech.test", organisation="Initech", channel="phone").json()
    assert body["status"] == "flagged"
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["Channel"]["passed"] is False
    assert "Phone" in checks["Channel"]["words"]
    with session_scope(door.world.sessions) as s:
        assert s.get(Ticket, uuid.UUID(body["ticket_id"])) is not None


def test_over_the_allowance_goes_to_coordinators_with_the_facts(door: Door) -> None:
    for _ in range(5):  # Basic/Free: 5 conversations a calendar year (seed 000)
        assert (
            door.file(email="dee@initech.test", organisation="initech").json()["status"]
            == "accepted"
        )
    body = door.file(email="dee@initech.test", organisation="Initech").json()
    assert body["status"] == "flagged"
    checks = {c["name"]: c for c in body["checks"]}
    assert checks["Conversations left"]["passed"] is False
    assert "5" in checks["Conversations left"]["words"]
    sent = _sent(door, body["ticket_id"])
    assert sent["allowance_coordinators"] == ["coordinator@support.test"]
    assert sent["acknowledgement"] == ["dee@initech.test"]


def test_an_unknown_organisation_is_kept_under_the_holding_organisation(door: Door) -> None:
    body = door.file(organisation="Hooli", email="gavin@hooli.test").json()
    assert body["status"] == "redirected"
    assert _checks(body)["Organisation"] is False
    with session_scope(door.world.sessions) as s:
        ticket = s.get(Ticket, uuid.UUID(body["ticket_id"]))
        assert ticket is not None
        org = s.get(Organisation, ticket.organisation_id)
        assert org is not None
        assert org.name == HOLDING_ORGANISATION
        assert "Hooli" in ticket.subject


def test_keys_are_shown_once_stored_hashed_and_revocable(door: Door) -> None:
    lead = door.bearer("lead")
    listed = door.http.get(f"{door.url}/api/v1/api-keys", headers=lead, timeout=30).json()
    assert [k["name"] for k in listed] == ["Website"]
    assert "key" not in listed[0]
    with session_scope(door.world.sessions) as s:
        stored = s.scalar(select(ApiKey))
        assert stored is not None
        assert door.key not in (stored.key_hash, stored.prefix)
    assert (
        door.http.post(
            f"{door.url}/api/v1/api-keys",
            json={"name": "x"},
            headers=door.bearer("agent"),
            timeout=30,
        ).status_code
        == 403
    )
    assert (
        door.http.post(
            f"{door.url}/api/v1/api-keys", json={"name": "Website"}, headers=lead, timeout=30
        ).status_code
        == 409
    )
    r = door.http.delete(f"{door.url}/api/v1/api-keys/{listed[0]['id']}", headers=lead, timeout=30)
    assert r.json()["revoked"] is True
    refused = door.file()
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]


def test_hostile_input_gets_clear_errors_and_changes_nothing(door: Door) -> None:
    def count() -> int:
        with session_scope(door.world.sessions) as s:
            return int(s.scalar(select(func.count()).select_from(Ticket)) or 0)

    assert door.file(key="").status_code == 401
    assert door.file(key="adk_wrong").status_code == 401
    cases: list[dict[str, object]] = [
        {"email": "ann@globex.test\r\nBcc: all@example.test"},
        {"email": "not an email"},
        {"subject": "x" * 301},
        {"subject": "two\nlines"},
        {"description": "x" * 20_001},
        {"organisation": ""},
        {"urgency": 5},
        {"urgency": "1"},
        {"channel": "fax"},
        {"surprise": True},
    ]
    for case in cases:
        r = door.file(**case)  # type: ignore[arg-type]  # none of them is named key
        assert r.status_code == 422, (case, r.text)
        assert r.json()["error"]["field"], case
    big = door.http.post(
        f"{door.url}/api/v1/requests",
        data=b"x" * 2_000_000,
        headers={"X-API-Key": door.key, "Content-Type": "application/json"},
        timeout=30,
    )
    assert big.status_code == 413
    assert count() == 0
    script = "<script>alert(1)</script>"
    r = door.file(
        subject=script, description=script, name=script, organisation=script, email="x@globex.test"
    )
    assert r.status_code == 201  # kept as typed (escaped where shown), under the holding org
    assert count() == 1


def test_a_new_request_wakes_a_waiting_desktop(door: Door) -> None:
    """The request reaches online desktops through the usual poke (then pull)."""
    agent = door.bearer("agent")
    cursor = door.http.get(
        f"{door.url}/api/v1/sync/poke", params={"cursor": 0, "wait": 0}, headers=agent, timeout=30
    ).json()["version"]
    woke: dict[str, object] = {}

    def wait() -> None:
        woke.update(
            door.http.get(
                f"{door.url}/api/v1/sync/poke",
                params={"cursor": cursor, "wait": 10},
                headers=agent,
                timeout=30,
            ).json()
        )

    waiter = threading.Thread(target=wait)
    waiter.start()
    assert door.file().status_code == 201
    waiter.join(timeout=15)
    assert woke["changed"] is True
