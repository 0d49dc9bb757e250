"""The SMTP configuration, read from the environment once, when the server starts.

Why once: a value read per request turns a typo in the service's environment into a 500 on
every page that mentions delivery, long after the deploy looked fine. Read at start, a bad
value stops the server with a message naming the variable, and nothing afterwards depends on
the environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Security = Literal["starttls", "tls", "none"]
_DEFAULT_PORTS: dict[str, int] = {"starttls": 587, "tls": 465, "none": 25}
_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


class SmtpConfigError(ValueError):
    """An ``AGENTDESK_SMTP_*`` variable holds a value the server cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable} {problem}")
        self.variable = variable


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = "support@localhost"
    timeout: float = 20.0
    #: Verify the server's certificate (off only for a test server on loopback).
    verify: bool = True
    #: Extra certificate authorities to trust (a PEM file), for a mail relay with a private CA.
    ca_file: str | None = None

    def __repr__(self) -> str:  # never show the password in logs or tracebacks
        return (
            f"SmtpConfig(host={self.host!r}, port={self.port}, security={self.security!r}, "
            f"username={self.username!r}, sender={self.sender!r})"
        )

    @property
    def domain(self) -> str:
        """The right-hand side of our Message-IDs: the sender address's domain."""
        return mail_domain(self)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SmtpConfig | None:
        """``AGENTDESK_SMTP_HOST`` (unset: delivery is off), ``_PORT``, ``_SECURITY``
        (starttls, tls or none), ``_USERNAME``, ``_PASSWORD``, ``_FROM``, ``_TIMEOUT``
        (seconds), ``_VERIFY`` (yes/no), ``_CA_FILE``. Raises :class:`SmtpConfigError` naming
        the first variable whose value cannot be used."""
        env = os.environ if env is None else env
        host = env.get("AGENTDESK_SMTP_HOST", "").strip()
        if not host:
            return None
        if any(c.isspace() for c in host) or "/" in host:
            raise SmtpConfigError(
                "AGENTDESK_SMTP_HOST", f"must be a host name or address, not {host!r}"
            )
        security = env.get("AGENTDESK_SMTP_SECURITY", "starttls").strip().lower()
        if security not in _DEFAULT_PORTS:
            raise SmtpConfigError(
                "AGENTDESK_SMTP_SECURITY", f"must be starttls, tls or none, not {security!r}"
            )
        port = _integer(env, "AGENTDESK_SMTP_PORT", _DEFAULT_PORTS[security], 1, 65535)
        timeout = _number(env, "AGENTDESK_SMTP_TIMEOUT", 20.0)
        verify_text = env.get("AGENTDESK_SMTP_VERIFY", "yes").strip().lower()
        if verify_text not in _BOOLEANS:
            raise SmtpConfigError(
                "AGENTDESK_SMTP_VERIFY", f"must be yes or no, not {verify_text!r}"
            )
        sender = env.get("AGENTDESK_SMTP_FROM", "support@localhost").strip()
        if "\r" in sender or "\n" in sender or "@" not in sender:
            raise SmtpConfigError(
                "AGENTDESK_SMTP_FROM", f"must be one email address on one line, not {sender!r}"
            )
        username = env.get("AGENTDESK_SMTP_USERNAME") or None
        password = env.get("AGENTDESK_SMTP_PASSWORD") or None
        if (username is None) != (password is None):
            missing = "AGENTDESK_SMTP_PASSWORD" if password is None else "AGENTDESK_SMTP_USERNAME"
            raise SmtpConfigError(
                missing,
                "must be set too: the mail server's credentials "
                "need both a user name and a password",
            )
        ca_file = env.get("AGENTDESK_SMTP_CA_FILE", "").strip() or None
        if ca_file is not None and not os.path.isfile(ca_file):
            raise SmtpConfigError("AGENTDESK_SMTP_CA_FILE", f"names no file: {ca_file!r}")
        return cls(
            host=host,
            port=port,
            security=security,  # type: ignore[arg-type]
            username=username,
            password=password,
            sender=sender,
            timeout=timeout,
            verify=_BOOLEANS[verify_text],
            ca_file=ca_file,
        )


def mail_domain(config: SmtpConfig | None) -> str:
    """The domain of our Message-IDs: the sender's when configured."""
    if config is None:
        return "agentdesk.localdomain"
    domain = config.sender.rpartition("@")[2].strip(" >")
    return domain or "agentdesk.localdomain"


def _integer(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise SmtpConfigError(name, f"must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 600:
        raise SmtpConfigError(
            name, f"must be a number of seconds above 0 and at most 600, not {text!r}"
        )
    return value
