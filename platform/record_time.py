"""The time checks every ingest applies to a record's `ts`: an offset, not in the future, not past retention.

One copy for health and snapshot observations (cameras/evidence.py) and for passes, faces and
phones (records/ingest.py), so a device clock gone wrong is refused the same way everywhere.
"""

from __future__ import annotations

import datetime as dt

# Times further than this in the future are a device clock gone wrong, not a record. Accepting
# one would, for health, set `last_checked` in the future and freeze the device's status.
MAX_FUTURE = dt.timedelta(hours=1)


def retention_cutoff(today: dt.date, retention_days: int) -> dt.datetime:
    """Rows with `ts` before this instant are deleted by the maintenance run of `today`."""
    day = today - dt.timedelta(days=retention_days)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)


def oldest_accepted(now: dt.datetime, retention_days: int) -> dt.datetime:
    """The oldest `ts` an ingest accepts: tomorrow's cutoff, so an accepted record survives at least
    until the maintenance run after the next UTC midnight instead of vanishing within the hour."""
    return retention_cutoff(now.astimezone(dt.UTC).date() + dt.timedelta(days=1), retention_days)


def ts_problem(ts: dt.datetime, now: dt.datetime, retention_days: int | None = None) -> str | None:
    """Why `ts` cannot be stored (a line for the item's `errors`), or None when it can."""
    if ts.tzinfo is None:
        return "ts: needs a UTC offset"
    if ts > now + MAX_FUTURE:
        return f"ts: {ts.isoformat()} is more than an hour in the future (device clock wrong?)"
    if retention_days is not None and ts < oldest_accepted(now, retention_days):
        return (
            f"ts: {ts.isoformat()} is older than the retention of {retention_days} days: "
            "it would be deleted at once"
        )
    return None
