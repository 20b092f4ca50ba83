"""Cron expressions with a time zone → the next fire time (epoch ms)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

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


def scheduled_run_name(schedule: str, at_ms: int, zone: str) -> str:
    """A scheduled run's name: the schedule's and the time it was due, on the
    schedule's wall clock ("nightly 2026-12-05 02:00"), so runs tell apart at a glance."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        tz: Any = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = timezone.utc
    return f"{schedule} {datetime.fromtimestamp(at_ms / 1000, tz):%Y-%m-%d %H:%M}"
