"""Wire models of agent observations: health checks and snapshots, sent in idempotent batches."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Key = str  # idempotency key: the same observation replayed carries the same key


class HealthItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: Key = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    device_id: str = Field(min_length=1, max_length=20)
    ts: dt.datetime
    reachable: bool
    authenticated: bool | None = None
    latency_ms: float | None = Field(None, ge=0, le=3_600_000)
    clock_skew_s: float | None = Field(None, ge=-10 * 365 * 86400, le=10 * 365 * 86400)
    stream_ok: bool | None = None
    error: str | None = Field(None, max_length=500)


class Quality(BaseModel):
    model_config = ConfigDict(extra="allow")

    signal_loss: float | None = None
    blur: float | None = None
    brightness: float | None = None
    color_cast: float | None = None
    occlusion: float | None = None
    noise: float | None = None
    frozen: float | None = None
    scene_change: float | None = None
    verdict: Literal["ok", "fault"]
    faults: list[str] = Field(default_factory=list, max_length=20)


class SnapshotItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(min_length=1, max_length=512)  # the object key from presign
    device_id: str = Field(min_length=1, max_length=20)
    ts: dt.datetime
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    width: int = Field(ge=1, le=16384)
    height: int = Field(ge=1, le=16384)
    quality: Quality | None = None


class PresignRequest(BaseModel):
    device_id: str = Field(min_length=1, max_length=20)
    ts: dt.datetime
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1, le=32 * 1024 * 1024)
    content_type: Literal["image/jpeg"] = "image/jpeg"


class PresignReply(BaseModel):
    key: str
    url: str
    expires_at: dt.datetime


class Rejected(BaseModel):
    index: int
    key: str | None = None
    errors: list[str]


class IngestReply(BaseModel):
    accepted: int
    duplicates: int
    rejected: list[Rejected] = Field(default_factory=list)


class Batch(BaseModel):
    """`{items: [...]}`; items are validated one by one so one bad item does not sink the batch."""

    items: list[dict[str, Any]] = Field(max_length=5000)
