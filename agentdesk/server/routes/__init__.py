"""The API's routers, mounted under ``/api/v1``."""

from __future__ import annotations

from fastapi import FastAPI

from . import auth


def register_routes(app: FastAPI) -> None:
    app.include_router(auth.router, prefix="/api/v1")
