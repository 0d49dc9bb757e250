"""The API's routers, mounted under ``/api/v1``.

Every router declares the shared error answers (so the published OpenAPI schema lists them) and,
except for sign-in, the bearer scheme. A new router must be added here, and its routes to the
authorisation table in ``tests/server/test_authorisation.py``, whose test fails until they are.
"""

from __future__ import annotations

from fastapi import FastAPI, Security

from ..schemas import ERROR_RESPONSES
from . import auth, calendars, organisations, plans, reports, users
from ._common import bearer_scheme


def register_routes(app: FastAPI) -> None:
    app.include_router(auth.router, prefix="/api/v1", responses=ERROR_RESPONSES)
    for module in (users, calendars, plans, organisations, reports):
        app.include_router(
            module.router,
            prefix="/api/v1",
            responses=ERROR_RESPONSES,
            dependencies=[Security(bearer_scheme)],
        )
