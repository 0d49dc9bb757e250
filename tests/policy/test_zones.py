"""One way from a zone name to a zone: refused with a clear message by the rules, UTC for
readers that must show something."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agentdesk.policy.errors import PolicyError
from agentdesk.policy.zones import zone, zone_or_utc


def test_known_zone() -> None:
    assert zone("America/New_York") == ZoneInfo("America/New_York")
    assert zone_or_utc("Europe/Berlin") == ("Europe/Berlin", ZoneInfo("Europe/Berlin"))


@pytest.mark.parametrize("tz", ["", "   ", None, 5])
def test_not_a_name(tz: Any) -> None:
    with pytest.raises(PolicyError, match="IANA time zone name") as err:
        zone(tz)
    assert err.value.field == "tz"


@pytest.mark.parametrize("tz", ["Mars/Olympus_Mons", "America", "../etc/passwd", "/etc/passwd"])
def test_unknown_zone(tz: str) -> None:
    with pytest.raises(PolicyError, match="unknown time zone") as err:
        zone(tz)
    assert err.value.field == "tz"
    assert zone_or_utc(tz) == ("UTC", ZoneInfo("UTC"))
