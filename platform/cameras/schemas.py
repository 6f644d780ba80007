"""The camera record's fields and rules (GB/T 28181-2022 catalog core + 一机一档 extension).

`CameraSpec` is the record as a user writes it — the API body, one row of an import sheet —
and owns its validation, so every way into the registry applies the same rules.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, SecretStr, field_validator, model_validator

from tianwang.cameras.ids import CAMERA_KINDS, check_kind, parse_device_id
from tianwang.protocol.fields import Instant
from tianwang.validation import InputModel, OptCode, OptText, check_display_text, nfkc


class Kind(enum.StrEnum):
    bullet = "bullet"
    dome = "dome"
    ptz = "ptz"
    turret = "turret"
    fisheye = "fisheye"
    checkpoint = "checkpoint"
    face = "face"


assert tuple(k.value for k in Kind) == CAMERA_KINDS


class PtzType(enum.IntEnum):
    """GB/T 28181 PTZType: 1 球机, 2 半球, 3 固定枪机, 4 遥控枪机."""

    dome = 1
    hemisphere = 2
    fixed_bullet = 3
    remote_bullet = 4


class PositionType(enum.IntEnum):
    """GB/T 28181 PositionType (位置类型)."""

    border_checkpoint = 1  # 省际检查站
    government = 2  # 党政机关
    station_port = 3  # 车站码头
    square = 4  # 中心广场
    stadium = 5  # 体育场馆
    commercial = 6  # 商业中心
    religious = 7  # 宗教场所
    campus = 8  # 校园周边
    complex_security = 9  # 治安复杂区域
    arterial = 10  # 交通干线


class RoomType(enum.IntEnum):
    """GB/T 28181 RoomType: 1 室外, 2 室内."""

    outdoor = 1
    indoor = 2


class SupplyLightType(enum.IntEnum):
    """GB/T 28181 SupplyLightType (补光): 1 none, 2 infrared, 3 white light, 4 laser, 9 other."""

    none = 1
    infrared = 2
    white = 3
    laser = 4
    other = 9


class DirectionType(enum.IntEnum):
    """GB/T 28181 DirectionType (监视方位, where the camera looks): 1 E, 2 W, 3 S, 4 N, 5 SE, 6 NE,
    7 SW, 8 NW.

    Checked against 648540858/wvp-GB28181-pro
    src/main/java/com/genersoft/iot/vmp/gb28181/bean/CommonGBChannel.java (gbDirectionType: 1-东
    2-西 3-南 4-北 5-东南 6-东北 7-西南 8-西北); see docs/standards.md. Not GA/T 1400's 行驶方向, whose
    diagonals are numbered differently (checkpoints.codes.DIRECTIONS).
    """

    east = 1
    west = 2
    south = 3
    north = 4
    southeast = 5
    northeast = 6
    southwest = 7
    northwest = 8


class Lifecycle(enum.StrEnum):
    """一机一档 lifecycle: in use (在用), under repair (维修), removed (拆除)."""

    in_use = "in_use"
    under_repair = "under_repair"
    removed = "removed"


class Status(enum.StrEnum):
    registered = "registered"
    online = "online"
    offline = "offline"
    fault = "fault"


def direction_type_for(heading_deg: float) -> DirectionType:
    """The eight-way GB/T 28181 direction nearest a compass heading."""
    order = [
        DirectionType.north,
        DirectionType.northeast,
        DirectionType.east,
        DirectionType.southeast,
        DirectionType.south,
        DirectionType.southwest,
        DirectionType.west,
        DirectionType.northwest,
    ]
    return order[int(((heading_deg % 360) + 22.5) // 45) % 8]


Lon = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]
Lat = Annotated[float, Field(ge=-90, le=90, allow_inf_nan=False)]
Text200 = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(check_display_text)]


class OnvifIn(InputModel):
    host: str = Field(min_length=1, max_length=255)
    port: int = Field(80, ge=1, le=65535)
    username: str = Field("", max_length=100)
    password: SecretStr | None = Field(None, description="write-only; encrypted at rest, never returned")
    trust_device_addresses: bool = Field(
        False,
        description="use the addresses the device names in its answers; by default they are moved "
        "to host:port (cameras behind NAT or a port forward)",
    )

    @field_validator("host")
    @classmethod
    def _host(cls, v: str) -> str:
        v = v.strip()
        if any(c in v for c in "/ ?#@"):
            raise ValueError("host is a name or address, not a URL")
        # a DNS name, an IPv4 address or a bracketed IPv6 address: nothing a spreadsheet would run
        if not re.fullmatch(r"[A-Za-z0-9](?:[A-Za-z0-9.\-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]", v):
            raise ValueError("host must be a DNS name or an IP address")
        return v


class OnvifOut(BaseModel):
    host: str
    port: int
    username: str
    has_password: bool
    trust_device_addresses: bool = False


def _url(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    v = v.strip()
    if not v.lower().startswith(("rtsp://", "rtsps://", "http://", "https://")):
        raise ValueError("must be an rtsp:// or http(s):// URL")
    if len(v) > 1000:
        raise ValueError("URL too long")
    return v


class CameraFields(InputModel):
    """Every field a user may set; all optional here, required ones enforced by CameraSpec."""

    name: Text200 | None = None
    kind: Kind | None = None
    lon: Lon | None = None
    lat: Lat | None = None
    heading_deg: float | None = Field(None, ge=0, le=360, allow_inf_nan=False)
    hfov_deg: float | None = Field(None, ge=1, le=360, allow_inf_nan=False)
    range_m: float | None = Field(None, gt=0, le=5000, allow_inf_nan=False)
    point_class: int | None = Field(None, ge=1, le=3, description="一类 / 二类 / 三类 point")
    area_code: OptCode = Field(None, pattern=r"^[0-9]{2,12}$")
    address: OptText = Field(None, max_length=300)
    onvif: OnvifIn | None = None
    rtsp_url: str | None = None
    snapshot_url: str | None = None
    health_interval_s: int | None = Field(None, ge=10, le=86400)
    snapshot_interval_s: int | None = Field(None, ge=30, le=7 * 86400)
    # GB/T 28181-2022 catalog core
    ptz_type: PtzType | None = None
    position_type: PositionType | None = None
    room_type: RoomType | None = None
    supply_light_type: SupplyLightType | None = None
    direction_type: DirectionType | None = None
    resolution: OptText = Field(None, max_length=50)
    record_retention_days: int | None = Field(None, ge=1, le=3650)
    install_time: Instant | None = None
    management_unit: OptText = Field(None, max_length=200)
    # 一机一档 extension
    police_station: OptText = Field(None, max_length=200)
    maintenance_unit: OptText = Field(None, max_length=200)
    construction_batch: OptText = Field(None, max_length=100)
    photos: list[str] | None = Field(None, max_length=50)
    lifecycle: Lifecycle | None = None
    agent_id: str | None = Field(None, max_length=100, description="pin the device to one agent")
    checkpoint_id: OptCode = Field(None, pattern=r"^[0-9]{20}$")

    _check_urls = field_validator("rtsp_url", "snapshot_url")(lambda v: _url(v))

    @field_validator("install_time")
    @classmethod
    def _aware(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("needs a UTC offset (ISO-8601, e.g. 2024-05-01T08:00:00+08:00)")
        return v


class CameraPatch(CameraFields):
    """PATCH body: any subset of the fields; the merged record is checked as a CameraSpec."""


class CameraSpec(CameraFields):
    """A whole camera record as written by a user (POST body, one import row)."""

    device_id: str
    name: Text200
    kind: Kind
    lon: Lon
    lat: Lat
    heading_deg: float = Field(ge=0, le=360, allow_inf_nan=False)
    hfov_deg: float = Field(ge=1, le=360, allow_inf_nan=False)
    range_m: float = Field(gt=0, le=5000, allow_inf_nan=False)
    point_class: int = Field(ge=1, le=3)
    health_interval_s: int = Field(60, ge=10, le=86400)
    snapshot_interval_s: int = Field(900, ge=30, le=7 * 86400)

    @model_validator(mode="after")
    def _consistent(self) -> CameraSpec:
        code = parse_device_id(self.device_id)
        check_kind(code, self.kind.value)
        if self.lon == 0 and self.lat == 0:
            raise ValueError("lon/lat 0,0 is not a place in a city: position missing")
        if self.area_code is None:
            self.area_code = code.division
        if self.heading_deg == 360:
            self.heading_deg = 0.0
        if self.direction_type is None and self.hfov_deg < 360:
            self.direction_type = direction_type_for(self.heading_deg)
        return self

    @field_validator("device_id", mode="before")
    @classmethod
    def _strip_id(cls, v: Any) -> Any:
        return nfkc(v).strip() if isinstance(v, str) else v


class CameraOut(BaseModel):
    """A camera as every route returns it: never the password."""

    device_id: str
    name: str
    kind: str
    lon: float
    lat: float
    heading_deg: float
    hfov_deg: float
    range_m: float
    point_class: int
    area_code: str
    division: str
    address: str | None
    onvif: OnvifOut | None
    rtsp_url: str | None
    snapshot_url: str | None
    stream_uri: str | None
    snapshot_uri: str | None
    health_interval_s: int
    snapshot_interval_s: int
    ptz_type: int | None
    position_type: int | None
    room_type: int | None
    supply_light_type: int | None
    direction_type: int | None
    resolution: str | None
    record_retention_days: int | None
    install_time: dt.datetime | None
    management_unit: str | None
    manufacturer: str | None
    model: str | None
    firmware: str | None
    serial: str | None
    police_station: str | None
    maintenance_unit: str | None
    construction_batch: str | None
    photos: list[str]
    lifecycle: str
    agent_id: str | None
    checkpoint_id: str | None
    status: str
    status_reason: str | None
    last_seen: dt.datetime | None
    last_probe_at: dt.datetime | None
    # device clock − agent clock at the last health check; since when it is the `clock` fault
    clock_skew_s: float | None = None
    clock_fault_since: dt.datetime | None = None
    # snapshots in a row without a picture, and why the last one failed
    snapshot_failures: int = 0
    last_snapshot_error: str | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
