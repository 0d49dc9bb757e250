"""A team server's address, written one way wherever it is stored, compared or typed.

The replica, the token store and the replica file's name are all keyed by the server's address,
so ``https://desk.example.com/`` and ``https://desk.example.com`` must be the same key, and what
an agent types in the sign-in dialog or Settings must land on that same key.
"""

from __future__ import annotations

__all__ = ["normalise_server", "normalise_url"]


def normalise_url(url: str) -> str:
    """The canonical key of a server address (or of local mode's ``"local"``): no surrounding
    blanks, no trailing slash. Never adds a scheme: a stored key must not change meaning."""
    return url.strip().rstrip("/")


def normalise_server(text: str) -> str:
    """What the agent typed, as a base URL: ``support.example.com`` -> ``https://...``."""
    url = normalise_url(text)
    if url and "://" not in url:
        url = f"https://{url}"
    return url
