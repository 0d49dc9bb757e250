"""A server's address is one key wherever it is stored or typed."""

from __future__ import annotations

import pytest

from agentdesk.sync.client import ApiClient
from agentdesk.sync.server_url import normalise_server, normalise_url


def test_the_stored_key_drops_blanks_and_trailing_slashes_but_never_gains_a_scheme() -> None:
    assert normalise_url(" https://desk.example.com/ ") == "https://desk.example.com"
    assert normalise_url("local") == "local"


def test_what_an_agent_types_becomes_the_same_key() -> None:
    typed = normalise_server(" desk.example.com/ ")
    assert typed == "https://desk.example.com"
    assert normalise_url(typed) == typed
    assert normalise_server("http://127.0.0.1:8765/") == "http://127.0.0.1:8765"
    assert normalise_server("  ") == ""


def test_the_client_uses_the_same_key() -> None:
    with ApiClient(" https://desk.example.com/ ") as client:
        assert client.base_url == "https://desk.example.com"
    with pytest.raises(ValueError, match="not a server address"):
        ApiClient("desk.example.com")
