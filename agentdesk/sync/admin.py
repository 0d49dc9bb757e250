"""The admin screens' calls to the server: plans, calendars, organisations and people.

The desktop never writes these tables itself: each change goes through the server's REST API
(``agentdesk/server/routes/``), so the same rules judge it as for any other client, a refusal
names the field (``ApiError.field``) and nothing is half-saved (each call is one transaction on
the server). The change then reaches every desktop, this one included, by the next pull.

Qt-free functions over the sync client's signed-in session; the UI runs them on a worker.
"""

from __future__ import annotations

import uuid
from typing import Any

from .client import ApiClient

__all__ = [
    "create_user",
    "list_calendars",
    "list_organisations",
    "list_plans",
    "list_users",
    "save_calendar",
    "save_plan",
    "update_organisation",
    "update_user",
]


def _json(client: ApiClient, method: str, path: str, body: Any = None) -> Any:
    return client._call(method, f"/api/v1/{path}", body=body).json()


def list_calendars(client: ApiClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _json(client, "GET", "calendars")
    return result


def save_calendar(client: ApiClient, calendar_id: uuid.UUID | None,
                  body: dict[str, Any]) -> dict[str, Any]:
    """Create (no id) or replace a calendar: name, tz, hours, holidays, overrides, country."""
    if calendar_id is None:
        created: dict[str, Any] = _json(client, "POST", "calendars", body)
        return created
    replaced: dict[str, Any] = _json(client, "PUT", f"calendars/{calendar_id}", body)
    return replaced


def list_plans(client: ApiClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _json(client, "GET", "plans")
    return result


def save_plan(client: ApiClient, plan_id: uuid.UUID | None,
              body: dict[str, Any]) -> dict[str, Any]:
    if plan_id is None:
        created: dict[str, Any] = _json(client, "POST", "plans", body)
        return created
    replaced: dict[str, Any] = _json(client, "PUT", f"plans/{plan_id}", body)
    return replaced


def list_organisations(client: ApiClient, query: str = "", limit: int = 100
                       ) -> list[dict[str, Any]]:
    params = f"?limit={limit}" + (f"&query={query}" if query else "")
    result: list[dict[str, Any]] = _json(client, "GET", f"organisations{params}")
    return result


def update_organisation(client: ApiClient, organisation_id: uuid.UUID,
                        changes: dict[str, Any]) -> dict[str, Any]:
    """Plan, membership, review counts (seed 000's bonus): only the fields given change."""
    result: dict[str, Any] = _json(client, "PATCH", f"organisations/{organisation_id}", changes)
    return result


def list_users(client: ApiClient) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = _json(client, "GET", "users")
    return result


def create_user(client: ApiClient, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = _json(client, "POST", "users", body)
    return result


def update_user(client: ApiClient, user_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any]:
    """Role, display name, active (deactivating revokes the member's sign-ins)."""
    result: dict[str, Any] = _json(client, "PATCH", f"users/{user_id}", changes)
    return result
