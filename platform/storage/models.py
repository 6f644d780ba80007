"""SQLAlchemy models: the truth of the registry. Schema changes go through Alembic migrations."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    TypeDecorator,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tianwang import clock


def utcnow() -> dt.datetime:
    """The service's clock (`tianwang.clock`): settable for tests, never the machine's alone."""
    return clock.now()


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Stored as UTC; SQLite drops the offset, so it is put back on the way out."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: UTCDateTime,
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class Role(enum.StrEnum):
    admin = "admin"
    staff = "staff"
    investigator = "investigator"
    installer = "installer"
    agent = "agent"


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    # SHA-256 of the token: tokens are 256-bit random, so a fast hash is enough (no offline guessing).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # agent tokens only. zones: the area-code prefixes its agents may be given (["*"]: all); NULL on
    # tokens made before zones existed, read as all zones (with a warning at start-up).
    zones: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    # the agent ids that may heartbeat with it; NULL until the first heartbeat binds its one id
    agent_ids: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), default=None)


class Camera(Base):
    """One camera's file (一机一档): GB/T 28181-2022 catalog core plus the 一机一档 extension."""

    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    device_id: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    heading_deg: Mapped[float] = mapped_column(Float)
    hfov_deg: Mapped[float] = mapped_column(Float)
    range_m: Mapped[float] = mapped_column(Float)
    point_class: Mapped[int] = mapped_column(Integer)
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    address: Mapped[str | None] = mapped_column(String(300), default=None)
    # GB/T 28181-2022 catalog core
    ptz_type: Mapped[int | None] = mapped_column(Integer, default=None)
    position_type: Mapped[int | None] = mapped_column(Integer, default=None)
    room_type: Mapped[int | None] = mapped_column(Integer, default=None)
    supply_light_type: Mapped[int | None] = mapped_column(Integer, default=None)
    direction_type: Mapped[int | None] = mapped_column(Integer, default=None)
    resolution: Mapped[str | None] = mapped_column(String(50), default=None)
    record_retention_days: Mapped[int | None] = mapped_column(Integer, default=None)
    install_time: Mapped[dt.datetime | None] = mapped_column(default=None)
    management_unit: Mapped[str | None] = mapped_column(String(200), default=None)
    manufacturer: Mapped[str | None] = mapped_column(String(100), default=None)
    model: Mapped[str | None] = mapped_column(String(100), default=None)
    firmware: Mapped[str | None] = mapped_column(String(100), default=None)
    serial: Mapped[str | None] = mapped_column(String(100), default=None)
    # 一机一档 extension
    police_station: Mapped[str | None] = mapped_column(String(200), default=None)
    maintenance_unit: Mapped[str | None] = mapped_column(String(200), default=None)
    construction_batch: Mapped[str | None] = mapped_column(String(100), default=None)
    photos: Mapped[list[Any]] = mapped_column(default=list)
    lifecycle: Mapped[str] = mapped_column(String(20), default="in_use")
    # how to reach it
    onvif_host: Mapped[str | None] = mapped_column(String(255), default=None)
    onvif_port: Mapped[int | None] = mapped_column(Integer, default=None)
    onvif_username: Mapped[str | None] = mapped_column(String(100), default=None)
    onvif_password_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    # False: the XAddrs and URIs the device names are moved to the registered address (NAT)
    onvif_trust_device_addresses: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # stored without `user:password@`: the URLs' credentials are in url_credentials_enc (Fernet, a
    # JSON object by field), given to the agent only (cameras.service.split_userinfo)
    rtsp_url: Mapped[str | None] = mapped_column(String(1000), default=None)
    snapshot_url: Mapped[str | None] = mapped_column(String(1000), default=None)
    url_credentials_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    stream_uri: Mapped[str | None] = mapped_column(String(1000), default=None)
    snapshot_uri: Mapped[str | None] = mapped_column(String(1000), default=None)
    health_interval_s: Mapped[int] = mapped_column(Integer, default=60)
    snapshot_interval_s: Mapped[int] = mapped_column(Integer, default=900)
    agent_id: Mapped[str | None] = mapped_column(String(100), default=None)
    checkpoint_id: Mapped[str | None] = mapped_column(
        String(20), ForeignKey("checkpoints.checkpoint_id", ondelete="SET NULL"), default=None, index=True
    )
    # state derived from evidence (see the agent and coverage packages)
    status: Mapped[str] = mapped_column(String(20), default="registered", index=True)
    status_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    last_seen: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_checked: Mapped[dt.datetime | None] = mapped_column(default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_authenticated: Mapped[bool | None] = mapped_column(Boolean, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    status_since: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_snapshot_key: Mapped[str | None] = mapped_column(String(512), default=None)
    last_snapshot_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_verdict: Mapped[str | None] = mapped_column(String(10), default=None)
    last_faults: Mapped[list[Any] | None] = mapped_column(default=None)
    # snapshots in a row that gave no picture, and why the last one failed (不完好 past the allowed misses)
    snapshot_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_snapshot_error: Mapped[str | None] = mapped_column(String(500), default=None)
    last_snapshot_failed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    # the device clock's offset from the agent's at the last health check (device − agent), and
    # since when it is beyond the allowed skew (the `clock` fault, 时钟不准); None while within it
    clock_skew_s: Mapped[float | None] = mapped_column(Float, default=None)
    clock_fault_since: Mapped[dt.datetime | None] = mapped_column(default=None)
    # the latest stream check (码流检测): when, and the stream faults it found ([] for a good stream)
    last_stream_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_stream_faults: Mapped[list[Any] | None] = mapped_column(default=None)
    last_stream_error: Mapped[str | None] = mapped_column(String(500), default=None)
    last_probe: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    last_probe_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    __table_args__ = (Index("ix_cameras_kind_status", "kind", "status"),)


class Checkpoint(Base):
    """A vehicle checkpoint (卡口): a site with lanes whose cameras read plates."""

    __tablename__ = "checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    direction_deg: Mapped[float] = mapped_column(Float)
    lanes: Mapped[int] = mapped_column(Integer)
    road: Mapped[str | None] = mapped_column(String(200), default=None)
    area_code: Mapped[str] = mapped_column(String(12), index=True)
    onvif_host: Mapped[str | None] = mapped_column(String(255), default=None)
    onvif_port: Mapped[int | None] = mapped_column(Integer, default=None)
    onvif_username: Mapped[str | None] = mapped_column(String(100), default=None)
    onvif_password_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    onvif_trust_device_addresses: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[str] = mapped_column(String(20), default="registered")
    status_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    last_seen: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_checked: Mapped[dt.datetime | None] = mapped_column(default=None)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_authenticated: Mapped[bool | None] = mapped_column(Boolean, default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    status_since: Mapped[dt.datetime | None] = mapped_column(default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # GA/T 1400 卡口类型 (TollgateCat) and 卡口用途 (TollgateCat2) codes: checkpoints.codes
    tollgate_type: Mapped[str | None] = mapped_column(String(2), default=None)
    tollgate_use: Mapped[str | None] = mapped_column(String(2), default=None)


class CheckpointLane(Base):
    """One lane of a checkpoint as GA/T 1400 describes it (LaneObject): its number (1 is the leftmost
    in the direction of travel), direction of travel, whether it leads into the city, speed limit."""

    __tablename__ = "checkpoint_lanes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(
        String(20), ForeignKey("checkpoints.checkpoint_id", ondelete="CASCADE"), index=True
    )
    lane_no: Mapped[int] = mapped_column(Integer)
    direction: Mapped[str | None] = mapped_column(String(1), default=None)  # 行驶方向 code
    city_pass: Mapped[int | None] = mapped_column(Integer, default=None)  # CityPass: 1 进城 … 4 混合
    speed_limit_kmh: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (UniqueConstraint("checkpoint_id", "lane_no", name="uq_checkpoint_lanes_lane"),)


class Area(Base):
    """An administrative or policing area: city → district → police station → grid cell (网格)."""

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), index=True)
    parent: Mapped[str | None] = mapped_column(
        String(32), ForeignKey("areas.code", ondelete="RESTRICT"), default=None, index=True
    )
    geometry: Mapped[dict[str, Any]] = mapped_column()
    # bounding box, so area lookups need no geometry engine in the database
    min_lon: Mapped[float] = mapped_column(Float)
    min_lat: Mapped[float] = mapped_column(Float)
    max_lon: Mapped[float] = mapped_column(Float)
    max_lat: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class KeySite(Base):
    """A key site (重点部位): school, hospital, station, market … that must be watched."""

    __tablename__ = "key_sites"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[str] = mapped_column(String(50), index=True)
    geometry: Mapped[dict[str, Any]] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Road(Base):
    """A road segment (LineString) of the city map, as imported from GeoJSON."""

    __tablename__ = "roads"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    road_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    road_class: Mapped[str] = mapped_column(String(30), index=True)
    geometry: Mapped[dict[str, Any]] = mapped_column()
    length_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Fence(Base):
    """A phone-signal sensor (电子围栏) with its catchment circle."""

    __tablename__ = "fences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    fence_id: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    lon: Mapped[float] = mapped_column(Float)
    lat: Mapped[float] = mapped_column(Float)
    radius_m: Mapped[float] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Agent(Base):
    """An edge agent as last heard from: what it can reach (zones) and how much it can take."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agent_id: Mapped[str] = mapped_column(String(100), unique=True)
    version: Mapped[str] = mapped_column(String(50))
    capacity: Mapped[int] = mapped_column(Integer)
    zones: Mapped[list[Any]] = mapped_column()
    token_name: Mapped[str] = mapped_column(String(100))
    # its token's zones at the last heartbeat (NULL: all), which bound even a pinned device
    allowed_zones: Mapped[list[Any] | None] = mapped_column(JSON(none_as_null=True), default=None)
    first_seen: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_heartbeat: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)


class AgentCommand(Base):
    """A command queued for the agent that owns a device (the installer's probe, …) and its result."""

    __tablename__ = "agent_commands"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    device_id: Mapped[str] = mapped_column(String(20), index=True)
    agent_id: Mapped[str] = mapped_column(String(100))
    # queued → delivered → done | failed | expired
    state: Mapped[str] = mapped_column(String(12), default="queued")
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    deadline: Mapped[dt.datetime] = mapped_column()
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    completed_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(1000), default=None)

    __table_args__ = (Index("ix_agent_commands_agent_state", "agent_id", "state"),)


class HealthObservation(Base):
    """One health check of one device by an agent: the evidence behind a device's status."""

    __tablename__ = "health_observations"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    device_id: Mapped[str] = mapped_column(String(20))
    ts: Mapped[dt.datetime] = mapped_column()
    reachable: Mapped[bool] = mapped_column(Boolean)
    authenticated: Mapped[bool | None] = mapped_column(Boolean, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    clock_skew_s: Mapped[float | None] = mapped_column(Float, default=None)
    stream_ok: Mapped[bool | None] = mapped_column(Boolean, default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    agent: Mapped[str | None] = mapped_column(String(100), default=None)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_health_device_ts", "device_id", "ts"),)


class StreamCheck(Base):
    """One stream check (码流检测) of one camera by an agent: measured against the declared profile."""

    __tablename__ = "stream_checks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), unique=True)
    device_id: Mapped[str] = mapped_column(String(20))
    ts: Mapped[dt.datetime] = mapped_column()
    ok: Mapped[bool] = mapped_column(Boolean)
    faults: Mapped[list[Any]] = mapped_column(default=list)
    codec: Mapped[str | None] = mapped_column(String(32), default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    fps: Mapped[float | None] = mapped_column(Float, default=None)
    bitrate_kbps: Mapped[float | None] = mapped_column(Float, default=None)
    declared: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    measured: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    agent: Mapped[str | None] = mapped_column(String(100), default=None)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_stream_checks_device_ts", "device_id", "ts"),)


class Snapshot(Base):
    """A stored picture of a device and its quality diagnosis (the bytes live in the object store), or
    a snapshot that gave no picture (`error` set, no object: `key` is the agent's key of the attempt)."""

    __tablename__ = "snapshots"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    device_id: Mapped[str] = mapped_column(String(20))
    ts: Mapped[dt.datetime] = mapped_column()
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)
    quality: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    verdict: Mapped[str | None] = mapped_column(String(10), default=None)
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_snapshots_device_ts", "device_id", "ts"),)


# ---- passes and sightings (三轨 records), hotlists, alarms, audit --------------------------------
# The record tables are range-partitioned by day on `ts` in PostgreSQL (created that way by
# migration 0004; the partitions live in the schema `parts`). Their primary key leads with the
# subject and holds `ts`, so it is legal on a partitioned table, serves "one subject over a time
# range" as its b-tree, and stays unique per shard when Citus distributes by subject: there is
# deliberately no global unique constraint on `key` alone (see docs/scale.md).
_PARTITIONED = {"postgresql_partition_by": "RANGE (ts)"}


class Pass(Base):
    """A vehicle pass (过车记录) read at a checkpoint lane: the unit of a vehicle trajectory."""

    __tablename__ = "passes"

    # the plate as read (normalised), or the marker 无牌 / 未识别 when there is none (plates.read)
    plate_no: Mapped[str] = mapped_column(String(40), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    checkpoint_id: Mapped[str] = mapped_column(String(20))
    # plates.PlateKind; `plate_valid` is false for other / none / unread: plate_no is not a real plate
    plate_kind: Mapped[str] = mapped_column(String(16), default="ordinary")
    plate_valid: Mapped[bool] = mapped_column(Boolean, default=True)
    lane: Mapped[int | None] = mapped_column(Integer, default=None)
    plate_color: Mapped[str | None] = mapped_column(String(2), default=None)
    vehicle_type: Mapped[str | None] = mapped_column(String(10), default=None)
    vehicle_color: Mapped[str | None] = mapped_column(String(2), default=None)
    speed_kmh: Mapped[float | None] = mapped_column(Float, default=None)
    direction_deg: Mapped[float | None] = mapped_column(Float, default=None)
    image_key: Mapped[str | None] = mapped_column(String(1000), default=None)
    device_id: Mapped[str | None] = mapped_column(String(20), default=None)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # 号牌种类 (GA 24.7 code, checkpoints.codes.PLATE_CLASSES), as a GA/T 1400 push sends it
    plate_class: Mapped[str | None] = mapped_column(String(2), default=None)
    # GA/T 1400 PlateCharReliability: the confidence (0–100) of each character of plate_no, in order,
    # comma-separated ("80,90,90,88,90,67,87"); null when not sent
    plate_char_reliability: Mapped[str | None] = mapped_column(String(160), default=None)

    __table_args__ = (
        Index("ix_passes_ts_brin", "ts", postgresql_using="brin"),
        Index("ix_passes_checkpoint_ts", "checkpoint_id", "ts"),
        # pass search (records/search.py): wildcard and look-alike plate patterns
        Index(
            "ix_passes_plate_trgm",
            "plate_no",
            postgresql_using="gin",
            postgresql_ops={"plate_no": "gin_trgm_ops"},
        ),
        _PARTITIONED,
    )


class FaceSighting(Base):
    """A face seen by a face camera and matched to a person id by the face system (人脸抓拍)."""

    __tablename__ = "face_sightings"

    person_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    camera_id: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float] = mapped_column(Float)
    image_key: Mapped[str | None] = mapped_column(String(1000), default=None)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_face_sightings_ts_brin", "ts", postgresql_using="brin"),
        Index("ix_face_sightings_camera_ts", "camera_id", "ts"),
        _PARTITIONED,
    )


class PhoneSighting(Base):
    """A phone (IMSI) heard by a phone-signal fence (电子围栏 / 侦码)."""

    __tablename__ = "phone_sightings"

    imsi: Mapped[str] = mapped_column(String(15), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    fence_id: Mapped[str] = mapped_column(String(64))
    imei: Mapped[str | None] = mapped_column(String(16), default=None)
    mac: Mapped[str | None] = mapped_column(String(17), default=None)
    rssi: Mapped[float | None] = mapped_column(Float, default=None)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_phone_sightings_ts_brin", "ts", postgresql_using="brin"),
        Index("ix_phone_sightings_fence_ts", "fence_id", "ts"),
        _PARTITIONED,
    )


class Hotlist(Base):
    """A hotlist (布控): plates, phones or persons to be alarmed on, for a case and a time window."""

    __tablename__ = "hotlists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(String(1000))
    case_no: Mapped[str] = mapped_column(String(64), index=True)
    valid_from: Mapped[dt.datetime] = mapped_column()
    valid_to: Mapped[dt.datetime] = mapped_column()
    priority: Mapped[int] = mapped_column(Integer)
    fuzzy: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # withdrawn, not deleted: alarms already raised keep pointing at it
    revoked_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    revoked_by: Mapped[str | None] = mapped_column(String(100), default=None)
    revoked_reason: Mapped[str | None] = mapped_column(String(500), default=None)
    # where and when it alarms (hotlists.Scope): {checkpoint_ids?, area_codes?}, "HH:MM-HH:MM" local
    # time (+08:00, may wrap midnight), GA/T 1400 行驶方向 codes; None: everywhere, always, any way
    scope: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    active_hours: Mapped[str | None] = mapped_column(String(11), default=None)
    directions: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    # the past passes matched at creation: how many days back
    retro_days: Mapped[int | None] = mapped_column(Integer, default=None)


class HotlistEntry(Base):
    __tablename__ = "hotlist_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hotlist_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("hotlists.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))  # plate | imsi | person
    value: Mapped[str] = mapped_column(String(64))
    # plates only: the OCR-equivalent key, for hotlists with fuzzy matching
    match_key: Mapped[str | None] = mapped_column(String(64), default=None)
    note: Mapped[str | None] = mapped_column(String(500), default=None)

    __table_args__ = (
        Index("ix_hotlist_entries_kind_value", "kind", "value"),
        Index("ix_hotlist_entries_kind_match_key", "kind", "match_key"),
    )


