"""The desktop's HTTP client for the AgentDesk server: one ``requests.Session`` subclass.

Shaped like pip's ``PipSession``: a base URL, default (connect, read) timeouts, urllib3 retries
with exponential backoff mounted on the adapters, TLS verification on by default with an
optional CA bundle, a descriptive User-Agent, and typed errors instead of raw ``requests``
exceptions, so the sync engine can tell "offline, try later" from "sign in again" from "this
request is wrong".

POSTs are retried too: a push is idempotent by ``(client_id, mutation_id)`` and a pull only
reads. Only connection failures and 502/503/504 are retried, never a 4xx.

The bearer token is attached by an auth hook and exists in no log line, exception or repr:
neither ``requests`` nor ``urllib3`` logs headers, and this module logs method, path, status
and timing only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import re
import socket
import threading
import time
import uuid
import weakref
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import requests
from pydantic import BaseModel, ValidationError
from requests.__version__ import __version__ as _REQUESTS_VERSION
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.retry import Retry

from .. import __version__
from ..models import Role
from .protocol import (
    MAX_POKE_WAIT,
    PROTOCOL_HEADER,
    PROTOCOL_VERSION,
    PokeResponse,
    PullRequest,
    PullResponse,
    PushRequest,
    PushResponse,
)
from .server_url import normalise_url

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)

#: Seconds to wait for a TCP/TLS connection, and for a response once connected.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
#: A poke's read timeout is its wait plus this margin, so a healthy long-poll never times out.
POKE_MARGIN = 10.0
RETRY_STATUSES = frozenset({502, 503, 504})


# --------------------------------------------------------------------------- errors


class ApiError(Exception):
    """Any failure talking to the server. ``message`` is fit to show an agent."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        field: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field


class Offline(ApiError):
    """The server could not be reached (refused, timed out, name not resolved, cut off)."""


class TlsError(ApiError):
    """The server's certificate was not trusted: a configuration problem, not an outage."""


class Unauthorized(ApiError):
    """401: no token, or the token expired or was revoked; or a wrong password at sign-in."""


class Forbidden(ApiError):
    """403: signed in, but not allowed to do this."""


class BadRequest(ApiError):
    """Any other 4xx, carrying the server's ``{code, message, field}``."""


class ServerError(ApiError):
    """5xx (after retries), or an answer that does not follow the protocol."""


class IncompatibleVersion(ApiError):
    """426: the server does not serve this desktop's sync protocol (``code`` says which side
    is too old). Nothing was sent or changed; the outbox waits for an update."""


class ResetRequired(ApiError):
    """The server cannot serve the replica's cursor; the replica must start over from 0."""

    def __init__(self, response: PullResponse) -> None:
        super().__init__("the server asked this desktop to reload its data", code="reset")
        self.response = response


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class UserInfo:
    id: uuid.UUID
    username: str
    display_name: str
    role: Role
    tenant_id: uuid.UUID
    team_timezone: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> UserInfo:
        tz = data.get("team_timezone")
        return cls(
            id=uuid.UUID(str(data["id"])),
            username=str(data["username"]),
            display_name=str(data["display_name"]),
            role=Role(data["role"]),
            tenant_id=uuid.UUID(str(data["tenant_id"])),
            team_timezone=str(tz) if tz else None,
        )


@dataclass(frozen=True)
class LoginResult:
    token: str
    expires_at: datetime
    user: UserInfo

    def __repr__(self) -> str:
        return f"LoginResult(token=<redacted>, expires_at={self.expires_at!r}, user={self.user!r})"


class _BearerAuth(AuthBase):
    """Attaches the token. Being ``Session.auth`` also stops requests from substituting
    ``~/.netrc`` credentials for it."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self.token:
            request.headers["Authorization"] = f"Bearer {self.token}"
        return request

    def __repr__(self) -> str:
        return "<BearerAuth redacted>" if self.token else "<BearerAuth none>"


def user_agent() -> str:
    return (
        f"AgentDesk/{__version__} ({platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}) python-requests/{_REQUESTS_VERSION}"
    )


# --------------------------------------------------------------------------- interrupting


class _Interrupted(Exception):
    """Raised from inside urllib3 when a client is interrupted. Deliberately not an OSError:
    urllib3 retries those, and an interrupted client must give up at once."""


class _Connections:
    """The open connections of one client, so that another thread can cut them.

    A thread blocked reading from a server that never answers only returns when its socket
    is shut down; closing the session from another thread does not reach a connection in use.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: weakref.WeakSet[HTTPConnection] = weakref.WeakSet()
        self._interrupted = False

    def check(self) -> None:
        if self._interrupted:
            raise _Interrupted

    def opened(self, conn: HTTPConnection, sock: socket.socket) -> None:
        """Register a connection that just connected (``sock`` is not yet its ``sock``)."""
        with self._lock:
            if not self._interrupted:
                self._open.add(conn)
                return
        sock.close()  # interrupted while connecting: nobody else would close it
        raise _Interrupted

    def interrupt(self) -> None:
        with self._lock:
            self._interrupted = True
            conns = list(self._open)
        for conn in conns:
            sock = conn.sock
            if sock is not None:
                # The plain socket's shutdown, also under TLS: SSLSocket.shutdown would drop
                # its TLS object under the thread still reading from it.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def resume(self) -> None:
        with self._lock:
            self._interrupted = False


