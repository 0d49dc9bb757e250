"""Requests at the door: the portal, the intake API and their shared checks (``service``)."""

from __future__ import annotations

from fastapi import FastAPI


def register(app: FastAPI) -> None:
    """Mount the intake API, the API-key routes and the portal on the server's app."""
    from ..notifications.routes import router as notifications_router
    from .api import keys_router, requests_router
    from .portal import mount_portal

    app.include_router(keys_router, prefix="/api/v1")
    app.include_router(requests_router, prefix="/api/v1")
    app.include_router(notifications_router, prefix="/api/v1")
    mount_portal(app, app.state.agentdesk)
