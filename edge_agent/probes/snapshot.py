"""Snapshot probe: fetch one picture from a snapshot URL and check it is a decodable JPEG."""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.devices.errors import DeviceError
from edge_agent.devices.snapshot import fetch_snapshot
from edge_agent.probes import ProbeResult, ProbeSettings, current_trace


@dataclass(frozen=True)
class SnapshotTarget:
    url: str
    username: str = ""
    password: str = field(default="", repr=False)


async def probe(target: SnapshotTarget, settings: ProbeSettings) -> ProbeResult:
    trace = current_trace()
    try:
        with trace.phase("fetch"):
            snap = await fetch_snapshot(
                target.url,
                target.username,
                target.password,
                auth=settings.snapshot_auth,
                connect_timeout_s=settings.snapshot_connect_timeout_s,
                read_timeout_s=settings.snapshot_read_timeout_s,
                max_bytes=settings.snapshot_max_bytes,
                decode=settings.decode_snapshot,
            )
    except DeviceError as e:
        return ProbeResult.failed(e, trace)
    trace.data.update(
        width=snap.width, height=snap.height, size=snap.size, sha256=snap.sha256, jpeg=snap.data
    )
    return ProbeResult(True, dict(trace.phases), data=dict(trace.data))
