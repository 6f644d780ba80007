"""Wire model of a stream check (码流检测) sent by an agent: what a few seconds of the stream measured,
what the device declared, and the stream faults found. Sent in idempotent batches like health."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tianwang.protocol.fields import Instant, Line, Text

# the stream faults an agent may report (edge_agent.probes.stream.STREAM_FAULTS)
StreamFault = Literal[
    "no_stream", "codec", "resolution", "low_fps", "bitrate", "decode_errors", "frozen", "black", "stopped"
]


class DeclaredStream(BaseModel):
    """The device's own word (ONVIF VideoEncoderConfiguration); any field may be unknown."""

    model_config = ConfigDict(extra="ignore")

    encoding: Line | None = Field(None, max_length=16)
    width: int | None = Field(None, ge=1, le=16384)
    height: int | None = Field(None, ge=1, le=16384)
    fps: float | None = Field(None, ge=0, le=1000)
    bitrate_kbps: int | None = Field(None, ge=0, le=10_000_000)
    gov_length: int | None = Field(None, ge=0, le=100_000)


class MeasuredStream(BaseModel):
    """What the agent read from the stream."""

    model_config = ConfigDict(extra="ignore")

    codec: Line | None = Field(None, max_length=32)
    width: int | None = Field(None, ge=1, le=16384)
    height: int | None = Field(None, ge=1, le=16384)
    fps: float | None = Field(None, ge=0, le=10_000)
    bitrate_kbps: float | None = Field(None, ge=0, le=100_000_000)
    gop_frames: float | None = Field(None, ge=0, le=1_000_000)
    frames: int = Field(0, ge=0, le=10_000_000)
    keyframes: int = Field(0, ge=0, le=10_000_000)
    bytes: int = Field(0, ge=0)
    seconds: float = Field(0.0, ge=0, le=86_400)
    decode_errors: int = Field(0, ge=0, le=10_000_000)
    ended: bool = False
    luma_mean: float | None = Field(None, ge=0, le=255)
    luma_spread: float | None = Field(None, ge=0, le=255)
    motion: float | None = Field(None, ge=0, le=255)


class StreamCheckItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    key: str = Field(min_length=8, max_length=128, pattern=r"^[A-Za-z0-9_.:\-]+$")
    device_id: Line = Field(min_length=1, max_length=20)
    ts: Instant
    ok: bool
    faults: list[StreamFault] = Field(default_factory=list, max_length=20)
    declared: DeclaredStream | None = None
    measured: MeasuredStream | None = None
    error: Text | None = Field(None, max_length=500)
