"""The admin screens' calls to the server: plans, calendars, organisations, contacts and people.

The desktop never writes these tables itself: each change goes through the server's REST API
(``agentdesk/server/routes/``), so the same rules judge it as for any other client, a refusal
names the field (``ApiError.field``) and nothing is half-saved (each call is one transaction on
the server). The change then reaches every desktop, this one included, by the next pull.

Query strings are always built by ``requests`` (``params=``) and ids are UUIDs, so a name with
``&``, ``#``, ``%`` or any non-ASCII letter reaches the server as typed.

Qt-free functions over the sync client's signed-in session; the UI runs them on a worker.
"""

from __future__ import annotations

import uuid
from typing import Any

from .client import ApiClient

__all__ = [
    "create_contact",
    "create_user",
    "get_organisation",
    "list_calendars",
    "list_organisations",
    "list_plans",
    "list_users",
    "reset_password",
    "save_calendar",
    "save_organisation",
    "save_plan",
    "update_contact",
    "update_organisation",
    "update_user",
]

Row = dict[str, Any]


def _json(
    client: ApiClient,
    method: str,
    path: str,
    body: Any = None,
    params: dict[str, Any] | None = None,
) -> Any:
    return client._call(method, f"/api/v1/{path}", body=body, params=params).json()


def _list(client: ApiClient, collection: str, params: dict[str, Any] | None = None) -> list[Row]:
    rows: list[Row] = _json(client, "GET", collection, params=params)
    return rows


def _save(
    client: ApiClient, collection: str, row_id: uuid.UUID | None, body: Row, *, update: str = "PUT"
) -> Row:
    """Create (no id: POST to the collection) or change one row (``update`` on its URL)."""
    if row_id is None:
        created: Row = _json(client, "POST", collection, body)
        return created
    changed: Row = _json(client, update, f"{collection}/{uuid.UUID(str(row_id))}", body)
    return changed


def list_calendars(client: ApiClient) -> list[Row]:
    return _list(client, "calendars")


def save_calendar(client: ApiClient, calendar_id: uuid.UUID | None, body: Row) -> Row:
    """Create (no id) or replace a calendar: name, tz, hours, holidays, overrides, country."""
    return _save(client, "calendars", calendar_id, body)


def list_plans(client: ApiClient) -> list[Row]:
    return _list(client, "plans")


def save_plan(client: ApiClient, plan_id: uuid.UUID | None, body: Row) -> Row:
    return _save(client, "plans", plan_id, body)


def list_organisations(client: ApiClient, query: str = "", limit: int = 100) -> list[Row]:
    """Organisations whose name contains ``query`` (any text; blank: all), by name."""
    params: dict[str, Any] = {"limit": limit}
    if query:
        params["query"] = query
    return _list(client, "organisations", params)


def get_organisation(client: ApiClient, organisation_id: uuid.UUID) -> Row:
    """One organisation with its plan, contacts, contact slots and conversation allowance."""
    found: Row = _json(client, "GET", f"organisations/{uuid.UUID(str(organisation_id))}")
    return found


def save_organisation(client: ApiClient, organisation_id: uuid.UUID | None, body: Row) -> Row:
    """Add an organisation (no id), or change the fields given (name, plan, review counts)."""
    return _save(client, "organisations", organisation_id, body, update="PATCH")


def update_organisation(client: ApiClient, organisation_id: uuid.UUID, changes: Row) -> Row:
    """Plan, membership, review counts (seed 000's bonus): only the fields given change."""
    return save_organisation(client, organisation_id, changes)


def create_contact(client: ApiClient, organisation_id: uuid.UUID, body: Row) -> Row:
    """A new, not yet validated contact (validating takes an allotment slot: a sync mutation)."""
    return _save(client, f"organisations/{uuid.UUID(str(organisation_id))}/contacts", None, body)


def update_contact(client: ApiClient, contact_id: uuid.UUID, changes: Row) -> Row:
    """A contact's name, email or phone: only the fields given change."""
    return _save(client, "contacts", contact_id, changes, update="PATCH")


def list_users(client: ApiClient) -> list[Row]:
    return _list(client, "users")


def create_user(client: ApiClient, body: Row) -> Row:
    return _save(client, "users", None, body)


def update_user(client: ApiClient, user_id: uuid.UUID, changes: Row) -> Row:
    """Role, display name, active (deactivating revokes the member's sign-ins)."""
    return _save(client, "users", user_id, changes, update="PATCH")


def reset_password(client: ApiClient, user_id: uuid.UUID, password: str) -> None:
    """Give a member a new password; the server revokes their sign-ins. The password is only
    in the request body (never in a URL, a log line or a return value)."""
    client._call(
        "POST", f"/api/v1/users/{uuid.UUID(str(user_id))}/password", body={"password": password}
    )
