"""What the agent does on a camera's stream tick: learn its stream URI and declared profile over ONVIF
(or take the registered rtsp_url), run the stream check (码流检测), and put the result in the outbox.

The stream URI and profile are asked once an hour, not every check. Stream checks are blocking
reads in worker threads, so at most `stream_concurrency` run at once; the scheduler's deadline
bounds each one from outside, and the check's own timeouts end its thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import Any

from pydantic import ValidationError

from edge_agent.devices.errors import DeviceError
from edge_agent.devices.onvif_client import OnvifPool
from edge_agent.metrics import Metrics
from edge_agent.observe import assignment_addresses
from edge_agent.outbox import Outbox, stream_key
from edge_agent.probes import stream
from edge_agent.settings import AgentSettings
from tianwang.protocol.agents import Assignment
from tianwang.protocol.stream import StreamCheckItem

log = logging.getLogger("edge_agent.stream")
STREAM_URI_TTL_S = 3600.0


def stream_item(agent_id: str, device_id: str, ts: dt.datetime, result: dict[str, Any]) -> StreamCheckItem:
    """The wire item of one check. A stream's figures are its own word: a hostile or broken one
    (timestamps that jump years, absurd sizes) is out of the wire model's ranges, and then the
    figures are dropped and the check is reported as a decode failure, never as a crash."""
    base = {"key": stream_key(agent_id, device_id, ts), "device_id": device_id, "ts": ts}
    try:
        return StreamCheckItem.model_validate({**base, **result})
    except ValidationError as e:
        where = ", ".join(".".join(str(p) for p in err["loc"]) for err in e.errors()[:5])
        faults = [f for f in result.get("faults", []) if f in stream.STREAM_FAULTS]
        return StreamCheckItem.model_validate(
            {
                **base,
                "ok": False,
                "faults": sorted(set(faults) | {"decode_errors"}),
                "declared": None,
                "measured": None,
                "error": f"bad_answer: stream figures out of range ({where})"[:500],
            }
        )


class StreamWork:
    def __init__(self, settings: AgentSettings, outbox: Outbox, metrics: Metrics, pool: OnvifPool) -> None:
        self.settings = settings
        self.outbox = outbox
        self.metrics = metrics
        self.pool = pool
        self._sem = asyncio.Semaphore(settings.stream_concurrency)
        self._learned: dict[str, tuple[str, stream.DeclaredProfile | None, float]] = {}

    def config(self) -> stream.StreamCheckConfig:
        s = self.settings
        return stream.StreamCheckConfig(
            duration_s=s.stream_duration_s,
            open_timeout_s=s.rtsp_timeout_s,
            read_timeout_s=min(s.rtsp_timeout_s, 5.0),
        )

    async def _target(self, a: Assignment) -> tuple[str, stream.DeclaredProfile | None] | None:
        """The stream to check and what the device declares for it; None when it names none."""
        cached = self._learned.get(a.device_id)
        if cached and time.monotonic() - cached[2] < STREAM_URI_TTL_S:
            return cached[0], cached[1]
        declared: stream.DeclaredProfile | None = None
        url = a.rtsp_url
        if a.onvif is not None:
            o = a.onvif
            client = await self.pool.get(
                o.host,
                o.port,
                o.username,
                o.password or "",
                timeout_s=self.settings.call_timeout_s,
                trust_device_addresses=o.trust_device_addresses,
            )
            profiles = await client.profiles()
            if profiles:
                p = profiles[0]  # the main stream
                declared = stream.DeclaredProfile(
                    p.encoding, p.width, p.height, p.fps, p.bitrate_kbps, p.gov_length
                )
                if url is None:
                    url = await client.stream_uri(p.token)
        if url is None:
            return None
        self._learned[a.device_id] = (url, declared, time.monotonic())
        return url, declared

    async def check(self, a: Assignment) -> bool:
        """One stream check of a camera into the outbox; False when there was nothing to check."""
        if a.kind == "checkpoint":
            return False
        ts = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        user = a.onvif.username if a.onvif else ""
        password = (a.onvif.password or "") if a.onvif else ""
        try:
            target = await self._target(a)
        except DeviceError as e:
            # the camera gave no stream URI: that is evidence too, unless it does not answer at all
            # (the health check reports that)
            self.metrics.probes.labels("stream", e.code).inc()
            log.debug("stream URI of %s: %s", a.device_id, e)
            return False
        if target is None:
            return False
        url, declared = target
        check = stream.StreamTarget(url, user, password, declared, self.config())
        try:
            async with self._sem:
                result = await asyncio.to_thread(stream.check_stream, check, assignment_addresses(a))
        finally:
            self.metrics.probe_seconds.labels("stream").observe(time.perf_counter() - t0)
        self.metrics.probes.labels("stream", "ok" if result["ok"] else "fault").inc()
        item = stream_item(self.settings.agent_id, a.device_id, ts, result)
        await self.outbox.call(self.outbox.add_stream, item)
        return True

    async def timeout(self, a: Assignment, started: dt.datetime) -> None:
        self.metrics.probes.labels("stream", "timeout").inc()

    def forget(self, device_id: str) -> None:
        self._learned.pop(device_id, None)
