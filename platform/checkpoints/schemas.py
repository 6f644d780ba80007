"""A checkpoint record as a user writes and reads it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field, field_validator, model_validator

from tianwang.cameras.ids import check_kind, parse_device_id
from tianwang.cameras.schemas import Lat, Lon, OnvifIn, OnvifOut
from tianwang.validation import InputModel, OptCode, OptText, Text, nfkc


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
    status: str
    status_reason: str | None
    last_seen: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
