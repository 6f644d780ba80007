"""Cameras behind NAT or a port forward: they name their LAN address, the agent keeps the registered one.

Every test that serves a device naming a non-loopback address runs under `connections`, which
records each outgoing TCP connect and refuses (before any packet) every one outside 127.0.0.0/8.
"""

from __future__ import annotations

import csv
import io
import ipaddress
import os
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from edge_agent.devices.addresses import DeviceAddresses, rewrite_media, rewrite_service
from edge_agent.devices.errors import BadAnswer
from edge_agent.devices.onvif_client import OnvifClient, warm_wsdl
from edge_agent.devices.snapshot import fetch_snapshot
from edge_agent.metrics import Metrics
from edge_agent.observe import DeviceWork, Judge
from edge_agent.outbox import Outbox
from edge_agent.probes import ProbeSettings
from edge_agent.probes.installer import run as run_installer
from simulator import faults as flt
from simulator.devices import Simulator, VirtualDevice
from simulator.spec import make_specs
from tests.conftest import auth, free_port
from tests.onvif_replay import CAMERA_ADDRESS, ReplayCamera
from tianwang.protocol import OnvifEndpoint, ProbeRequest
from tianwang.protocol.agents import Assignment, OnvifCredentials

FAST = ProbeSettings(call_timeout_s=2.0)
LAN = "192.0.2.10"  # flt.NAT_LAN_ADDRESS's host: TEST-NET-1, must never be contacted


