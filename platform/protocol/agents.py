"""Wire models between edge agents and the API: heartbeat, assignments, commands.

Shared by both sides; imports nothing but pydantic, so an agent can be deployed alone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tianwang.protocol.fields import Line, Text, check_json


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    agent_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
    version: Line = Field(max_length=50)
    capacity: int = Field(ge=1, le=100_000, description="devices this agent can watch")
    zones: list[str] = Field(
        min_length=1, max_length=1000, description='area-code prefixes it reaches, or ["*"]'
    )
    # how long the API may hold the request open while nothing is pending (long poll)
    wait_s: float = Field(0, ge=0, le=60)
    # the config_version the agent already has: an unchanged assignment list is not sent again
    config_version: Line | None = Field(None, max_length=64)


class OnvifCredentials(BaseModel):
    host: str
    port: int
    username: str
    password: str | None = Field(None, description="decrypted for the agent only; TLS in production")
    # False: the XAddrs and URIs the device names are moved to host:port (cameras behind NAT)
    trust_device_addresses: bool = False


class Assignment(BaseModel):
    device_id: str
    kind: str
    onvif: OnvifCredentials | None = None
    rtsp_url: str | None = None
    snapshot_url: str | None = None
    # the stream URI the device named to the last probe: a picture's last resort when snapshots fail
    stream_uri: str | None = None
    health_interval_s: int
    snapshot_interval_s: int


class Command(BaseModel):
    id: str
    # probe: the installer's probe; set_clock: set the device clock to the agent's (SetSystemDateAndTime)
    kind: Literal["probe", "set_clock"]
    device_id: str
    deadline: dt.datetime
    # everything the agent needs to run it without another round trip: the device and, for a
    # probe, where to upload the test snapshot (presigned PUT) and under which key
    device: Assignment
    snapshot_key: str | None = None
    snapshot_put_url: str | None = None


class HeartbeatReply(BaseModel):
    agent_id: str
    config_version: str
    # None when the agent already has this config_version
    assignments: list[Assignment] | None
    commands: list[Command]
    server_time: dt.datetime


class CommandResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ok: bool
    result: dict[str, Any] = Field(default_factory=dict)
    error: Text | None = Field(None, max_length=1000)

    @field_validator("result")
    @classmethod
    def _storable(cls, v: dict[str, Any]) -> dict[str, Any]:
        check_json(v)  # stored as sent: no NUL, control character, NaN or infinity anywhere
        return v
