"""A checkpoint record as a user writes and reads it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from tianwang.cameras.ids import check_kind, parse_device_id
from tianwang.cameras.schemas import Lat, Lon, OnvifIn, OnvifOut
from tianwang.checkpoints import codes
from tianwang.validation import InputModel, OptCode, OptText, Text, nfkc


def _code(v: Any, table: dict[str, str], what: str) -> Any:
    """A code of `table` as its string (a JSON number is taken too); None stays None."""
    if v is None:
        return v
    s = str(v).strip() if isinstance(v, (str, int)) and not isinstance(v, bool) else None
    if s is None or s not in table:
        known = ", ".join(f"{c} {n}" for c, n in table.items())
        raise ValueError(f"not a {what} code ({known})")
    return s


class LaneSpec(InputModel):
    """A lane as GA/T 1400 describes it (LaneObject); codes and sources in checkpoints.codes."""

    lane_no: int = Field(ge=1, le=16)  # 1 is the leftmost lane in the direction of travel
    direction: str | None = None  # 行驶方向 code 1–9
    city_pass: int | None = Field(None, ge=1, le=4)  # 1 进城, 2 出城, 3 非进出城, 4 进出城混合
    speed_limit_kmh: int | None = Field(None, ge=5, le=200)

    @field_validator("direction", mode="before")
    @classmethod
    def _direction(cls, v: Any) -> Any:
        table = {c: name for c, (_deg, name) in codes.DIRECTIONS.items()}
        return _code(v, table, "行驶方向 (GA/T 1400 Direction)")


class LaneOut(BaseModel):
    lane_no: int
    direction: str | None
    city_pass: int | None
    speed_limit_kmh: int | None


class CheckpointFields(InputModel):
    name: OptText = Field(None, min_length=1, max_length=200)
    lon: Lon | None = None
    lat: Lat | None = None
    direction_deg: float | None = Field(None, ge=0, le=360, allow_inf_nan=False)
    lanes: int | None = Field(None, ge=1, le=16)
    road: OptText = Field(None, max_length=200)
    area_code: OptCode = Field(None, pattern=r"^[0-9]{2,12}$")
    camera_ids: list[str] | None = Field(None, max_length=64)
    onvif: OnvifIn | None = None
    tollgate_type: str | None = None  # 卡口类型 (GA/T 1400 TollgateCat): 10 国际 … 99 其他
    tollgate_use: str | None = None  # 卡口用途 (TollgateCat2): 80 治安, 81 交通, 82 其他
    lane_list: list[LaneSpec] | None = Field(None, max_length=16)

    @field_validator("tollgate_type", mode="before")
    @classmethod
    def _type(cls, v: Any) -> Any:
        return _code(v, codes.TOLLGATE_TYPES, "卡口类型 (GA/T 1400 TollgateCat)")

    @field_validator("tollgate_use", mode="before")
    @classmethod
    def _use(cls, v: Any) -> Any:
        return _code(v, codes.TOLLGATE_USES, "卡口用途 (GA/T 1400 TollgateCat2)")

    @field_validator("lane_list")
    @classmethod
    def _lanes(cls, v: list[LaneSpec] | None) -> list[LaneSpec] | None:
        if v is not None and len({lane.lane_no for lane in v}) != len(v):
            raise ValueError("lane_list numbers a lane twice")
        return v

    @field_validator("camera_ids")
    @classmethod
    def _ids(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        for i in v:
            parse_device_id(i, "camera_ids")
        if len(set(v)) != len(v):
            raise ValueError("camera_ids has duplicates")
        return v


class CheckpointPatch(CheckpointFields):
    pass


class CheckpointSpec(CheckpointFields):
    checkpoint_id: str
    name: Text = Field(min_length=1, max_length=200)
    lon: Lon
    lat: Lat
    direction_deg: float = Field(ge=0, le=360, allow_inf_nan=False)
    lanes: int = Field(ge=1, le=16)

    @model_validator(mode="after")
    def _consistent(self) -> CheckpointSpec:
        code = parse_device_id(self.checkpoint_id, "checkpoint_id")
        check_kind(code, "checkpoint", "checkpoint_id")
        if self.area_code is None:
            self.area_code = code.division
        if self.lon == 0 and self.lat == 0:
            raise ValueError("lon/lat 0,0 is not a place in a city: position missing")
        over = sorted(lane.lane_no for lane in self.lane_list or () if lane.lane_no > self.lanes)
        if over:
            raise ValueError(f"lane_list: lane {over[0]} is beyond the checkpoint's {self.lanes} lanes")
        return self

    @field_validator("checkpoint_id", mode="before")
    @classmethod
    def _strip(cls, v: Any) -> Any:
        return nfkc(v).strip() if isinstance(v, str) else v


class CheckpointOut(BaseModel):
    checkpoint_id: str
    name: str
    lon: float
    lat: float
    direction_deg: float
    lanes: int
    road: str | None
    area_code: str
    camera_ids: list[str]
    onvif: OnvifOut | None
    tollgate_type: str | None
    tollgate_use: str | None
    lane_list: list[LaneOut]
    status: str
    status_reason: str | None
    last_seen: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
