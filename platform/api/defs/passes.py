"""Pass search (过车查询): one page of passes with the parameters echoed and an estimated total."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tianwang.api.defs.common import Out


class PassOut(Out):
    plate_no: str
    plate_kind: str
    plate_valid: bool
    plate_color: str | None
    vehicle_type: str | None
    vehicle_color: str | None
    ts: str
    key: str
    checkpoint_id: str
    checkpoint_name: str | None
    lon: float | None
    lat: float | None
    lane: int | None
    direction_deg: float | None
    speed_kmh: float | None
    image_key: str | None
    device_id: str | None


class PassPage(Out):
    params: dict[str, Any] = Field(description="every filter as applied, defaults filled in")
    items: list[PassOut]
    next_cursor: str | None
    total_estimate: int
    total_exact: bool
