"""ONVIF probe: unauthenticated clock → authenticated device information → media profiles."""

from __future__ import annotations

from dataclasses import asdict

from edge_agent.devices.errors import DeviceError
from edge_agent.probes import ProbeResult, ProbeSettings, current_trace
from edge_agent.probes._clients import onvif_client
from tianwang.protocol import OnvifEndpoint


async def probe(target: OnvifEndpoint, settings: ProbeSettings) -> ProbeResult:
    trace = current_trace()
    async with onvif_client(target, settings) as client:
        try:
            with trace.phase("clock"):
                clock = await client.system_date_and_time()
            trace.data["reachable"] = True
            trace.data["clock_skew_s"] = clock.skew_s
            with trace.phase("auth"):
                info = await client.device_information()
            trace.data["authenticated"] = True
            trace.data["device_info"] = asdict(info)
            with trace.phase("profiles"):
                profiles = await client.profiles()
            trace.data["profiles"] = [asdict(p) for p in profiles]
        except DeviceError as e:
            return ProbeResult.failed(e, trace)
    return ProbeResult(True, dict(trace.phases), data=dict(trace.data))
