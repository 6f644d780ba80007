"""The ONVIF client against a replay of a real camera's recorded answers (tests/fixtures/onvif-recorded)."""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from edge_agent.devices.discovery import discover, parse_probe_matches, parse_target
from edge_agent.devices.errors import AuthRefused, BadAnswer, DeviceTimeout, DeviceUnreachable
from edge_agent.devices.onvif_client import OnvifClient, OnvifPool, check_uri, parse_clock, warm_wsdl
from edge_agent.devices.snapshot import check_jpeg, fetch_snapshot, jpeg_size
from tests.conftest import free_port
from tests.onvif_replay import ReplayCamera, recorded_dir, small_jpeg

RECORDED_TIME = dt.datetime(2014, 12, 24, 19, 14, 37, tzinfo=dt.UTC)  # GetSystemDateAndTime.xml


@pytest.fixture
async def camera() -> AsyncIterator[ReplayCamera]:
    await warm_wsdl()
    cam = ReplayCamera()
    await cam.start(free_port())
    try:
        yield cam
    finally:
        await cam.stop()


def client_for(cam: ReplayCamera, password: str | None = None, **kw: object) -> OnvifClient:
    return OnvifClient("127.0.0.1", cam.port, cam.username, password or cam.password, timeout_s=5, **kw)  # type: ignore[arg-type]


async def test_reads_a_real_cameras_answers_and_fetches_its_snapshot(camera: ReplayCamera) -> None:
    c = client_for(camera)
    try:
        clock = await c.system_date_and_time()
        assert clock.utc == RECORDED_TIME and clock.date_time_type == "Manual"
        expected = (RECORDED_TIME - dt.datetime.now(dt.UTC)).total_seconds()
        assert (
            clock.skew_s is not None and abs(clock.skew_s - expected) < 5 and c.clock_skew_s == clock.skew_s
        )

        info = await c.device_information()
        assert (info.manufacturer, info.model, info.firmware, info.serial, info.hardware_id) == (
            "Mockup Manufacturer",
            "Mockup Model",
            "Mockup_15_14_13",
            "00000000",
            "MOCKUP",
        )
        services = await c.services()
        assert (
            services["http://www.onvif.org/ver10/media/wsdl"]
            == f"http://127.0.0.1:{camera.port}/onvif/services"
        )

        profiles = await c.profiles()
        assert [(p.token, p.name, p.encoding, p.width, p.height, p.fps) for p in profiles] == [
            ("main", "main", "H264", 1920, 1080, 5.0)
        ]
        snap_uri = await c.snapshot_uri("main")
        assert snap_uri == (
            f"http://127.0.0.1:{camera.port}/onvif-cgi/jpg/image.cgi?resolution=800x600&compression=20&camera=1"
        )
        assert await c.stream_uri("main") == f"rtsp://127.0.0.1:{camera.port}/h264main"

        # the replay checks HTTP Digest on the snapshot path
        snap = await fetch_snapshot(snap_uri, camera.username, camera.password)
        assert snap.data == camera.jpeg and (snap.width, snap.height) == (320, 240)
        assert snap.content_type == "image/jpeg"
        assert camera.requests[:2] == ["GetSystemDateAndTime", "GetDeviceInformation"]
    finally:
        await c.close()


async def test_wrong_password_is_auth_refused_and_clock_still_reads(camera: ReplayCamera) -> None:
    c = client_for(camera, password="not-the-password")
    try:
        assert (await c.system_date_and_time()).utc == RECORDED_TIME  # unauthenticated
        with pytest.raises(AuthRefused) as e:
            await c.device_information()
        assert e.value.code == "auth_refused" and "not-the-password" not in str(e.value)
        with pytest.raises(AuthRefused):
            await fetch_snapshot(
                f"http://127.0.0.1:{camera.port}/onvif-cgi/jpg/image.cgi", camera.username, "nope"
            )
    finally:
        await c.close()


async def test_malformed_and_fault_answers_are_bad_answers(camera: ReplayCamera) -> None:
    c = client_for(camera)
    try:
        camera.fault = "garbage"
        with pytest.raises(BadAnswer) as e:
            await c.device_information()
        assert e.value.code == "bad_answer"
        camera.fault = "error_xml"  # the recording's placeholder fault: not even valid XML
        with pytest.raises(BadAnswer):
            await c.device_information()
    finally:
        await c.close()


async def test_a_50_mb_answer_is_cut_off_with_bounded_memory(camera: ReplayCamera) -> None:
    camera.fault = "oversized"
    c = client_for(camera, max_answer_bytes=1024 * 1024)
    tracemalloc.start()
    try:
        with pytest.raises(BadAnswer) as e:
            await c.device_information()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await c.close()
    assert "exceeds" in e.value.message
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB while refusing a 50 MB answer"


