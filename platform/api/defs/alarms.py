"""Hotlists (布控), their alarms and the alarm sinks, as the API answers them."""

from __future__ import annotations

from typing import Literal

from tianwang.api.defs.common import Number, Out, Page, Timestamp


class Entry(Out):
    id: int
    kind: Literal["plate", "imsi", "person"]
    value: str
    note: str | None


class Hotlist(Out):
    id: int
    name: str
    reason: str
    case_no: str
    valid_from: Timestamp
    valid_to: Timestamp
    priority: int
    fuzzy: bool
    created_by: str
    created_at: Timestamp
    revoked_at: Timestamp | None
    revoked_by: str | None
    revoked_reason: str | None
    active: bool
    status: Literal["pending", "active", "withdrawn", "expired"]
    scope: dict[str, list[str]] | None
    active_hours: str | None
    directions: list[str] | None
    retro_days: int | None
    entries: list[Entry]


class CreatedHotlist(Hotlist):
    retro_alarms: int  # alarms raised on creation for the passes of the last retro_days days


class ListedHotlist(Hotlist):
    entries_total: int  # `entries` holds the first few only


HotlistPage = Page[ListedHotlist]


class Ack(Out):
    verdict: Literal["confirmed", "false_positive"]
    note: str | None
    by: str | None
    at: Timestamp | None


class Alarm(Out):
    id: int
    hotlist_id: int
    entry_id: int
    kind: Literal["plate", "imsi", "person"]
    subject: str
    listed: str
    record_key: str
    sensor_id: str
    ts: Timestamp
    lon: Number | None
    lat: Number | None
    priority: int
    case_no: str
    created_at: Timestamp
    retro: bool
    ack: Ack | None


AlarmPage = Page[Alarm]


class Sink(Out):
    id: int
    kind: Literal["webhook", "mqtt"]
    url: str | None
    topic: str | None
    has_secret: bool
    hotlist_ids: list[int] | None
    created_by: str
    created_at: Timestamp
    pending: int
    last_error: str | None


class SinkList(Out):
    items: list[Sink]


__all__ = [
    "Ack",
    "Alarm",
    "AlarmPage",
    "CreatedHotlist",
    "Entry",
    "Hotlist",
    "HotlistPage",
    "Sink",
    "SinkList",
]
