"""Request and response bodies. Every request model forbids unknown fields and bounds its
strings, so a typo or a junk field is a 422 naming it, never silently ignored."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _no_control_chars(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


#: A single-line, bounded, control-character-free string.
Line = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_no_control_chars)]
#: Multi-line text (newlines and tabs allowed), bounded.
Text = Annotated[str, Field(max_length=100_000), AfterValidator(_no_control_chars)]
Username = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@-]+$")
]


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class LoginRequest(Request):
    username: Username
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class UserOut(BaseModel):
    id: uuid.UUID
    username: str
    display_name: str
    email: str | None
    role: str
    active: bool
    tenant_id: uuid.UUID


class LoginResponse(BaseModel):
    token: str
    token_type: str = "bearer"
    expires_at: datetime
    user: UserOut
