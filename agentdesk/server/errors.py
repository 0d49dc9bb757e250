"""One JSON error shape for every client mistake: ``{"error": {"code", "message", "field"}}``.

A client's mistake is never a 500: validation errors name the field, rule violations from the
rules engine keep their field, integrity conflicts become 409s. A database the server cannot
reach or get a connection to (down, restarting, every pooled connection busy, PostgreSQL's
``max_connections`` reached) is the server's momentary trouble, not a fault in the request: a
503 with ``Retry-After``, which the desktop's client retries with backoff (a 500 it would not).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..policy.errors import PolicyError
from .logs import db_error

log = logging.getLogger(__name__)

#: What a 503 asks a client to wait: long enough for a pooled connection to come free.
RETRY_AFTER_SECONDS = 1


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def _loc_to_field(loc: Sequence[Any]) -> str:
    # Only the leading element says where the value was; a parameter may itself be named
    # "query" (``("query", "query")``).
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    return ".".join(str(p) for p in loc) or "body"


def _field_of(error: Mapping[str, Any]) -> str:
    # Malformed JSON is located by character offset (``("body", 7)``), which names no field.
    if error.get("type") == "json_invalid":
        return "body"
    return _loc_to_field(error.get("loc", ("body",)))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.field),
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(PolicyError)
    async def _policy_error(_request: Request, exc: PolicyError) -> JSONResponse:
        return JSONResponse(error_body("invalid", exc.message, exc.field), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = _field_of(first)
        message = str(first.get("msg", "invalid value"))
        details = [{"field": _field_of(e), "message": str(e.get("msg", ""))} for e in errors]
        body = error_body("invalid", f"{field}: {message}", field)
        body["error"]["details"] = details
        return JSONResponse(body, status_code=422)

    @app.exception_handler(IntegrityError)
    async def _integrity_error(_request: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict: %s", db_error(exc))
        return JSONResponse(
            error_body(
                "conflict",
                "the change conflicts with existing data (duplicate or missing reference)",
            ),
            status_code=409,
        )

    @app.exception_handler(DataError)
    async def _data_error(request: Request, exc: DataError) -> JSONResponse:
        # A value the request validation let through but the column cannot hold (a length or
        # range the schema is stricter about): the client's input, so a 422, never a 500.
        log.warning(
            "value refused by the database for %s %s: %s",
            request.method,
            request.url.path,
            db_error(exc),
        )
        return JSONResponse(
            error_body("invalid", "a value is too long or out of range; nothing was changed"),
            status_code=422,
        )

    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        detail = db_error(exc) if isinstance(exc, OperationalError) else "connection pool timeout"
        log.warning("database unavailable for %s %s: %s", request.method, request.url.path, detail)
        return JSONResponse(
            error_body(
                "unavailable",
                "the server cannot reach its database just now; nothing "
                "was changed, try again shortly",
            ),
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # The framework's 400 is a body it could not parse (bad encoding, nesting too deep):
            # the same client mistake as malformed JSON, so the same answer.
            return JSONResponse(
                error_body("invalid", f"body: {exc.detail}", "body"), status_code=422
            )
        code = {
            401: "unauthorized",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            413: "too_large",
        }.get(exc.status_code, "error")
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )
