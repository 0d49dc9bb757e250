"""Why an admin screen's change was not saved, in one line that names the field.

The server names the field it refused (``ApiError.field``: ``name``, ``body.subject``,
``overrides.2026-12-24``) and often begins its message with that name too; a form's own check
raises :class:`FieldError` the same way. Every admin screen says it one way: ``Not saved:``, the
field once (in people's words when the screen gives them), then the reason.
"""

from __future__ import annotations

from collections.abc import Mapping

from ...sync.client import ApiError

__all__ = ["FieldError", "refusal_text", "refused_field"]


class FieldError(Exception):
    """A form value that cannot be sent as typed; ``field`` is the API's name for it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def refused_field(exc: Exception) -> str | None:
    """The field a refusal names, without the request part (``body.subject`` -> ``subject``)."""
    field = getattr(exc, "field", None)
    if not field:
        return None
    text = str(field)
    return text[len("body.") :] if text.startswith("body.") else text


def refusal_text(exc: Exception, names: Mapping[str, str] | None = None) -> str:
    """``Not saved: <field>: <reason>``; ``names`` gives fields their on-screen names."""
    if not isinstance(exc, ApiError | FieldError):
        return f"Not saved: {exc}"
    text = exc.message if isinstance(exc, ApiError) else str(exc).split(": ", 1)[-1]
    field = getattr(exc, "field", None)
    short = refused_field(exc)
    if not field:
        return f"Not saved: {text}"
    for prefix in (field, short):  # the server's message may begin with the name: say it once
        if prefix and text.startswith(f"{prefix}: "):
            text = text[len(prefix) + 2 :]
    shown = names.get(short or "") if names else None
    if shown is None:
        return f"Not saved: {field}: {text}"
    if short and text.startswith(f"{short} "):  # "body_html uses ...": the name stands for it
        text = text[len(short) + 1 :]
    return f"Not saved: {shown}: {text}"