def _interruptible_pools(
    connections: _Connections,
) -> dict[str, type[HTTPConnectionPool]]:
    """Connection pools whose connections register with ``connections`` once connected."""

    class Plain(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            connections.check()
            sock = super()._new_conn()
            connections.opened(self, sock)
            return sock

    class Tls(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            connections.check()
            sock = super()._new_conn()
            connections.opened(self, sock)
            return sock

    class PlainPool(HTTPConnectionPool):
        ConnectionCls = Plain

    class TlsPool(HTTPSConnectionPool):
        ConnectionCls = Tls

    return {"http": PlainPool, "https": TlsPool}


class _InterruptibleAdapter(HTTPAdapter):
    def __init__(self, connections: _Connections, **kwargs: Any) -> None:
        self._connections = connections
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _interruptible_pools(self._connections)


# --------------------------------------------------------------------------- the session


class ApiClient(requests.Session):
    """A session bound to one server. Not shared between threads: :meth:`clone` gives a
    second one (the sync engine long-polls on its own)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        ca_bundle: str | None = None,
        verify: bool = True,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        retries: int = 3,
        backoff_factor: float = 0.25,
    ) -> None:
        super().__init__()
        parts = urlsplit(normalise_url(base_url))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"not a server address: {base_url!r} (expected http(s)://host)")
        self.base_url = normalise_url(base_url)
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.ca_bundle = ca_bundle
        self.retries = retries
        self.backoff_factor = backoff_factor
        # A CA bundle path for a team's private CA; verification is never silently off.
        self.verify = ca_bundle if ca_bundle else verify
        self.auth = _BearerAuth(token)
        self.headers["User-Agent"] = user_agent()
        self.headers["Accept"] = "application/json"
        self.headers[PROTOCOL_HEADER] = str(PROTOCOL_VERSION)
        retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=0,
            backoff_factor=backoff_factor,
            backoff_max=10,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # POST too: push is idempotent, pull reads
            raise_on_status=False,
            respect_retry_after_header=True,
        )
        self._connections = _Connections()
        adapter = _InterruptibleAdapter(self._connections, max_retries=retry)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    # ----------------------------------------------------------------- token

    @property
    def token(self) -> str | None:
        auth = self.auth
        return auth.token if isinstance(auth, _BearerAuth) else None

    @token.setter
    def token(self, value: str | None) -> None:
        self.auth = _BearerAuth(value)

    @property
    def signed_in(self) -> bool:
        return self.token is not None

    def clone(self) -> ApiClient:
        """Another session with the same server, settings and token."""
        return ApiClient(
            self.base_url,
            token=self.token,
            ca_bundle=self.ca_bundle,
            verify=bool(self.verify),
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            retries=self.retries,
            backoff_factor=self.backoff_factor,
        )

    def interrupt(self) -> None:
        """Make this client's requests fail now with :class:`Offline`, including one blocked on
        another thread waiting for a server that does not answer, and every request made
        until :meth:`resume`. Thread-safe: quitting calls it so as not to wait out a timeout."""
        self._connections.interrupt()

    def resume(self) -> None:
        """Undo :meth:`interrupt`: requests go out again."""
        self._connections.resume()

    def __repr__(self) -> str:
        state = "signed in" if self.signed_in else "signed out"
        return f"<ApiClient {self.base_url} ({state}; token redacted)>"

    # ----------------------------------------------------------------- plumbing

    def request(  # type: ignore[override]
        self, method: str, url: str, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Resolve paths against the base URL and apply the default timeouts."""
        self._connections.check()
        if not url.startswith(("http://", "https://")):
            url = f"{self.base_url}/{url.lstrip('/')}"
        kwargs.setdefault("timeout", (self.connect_timeout, self.read_timeout))
        return super().request(method, url, *args, **kwargs)

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, Any] | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> requests.Response:
        kwargs: dict[str, Any] = {"params": params}
        if body is not None:
            kwargs["data"] = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
        if timeout is not None:
            kwargs["timeout"] = timeout
        started = time.monotonic()
        try:
            response = self.request(method, path, **kwargs)
        except _Interrupted:
            raise Offline(f"stopped talking to {self.base_url}") from None
        except requests.exceptions.SSLError as exc:
            raise TlsError(f"the server's certificate is not trusted: {_reason(exc)}") from None
        except (
            requests.ConnectionError,
            requests.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise Offline(f"cannot reach {self.base_url}: {_reason(exc)}") from None
        except requests.RequestException as exc:
            raise ApiError(f"request to {self.base_url} failed: {_reason(exc)}") from None
        log.debug(
            "%s %s -> %d (%.0f ms)",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        if response.status_code >= 400:
            raise _error_for(response)
        return response

    @staticmethod
    def _parse(response: requests.Response, model: type[M]) -> M:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ServerError(
                f"the server's answer does not follow the protocol ({exc.error_count()} "
                "problem(s)); is it a different AgentDesk version?",
                status=response.status_code,
                code="bad_response",
            ) from None

    # ----------------------------------------------------------------- API

    def login(self, username: str, password: str) -> LoginResult:
        """Sign in; the session keeps the token. The password is sent once and kept nowhere."""
        response = self._call(
            "POST", "/api/v1/login", body={"username": username, "password": password}
        )
        try:
            data = response.json()
            result = LoginResult(
                token=str(data["token"]),
                expires_at=datetime.fromisoformat(str(data["expires_at"])),
                user=UserInfo.from_json(data["user"]),
            )
        except (ValueError, KeyError, TypeError):
            raise ServerError(
                "the server's sign-in answer is malformed", code="bad_response"
            ) from None
        self.token = result.token
        return result

    def logout(self) -> None:
        """Revoke the token on the server; it is forgotten here whatever happens."""
        try:
            if self.token:
                self._call("POST", "/api/v1/logout")
        finally:
            self.token = None

    def time_statement(self, org: str, start: date, end: date, fmt: str) -> requests.Response:
        """One organisation's time statement as the server renders it (CSV or PDF bytes in
        ``content``; the billed and closing minutes in ``X-Statement-*`` headers)."""
        return self._call(
            "GET",
            "/api/v1/reports/time",
            params={"org": org, "from": start.isoformat(), "to": end.isoformat(), "format": fmt},
            timeout=(self.connect_timeout, max(self.read_timeout, 120.0)),
        )

    def me(self) -> UserInfo:
        """Who the token belongs to: checks a stored token at start-up."""
        response = self._call("GET", "/api/v1/me")
        try:
            return UserInfo.from_json(response.json())
        except (ValueError, KeyError, TypeError):
            raise ServerError("the server's answer is malformed", code="bad_response") from None

    def push(self, request: PushRequest) -> PushResponse:
        response = self._call("POST", "/api/v1/sync/push", body=request.model_dump(mode="json"))
        return self._parse(response, PushResponse)

    def pull(self, request: PullRequest) -> PullResponse:
        """One page of changes; :class:`ResetRequired` when the server says start over."""
        response = self._call("POST", "/api/v1/sync/pull", body=request.model_dump(mode="json"))
        page = self._parse(response, PullResponse)
        if page.reset:
            raise ResetRequired(page)
        return page

    def poke(self, cursor: int, wait: float = MAX_POKE_WAIT) -> PokeResponse:
        """Long-poll until the team's version passes ``cursor`` or ``wait`` seconds pass."""
        wait = max(0.0, min(wait, MAX_POKE_WAIT))
        response = self._call(
            "GET",
            "/api/v1/sync/poke",
            params={"cursor": cursor, "wait": wait},
            timeout=(self.connect_timeout, wait + POKE_MARGIN),
        )
        return self._parse(response, PokeResponse)


# --------------------------------------------------------------------------- helpers


def _reason(exc: BaseException) -> str:
    """The innermost readable cause ("Connection refused"), without URLs or headers."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    text = type(exc).__name__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        reason = getattr(cause, "reason", None)
        if isinstance(reason, BaseException):
            cause = reason
            continue
        if cause.args and isinstance(cause.args[0], BaseException):
            cause = cause.args[0]
            continue
        break
    if cause is not None:
        message = str(cause)
        # urllib3 prefixes "HTTPConnection(host='h', port=80): " (the URL is said already).
        message = re.sub(r"^\w*Connection(?:Pool)?\([^)]*\): ", "", message)
        text = message or type(cause).__name__
    return text


def _error_for(response: requests.Response) -> ApiError:
    status = response.status_code
    code: str | None = None
    field: str | None = None
    message = response.reason or f"HTTP {status}"
    try:
        error = response.json().get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = str(error.get("message") or message)
            field = error.get("field")
    except (ValueError, AttributeError):
        pass
    kind: type[ApiError]
    if status == 401:
        kind = Unauthorized
    elif status == 403:
        kind = Forbidden
    elif status == 426:
        kind = IncompatibleVersion
    elif status >= 500:
        kind = ServerError
    else:
        kind = BadRequest
    return kind(message, status=status, code=code, field=field)
