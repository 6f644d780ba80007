"""The stream check (码流检测) against the simulator's real RTSP server (GStreamer, spawned under the
system python3): a healthy stream is measured (codec, fps, resolution, bitrate, GOP) and matches the
profile the device declares over ONVIF; each stream fault the simulator plants is caught, one test
per fault. Every check here reads a real RTSP stream over TCP with PyAV."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from edge_agent.devices.onvif_client import OnvifClient
from edge_agent.probes import ProbeSettings, run_with_deadline
from edge_agent.probes import stream as sc
from simulator.devices import SimulatorThread
from simulator.rtsp import StreamProfile, launch_for
from simulator.spec import make_specs

# one device per case; small pictures keep the encoders cheap on a shared machine
CASES: dict[str, dict[str, Any]] = {
    "clean": {},
    "no_stream": {"no_stream": True},
    "wrong_resolution": {"wrong_resolution": True},
    "low_fps": {"low_fps": 5},
    "frozen": {"frozen": True},
    "black": {"signal_loss_black": True},
    "broken_packets": {"broken_packets": 0.002},
    "stream_stops": {"stream_stops": 1.0},
    "offline": {"offline": True},
    "wrong_password": {"wrong_password": True},
}
CONFIG = sc.StreamCheckConfig(duration_s=2.5, open_timeout_s=5.0, read_timeout_s=3.0)


@pytest.fixture(scope="module")
def site() -> Any:
    specs = make_specs(len(CASES), 0, seed=41)
    for spec, faults in zip(specs, CASES.values(), strict=True):
        spec.width, spec.height, spec.fps, spec.bitrate_kbps, spec.gov_length = 320, 180, 25, 1024, 25
        spec.faults = dict(faults)
    with SimulatorThread(specs=specs, rtsp=True) as sim:
        devices = dict(zip(CASES, sim.devices, strict=True))
        yield sim, devices


def _declared(dev: Any) -> sc.DeclaredProfile:
    s = dev.spec
    return sc.DeclaredProfile("H264", s.width, s.height, float(s.fps), s.bitrate_kbps, s.gov_length)


@pytest.fixture(scope="module")
def results(site: Any) -> dict[str, dict[str, Any]]:
    """Every case checked once, concurrently (each read takes seconds of stream time)."""
    _, devices = site

    def check(dev: Any) -> dict[str, Any]:
        return sc.check_stream(
            sc.StreamTarget(dev.rtsp_url, dev.username, dev.password, declared=_declared(dev), config=CONFIG)
        )

    with ThreadPoolExecutor(len(devices)) as pool:
        done = {name: pool.submit(check, dev) for name, dev in devices.items()}
        return {name: f.result(timeout=60) for name, f in done.items()}


def test_a_clean_stream_is_measured_and_matches_its_declared_profile(results: dict[str, Any]) -> None:
    r = results["clean"]
    m = r["measured"]
    assert r["ok"] is True and r["faults"] == [], r
    assert m["codec"] == "h264"
    assert (m["width"], m["height"]) == (320, 180)
    assert 22 <= m["fps"] <= 28
    assert 10 < m["bitrate_kbps"] < 2 * 1024
    assert m["gop_frames"] is None or 20 <= m["gop_frames"] <= 30
    assert m["decode_errors"] == 0 and m["motion"] > 1
    assert m["seconds"] >= CONFIG.duration_s * 0.95


def test_no_stream_is_a_fault_with_the_reason(results: dict[str, Any]) -> None:
    r = results["no_stream"]
    assert r["ok"] is False and r["faults"] == ["no_stream"]
    assert "404" in r["error"] and r["measured"] is None


def test_an_offline_device_has_no_stream_either(results: dict[str, Any]) -> None:
    assert results["offline"]["faults"] == ["no_stream"]


def test_the_stream_asks_for_the_device_credentials(results: dict[str, Any], site: Any) -> None:
    # a camera whose password was changed refuses the registered one on its stream too
    r = results["wrong_password"]
    assert r["faults"] == ["no_stream"] and r["error"].startswith("auth_refused"), r
    _, devices = site
    dev = devices["clean"]
    r = sc.check_stream(sc.StreamTarget(dev.rtsp_url, declared=_declared(dev), config=CONFIG))
    assert r["faults"] == ["no_stream"] and r["error"].startswith("auth_refused"), r


def test_wrong_resolution_is_caught(results: dict[str, Any]) -> None:
    r = results["wrong_resolution"]
    assert r["faults"] == ["resolution"], r
    assert (r["measured"]["width"], r["measured"]["height"]) == (160, 90)


def test_low_frame_rate_is_caught(results: dict[str, Any]) -> None:
    r = results["low_fps"]
    assert r["faults"] == ["low_fps"], r
    assert 4 <= r["measured"]["fps"] <= 6


def test_a_frozen_stream_is_caught(results: dict[str, Any]) -> None:
    r = results["frozen"]
    assert r["faults"] == ["frozen"], r
    assert r["measured"]["motion"] < CONFIG.frozen_diff


def test_a_black_stream_is_caught(results: dict[str, Any]) -> None:
    r = results["black"]
    # black is also motionless: both are reported
    assert "black" in r["faults"] and set(r["faults"]) <= {"black", "frozen"}, r
    assert r["measured"]["luma_mean"] < CONFIG.black_luma


def test_broken_packets_are_decode_errors(results: dict[str, Any]) -> None:
    r = results["broken_packets"]
    assert "decode_errors" in r["faults"], r
    assert r["measured"]["decode_errors"] > 0


def test_a_stream_that_stops_is_caught(results: dict[str, Any]) -> None:
    r = results["stream_stops"]
    assert r["faults"] == ["stopped"], r
    assert r["measured"]["ended"] is True and r["measured"]["seconds"] < 1.5


def test_the_device_answers_its_stream_uri_and_declares_the_profile_it_serves(site: Any) -> None:
    _, devices = site
    dev = devices["clean"]

    async def ask() -> tuple[str, Any]:
        c = OnvifClient(dev.host, dev.port, dev.username, dev.password, timeout_s=5)
        try:
            profiles = await c.profiles()
            return await c.stream_uri(profiles[0].token), profiles[0]
        finally:
            await c.close()

    uri, profile = asyncio.run(ask())
    assert uri == dev.rtsp_url and uri.startswith("rtsp://127.0.0.1:") and ":8554/" not in uri
    assert (profile.width, profile.height, profile.fps) == (320, 180, 25)
    assert (profile.bitrate_kbps, profile.gov_length) == (1024, 25)
    # the declared profile as the agent reads it, and the stream it names, agree
    declared = sc.DeclaredProfile(
        profile.encoding, profile.width, profile.height, profile.fps, profile.bitrate_kbps, profile.gov_length
    )
    r = sc.check_stream(sc.StreamTarget(uri, dev.username, dev.password, declared=declared, config=CONFIG))
    assert r["ok"] is True, r


def test_a_fault_set_at_run_time_changes_the_next_read(site: Any) -> None:
    sim, devices = site
    dev = devices["clean"]
    sim.set_faults(dev.device_id, {"low_fps": 8})
    try:
        r = sc.check_stream(
            sc.StreamTarget(dev.rtsp_url, dev.username, dev.password, declared=_declared(dev), config=CONFIG)
        )
        assert r["faults"] == ["low_fps"] and 6 <= r["measured"]["fps"] <= 10, r
    finally:
        sim.set_faults(dev.device_id, {"low_fps": False})


def test_the_probe_runs_under_an_outside_deadline(site: Any) -> None:
    _, devices = site
    dev = devices["clean"]
    slow = sc.StreamCheckConfig(duration_s=30.0)
    target = sc.StreamTarget(dev.rtsp_url, dev.username, dev.password, declared=_declared(dev), config=slow)
    r = asyncio.run(run_with_deadline(sc.probe, target, ProbeSettings(), deadline_s=2.0))
    assert r.success is False and r.error_code == "timeout" and r.duration_s < 3.0


def test_mjpeg_streams_are_read_too() -> None:
    from simulator.rtsp import RtspServer

    with RtspServer() as server:
        server.set_mount("/m", launch_for(StreamProfile(320, 176, 10, 2000, 10, "JPEG"), {}))
        declared = sc.DeclaredProfile("JPEG", 320, 176, 10.0)
        r = sc.check_stream(sc.StreamTarget(f"{server.base_url}/m", declared=declared, config=CONFIG))
    assert r["measured"]["codec"] == "mjpeg" and r["ok"] is True, r
    assert (r["measured"]["width"], r["measured"]["height"]) == (320, 176)


def test_the_judgement_is_pure_and_compares_with_the_declared_profile() -> None:
    stats = sc.StreamStats(codec="hevc", width=1280, height=720, fps=25.0, bitrate_kbps=9000.0, motion=3.0)
    stats.luma_mean, stats.luma_spread, stats.seconds = 120.0, 40.0, 3.0
    declared = sc.DeclaredProfile("H264", 1280, 720, 25.0, 4096)
    assert sc.judge(stats, declared, sc.StreamCheckConfig()) == ["codec", "bitrate"]
    assert sc.judge(stats, None, sc.StreamCheckConfig()) == []  # nothing declared, nothing to compare


def test_a_server_that_accepts_and_never_answers_is_no_stream_within_the_open_timeout() -> None:
    import socket
    import time

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        config = sc.StreamCheckConfig(duration_s=2.0, open_timeout_s=1.5, read_timeout_s=1.5)
        t0 = time.monotonic()
        r = sc.check_stream(sc.StreamTarget(f"rtsp://127.0.0.1:{port}/main", config=config))
        took = time.monotonic() - t0
    assert r["faults"] == ["no_stream"] and r["ok"] is False, r
    assert took < 5.0, took


def test_reads_are_capped_whatever_the_stream_sends(site: Any) -> None:
    _, devices = site
    dev = devices["clean"]
    config = sc.StreamCheckConfig(duration_s=30.0, max_frames=20)
    r = sc.check_stream(
        sc.StreamTarget(dev.rtsp_url, dev.username, dev.password, declared=_declared(dev), config=config)
    )
    m = r["measured"]
    assert m["capped"] == "frames" and m["frames"] == 20 and m["seconds"] < 1.5, m
    config = sc.StreamCheckConfig(duration_s=30.0, max_bytes=20_000)
    m = sc.check_stream(sc.StreamTarget(dev.rtsp_url, dev.username, dev.password, config=config))["measured"]
    assert m["capped"] == "bytes" and 20_000 <= m["bytes"] < 200_000, m


def test_stream_fault_parameters_are_checked() -> None:
    from simulator import faults as flt

    defaults = {"low_fps": 5.0, "broken_packets": 0.001}
    assert flt.normalise({"low_fps": True, "broken_packets": True}) == defaults
    for bad in ({"broken_packets": 2}, {"low_fps": 0}, {"stream_stops": 0.01}, {"no_stream": 3}):
        with pytest.raises(flt.FaultSpecError):
            flt.normalise(bad)
    assert launch_for(StreamProfile(320, 180, 25, 512, 25), {"no_stream": True}) is None


def test_figures_a_hostile_stream_makes_up_are_dropped_not_a_crash() -> None:
    import datetime as dt

    from edge_agent.stream_work import stream_item

    ts = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    good = sc.StreamStats(codec="h264", width=320, height=180, fps=25.0, seconds=3.0)
    item = stream_item(
        "edge-1", "44030400001320000001", ts, {"ok": True, "faults": [], "measured": good.as_dict()}
    )
    assert item.measured is not None and item.measured.fps == 25.0 and item.key.startswith("v:edge-1:")
    # timestamps that jump a century: the span and rate are nonsense
    bad = sc.StreamStats(codec="h264", width=320, height=180, fps=1e9, seconds=3e9)
    result = {"ok": False, "faults": ["low_fps"], "measured": bad.as_dict(), "declared": None}
    item = stream_item("edge-1", "44030400001320000001", ts, result)
    assert item.measured is None and item.faults == ["decode_errors", "low_fps"]
    assert item.error is not None and "measured.fps" in item.error and "measured.seconds" in item.error
