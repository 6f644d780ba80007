"""Shared wire models between the API and edge agents — the only part of the platform the agent imports."""

from tianwang.protocol.probe import (
    STEP_NAMES,
    DeviceInfo,
    OnvifEndpoint,
    ProbeError,
    ProbeRequest,
    ProbeResult,
    ProbeStep,
    ProfileInfo,
    SnapshotInfo,
)

__all__ = [
    "STEP_NAMES",
    "DeviceInfo",
    "OnvifEndpoint",
    "ProbeError",
    "ProbeRequest",
    "ProbeResult",
    "ProbeStep",
    "ProfileInfo",
    "SnapshotInfo",
]