class Alarm(Base):
    """A hotlist hit (布控告警), stored with the record that raised it; the id orders the stream."""

    __tablename__ = "alarms"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    hotlist_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("hotlists.id", ondelete="CASCADE"), index=True
    )
    entry_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(10))  # plate | imsi | person
    subject: Mapped[str] = mapped_column(String(64))  # what was seen (plate as read, imsi, person id)
    listed: Mapped[str] = mapped_column(String(64))  # what the hotlist names
    record_key: Mapped[str] = mapped_column(String(128))
    sensor_id: Mapped[str] = mapped_column(String(64))
    ts: Mapped[dt.datetime] = mapped_column()
    lon: Mapped[float | None] = mapped_column(Float, default=None)
    lat: Mapped[float | None] = mapped_column(Float, default=None)
    priority: Mapped[int] = mapped_column(Integer)
    case_no: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    # raised by a hotlist's creation for a pass stored before it (from the past), not at ingest
    retro: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # the acknowledgement (签收): confirmed | false_positive, by whom, when, why
    ack_verdict: Mapped[str | None] = mapped_column(String(20), default=None)
    ack_note: Mapped[str | None] = mapped_column(String(1000), default=None)
    ack_by: Mapped[str | None] = mapped_column(String(100), default=None)
    ack_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class AlarmSink(Base):
    """Where alarms go beyond the console (告警推送): a signed webhook, or an MQTT broker and topic
    prefix. The secret (webhook HMAC key, or the broker password) is encrypted at rest."""

    __tablename__ = "alarm_sinks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # webhook | mqtt
    url: Mapped[str] = mapped_column(String(2000))  # webhook URL, or the broker (mqtt://host:port)
    topic: Mapped[str | None] = mapped_column(String(200), default=None)  # mqtt: the topic prefix
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    hotlist_ids: Mapped[list[Any] | None] = mapped_column(default=None)  # None: every hotlist
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AlarmDelivery(Base):
    """The durable outbox of alarm delivery: one row per alarm and sink, written in the alarm's own
    transaction. `next_at` is when it may be tried next; a claimed row's `next_at` is its lease."""

    __tablename__ = "alarm_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    alarm_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("alarms.id", ondelete="CASCADE")
    )
    sink_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("alarm_sinks.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(10), default="pending")  # pending | delivered
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    claim: Mapped[str | None] = mapped_column(String(32), default=None)
    last_error: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[dt.datetime | None] = mapped_column(default=None)

    __table_args__ = (
        UniqueConstraint("alarm_id", "sink_id", name="uq_alarm_deliveries_alarm_sink"),
        # the undelivered rows only (delivered ones stay as a record): claims per sink, outbox depth
        Index(
            "ix_alarm_deliveries_due",
            "sink_id",
            "next_at",
            postgresql_where=text("state = 'pending'"),
            sqlite_where=text("state = 'pending'"),
        ),
    )


class AuditEntry(Base):
    """Who asked what, when, for which case (查询事由). Append-only: PostgreSQL refuses UPDATE, DELETE
    and TRUNCATE (triggers; only the table owner disabling one on purpose, or DROP, removes rows)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    user_name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    route: Mapped[str] = mapped_column(String(100))
    case_no: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    result_size: Mapped[int] = mapped_column(Integer, default=0)
    # "ok", or "refused" (the role may not, or no case number) with the reason
    outcome: Mapped[str] = mapped_column(String(16), default="ok", server_default="ok")
    reason: Mapped[str | None] = mapped_column(String(300), default=None)

    __table_args__ = (Index("ix_audit_log_user_at", "user_name", "at"),)