class Connections:
    """Outgoing TCP connects seen in this process; any outside 127.0.0.0/8 is refused unsent."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def hosts(self) -> set[str]:
        return {h for h, _ in self.seen}

    def outside_loopback(self) -> list[tuple[str, int]]:
        return [(h, p) for h, p in self.seen if not ipaddress.ip_address(h).is_loopback]


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> Connections:
    seen = Connections()
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host, port = str(address[0]), int(address[1])
            seen.seen.append((host, port))
            if not ipaddress.ip_address(host).is_loopback:
                raise ConnectionRefusedError(f"test guard: no connection to {host}:{port}")

    def connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        real_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return real_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    return seen


def test_the_guard_refuses_a_non_loopback_connect(connections: Connections) -> None:
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect((LAN, 80))
    assert connections.outside_loopback() == [(LAN, 80)]


# -- the rewriting rule ---------------------------------------------------------------------------


def test_service_xaddrs_go_to_the_registered_endpoint() -> None:
    assert rewrite_service("http://192.168.1.64/onvif/media_service", "203.0.113.5", 8081) == (
        "http://203.0.113.5:8081/onvif/media_service"
    )
    # the registered endpoint is plain HTTP at its port: scheme and port follow it, path and query kept
    assert rewrite_service("https://192.168.1.64:443/onvif/Media?x=1", "cam.example", 80) == (
        "http://cam.example:80/onvif/Media?x=1"
    )
    assert (
        rewrite_service("http://10.0.0.1:8899/onvif", "2001:db8::5", 8000)
        == "http://[2001:db8::5]:8000/onvif"
    )
    assert rewrite_service("not a url", "h", 1) == "not a url"


def test_media_uris_keep_their_port_unless_it_is_the_advertised_service_port() -> None:
    ports = {80}
    # the snapshot CGI on the device's web server: the forwarded port
    assert rewrite_media("http://192.168.1.64/snap.jpg?ch=1", "203.0.113.5", 8081, ports) == (
        "http://203.0.113.5:8081/snap.jpg?ch=1"
    )
    assert rewrite_media("http://192.168.1.64:80/snap.jpg", "203.0.113.5", 8081, ports) == (
        "http://203.0.113.5:8081/snap.jpg"
    )
    # another port of the device: not known to be forwarded, kept (and later refused unless registered)
    assert rewrite_media("http://192.168.1.64:8080/snap.jpg", "203.0.113.5", 8081, ports) == (
        "http://203.0.113.5:8080/snap.jpg"
    )
    # RTSP on its own port: only the host changes
    assert rewrite_media("rtsp://192.168.1.64/h264main", "203.0.113.5", 8081, ports) == (
        "rtsp://203.0.113.5/h264main"
    )
    assert rewrite_media("rtsp://admin:pw@192.168.1.64:554/s1", "203.0.113.5", 8081, ports) == (
        "rtsp://admin:pw@203.0.113.5:554/s1"
    )
    # RTSP tunnelled on the web server's port follows the forward
    assert rewrite_media("rtsp://192.168.1.64:80/s1", "203.0.113.5", 8081, ports) == (
        "rtsp://203.0.113.5:8081/s1"
    )


def test_a_trusted_devices_own_hosts_count_as_its_addresses() -> None:
    addrs = DeviceAddresses.of("127.0.0.1", 8001)
    with pytest.raises(BadAnswer):
        addrs.check_snapshot(f"http://{LAN}:80/snapshot.jpg")
    trusted = addrs.trusting([LAN])
    assert trusted.check_snapshot(f"http://{LAN}:80/snapshot.jpg")
    assert trusted.check_stream(f"rtsp://{LAN}/main")
    with pytest.raises(BadAnswer):
        trusted.check_snapshot("http://198.51.100.7/x.jpg")  # a host it never named
    assert not trusted.basic_allowed("http", LAN)  # the password in clear: registered host only
    # naming the registered (gateway) host does not open its other ports
    gateway = addrs.trusting(["127.0.0.1", LAN])
    assert gateway.check_snapshot("http://127.0.0.1:8001/snapshot.jpg")
    with pytest.raises(BadAnswer):
        gateway.check_snapshot("http://127.0.0.1:8002/snapshot.jpg")


# -- the simulated camera behind NAT -----------------------------------------------------------------


def nat_sim(lan_address: str | None = None, n: int = 1) -> Simulator:
    specs = make_specs(n, 0, seed=7)
    specs[0].lan_address = lan_address
    specs[0].faults = {"nat": True}
    return Simulator(specs=specs)


@pytest.fixture
async def sim(connections: Connections) -> AsyncIterator[Simulator]:
    await warm_wsdl()
    async with nat_sim() as s:
        yield s


def request_for(dev: VirtualDevice, *, trust: bool = False) -> ProbeRequest:
    return ProbeRequest(
        device_id=dev.device_id,
        onvif=OnvifEndpoint(
            host="127.0.0.1",
            port=dev.port,
            username=dev.username,
            password=dev.password,
            trust_device_addresses=trust,
        ),
        deadline_s=6.0,
    )


async def test_the_nat_device_names_its_lan_address(sim: Simulator, connections: Connections) -> None:
    dev = sim.devices[0]
    assert dev.lan_address == (LAN, 80) and f"{LAN}:80" == flt.NAT_LAN_ADDRESS
    c = OnvifClient(
        "127.0.0.1", dev.port, dev.username, dev.password, timeout_s=2, trust_device_addresses=True
    )
    try:
        services = await c.services()  # asked at the registered address; answers name the LAN one
        assert c.advertised_hosts == frozenset({LAN})
    finally:
        await c.close()
    assert services and all(x.startswith(f"http://{LAN}:80/onvif/") for x in services.values())
    assert connections.outside_loopback() == []


async def test_a_camera_behind_nat_is_probed_completely(sim: Simulator, connections: Connections) -> None:
    dev = sim.devices[0]
    out = await run_installer(request_for(dev), FAST)
    r = out.result
    assert r.error is None, r.error
    assert [(s.name, s.outcome) for s in r.steps] == [
        (name, "ok") for name in ("clock", "auth", "profiles", "uris", "snapshot")
    ]
    assert r.profiles and r.profiles[0].width == dev.spec.width
    # the URIs the device named, moved to where it is registered (and stored so)
    assert r.snapshot_uri == f"http://127.0.0.1:{dev.port}/snapshot.jpg" == dev.snapshot_url
    assert r.stream_uri == f"rtsp://127.0.0.1:8554/{dev.device_id}/main" == dev.rtsp_url
    assert out.jpeg is not None and out.jpeg[:3] == b"\xff\xd8\xff"
    assert r.snapshot is not None and (r.snapshot.width, r.snapshot.height) == (
        dev.spec.width,
        dev.spec.height,
    )
    assert connections.outside_loopback() == []
    assert connections.hosts() == {"127.0.0.1"}


async def test_a_trusted_camera_follows_its_advertised_address(connections: Connections) -> None:
    # its "LAN" address is another loopback address with nothing listening: no packet leaves the host
    closed = free_port()
    await warm_wsdl()
    async with nat_sim(f"127.0.0.2:{closed}") as s:
        dev = s.devices[0]
        out = await run_installer(request_for(dev, trust=True), FAST)
    r = out.result
    steps = {st.name: st for st in r.steps}
    assert r.reachable and r.authenticated  # the device service is the registered one
    assert steps["profiles"].outcome == "failed" and steps["profiles"].code == "unreachable"
    assert r.error is not None and r.error.code == "unreachable"
    assert ("127.0.0.2", closed) in connections.seen  # it really went where the device said
    assert connections.outside_loopback() == []


async def test_the_nat_fault_can_be_cleared_at_run_time(sim: Simulator, connections: Connections) -> None:
    dev = sim.devices[0]
    sim.set_faults(dev.device_id, {"nat": False})
    assert dev.lan_address is None and dev.named_snapshot_url == dev.snapshot_url
    out = await run_installer(request_for(dev, trust=True), FAST)
    assert out.result.error is None and out.result.snapshot_uri == dev.snapshot_url


def test_a_bad_lan_address_is_refused_when_the_device_is_built() -> None:
    for bad in ("192.0.2.10", "192.0.2.10:0", "http://x:80", ":80", "h:99999"):
        spec = make_specs(1, 0)[0]
        spec.lan_address = bad
        with pytest.raises(ValueError):
            VirtualDevice(spec)


def test_nat_is_never_a_random_fault() -> None:
    got = flt.random_assignment(400, 1.0, seed=3)
    assert all("nat" not in f for f in got.values())
    assert flt.parse_spec("0:nat", 1) == {0: {"nat": True}}


# -- the agent's health and snapshot work --------------------------------------------------------------


def _work(tmp_path: Path) -> tuple[DeviceWork, Outbox, Any, httpx.AsyncClient]:
    from edge_agent.devices.onvif_client import OnvifPool
    from edge_agent.settings import AgentSettings

    s = AgentSettings(
        central="http://127.0.0.1:9", token="tw_" + "x" * 20, outbox=tmp_path / "o.db", call_timeout_s=2.0
    )
    box = Outbox(s.outbox)
    pool = OnvifPool(max_size=4, timeout_s=2.0)
    http = httpx.AsyncClient(timeout=5, trust_env=False, follow_redirects=False)
    return DeviceWork(s, box, Metrics(), pool, http, Judge(box)), box, pool, http


def assignment(dev: VirtualDevice, *, trust: bool = False) -> Assignment:
    return Assignment(
        device_id=dev.device_id,
        kind="camera",
        onvif=OnvifCredentials(
            host="127.0.0.1",
            port=dev.port,
            username=dev.username,
            password=dev.password,
            trust_device_addresses=trust,
        ),
        health_interval_s=60,
        snapshot_interval_s=900,
    )


async def test_the_agent_watches_a_camera_behind_nat(
    sim: Simulator, connections: Connections, tmp_path: Path
) -> None:
    dev = sim.devices[0]
    work, box, pool, http = _work(tmp_path)
    try:
        a = assignment(dev)
        health = await work.health(a)
        assert health.reachable and health.authenticated and health.error is None
        key = await work.snapshot(a)
        assert key is not None  # a picture, through the snapshot URI the device named (rewritten)
        assert work._snapshot_uris[dev.device_id][0] == dev.snapshot_url
        # trusted, the same camera's named address is followed: refused by the guard, no picture
        work.forget(dev.device_id)
        key = await work.snapshot(assignment(dev, trust=True))  # no picture: the failure is recorded
        (failed,) = [e for e in box.take("snapshot", 100) if e.key == key]
        assert failed.blob is None and failed.payload["error"]
        assert {h for h, _ in connections.outside_loopback()} == {LAN}
        # and trusting it no more, the URI learned while trusted is not used again
        connections.seen.clear()
        assert await work.snapshot(a) is not None
        assert connections.outside_loopback() == []
    finally:
        await http.aclose()
        await pool.close()
        box.close()


# -- the recorded real camera, served with its own LAN address ----------------------------------------


@pytest.fixture
async def natted_replay(connections: Connections) -> AsyncIterator[ReplayCamera]:
    await warm_wsdl()
    cam = ReplayCamera(rewrite_address=False)
    await cam.start(free_port())
    try:
        yield cam
    finally:
        await cam.stop()


async def test_the_recorded_camera_behind_nat_works_without_contacting_its_lan_address(
    natted_replay: ReplayCamera, connections: Connections
) -> None:
    cam = natted_replay
    c = OnvifClient("127.0.0.1", cam.port, cam.username, cam.password, timeout_s=5)
    try:
        services = await c.services()
        assert (
            services["http://www.onvif.org/ver10/media/wsdl"] == f"http://127.0.0.1:{cam.port}/onvif/services"
        )
        assert c.advertised_hosts == frozenset({CAMERA_ADDRESS})  # what the recording names
        profiles = await c.profiles()
        assert [p.token for p in profiles] == ["main"]
        snap_uri = await c.snapshot_uri("main")
        assert snap_uri == (
            f"http://127.0.0.1:{cam.port}/onvif-cgi/jpg/image.cgi?resolution=800x600&compression=20&camera=1"
        )
        # RTSP on its default port: the host follows the registration, the port is not guessed
        assert await c.stream_uri("main") == "rtsp://127.0.0.1/h264main"
        addresses = DeviceAddresses.of("127.0.0.1", cam.port)
        snap = await fetch_snapshot(snap_uri, cam.username, cam.password, addresses=addresses)
        assert snap.data == cam.jpeg
    finally:
        await c.close()
    assert "GetProfiles" in cam.requests and "GetSnapshotUri" in cam.requests
    assert CAMERA_ADDRESS not in connections.hosts()
    assert connections.outside_loopback() == []


async def test_the_recorded_camera_behind_nat_through_the_installer_probe(
    natted_replay: ReplayCamera, connections: Connections
) -> None:
    cam = natted_replay
    req = ProbeRequest(
        device_id="44030400001320000001",
        onvif=OnvifEndpoint(host="127.0.0.1", port=cam.port, username=cam.username, password=cam.password),
        deadline_s=8.0,
    )
    out = await run_installer(req, ProbeSettings(call_timeout_s=5.0))
    r = out.result
    assert r.error is None, r.error
    assert r.stream_uri == "rtsp://127.0.0.1/h264main" and r.snapshot is not None and out.jpeg == cam.jpeg
    assert connections.outside_loopback() == []
    # trusted, the probe goes to the recorded LAN address, which the guard refuses: no profiles
    connections.seen.clear()
    trusted = req.model_copy(update={"onvif": req.onvif.model_copy(update={"trust_device_addresses": True})})  # type: ignore[union-attr]
    out = await run_installer(trusted, ProbeSettings(call_timeout_s=5.0))
    assert {st.name: st.outcome for st in out.result.steps}["profiles"] == "failed"
    assert {h for h, _ in connections.outside_loopback()} == {CAMERA_ADDRESS}


# -- the registry setting, and where it goes ---------------------------------------------------------


def camera_body(device_id: str, **onvif: Any) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "name": "4G 路口 NAT",
        "kind": "bullet",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 90,
        "hfov_deg": 70,
        "range_m": 60,
        "point_class": 2,
        "area_code": "440304",
        "onvif": {"host": "203.0.113.5", "port": 8081, "username": "admin", "password": "pw", **onvif},
    }


DEV = "44030400001320000077"


def test_the_setting_is_stored_shown_and_patched(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["installer"])
    r = client.post("/api/v1/cameras", json=camera_body(DEV), headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["onvif"]["trust_device_addresses"] is False  # the default: rewrite
    onvif = {"host": "203.0.113.5", "port": 8081, "username": "admin", "trust_device_addresses": True}
    r = client.patch(f"/api/v1/cameras/{DEV}", json={"onvif": onvif}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["onvif"]["trust_device_addresses"] is True and r.json()["onvif"]["has_password"] is True
    r = client.get(f"/api/v1/cameras/{DEV}", headers=h)
    assert r.json()["onvif"]["trust_device_addresses"] is True
    # a form that does not show the setting (the install page) sends the ONVIF record without it
    onvif = {"host": "203.0.113.5", "port": 8081, "username": "admin"}
    r = client.patch(f"/api/v1/cameras/{DEV}", json={"onvif": onvif, "name": "改名"}, headers=h)
    assert r.status_code == 200 and r.json()["onvif"]["trust_device_addresses"] is True, r.text
    r = client.post(
        "/api/v1/cameras", json=camera_body(DEV[:-1] + "8", trust_device_addresses="maybe"), headers=h
    )
    assert r.status_code == 422


def test_checkpoints_have_the_setting_too(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["installer"])
    kk = "44030500001210000009"
    onvif = {
        "host": "203.0.113.6",
        "port": 8082,
        "username": "u",
        "password": "kk",
        "trust_device_addresses": True,
    }
    body = {
        "checkpoint_id": kk,
        "name": "卡口",
        "lon": 114.06,
        "lat": 22.54,
        "direction_deg": 270,
        "lanes": 4,
    }
    r = client.post("/api/v1/checkpoints", json={**body, "onvif": onvif}, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["onvif"]["trust_device_addresses"] is True
    r = client.patch(
        f"/api/v1/checkpoints/{kk}", json={"onvif": {"host": "203.0.113.6", "port": 8082}}, headers=h
    )
    assert r.status_code == 200 and r.json()["onvif"]["trust_device_addresses"] is True, r.text
    r = client.patch(
        f"/api/v1/checkpoints/{kk}", json={"onvif": {**onvif, "trust_device_addresses": False}}, headers=h
    )
    assert r.json()["onvif"]["trust_device_addresses"] is False


def test_the_setting_is_a_sheet_column(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["staff"])
    assert (
        client.post(
            "/api/v1/cameras", json=camera_body(DEV, trust_device_addresses=True), headers=h
        ).status_code
        == 201
    )
    r = client.get("/api/v1/cameras/export?format=csv&lang=zh", headers=h)
    assert r.status_code == 200, r.text
    header, row = list(csv.reader(io.StringIO(r.text.lstrip("\ufeff"))))[:2]
    col = header.index("信任设备地址")
    assert row[col] == "是"
    # a sheet turns it off again ("否"), the stored password kept (the address did not move)
    row[col] = "否"
    buf = io.StringIO()
    csv.writer(buf).writerows([header, row])
    sheet = buf.getvalue().encode()
    r = client.post("/api/v1/cameras/import", files={"file": ("cams.csv", sheet, "text/csv")}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["updated"] == 1, r.json()
    cam = client.get(f"/api/v1/cameras/{DEV}", headers=h).json()
    assert cam["onvif"]["trust_device_addresses"] is False and cam["onvif"]["has_password"] is True


def test_the_assignment_carries_the_setting(client: TestClient, tokens: dict[str, str], ctx: Any) -> None:
    from tianwang.agents.service import assignments_for, record_heartbeat
    from tianwang.auth.tokens import authenticate
    from tianwang.protocol.agents import Heartbeat

    h = auth(tokens["staff"])
    assert (
        client.post(
            "/api/v1/cameras", json=camera_body(DEV, trust_device_addresses=True), headers=h
        ).status_code
        == 201
    )
    other = DEV[:-1] + "8"
    assert client.post("/api/v1/cameras", json=camera_body(other), headers=h).status_code == 201
    with ctx.db.session() as s:
        record_heartbeat(
            s,
            Heartbeat(agent_id="edge-1", version="t", capacity=10, zones=["*"]),
            authenticate(s, tokens["agent"]),
        )
        got = {a.device_id: a.onvif for a in assignments_for(s, "edge-1", ctx.box)}
    assert got[DEV] is not None and got[DEV].trust_device_addresses is True
    assert got[other] is not None and got[other].trust_device_addresses is False


@pytest.fixture
def api_sim() -> Iterator[Any]:
    from simulator.devices import SimulatorThread

    specs = make_specs(1, 0, seed=9)
    specs[0].faults = {"nat": True}
    with SimulatorThread(specs=specs) as s:
        yield s


def test_the_api_probe_of_a_camera_behind_nat(
    client: TestClient, tokens: dict[str, str], ctx: Any, api_sim: Any, connections: Connections
) -> None:
    ctx.settings.direct_probe = True
    body = {k: v for k, v in api_sim.describe()[0].items() if k not in ("faults", "snapshot_url")}
    h = auth(tokens["installer"])
    assert client.post("/api/v1/cameras", json=body, headers=h).status_code == 201
    r = client.post(f"/api/v1/cameras/{body['device_id']}/probe", headers=h)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["error"] is None and p["profiles"] and p["snapshot"]["key"], p
    assert p["snapshot_uri"] == f"http://127.0.0.1:{body['onvif']['port']}/snapshot.jpg"
    assert connections.outside_loopback() == []
    # trusted, the camera's own (unreachable) LAN address is followed, and refused by the guard
    onvif = {**body["onvif"], "trust_device_addresses": True}
    assert (
        client.patch(f"/api/v1/cameras/{body['device_id']}", json={"onvif": onvif}, headers=h).status_code
        == 200
    )
    p = client.post(f"/api/v1/cameras/{body['device_id']}/probe", headers=h).json()
    assert p["error"]["code"] == "unreachable" and not p["profiles"]
    assert {host for host, _ in connections.outside_loopback()} == {LAN}


def test_an_agent_watches_cameras_behind_nat(live_server: tuple[Any, Any], tmp_path: Path) -> None:
    """The agent process: a NAT camera online with pictures; the same camera trusted gets none."""
    from sqlalchemy import func, select

    from simulator.devices import SimulatorThread
    from tests.agent_support import AgentProcess, register, tokens_for, wait_until
    from tianwang.storage.models import Camera, Snapshot

    srv, ctx = live_server
    tok = tokens_for(ctx)
    specs = make_specs(2, 0, seed=5)
    for spec in specs:
        spec.faults = {"nat": True}
    specs[1].lan_address = f"127.0.0.2:{free_port()}"  # nothing listens there; never off the host
    with SimulatorThread(specs=specs) as sim:
        described = [
            {k: v for k, v in d.items() if k not in ("snapshot_url", "rtsp_url")} for d in sim.describe()
        ]
        natted, trusted = (d["device_id"] for d in described)
        over = {d["device_id"]: {"health_interval_s": 20, "snapshot_interval_s": 30} for d in described}
        over[trusted]["onvif"] = {**described[1]["onvif"], "trust_device_addresses": True}
        register(srv.url, tok["installer"], described, **over)
        agent = AgentProcess(
            srv.url,
            tok["agent"],
            tmp_path / "outbox.db",
            tmp_path / "agent.log",
            interval_scale=0.1,
            call_timeout_s=2,
            heartbeat_wait_s=5,
        ).start()
        try:

            def state() -> dict[str, tuple[str, int]]:
                with ctx.db.session() as s:
                    # pictures only: a snapshot that gave none is stored too, with its error
                    pictures = select(Snapshot.device_id, func.count()).where(Snapshot.error.is_(None))
                    snaps = dict(s.execute(pictures.group_by(Snapshot.device_id)).all())
                    return {
                        c.device_id: (c.status, int(snaps.get(c.device_id, 0)))
                        for c in s.scalars(select(Camera))
                    }

            def ready() -> bool:
                now = state()
                return now[natted][0] == "online" and now[natted][1] >= 2 and now[trusted][0] == "online"

            wait_until("the NAT camera online with two pictures, the trusted one online", ready, 90)
            assert state()[trusted][1] == 0  # its snapshot URI names the unreachable LAN address
            m = agent.metrics()
            assert m.get('tianwang_agent_probes_total{kind="snapshot",outcome="unreachable"}', 0) >= 1, m
            # the installer's probe, as a command to this agent, follows the same setting
            h = auth(tok["installer"])
            with httpx.Client(base_url=srv.url, timeout=60) as c:
                ok = c.post(f"/api/v1/cameras/{natted}/probe", headers=h).json()
                assert ok["error"] is None and ok["snapshot"]["key"], ok
                assert ok["snapshot_uri"] == f"http://127.0.0.1:{described[0]['onvif']['port']}/snapshot.jpg"
                bad = c.post(f"/api/v1/cameras/{trusted}/probe", headers=h).json()
                assert bad["authenticated"] and bad["error"]["code"] == "unreachable" and not bad["profiles"]
        finally:
            agent.terminate()


def test_the_install_page_shows_and_sets_the_setting(live_server: tuple[Any, Any], tmp_path: Path) -> None:
    """In a real browser: the installer sees the stored setting, turns it off and saves."""
    import contextlib

    from tests.agent_support import tokens_for
    from tests.browser_support import CHROMIUM, login

    if not Path(CHROMIUM).exists():
        msg = f"Chromium is not installed at {CHROMIUM} (make test installs Debian's chromium package)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    from playwright.sync_api import sync_playwright

    srv, ctx = live_server
    tok = tokens_for(ctx)["installer"]
    h = auth(tok)
    r = httpx.post(f"{srv.url}/api/v1/cameras", json=camera_body(DEV, trust_device_addresses=True), headers=h)
    assert r.status_code == 201, r.text
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        with contextlib.closing(b):
            page = b.new_page()
            login(page, f"{srv.url}/console/install?device_id={DEV}", tok)
            page.wait_for_selector("#in-mode[data-mode=edit]")
            assert page.is_checked("#in-onvif-trust")
            page.uncheck("#in-onvif-trust")
            page.fill("#in-name", "4G 路口 NAT（改）")
            page.click("#in-submit")
            page.wait_for_function("() => document.getElementById('in-saved').textContent.trim() !== ''")
    cam = httpx.get(f"{srv.url}/api/v1/cameras/{DEV}", headers=h).json()
    assert cam["name"] == "4G 路口 NAT（改）" and cam["onvif"]["trust_device_addresses"] is False
    assert cam["onvif"]["has_password"] is True
