"""Trajectories (三轨), fusion (三轨联控) and the query audit."""

from __future__ import annotations

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, Field

from tianwang.api.defs.common import FeatureCollection, Number, Out, Page, Timestamp

Kind = Literal["vehicle", "person", "phone"]
Pt = TypeVar("Pt", bound=BaseModel)


class _Point(Out):
    ts: Timestamp


class VehiclePoint(_Point):
    """A pass (过车) at a checkpoint; lon/lat are null when the checkpoint left the registry."""

    checkpoint_id: str
    lon: Number | None
    lat: Number | None
    key: str
    lane: int | None
    speed_kmh: Number | None
    image_key: str | None
    plate_color: str | None
    direction_deg: Number | None
    plate_kind: str


class PersonPoint(_Point):
    """A face sighting at a camera."""

    camera_id: str
    lon: Number | None
    lat: Number | None
    key: str
    confidence: Number | None
    image_key: str | None


class PhonePoint(_Point):
    """A phone heard by a fence (电子围栏)."""

    fence_id: str
    lon: Number | None
    lat: Number | None
    key: str
    rssi: Number | None
    imei: str | None
    mac: str | None


class Trip(Out):
    start: Timestamp
    end: Timestamp
    first_index: int
    last_index: int
    points: int
    duration_s: Number


class TripProperties(Out):
    trip: int
    start: Timestamp
    end: Timestamp
    points: int


class Trajectory(Out, Generic[Pt]):
    """A subject's records in time order (one page), split into trips, and the trips as GeoJSON: a
    LineString per trip, a Point when it never moved, no geometry when its sensors are gone."""

    kind: Kind
    subject: str
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    points: list[Pt]
    trips: list[Trip]
    geojson: FeatureCollection[TripProperties]
    next_cursor: str | None


VehicleTrajectory = Trajectory[VehiclePoint]
PersonTrajectory = Trajectory[PersonPoint]
PhoneTrajectory = Trajectory[PhonePoint]


class AuditEntry(Out):
    id: int
    at: Timestamp
    user: str
    role: str
    route: str
    case_no: str
    params: dict[str, Any] = Field(description="the call's parameters as applied")
    result_size: int
    outcome: Literal["ok", "refused"]
    reason: str | None = Field(description="why a refused call was refused (status: detail)")


AuditPage = Page[AuditEntry]


# ---------------------------------------------------------------- fusion


class Sighting(Out):
    """One record of an entity; its sensor field is named by kind (checkpoint_id / camera_id /
    fence_id) and only that one is present."""

    kind: Kind
    id: str
    ts: Timestamp
    key: str
    checkpoint_id: str | None = None
    camera_id: str | None = None
    fence_id: str | None = None
    lon: Number
    lat: Number


class FusionSubject(Out):
    """The subject; its id is repeated under its parameter name (plate_no / person_id / imsi)."""

    kind: Kind
    id: str
    plate_no: str | None = None
    person_id: str | None = None
    imsi: str | None = None
    sightings: int
    buckets: int
    truncated: bool


class FusionParams(Out):
    tolerance_s: dict[str, Number]
    max_distance_m: Number
    bucket_s: int
    idf_k: Number
    site_m: Number
    share_power: Number
    min_score: Number
    mutual_check: int
    mutual_window_s: Number
    min_sites: int
    min_days: int
    day_utc_offset_h: Number
    top: int
    evidence_limit: int
    timeline_limit: int
    max_subject_sightings: int


class FusionEvidence(Out):
    subject: Sighting
    other: Sighting
    distance_m: Number
    dt_s: Number
    weight: Number


class Association(Out):
    kind: Kind
    id: str
    score: Number
    reciprocity: Number | None
    mutual: bool | None
    support: Number
    confidence: Number
    share: Number
    co_occurrences: int
    sites: int
    days: int
    sightings: int
    evidence: list[FusionEvidence]


class CandidateStats(Out):
    candidate_sightings: int
    co_occurring: int
    eligible: int
    counted: int
    top_exact: bool
    covered_buckets: int
    rechecked: int


class Fusion(Out):
    """Associations of the other kinds, best first, with evidence; the merged case timeline."""

    subject: FusionSubject
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    params: FusionParams
    associations: list[Association]
    candidates: dict[str, CandidateStats] = Field(description="per associated kind")
    timeline: list[Sighting]
    timeline_truncated: bool
