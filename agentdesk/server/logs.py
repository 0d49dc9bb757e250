"""The server's logs: one line per event, JSON when stderr is not a terminal (a service manager,
a container, a file: something that parses), readable text when a person watches, and a
request id on every line logged while a request is handled.

What a line may hold: method, path (never the query string), status, timing, client address,
ids, counts, constraint names. What it never holds: passwords, tokens (the Authorization header
is never read here; token-like query parameters are masked should any other logger print a
URL), request or response bodies, and so no customer message text. Database errors are logged
by their first line only: PostgreSQL's DETAIL line quotes the offending values.

The request id comes from the client's (or proxy's) ``X-Request-ID`` when it is a short token of
safe characters, else it is made here; either way it is returned in the response's
``X-Request-ID`` header, so a support ticket quoting it finds the server's lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
_SENSITIVE_QUERY = re.compile(
    r"(?i)([?&](?:token|access_token|password|passwd|secret|api_key|key)=)[^&\s\"]*"
)
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
#: Fields a record may carry (``extra=``) that the JSON line keeps, in this order.
FIELDS = ("method", "path", "status", "duration_ms", "client", "bytes")

request_id: ContextVar[str | None] = ContextVar("agentdesk_request_id", default=None)
access_log = logging.getLogger("agentdesk.access")
log = logging.getLogger("agentdesk.server")


def new_request_id() -> str:
    return uuid.uuid4().hex[:16]


class RequestIdMiddleware:
    """Outermost ASGI middleware: sets the request id for everything the request runs (sync
    handlers on worker threads inherit it: AnyIO copies the context), returns it as a header,
    and writes the access line when the response has been sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _SAFE_ID.fullmatch(incoming) else new_request_id()
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        sent = 0
        began = finished = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, sent, began, finished
            if message["type"] == "http.response.start":
                began = True
                status = int(message["status"])
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.lower().encode(), rid.encode()))
                message = {**message, "headers": headers}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
                finished = not message.get("more_body", False)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            # Logged here, inside the request's context, so the traceback carries its id
            # (uvicorn would log it after the context is gone); answered like any other error.
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if finished:
                return  # the framework already answered 500; it is logged, with the id
            if began:
                raise  # half a response: let the server close the connection
            body = json.dumps(
                {
                    "error": {
                        "code": "internal",
                        "field": None,
                        "message": f"internal error (request {rid})",
                    }
                }
            ).encode()
            await send_with_id(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send_with_id({"type": "http.response.body", "body": body})
        finally:
            client = scope.get("client")
            access_log.info(
                "%s %s %d",
                scope.get("method", "?"),
                scope.get("path", "?"),
                status,
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    "client": client[0] if client else None,
                    "bytes": sent,
                },
            )
            request_id.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            try:
                return str(value.decode("latin-1"))
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
                return None
    return None


class RequestIdFilter(logging.Filter):
    """Stamps every record with the current request id (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get() or "-"
        return True


class RedactSecrets(logging.Filter):
    """Masks token/password-like query parameters and bearer tokens in any logger's line (the
    access logs of other servers print full request lines; a client that ever put a token in a
    URL must not leak it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def redact(text: str) -> str:
    return _BEARER.sub(r"\1***", _SENSITIVE_QUERY.sub(r"\1***", text))


def db_error(exc: BaseException) -> str:
    """A database error fit for a log line: its first line (PostgreSQL's DETAIL line, which
    quotes the offending row's values, is left out)."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return text.splitlines()[0] if text else type(orig).__name__


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``request_id``, the access fields when present, and ``exc`` for a traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


LOG_FORMATS = ("auto", "json", "text")


def resolve_format(choice: str, stream: Any = None) -> str:
    """``auto`` is text on a terminal, JSON otherwise."""
    if choice != "auto":
        return choice
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "text" if callable(isatty) and isatty() else "json"


def logging_config(level: str, fmt: str = "auto") -> dict[str, Any]:
    """Everything to stderr in one format; uvicorn's own access log is replaced by ours."""
    upper = level.upper()
    handler = ["stderr"]
    formatter = "json" if resolve_format(fmt) == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactSecrets}, "request_id": {"()": RequestIdFilter}},
        "formatters": {
            "text": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"},
            "json": {"()": JsonFormatter},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": formatter,
                "filters": ["redact", "request_id"],
            }
        },
        "loggers": {
            "agentdesk": {"handlers": handler, "level": upper, "propagate": False},
            "uvicorn": {"handlers": handler, "level": upper, "propagate": False},
            "uvicorn.error": {"level": upper},
            "uvicorn.access": {"handlers": handler, "level": upper, "propagate": False},
        },
    }
