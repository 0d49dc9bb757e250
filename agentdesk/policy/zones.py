"""Team time zones, resolved one way everywhere.

Calendar years (seed 000), billing days (seed 001) and business hours (seed 002) are all counted
on the team's wall clock, so every rule turns a zone name into a :class:`ZoneInfo` here: one
message for a bad name, one list of the errors ``zoneinfo`` can raise for one.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import PolicyError

__all__ = ["zone", "zone_or_utc"]

# ValueError: a malformed key ("../etc/passwd"); OSError: a path the OS refuses outright.
_BAD_ZONE = (ZoneInfoNotFoundError, ValueError, OSError)


def zone(tz: object) -> ZoneInfo:
    """The time zone named ``tz``; :class:`PolicyError` on field ``tz`` when there is none."""
    if not isinstance(tz, str) or not tz.strip():
        raise PolicyError(
            "tz", f"must be an IANA time zone name like 'America/New_York', got {tz!r}"
        )
    try:
        return ZoneInfo(tz)
    except _BAD_ZONE:
        raise PolicyError("tz", f"unknown time zone {tz!r}") from None


def zone_or_utc(tz: str) -> tuple[str, ZoneInfo]:
    """``tz`` and its zone, or UTC when this machine does not know it.

    For readers that must show something rather than fail: a replica can hold a zone name the
    server's tzdata knows and this desktop's does not. Writers use :func:`zone` and refuse.
    """
    try:
        return tz, zone(tz)
    except PolicyError:
        return "UTC", ZoneInfo("UTC")
