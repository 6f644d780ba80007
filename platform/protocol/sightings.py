"""Wire models of the 三轨 records pushed in native batches: vehicle passes, face and phone sightings."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

KEY = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")


class PassItem(BaseModel):
    """One vehicle pass (过车); `plate_no` is normalised and checked by the platform."""

    model_config = ConfigDict(extra="ignore")

    key: str = KEY
    checkpoint_id: str = Field(min_length=1, max_length=20)
    lane: int | None = Field(None, ge=0, le=99)
    ts: dt.datetime
    plate_no: str = Field(min_length=1, max_length=40)
    plate_color: str | int | None = None
    vehicle_type: str | None = Field(None, max_length=10)
    vehicle_color: str | int | None = None
    speed_kmh: float | None = Field(None, ge=0, le=400)
    direction_deg: float | None = Field(None, ge=0, lt=360)
    image_key: str | None = Field(None, max_length=1000)


class FaceItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = KEY
    camera_id: str = Field(min_length=1, max_length=20)
    ts: dt.datetime
    person_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\s]+$")
    confidence: float = Field(ge=0, le=1)
    image_key: str | None = Field(None, max_length=1000)


class PhoneItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = KEY
    fence_id: str = Field(min_length=1, max_length=64)
    ts: dt.datetime
    imsi: str = Field(pattern=r"^\d{6,15}$")
    imei: str | None = Field(None, pattern=r"^\d{14,16}$")
    mac: str | None = Field(None, pattern=r"^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}$")
    rssi: float | None = Field(None, ge=-200, le=50)
