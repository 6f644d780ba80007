"""Analyses (研判): cloned plates, companions, area collision, stay points, first entry, night-active.

Every answer echoes the parameters it ran with, defaults filled in (`params`).
"""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import Field

from tianwang.analyses import collision
from tianwang.api.defs.common import Number, Out, Timestamp
from tianwang.api.defs.trajectories import Kind
from tianwang.protocol.fields import Instant
from tianwang.validation import InputModel

I = TypeVar("I")  # noqa: E741
Q = TypeVar("Q")

STATS = "figures about the run (records read, candidates, cuts, seconds per phase); keys vary by path"


class AnalysisPage(Out, Generic[Q, I]):
    """`{params, items, next_cursor, total, stats}`: one page (an offset) of a list computed afresh."""

    params: Q
    items: list[I]
    next_cursor: str | None
    total: int
    stats: dict[str, Any] = Field(description=STATS)


class Truncated(Out, Generic[Q, I]):
    """`{params, items, truncated}`: the first `limit` items, and whether there were more."""

    params: Q
    items: list[I]
    truncated: bool


# ---------------------------------------------------------------- 套牌


class ClonePass(Out):
    ts: Timestamp
    checkpoint_id: str
    lon: Number
    lat: Number
    key: str
    vehicle_color: str | None
    vehicle_type: str | None


class ClonePair(Out):
    """Two consecutive passes of one plate too far apart for the time between them."""

    a: ClonePass
    b: ClonePass
    distance_m: Number
    seconds: Number
    implied_speed_kmh: Number | None
    fastest_trip_s: Number | None
    basis: list[str]
    attribute_mismatch: bool


class CloneItem(Out):
    """A plate, its strongest contradicting pair (`a`, `b`, …) and the evidence."""

    plate_no: str
    a: ClonePass
    b: ClonePass
    distance_m: Number
    seconds: Number
    implied_speed_kmh: Number | None
    fastest_trip_s: Number | None
    basis: list[str]
    attribute_mismatch: bool
    contradictions: int
    contradicting_pairs: int
    evidence: list[ClonePair]


class CloneEcho(Out):
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    max_speed_kmh: Number
    limit_factor: Number
    detour: Number
    max_detour: Number
    jitter_s: Number
    min_distance_m: Number
    trip_min_samples: int
    trip_factor: Number
    trip_max_gap_s: Number
    min_contradictions: int
    twin_window_s: Number
    max_evidence: int
    limit: int
    cursor: str | None


ClonedPlates = AnalysisPage[CloneEcho, CloneItem]


# ---------------------------------------------------------------- 同行车


class CompanionItem(Out):
    plate_no: str
    sites: int
    co_occurrences: int
    outings: int
    share: Number
    mean_abs_dt_s: Number
    checkpoint_ids: list[str]


class CompanionEcho(Out):
    plate_no: str
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    window_s: Number
    min_sites: int
    min_outings: int
    min_share: Number
    outing_gap_s: Number
    freq_factor: Number
    max_passes: int | None
    max_sites_listed: int
    frequency_cut: Number | None
    limit: int
    cursor: str | None


Companions = AnalysisPage[CompanionEcho, CompanionItem]


# ---------------------------------------------------------------- 区域碰撞


class CollisionWindowIn(InputModel):
    area: dict[str, Any] | None = Field(None, description="GeoJSON Polygon / MultiPolygon (or a Feature)")
    checkpoint_ids: list[str] | None = Field(
        None,
        max_length=collision.MAX_SENSORS,
        description="sensor ids instead of an area (fence / camera ids too)",
    )
    frm: Instant = Field(alias="from")
    to: Instant


class CollisionIn(InputModel):
    windows: list[CollisionWindowIn] = Field(min_length=1, max_length=collision.MAX_WINDOWS)
    kind: Literal["vehicle", "phone", "person"] = "vehicle"
    min_windows: int | None = Field(None, ge=1, description="seen in at least m of the n windows (default n)")
    limit: int = Field(100, ge=1, le=1000)


class CollisionWindowEcho(Out):
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    by: str = Field(description="area | sensor_ids")
    area_bounds: list[Number] | None = Field(description="min lon, min lat, max lon, max lat")
    sensors: int
    sensor_ids: list[str] = Field(description="the first 100")


class CollisionEcho(Out):
    kind: Kind
    min_windows: int
    limit: int
    windows: list[CollisionWindowEcho]


class CollisionItem(Out):
    id: str
    count: int
    windows: list[int] = Field(description="indexes of the windows the subject was seen in")


Collision = Truncated[CollisionEcho, CollisionItem]


# ---------------------------------------------------------------- 落脚点


class StaySensor(Out):
    id: str
    lon: Number
    lat: Number
    nights: int


class StayPoint(Out):
    lon: Number
    lat: Number
    radius_m: Number
    nights: int
    first_night: str
    last_night: str
    first_ts: Timestamp
    last_ts: Timestamp
    resting_nights: int
    sensors: list[StaySensor]


class StayEcho(Out):
    kind: Kind
    subject: str
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    anchor: str
    utc_offset: str
    min_gap_s: int
    max_gap_s: int
    rest_window_s: int
    link_m: Number
    min_nights: int
    limit: int


class StayPoints(Out):
    params: StayEcho
    nights: int
    nights_placed: int
    sightings: int
    truncated: bool
    clusters: int
    items: list[StayPoint]


# ---------------------------------------------------------------- 首次入城


class EntryCheckpoints(Out):
    source: str = Field(description="parameter | registry")
    area_code: str | None
    count: int
    ids: list[str] = Field(description="the first 100")
    by_lanes: int


class FirstEntryEcho(Out):
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    lookback_days: Number
    scope: str
    entry_checkpoints: EntryCheckpoints
    limit: int


class FirstEntryItem(Out):
    plate_no: str
    ts: Timestamp
    checkpoint_id: str
    key: str
    direction_deg: Number | None
    inbound: bool | None
    previous_pass_s: int | None


FirstEntries = Truncated[FirstEntryEcho, FirstEntryItem]


# ---------------------------------------------------------------- 昼伏夜出


class NightEcho(Out):
    kind: Kind
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    night_start: str
    night_end: str
    utc_offset: str
    min_nights: int
    min_share: Number
    rest_s: int | None
    limit: int


class NightItem(Out):
    id: str
    nights: int
    night_sightings: int
    sightings: int
    night_share: Number
    first_night: str
    last_night: str
    first_ts: Timestamp
    last_ts: Timestamp


NightActive = Truncated[NightEcho, NightItem]
