"""The template editor's calls to the server: each kind's email template, saved, reset, previewed.

Templates live on the server (``/api/v1/notifications/templates``, leads and admins): the
server renders every message, so it alone judges a template. A save or a preview of a template
that does not compile, uses a variable its kind does not have or cannot render is refused (422)
with the part it is in (``ApiError.field``: ``subject``, ``body_text`` or ``body_html``), and
nothing changes. A preview renders the draft with the server's sample data, customer text
escaped in the HTML body exactly as in a real message.

Qt-free functions over the sync client's signed-in session; the UI runs them on a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .client import ApiClient, ServerError

__all__ = [
    "Draft",
    "Preview",
    "Template",
    "list_templates",
    "preview_template",
    "reset_template",
    "save_template",
]

_PATH = "/api/v1/notifications/templates"


@dataclass(frozen=True)
class Draft:
    """A kind's three parts as a lead typed them (Jinja2; the HTML body is autoescaped)."""

    subject: str
    body_text: str
    body_html: str

    def to_json(self) -> dict[str, str]:
        return {"subject": self.subject, "body_text": self.body_text, "body_html": self.body_html}


@dataclass(frozen=True)
class Template:
    kind: str
    #: The kind's name for people, and when it is sent and to whom.
    title: str
    sent_when: str
    #: False: the built-in wording is in use.
    customised: bool
    draft: Draft
    #: The variables this kind's templates may use (``{{ name }}``).
    variables: tuple[str, ...]

    @classmethod
    def from_json(cls, data: Any) -> Template:
        try:
            return cls(
                kind=str(data["kind"]),
                title=str(data.get("title") or str(data["kind"]).replace("_", " ").capitalize()),
                sent_when=str(data.get("sent_when") or ""),
                customised=bool(data["customised"]),
                draft=Draft(str(data["subject"]), str(data["body_text"]), str(data["body_html"])),
                variables=tuple(str(v) for v in data["variables"]),
            )
        except (KeyError, TypeError) as exc:
            raise ServerError(
                f"the server's template answer is not understood ({exc})", code="bad_response"
            ) from None


@dataclass(frozen=True)
class Preview:
    kind: str
    subject: str
    body_text: str
    body_html: str

    @classmethod
    def from_json(cls, data: Any) -> Preview:
        try:
            return cls(
                kind=str(data["kind"]),
                subject=str(data["subject"]),
                body_text=str(data["body_text"]),
                body_html=str(data["body_html"]),
            )
        except (KeyError, TypeError) as exc:
            raise ServerError(
                f"the server's preview answer is not understood ({exc})", code="bad_response"
            ) from None


def _url(kind: str) -> str:
    return f"{_PATH}/{quote(kind, safe='')}"


def list_templates(client: ApiClient) -> list[Template]:
    """Every kind's template, the team's own or the built-in one, in the server's order."""
    data = client._call("GET", _PATH).json()
    if not isinstance(data, list):
        raise ServerError("the server's template list is not a list", code="bad_response")
    return [Template.from_json(row) for row in data]


def save_template(client: ApiClient, kind: str, draft: Draft) -> Template:
    """Make ``draft`` the team's template for ``kind``; the saved template as the server has it."""
    return Template.from_json(client._call("PUT", _url(kind), body=draft.to_json()).json())


def reset_template(client: ApiClient, kind: str) -> Template:
    """Go back to the built-in template for ``kind``."""
    return Template.from_json(client._call("DELETE", _url(kind)).json())


def preview_template(client: ApiClient, kind: str, draft: Draft) -> Preview:
    """``draft`` rendered with the server's sample data; nothing is saved."""
    path = f"{_url(kind)}/preview"
    return Preview.from_json(client._call("POST", path, body=draft.to_json()).json())
