"""Wire models of the installer's probe: what the API asks an agent (or itself) and what comes back.

The answer's shape is the one in docs/api.md (`POST /api/v1/cameras/{device_id}/probe`); `steps`
adds, per step, whether it ran, how long it took and why it failed or was skipped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

StepName = Literal["clock", "auth", "profiles", "uris", "snapshot"]
STEP_NAMES: tuple[StepName, ...] = ("clock", "auth", "profiles", "uris", "snapshot")


class OnvifEndpoint(BaseModel):
    """How to reach one device's ONVIF device service. The password never leaves as plain text."""

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(80, ge=1, le=65535)
    username: str = Field("", max_length=100)
    password: SecretStr = SecretStr("")
    # "wsse": WS-UsernameToken (ONVIF standard); "digest": HTTP Digest only; "both"
    transport_auth: Literal["wsse", "digest", "both"] = "wsse"
    # False: the XAddrs and URIs the device names are moved to host:port (cameras behind NAT);
    # True: they are used as the device names them
    trust_device_addresses: bool = False


class ProbeRequest(BaseModel):
    device_id: str = Field(min_length=1, max_length=20)
    onvif: OnvifEndpoint | None = None
    # the registry's snapshot URL, used when ONVIF gives none (or the device has no ONVIF)
    snapshot_url: str | None = Field(None, max_length=1000)
    deadline_s: float = Field(15.0, gt=0, le=120)
    fetch_snapshot: bool = True


class DeviceInfo(BaseModel):
    manufacturer: str | None = None
    model: str | None = None
    firmware: str | None = None
    serial: str | None = None


class ProfileInfo(BaseModel):
    token: str
    name: str | None = None
    encoding: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None


class SnapshotInfo(BaseModel):
    key: str | None = None  # object-store key, set once the picture is stored
    width: int
    height: int
    size: int
    sha256: str
    quality: dict[str, Any] | None = None
    judged: bool = False  # True when picture diagnosis ran and `quality` is its verdict
    url: str | None = None  # short-lived presigned GET of the stored picture, set by the API


class ProbeError(BaseModel):
    code: str  # unreachable | timeout | auth_refused | bad_answer | …
    message: str


class ProbeStep(BaseModel):
    name: StepName
    outcome: Literal["ok", "failed", "skipped"]
    duration_ms: float = 0.0
    code: str | None = None
    message: str | None = None  # why it failed, or why it was skipped


class ProbeResult(BaseModel):
    model_config = ConfigDict(extra="ignore")

    device_id: str
    reachable: bool = False
    # True: the credentials were accepted; False: refused; None: unknown (the device never got that far)
    authenticated: bool | None = None
    clock_skew_s: float | None = None
    device_info: DeviceInfo | None = None
    profiles: list[ProfileInfo] = Field(default_factory=list)
    snapshot_uri: str | None = None
    stream_uri: str | None = None
    snapshot: SnapshotInfo | None = None
    error: ProbeError | None = None
    duration_ms: float = 0.0
    steps: list[ProbeStep] = Field(default_factory=list)
    probed_at: dt.datetime | None = None
