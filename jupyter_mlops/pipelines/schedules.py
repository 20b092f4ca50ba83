"""Cron expressions with a time zone → the next fire time (epoch ms)."""

from __future__ import annotations

from datetime import datetime

from ..tracking.errors import invalid


def next_fire(cron: str, timezone: str, after_ms: int) -> int:
    """The first time strictly after ``after_ms`` that ``cron`` names in ``timezone``
    (daylight-saving changes follow the zone's wall clock)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from croniter import croniter

    try:
        tz = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise invalid(
            f"Unknown time zone {timezone!r} (use an IANA name such as 'Europe/Paris' or 'UTC')."
        ) from None
    if not isinstance(cron, str) or not croniter.is_valid(cron):
        raise invalid(
            f"Invalid cron expression {cron!r} (five fields: minute hour "
            "day-of-month month day-of-week)."
        )
    start = datetime.fromtimestamp(after_ms / 1000, tz)
    nxt = croniter(cron, start).get_next(datetime)
    return int(nxt.timestamp() * 1000)