async def test_unreachable_and_silent_devices_are_typed() -> None:
    closed = free_port()
    c = OnvifClient("127.0.0.1", closed, "u", "p", timeout_s=2)
    with pytest.raises(DeviceUnreachable) as e:
        await c.system_date_and_time()
    assert e.value.code == "unreachable" and not e.value.answered
    await c.close()

    # a device that accepts the connection and never answers
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        c = OnvifClient("127.0.0.1", silent.getsockname()[1], "u", "p", timeout_s=0.5)
        with pytest.raises(DeviceTimeout) as t:
            await c.system_date_and_time()
        assert t.value.code == "timeout"
        await c.close()
        with pytest.raises(DeviceTimeout):
            await fetch_snapshot(f"http://127.0.0.1:{silent.getsockname()[1]}/x.jpg", read_timeout_s=0.5)
    finally:
        silent.close()


async def test_pool_keeps_one_client_per_device_and_closes_them(camera: ReplayCamera) -> None:
    pool = OnvifPool(max_size=2, timeout_s=5)
    a = await pool.get("127.0.0.1", camera.port, camera.username, camera.password)
    assert await pool.get("127.0.0.1", camera.port, camera.username, camera.password) is a
    assert (await a.device_information()).model == "Mockup Model"
    b = await pool.get("127.0.0.1", camera.port, camera.username, "changed")
    assert b is not a and len(pool) == 1  # a new password replaces the old session
    await pool.get("127.0.0.1", camera.port, "other", "x")
    await pool.get("127.0.0.1", camera.port, "third", "x")
    assert len(pool) == 2  # least recently used closed
    await pool.close()
    assert len(pool) == 0


def test_clock_parsing_is_tolerant_of_absurd_fields() -> None:
    now = dt.datetime(2024, 1, 1, 12, 0, 0, 700000, tzinfo=dt.UTC)
    ok = {
        "UTCDateTime": {
            "Date": {"Year": 2024, "Month": 1, "Day": 1},
            "Time": {"Hour": 17, "Minute": 0, "Second": 0},
        }
    }
    assert parse_clock(ok, now).skew_s == 18000
    bad = {
        "UTCDateTime": {
            "Date": {"Year": 2024, "Month": 13, "Day": 1},
            "Time": {"Hour": 0, "Minute": 0, "Second": 0},
        }
    }
    assert parse_clock(bad, now).skew_s is None
    assert parse_clock({}, now).skew_s is None


def test_uris_from_devices_are_checked() -> None:
    assert check_uri(" rtsp://10.0.0.1/main ", ("rtsp",), "stream URI") == "rtsp://10.0.0.1/main"
    for bad in (
        "javascript:alert(1)",
        "http://",
        "http://h:99999999/x",
        "http://h/" + "a" * 2000,
        "http://h/\x00",
    ):
        with pytest.raises(BadAnswer):
            check_uri(bad, ("http", "https"), "snapshot URI")


def test_jpeg_checks() -> None:
    jpeg = small_jpeg(64, 48)
    assert jpeg_size(jpeg) == (64, 48) and check_jpeg(jpeg) == (64, 48)
    with pytest.raises(BadAnswer):
        check_jpeg(b"<html>not a picture</html>")
    with pytest.raises(BadAnswer):
        check_jpeg(jpeg[:200])  # a header without the picture does not decode


# -- WS-Discovery --------------------------------------------------------------------------------


def _probe_matches(relates_to: str, xaddr: str) -> bytes:
    text = (recorded_dir() / "Probe.xml").read_text()
    return text.replace("RELATES_TO", relates_to).replace("SERVICE_URI", xaddr).encode()


async def test_discovery_unicast_against_a_responder_answering_the_recorded_probe_match() -> None:
    loop = asyncio.get_running_loop()
    seen: list[bytes] = []

    class Responder(asyncio.DatagramProtocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.t = transport

        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            seen.append(data)
            mid = data.split(b"MessageID>")[1].split(b"<")[0].decode()
            self.t.sendto(_probe_matches(mid, "http://127.0.0.1:8080/onvif/device_service"), addr)  # type: ignore[attr-defined]
            self.t.sendto(_probe_matches("uuid:someone-else", "http://127.0.0.2/onvif"), addr)  # type: ignore[attr-defined]
            self.t.sendto(b"\x00garbage", addr)  # type: ignore[attr-defined]

    port = free_port()
    transport, _ = await loop.create_datagram_endpoint(Responder, local_addr=("127.0.0.1", port))
    try:
        found = await discover(unicast=[f"127.0.0.1:{port}"], timeout_s=0.5)
    finally:
        transport.close()
    assert b"NetworkVideoTransmitter" in seen[0]
    assert len(found) == 1  # the retransmitted probe's answers are one device; strangers ignored
    d = found[0]
    assert d.xaddrs == ["http://127.0.0.1:8080/onvif/device_service"]
    assert d.epr == "uuid:c9790c3a-701b-464d-a189-0060351c8ada"
    assert d.name == "PREDATOR" and "dn:NetworkVideoTransmitter" in d.types


def test_discovery_parsing_refuses_entities_and_bad_targets() -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><x>&b;</x>'
    )
    assert parse_probe_matches(bomb) == []
    assert parse_probe_matches(_probe_matches("m", "file:///etc/passwd"), "m") == []
    assert parse_target("10.0.0.5") == ("10.0.0.5", 3702) and parse_target("[::1]:99") == ("::1", 99)
    with pytest.raises(ValueError):
        parse_target("host:0")
