"""Day partitions of the record tables on PostgreSQL: create ahead, drop past retention.

Each record table (passes, face_sightings, phone_sightings) is `PARTITION BY RANGE (ts)` with
one partition per UTC day, `parts.<table>_pYYYYMMDD`, and a default partition
`parts.<table>_default` that catches any row outside the made days, so nothing is ever refused
for its time. Partitions live in their own schema so they never mix with the model tables.
`tianwang db maintain` and the API's periodic task call `maintain`; on SQLite (no partitions)
it only deletes rows past retention.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, text

from tianwang import clock
from tianwang.record_time import retention_cutoff

RECORD_TABLES = ("passes", "face_sightings", "phone_sightings")
SCHEMA = "parts"
_NAME = re.compile(r"^(?P<table>[a-z_]+)_p(?P<day>\d{8})$")


@dataclass
class MaintenanceReport:
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    moved_from_default: int = 0
    deleted_rows: int = 0


def partition_name(table: str, day: dt.date) -> str:
    return f"{table}_p{day:%Y%m%d}"


def _bounds(day: dt.date) -> tuple[str, str]:
    lo = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    return lo.isoformat(), (lo + dt.timedelta(days=1)).isoformat()


def create_default_partitions(conn: Connection) -> None:
    conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    for table in RECORD_TABLES:
        conn.execute(
            text(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.{table}_default PARTITION OF public.{table} DEFAULT")
        )


def existing_days(conn: Connection, table: str) -> dict[dt.date, str]:
    """The day partitions of `table` that exist, by day."""
    rows = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace pn ON pn.oid = p.relnamespace "
            "WHERE p.relname = :t AND pn.nspname = 'public'"
        ),
        {"t": table},
    ).scalars()
    out: dict[dt.date, str] = {}
    for name in rows:
        m = _NAME.match(name)
        if m and m["table"] == table:
            out[dt.datetime.strptime(m["day"], "%Y%m%d").replace(tzinfo=dt.UTC).date()] = name
    return out


def create_day(conn: Connection, table: str, day: dt.date) -> int:
    """Make the partition of `table` for `day`; rows of that day already in the default partition
    move into it first (else ATTACH would refuse). Returns how many rows moved."""
    name = partition_name(table, day)
    lo, hi = _bounds(day)
    conn.execute(text(f"CREATE TABLE {SCHEMA}.{name} (LIKE public.{table} INCLUDING DEFAULTS)"))
    moved = conn.execute(
        text(
            f"WITH m AS (DELETE FROM {SCHEMA}.{table}_default WHERE ts >= :lo AND ts < :hi RETURNING *) "  # noqa: S608
            f"INSERT INTO {SCHEMA}.{name} SELECT * FROM m"
        ),
        {"lo": lo, "hi": hi},
    ).rowcount
    bounds = f"FOR VALUES FROM ('{lo}') TO ('{hi}')"
    conn.execute(text(f"ALTER TABLE public.{table} ATTACH PARTITION {SCHEMA}.{name} {bounds}"))
    return int(moved or 0)


def maintain(
    conn: Connection,
    *,
    ahead_days: int,
    retention_days: int,
    today: dt.date | None = None,
    behind_days: int = 1,
) -> MaintenanceReport:
    """Partitions from `today - behind_days` to `today + ahead_days`; drop days wholly older than
    `today - retention_days` (and delete such rows from the default partition). Idempotent."""
    today = today or clock.today_utc()
    cutoff = today - dt.timedelta(days=retention_days)
    # the same instant the ingest refuses records against (record_time), so none is accepted to be dropped
    cutoff_ts = retention_cutoff(today, retention_days)
    rep = MaintenanceReport()
    if conn.dialect.name != "postgresql":
        for table in RECORD_TABLES:
            res = conn.execute(text(f"DELETE FROM {table} WHERE ts < :c"), {"c": cutoff_ts})  # noqa: S608
            rep.deleted_rows += int(res.rowcount or 0)
        return rep
    # replicas run this on a timer: one at a time, the others wait and then find nothing to do
    conn.execute(text("SELECT pg_advisory_xact_lock(7246010)"))
    create_default_partitions(conn)
    first = max(today - dt.timedelta(days=behind_days), cutoff)
    for table in RECORD_TABLES:
        have = existing_days(conn, table)
        day = first
        while day <= today + dt.timedelta(days=ahead_days):
            if day not in have:
                rep.moved_from_default += create_day(conn, table, day)
                rep.created.append(f"{SCHEMA}.{partition_name(table, day)}")
            day += dt.timedelta(days=1)
        for day, name in sorted(have.items()):
            if day < cutoff:
                conn.execute(text(f"DROP TABLE {SCHEMA}.{name}"))
                rep.dropped.append(f"{SCHEMA}.{name}")
        res = conn.execute(
            text(f"DELETE FROM {SCHEMA}.{table}_default WHERE ts < :c"),  # noqa: S608
            {"c": cutoff_ts},
        )
        rep.deleted_rows += int(res.rowcount or 0)
    return rep


def maintain_engine(engine: Engine, *, ahead_days: int, retention_days: int) -> MaintenanceReport:
    with engine.begin() as conn:
        return maintain(conn, ahead_days=ahead_days, retention_days=retention_days)
