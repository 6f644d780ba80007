"""An agent process runs the stream check on its cameras' real RTSP streams (the simulator's GStreamer
server) and the API derives the `stream` fault: a clean camera stays online with its check stored, a
camera with a low frame rate and one with no stream are listed in /faults with their reasons."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from simulator.devices import SimulatorThread
from simulator.spec import make_specs
from tests.agent_support import AgentProcess, register, tokens_for, wait_until
from tests.conftest import LiveServer, auth
from tianwang.context import AppContext

FAULTS: list[dict[str, Any]] = [{}, {"low_fps": 5}, {"no_stream": True}]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_agent_checks_streams_and_the_api_lists_stream_faults(
    live_server: tuple[LiveServer, AppContext], tmp_path: Any
) -> None:
    srv, ctx = live_server
    tok = tokens_for(ctx)
    specs = make_specs(len(FAULTS), 0, seed=43)
    for spec, faults in zip(specs, FAULTS, strict=True):
        spec.width, spec.height, spec.bitrate_kbps = 320, 180, 1024
        spec.faults = dict(faults)
    with SimulatorThread(specs=specs, rtsp=True) as sim:
        described = sim.describe()
        ids = [d["device_id"] for d in described]
        over = {d: {"health_interval_s": 20, "snapshot_interval_s": 3600} for d in ids}
        register(srv.url, tok["installer"], described, **over)
        agent = AgentProcess(
            srv.url,
            tok["agent"],
            tmp_path / "outbox.db",
            tmp_path / "agent.log",
            interval_scale=0.1,  # health every 2 s, streams every 3 s
            stream_interval_s=30,
            stream_duration_s=2,
            call_timeout_s=3,
            heartbeat_wait_s=5,
        ).start()
        staff = auth(tok["staff"])
        try:

            def faults() -> dict[str, Any] | None:
                r = httpx.get(f"{srv.url}/api/v1/faults", headers=staff, timeout=10).json()
                found = {f["device_id"]: f for f in r}
                return found if {ids[1], ids[2]} <= set(found) else None

            found = wait_until("the two stream faults in /faults", faults, 90)
            assert found[ids[1]]["stream_faults"] == ["low_fps"]
            assert "frame rate below the profile" in found[ids[1]]["reason"]
            assert found[ids[2]]["stream_faults"] == ["no_stream"] and "404" in found[ids[2]]["reason"]
            assert ids[0] not in found

            def clean_checked() -> list[dict[str, Any]] | None:
                url = f"{srv.url}/api/v1/cameras/{ids[0]}/streams"
                return httpx.get(url, headers=staff, timeout=10).json() or None

            checks = wait_until("a stored check of the clean camera", clean_checked, 60)
            c = checks[0]
            assert c["ok"] is True and c["codec"] == "h264" and (c["width"], c["height"]) == (320, 180)
            assert 22 <= c["fps"] <= 28 and c["bitrate_kbps"] > 0
            # the profile it was compared with came from the camera's own ONVIF answer
            assert c["declared"]["width"] == 320 and c["declared"]["bitrate_kbps"] == 1024
            cam = httpx.get(f"{srv.url}/api/v1/cameras/{ids[0]}", headers=staff, timeout=10).json()
            assert cam["status"] == "online"
        finally:
            agent.terminate()
