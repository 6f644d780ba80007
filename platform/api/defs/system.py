"""Liveness, who-am-I, and the GA/T 1400 (VIID) reply."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tianwang.api.defs.common import Out


class Health(Out):
    status: Literal["ok"]


class Me(Out):
    name: str
    role: str


class ViidStatus(Out):
    """GA/T 1400 ResponseStatusObject: one per pushed object (StatusCode 0 is OK)."""

    RequestURL: str
    StatusCode: int
    StatusString: str
    Id: str = Field(description="the object's id (MotorVehicleID), empty when the body itself failed")
    LocalTime: str = Field(description="yyyyMMddHHmmss, local time")


class ViidStatusList(Out):
    ResponseStatusObject: list[ViidStatus]


class ViidResponse(Out):
    """GA/T 1400 ResponseStatusListObject."""

    ResponseStatusListObject: ViidStatusList
