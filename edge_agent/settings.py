"""The edge agent's configuration: one typed object, from `TIANWANG_AGENT_*` env (or the CLI), read once."""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

_AGENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")


def default_agent_id() -> str:
    """The hostname, reduced to the characters an agent id may hold."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", socket.gethostname()).strip("-.") or "agent"
    return name[:100] if _AGENT_ID.match(name) else f"agent-{name}"[:100]


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TIANWANG_AGENT_", extra="ignore")

    central: str = Field(description="the API's base URL, e.g. https://tianwang.example:8000")
    token: SecretStr = Field(min_length=8, description="an API token of role `agent`")
    agent_id: str = Field(default_factory=default_agent_id, pattern=_AGENT_ID.pattern)
    # area-code prefixes this agent reaches; "*" for all. From env: "4403,4401".
    zones: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["*"], min_length=1)
    capacity: int = Field(1000, ge=1, le=100_000)
    # probes in flight at once (one device conversation each); the event loop, not threads, carries them
    concurrency: int = Field(64, ge=1, le=10_000)
    # picture diagnosis is CPU work in threads: at most this many at once (about the core count)
    diagnosis_concurrency: int = Field(2, ge=1, le=64)

    outbox: Path = Field(Path("tianwang-agent-outbox.db"), description="the durable outbox (SQLite)")
    outbox_max_bytes: int = Field(1024 * 1024 * 1024, ge=1024 * 1024)
    outbox_max_items: int = Field(2_000_000, ge=100)
    # FULL: a committed observation survives power loss too (an edge box loses power more often than a
    # server); NORMAL survives a crash of the agent (SIGKILL) but may lose the last commits on power loss.
    outbox_synchronous: Literal["FULL", "NORMAL"] = "FULL"
    # keep a table of every idempotency key produced (for audits and the no-loss tests); grows forever
    outbox_journal: bool = False

    metrics_port: int = Field(9108, ge=0, le=65535, description="0: no /metrics server")
    metrics_host: str = "127.0.0.1"

    heartbeat_wait_s: float = Field(25.0, ge=0, le=60, description="long-poll wait asked of the API")
    heartbeat_min_interval_s: float = Field(1.0, ge=0.05, le=300)
    # Multiplies the assignment's intervals. 1.0 in production; tests and demos use e.g. 0.1 so a
    # registered 10 s health interval (the API's minimum) runs every second.
    interval_scale: float = Field(1.0, gt=0, le=100)
    min_interval_s: float = Field(0.2, gt=0, le=3600)

    call_timeout_s: float = Field(5.0, gt=0, le=120, description="one ONVIF call")
    health_deadline_s: float = Field(12.0, gt=0, le=300, description="a whole health probe")
    snapshot_deadline_s: float = Field(20.0, gt=0, le=300, description="fetch + diagnosis of one snapshot")
    snapshot_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, le=32 * 1024 * 1024)
    rtsp_timeout_s: float = Field(8.0, gt=0, le=120)
    # the stream check (码流检测): each camera every N seconds (0: never, the default: it reads
    # seconds of video per camera), this much stream time per check, a few at once (threads)
    stream_interval_s: float = Field(0.0, ge=0, le=86_400)
    stream_duration_s: float = Field(3.0, gt=0, le=60)
    stream_deadline_s: float = Field(30.0, gt=0, le=600)
    stream_concurrency: int = Field(2, ge=1, le=64)

    batch_size: int = Field(500, ge=1, le=5000, description="health items per POST")
    snapshot_batch: int = Field(50, ge=1, le=1000)
    upload_concurrency: int = Field(4, ge=1, le=64)
    backoff_base_s: float = Field(0.5, gt=0, le=60)
    backoff_cap_s: float = Field(60.0, gt=0, le=3600)
    http_connect_timeout_s: float = Field(5.0, gt=0, le=120)
    http_read_timeout_s: float = Field(30.0, gt=0, le=600)
    grace_s: float = Field(
        10.0, ge=0, le=600, description="on SIGTERM: time to finish in-flight work and flush"
    )

    @field_validator("zones", mode="before")
    @classmethod
    def _split_zones(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [z.strip() for z in v.split(",") if z.strip()]
        return v

    @field_validator("zones")
    @classmethod
    def _check_zones(cls, v: list[str]) -> list[str]:
        for z in v:
            if z != "*" and not (z.isdigit() and 1 <= len(z) <= 12):
                raise ValueError(f"zone {z!r} is neither '*' nor an area-code prefix of digits")
        return v

    @field_validator("central")
    @classmethod
    def _check_central(cls, v: str) -> str:
        v = v.strip().rstrip("/")
        if not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"central URL {v!r} must start with http:// or https://")
        return v
