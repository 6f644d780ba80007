"""Wire models of the 三轨 records pushed in native batches: vehicle passes, face and phone sightings."""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from tianwang.protocol.fields import Instant, Line
from tianwang.protocol.ingest import IngestReply

KEY = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")


def _nfkc(v: object) -> object:
    """A number or code as a device may send it: NFKC, so full-width "４６０…" is the subject "460…"."""
    return unicodedata.normalize("NFKC", v) if isinstance(v, str) else v


Number = Annotated[str, BeforeValidator(_nfkc)]
OptNumber = Annotated[str | None, BeforeValidator(_nfkc)]


class PassItem(BaseModel):
    """One vehicle pass (过车); `plate_no` is normalised and classified by the platform.

    Only `key`, `checkpoint_id` and `ts` are required. A pass without a readable plate is sent with
    `plate_no` absent, empty, 无牌 or 未识别 and is stored (see `checkpoints.plates.read`). An
    optional field out of range is dropped (stored null) and named in the reply's `warnings`.
    """

    model_config = ConfigDict(extra="ignore")

    key: str = KEY
    checkpoint_id: Line = Field(min_length=1, max_length=20)
    lane: int | None = Field(None, ge=0, le=99)
    ts: Instant
    plate_no: Line | None = Field(None, max_length=40)
    plate_color: Line | int | None = None
    vehicle_type: Line | None = Field(None, max_length=10)
    vehicle_color: Line | int | None = None
    speed_kmh: float | None = Field(None, ge=0, le=400)
    direction_deg: float | None = Field(None, ge=0, lt=360)
    image_key: Line | None = Field(None, max_length=1000)


# What may be dropped from an item, with a warning, instead of refusing it.
PASS_OPTIONAL = frozenset(
    {
        "lane",
        "plate_no",
        "plate_color",
        "vehicle_type",
        "vehicle_color",
        "speed_kmh",
        "direction_deg",
        "image_key",
    }
)
FACE_OPTIONAL = frozenset({"image_key"})
# In the extra columns a mapping hands to the pass ingest (GA/T 1400): its own warnings, not a column.
EXTRA_WARNINGS = "_warnings"
PHONE_OPTIONAL = frozenset({"imei", "mac", "rssi"})


class Warned(BaseModel):
    """An item stored without some of its fields: what was dropped and why."""

    index: int
    key: str | None = None
    warnings: list[str]


class RecordReply(IngestReply):
    """The ingest reply for passes and sightings: `warnings` lists items stored with fields dropped."""

    warnings: list[Warned] = Field(default_factory=list)


class FaceItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = KEY
    camera_id: Line = Field(min_length=1, max_length=20)
    ts: Instant
    person_id: str = Field(min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f]+$")
    confidence: float = Field(ge=0, le=1)
    image_key: Line | None = Field(None, max_length=1000)


class PhoneItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = KEY
    fence_id: Line = Field(min_length=1, max_length=64)
    ts: Instant
    imsi: Number = Field(pattern=r"^[0-9]{6,15}$")
    imei: OptNumber = Field(None, pattern=r"^[0-9]{14,16}$")
    mac: OptNumber = Field(None, pattern=r"^[0-9A-Fa-f]{2}([:-]?[0-9A-Fa-f]{2}){5}$")
    rssi: float | None = Field(None, ge=-200, le=50)
