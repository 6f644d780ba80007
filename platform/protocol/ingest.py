"""Wire models of agent observations: health checks and snapshots, sent in idempotent batches."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tianwang.protocol.fields import Instant, Line, Text, check_json, safe_echo

Key = str  # idempotency key: the same observation replayed carries the same key
# A device clock is whatever its battery left it: 1970 and 2000 are common, and every skew is evidence.
# Only a reading no clock could give (beyond two centuries either way) is refused as nonsense.
MAX_CLOCK_SKEW_S = 200 * 365.25 * 86400
# the pictures stored: what OpenCV decodes in another format (BMP, …) is stored as lossless PNG
IMAGE_TYPES = {"image/jpeg": "jpg", "image/png": "png"}
ImageType = Literal["image/jpeg", "image/png"]


class HealthItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: Key = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    device_id: Line = Field(min_length=1, max_length=20)
    ts: Instant
    reachable: bool
    authenticated: bool | None = None
    latency_ms: float | None = Field(None, ge=0, le=3_600_000)
    clock_skew_s: float | None = Field(None, ge=-MAX_CLOCK_SKEW_S, le=MAX_CLOCK_SKEW_S)
    stream_ok: bool | None = None
    error: Text | None = Field(None, max_length=500)


class Quality(BaseModel):
    # stored as JSON, which has no NaN or Infinity
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    signal_loss: float | None = None
    blur: float | None = None
    brightness: float | None = None
    color_cast: float | None = None
    occlusion: float | None = None
    noise: float | None = None
    frozen: float | None = None
    scene_change: float | None = None
    verdict: Literal["ok", "fault"]
    faults: list[Line] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _storable_extras(self) -> Quality:
        # the extra measures are stored as JSON as sent: no text in them PostgreSQL would refuse
        check_json(self.model_extra)
        return self


class SnapshotItem(BaseModel):
    """A picture taken (its object key from presign), or a snapshot that failed (`error`, no picture:
    then `key` is the agent's idempotency key of the attempt)."""

    model_config = ConfigDict(extra="ignore")

    key: Line = Field(min_length=1, max_length=512)  # the object key from presign
    device_id: Line = Field(min_length=1, max_length=20)
    ts: Instant
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")
    width: int | None = Field(None, ge=1, le=16384)
    height: int | None = Field(None, ge=1, le=16384)
    quality: Quality | None = None
    error: Text | None = Field(None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _picture_or_error(self) -> SnapshotItem:
        picture = (self.sha256, self.width, self.height)
        if self.error is None and None in picture:
            raise ValueError("a snapshot has sha256, width and height, or an error")
        if self.error is not None and (any(v is not None for v in picture) or self.quality is not None):
            raise ValueError("a failed snapshot (error) carries no picture fields")
        return self


class PresignRequest(BaseModel):
    device_id: Line = Field(min_length=1, max_length=20)
    ts: Instant
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, le=32 * 1024 * 1024)
    content_type: ImageType = "image/jpeg"


class PresignReply(BaseModel):
    key: str
    url: str
    expires_at: dt.datetime


class Rejected(BaseModel):
    index: int
    key: str | None = None
    errors: list[str]

    @field_validator("key", "errors")
    @classmethod
    def _echoable(cls, v: Any) -> Any:
        # what a bad item sent is echoed: fit it for a UTF-8 reply, or the reply itself fails
        return [safe_echo(e) for e in v] if isinstance(v, list) else safe_echo(v)


class IngestReply(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejected] = Field(default_factory=list)


class Batch(BaseModel):
    """`{items: [...]}`; items are validated one by one so one bad item does not sink the batch."""

    items: list[dict[str, Any]] = Field(max_length=5000)
