"""The admin REST client against a real server over HTTP: names with URL syntax in them
(``&``, ``#``, ``%``) and non-ASCII letters reach the server as typed."""

from __future__ import annotations

import uuid

import pytest

from agentdesk.sync import admin as api
from agentdesk.sync.client import ApiClient
from tests.dashboard.conftest import LeadDesk

NAMES = [
    "Ben & Jerry's Ops",
    "Unit #42 Repairs",
    "100% Uptime Ltd",
    "Ünïcode Søftware 東京",
    "a=b&limit=1#frag %20 Co",
]


def test_organisation_search_sends_names_with_url_syntax_as_typed(lead_desk: LeadDesk) -> None:
    plan = api.list_plans(lead_desk.client)[0]["id"]
    made = {
        name: api.save_organisation(lead_desk.client, None, {"name": name, "plan_id": plan})["id"]
        for name in NAMES
    }
    for name, org_id in made.items():
        found = api.list_organisations(lead_desk.client, query=name)
        assert [o["id"] for o in found] == [org_id], name
    assert api.list_organisations(lead_desk.client, query="& Jerry")[0]["id"] == made[NAMES[0]]
    assert len(api.list_organisations(lead_desk.client, limit=2)) == 2


def test_contacts_are_added_and_changed_through_the_client(lead_desk: LeadDesk) -> None:
    org = api.list_organisations(lead_desk.client)[0]
    added = api.create_contact(
        lead_desk.client,
        uuid.UUID(org["id"]),
        {"name": "Zoë Ąnn", "email": "zoe+admin@example.test"},
    )
    changed = api.update_contact(
        lead_desk.client, uuid.UUID(added["id"]), {"phone": "+44 20 7946 0000"}
    )
    assert (changed["name"], changed["phone"], changed["validated"]) == (
        "Zoë Ąnn",
        "+44 20 7946 0000",
        False,
    )
    detail = api.get_organisation(lead_desk.client, uuid.UUID(org["id"]))
    assert changed in [{k: c[k] for k in changed} for c in detail["contacts"]]


@pytest.mark.parametrize("bad", ["../users", "1 OR 1=1"])
def test_ids_that_are_not_uuids_never_reach_a_url(bad: str) -> None:
    client = ApiClient("http://127.0.0.1:9")  # never contacted: the id is refused first
    try:
        with pytest.raises(ValueError, match="badly formed"):
            api.update_contact(client, bad, {"name": "x"})  # type: ignore[arg-type]
    finally:
        client.close()
