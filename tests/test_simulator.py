"""The simulator's virtual devices, driven with raw SOAP envelopes, httpx/aiohttp and sockets."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import os
import socket
import uuid

import cv2
import httpx
import numpy as np
import pytest
from lxml import etree

from simulator import faults as flt
from simulator.devices import Simulator, SimulatorThread, VirtualDevice
from simulator.discovery import parse_probe_matches
from tianwang.cameras.schemas import CameraSpec

TDS = "http://www.onvif.org/ver10/device/wsdl"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TEV = "http://www.onvif.org/ver10/events/wsdl"
SOAP = "http://www.w3.org/2003/05/soap-envelope"


def envelope(
    body: str, user: str | None = None, password: str = "", created: str | None = None, text: bool = False
) -> str:
    header = ""
    if user is not None:
        nonce = os.urandom(16)
        created = created or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        if text:
            pw_type, pw = "PasswordText", password
        else:
            pw_type = "PasswordDigest"
            pw = base64.b64encode(
                hashlib.sha1(nonce + created.encode() + password.encode()).digest()
            ).decode()
        oasis = "http://docs.oasis-open.org/wss/2004/01"
        header = (
            f'<s:Header><wsse:Security xmlns:wsse="{oasis}/oasis-200401-wss-wssecurity-secext-1.0.xsd" '
            f'xmlns:wsu="{oasis}/oasis-200401-wss-wssecurity-utility-1.0.xsd">'
            f"<wsse:UsernameToken><wsse:Username>{user}</wsse:Username>"
            f'<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#{pw_type}">{pw}</wsse:Password>'
            f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{created}</wsu:Created>"
            "</wsse:UsernameToken></wsse:Security></s:Header>"
        )
    return f'<s:Envelope xmlns:s="{SOAP}">{header}<s:Body>{body}</s:Body></s:Envelope>'


def op(name: str, ns: str = TDS, inner: str = "") -> str:
    return f'<{name} xmlns="{ns}">{inner}</{name}>'


def call(dev: VirtualDevice, body: str, timeout: float = 10.0, **auth: object) -> httpx.Response:
    user = auth.pop("user", dev.username)
    password = auth.pop("password", dev.password)
    xml = envelope(body, user, password, **auth) if user is not None else envelope(body)  # type: ignore[arg-type]
    return httpx.post(
        dev.xaddr, content=xml, timeout=timeout, headers={"Content-Type": "application/soap+xml"}
    )


def fault_subcodes(resp: httpx.Response) -> list[str]:
    root = etree.fromstring(resp.content)
    return [v.text or "" for v in root.iter(f"{{{SOAP}}}Value")]


def snapshot(dev: VirtualDevice, password: str | None = None) -> httpx.Response:
    return httpx.get(
        dev.snapshot_url, auth=httpx.DigestAuth(dev.username, password or dev.password), timeout=20
    )


def decode(resp: httpx.Response) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(resp.content, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None, "not a decodable JPEG"
    return img


@pytest.fixture(scope="module")
def sim():
    with SimulatorThread(n_cameras=6, n_checkpoints=1, seed=7, control_port=0, discovery_port=0) as s:
        yield s


@pytest.fixture
def dev(sim: Simulator):
    """A device with no faults; its faults are cleared again after the test."""
    d = sim.devices[0]
    sim.set_faults(d.device_id, {}, replace=True)
    yield d
    sim.set_faults(d.device_id, {}, replace=True)


def test_describe_is_a_valid_camera_body_plus_faults(sim: Simulator) -> None:
    entries = sim.describe()
    assert len(entries) == 7
    for entry in entries:
        body = {k: v for k, v in entry.items() if k != "faults"}
        spec = CameraSpec.model_validate(body)
        assert spec.onvif is not None and spec.onvif.port > 0
        assert entry["device_id"][10:13] == ("121" if entry["kind"] == "checkpoint" else "132")
    assert len({e["onvif"]["port"] for e in entries}) == 7  # one port per device


def test_get_system_date_and_time_needs_no_auth(dev: VirtualDevice) -> None:
    r = call(dev, op("GetSystemDateAndTime"), user=None)
    assert r.status_code == 200
    root = etree.fromstring(r.content)
    year = root.find(
        ".//{http://www.onvif.org/ver10/schema}UTCDateTime//{http://www.onvif.org/ver10/schema}Year"
    )
    assert year is not None and int(year.text or 0) == dt.datetime.now(dt.UTC).year


def test_digest_and_text_auth_work_wrong_password_is_not_authorized(dev: VirtualDevice) -> None:
    r = call(dev, op("GetDeviceInformation"))
    assert r.status_code == 200 and b"<tds:Manufacturer>Tianwang Simulator" in r.content
    assert call(dev, op("GetDeviceInformation"), text=True).status_code == 200
    bad = call(dev, op("GetDeviceInformation"), password="nope")
    assert bad.status_code == 400
    assert "ter:NotAuthorized" in fault_subcodes(bad)
    missing = call(dev, op("GetDeviceInformation"), user=None)
    assert "ter:NotAuthorized" in fault_subcodes(missing)


def test_created_outside_device_clock_window_is_refused(sim: Simulator, dev: VirtualDevice) -> None:
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    r = call(dev, op("GetDeviceInformation"), created=old)
    assert r.status_code == 400 and "ter:NotAuthorized" in fault_subcodes(r)
    # a device 5 h ahead refuses the host's clock and accepts its own
    sim.set_faults(dev.device_id, {"clock_skew": True})
    assert "ter:NotAuthorized" in fault_subcodes(call(dev, op("GetDeviceInformation")))
    device_now = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert call(dev, op("GetDeviceInformation"), created=device_now).status_code == 200


def test_wrong_password_fault_refuses_the_registered_password(sim: Simulator, dev: VirtualDevice) -> None:
    sim.set_faults(dev.device_id, {"wrong_password": True})
    assert "ter:NotAuthorized" in fault_subcodes(call(dev, op("GetDeviceInformation")))
    assert snapshot(dev).status_code == 401
    assert sim.describe()[0]["onvif"]["password"] == dev.password  # the JSON keeps the registered one


def test_unknown_operation_and_garbage_are_soap_faults(dev: VirtualDevice) -> None:
    r = call(dev, op("FactoryReset"))
    assert r.status_code == 500 and "ter:ActionNotSupported" in fault_subcodes(r)
    r = httpx.post(dev.xaddr, content=b"<not xml", timeout=5)
    assert r.status_code == 400 and "ter:WellFormed" in fault_subcodes(r)
    entity = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><s:Envelope xmlns:s="' + SOAP.encode()
    entity += b'"><s:Body><x>&a;</x></s:Body></s:Envelope>'
    assert httpx.post(dev.xaddr, content=entity, timeout=5).status_code == 400


def test_media_answers(dev: VirtualDevice) -> None:
    r = call(dev, op("GetProfiles", TRT))
    assert r.status_code == 200 and b'token="Profile_1"' in r.content
    r = call(dev, op("GetSnapshotUri", TRT, "<ProfileToken>Profile_1</ProfileToken>"))
    assert dev.snapshot_url.encode() in r.content
    r = call(dev, op("GetStreamUri", TRT, "<ProfileToken>Profile_1</ProfileToken>"))
    assert b"rtsp://" in r.content
    r = call(dev, op("GetSnapshotUri", TRT, "<ProfileToken>nope</ProfileToken>"))
    assert r.status_code == 400 and "ter:NoProfile" in fault_subcodes(r)


def test_offline_refuses_and_comes_back_on_the_same_port(sim: Simulator, dev: VirtualDevice) -> None:
    sim.set_faults(dev.device_id, {"offline": True})
    with pytest.raises(httpx.ConnectError):
        call(dev, op("GetSystemDateAndTime"), user=None)
    sim.set_faults(dev.device_id, {"offline": False})
    assert call(dev, op("GetSystemDateAndTime"), user=None).status_code == 200


def test_silent_times_out_and_slow_answers_late(sim: Simulator, dev: VirtualDevice) -> None:
    sim.set_faults(dev.device_id, {"silent": True})
    with pytest.raises(httpx.ReadTimeout):
        call(dev, op("GetSystemDateAndTime"), user=None, timeout=0.5)
    sim.set_faults(dev.device_id, {"silent": False, "slow": 1.5})
    with pytest.raises(httpx.ReadTimeout):
        call(dev, op("GetSystemDateAndTime"), user=None, timeout=0.5)
    assert call(dev, op("GetSystemDateAndTime"), user=None, timeout=10).status_code == 200


def test_malformed_xml_is_not_parseable(sim: Simulator, dev: VirtualDevice) -> None:
    sim.set_faults(dev.device_id, {"malformed_xml": True})
    r = call(dev, op("GetDeviceInformation"))
    assert r.status_code == 200
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(r.content)


def test_oversized_is_large_and_streamed(sim: Simulator, dev: VirtualDevice) -> None:
    sim.set_faults(dev.device_id, {"oversized": 20})
    with httpx.stream("POST", dev.xaddr, content=envelope(op("GetSystemDateAndTime")), timeout=10) as r:
        assert r.status_code == 200
        assert int(r.headers["Content-Length"]) >= 20 * 1024 * 1024
        got = 0
        for chunk in r.iter_bytes():
            got += len(chunk)
            if got > 1024 * 1024:
                break  # a careful client reads a bounded prefix
    assert got > 1024 * 1024


def test_snapshot_requires_digest_and_has_the_configured_size(sim: Simulator, dev: VirtualDevice) -> None:
    r = httpx.get(dev.snapshot_url, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Digest ")
    assert 'qop="auth"' in r.headers["WWW-Authenticate"]
    assert (
        httpx.get(dev.snapshot_url, auth=httpx.BasicAuth(dev.username, dev.password), timeout=10).status_code
        == 401
    )
    assert snapshot(dev, "wrong").status_code == 401
    r = snapshot(dev)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
    img = decode(r)
    assert img.shape[:2] == (dev.spec.height, dev.spec.width)
    for d in sim.devices:
        assert decode(snapshot(d)).shape[:2] == (d.spec.height, d.spec.width)
    assert {(d.spec.width, d.spec.height) for d in sim.devices} == {(1280, 720), (1920, 1080)}


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)


def test_picture_faults_change_the_jpeg(sim: Simulator, dev: VirtualDevice) -> None:
    normal = decode(snapshot(dev))
    lap_normal = cv2.Laplacian(_grey(normal), cv2.CV_64F).var()

    def with_fault(name: str, value: object = True) -> np.ndarray:
        sim.set_faults(dev.device_id, {name: value}, replace=True)
        return decode(snapshot(dev))

    assert _grey(with_fault("signal_loss_black")).mean() < 10
    blue = with_fault("signal_loss_blue").reshape(-1, 3).mean(axis=0)
    assert blue[0] > 150 and blue[1] < 60 and blue[2] < 60  # BGR
    assert cv2.Laplacian(_grey(with_fault("blur")), cv2.CV_64F).var() < lap_normal / 2
    assert _grey(with_fault("overexposed")).mean() > _grey(normal).mean() + 60
    assert _grey(with_fault("underexposed")).mean() < _grey(normal).mean() / 3
    cast = with_fault("color_cast").reshape(-1, 3).mean(axis=0)
    assert cast[1] > cast[0] + 40 and cast[1] > cast[2] + 40
    noisy = with_fault("noise")
    assert cv2.Laplacian(_grey(noisy), cv2.CV_64F).var() > 3 * lap_normal
    moved = with_fault("moved")
    diff = np.abs(_grey(moved).astype(int) - _grey(normal).astype(int)).mean()
    assert diff > 15
    occluded = _grey(with_fault("occlusion"))
    h, w = occluded.shape
    assert (
        occluded[h - h // 3 : h - h // 8, : w // 4].std() < 8
    )  # a flat object covers the lower left (above the OSD)


def test_frozen_repeats_bytes_while_normal_frames_differ(sim: Simulator, dev: VirtualDevice) -> None:
    assert snapshot(dev).content != snapshot(dev).content
    sim.set_faults(dev.device_id, {"frozen": True})
    first = snapshot(dev).content
    assert snapshot(dev).content == first == snapshot(dev).content


def test_night_and_ir_modes_are_not_faults(sim: Simulator, dev: VirtualDevice) -> None:
    day = decode(snapshot(dev))
    r = httpx.put(f"{sim.control_url}/devices/{dev.device_id}/faults", json={"mode": "ir"}, timeout=5)
    assert r.status_code == 200 and r.json()["faults"] == {}
    ir = decode(snapshot(dev)).astype(int)
    assert np.abs(ir[..., 0] - ir[..., 2]).mean() < 2  # grey picture
    sim.set_mode(dev.device_id, "night")
    assert _grey(decode(snapshot(dev))).mean() < _grey(day).mean() - 30
    sim.set_mode(dev.device_id, "day")


def test_control_api_changes_faults_at_run_time(sim: Simulator, dev: VirtualDevice) -> None:
    base = sim.control_url
    assert httpx.get(f"{base}/healthz", timeout=5).json()["devices"] == 7
    listed = httpx.get(f"{base}/devices", timeout=5).json()
    assert [d["device_id"] for d in listed] == [d.device_id for d in sim.devices]
    r = httpx.put(
        f"{base}/devices/{dev.device_id}/faults", json={"faults": {"offline": True, "slow": 5}}, timeout=5
    )
    assert r.status_code == 200 and r.json()["faults"] == {"offline": True, "slow": 5.0}
    with pytest.raises(httpx.ConnectError):
        call(dev, op("GetSystemDateAndTime"), user=None)
    r = httpx.put(
        f"{base}/devices/{dev.device_id}/faults", json={"faults": {"offline": False, "slow": None}}, timeout=5
    )
    assert r.json()["faults"] == {}
    assert call(dev, op("GetSystemDateAndTime"), user=None).status_code == 200
    bad = httpx.put(f"{base}/devices/{dev.device_id}/faults", json={"faults": {"melted": True}}, timeout=5)
    assert bad.status_code == 422 and "melted" in bad.json()["detail"]
    assert httpx.put(f"{base}/devices/00000000000000000000/faults", json={}, timeout=5).status_code == 404
    assert httpx.put(f"{base}/devices/{dev.device_id}/faults", content=b"{", timeout=5).status_code == 400


def test_events_pull_point_motion_and_plates(sim: Simulator) -> None:
    checkpoint = next(d for d in sim.devices if d.spec.kind == "checkpoint")
    r = call(
        checkpoint,
        op("CreatePullPointSubscription", TEV, "<InitialTerminationTime>PT60S</InitialTerminationTime>"),
    )
    assert r.status_code == 200
    address = etree.fromstring(r.content).findtext(".//{http://www.w3.org/2005/08/addressing}Address")
    assert address and "/onvif/pullpoint/" in address
    pull = op("PullMessages", TEV, "<Timeout>PT10S</Timeout><MessageLimit>50</MessageLimit>")
    xml = envelope(pull, checkpoint.username, checkpoint.password)
    topics: list[str] = []
    plates: list[str] = []
    for _ in range(4):  # plates come every 3–6 s; each pull is held until an event or 10 s
        body = httpx.post(address, content=xml, timeout=20).content
        root = etree.fromstring(body)
        topics += [(t.text or "").strip() for t in root.iter("{http://docs.oasis-open.org/wsn/b-2}Topic")]
        plates += [
            i.get("Value") or ""
            for i in root.iter("{http://www.onvif.org/ver10/schema}SimpleItem")
            if i.get("Name") == "PlateNumber"
        ]
        if plates:
            break
    assert "tns1:VideoSource/MotionAlarm" in topics
    assert plates and all(p.startswith("粤") and len(p) == 7 for p in plates)
    renew = call(
        checkpoint,
        op("Renew", "http://docs.oasis-open.org/wsn/b-2", "<TerminationTime>PT120S</TerminationTime>"),
    )
    assert renew.status_code == 400  # Renew goes to the subscription address, not the events service
    renew = httpx.post(
        address,
        content=envelope(
            op("Renew", "http://docs.oasis-open.org/wsn/b-2", "<TerminationTime>PT120S</TerminationTime>"),
            checkpoint.username,
            checkpoint.password,
        ),
        timeout=5,
    )
    assert renew.status_code == 200
    unsub = envelope(
        op("Unsubscribe", "http://docs.oasis-open.org/wsn/b-2"), checkpoint.username, checkpoint.password
    )
    assert httpx.post(address, content=unsub, timeout=5).status_code == 200
    assert httpx.post(address, content=xml, timeout=5).status_code == 400  # gone


def test_discovery_answers_a_unicast_probe_with_every_online_device(sim: Simulator) -> None:
    offline = sim.devices[3]
    sim.set_faults(offline.device_id, {"offline": True})
    try:
        probe = (
            f'<s:Envelope xmlns:s="{SOAP}" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" '
            'xmlns:d="http://schemas.xmlsoap.org/ws/2005/04/discovery" xmlns:dn="http://www.onvif.org/ver10/network/wsdl">'
            f"<s:Header><a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID>"
            "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
            "<a:Action>http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe</a:Action></s:Header>"
            "<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body></s:Envelope>"
        ).encode()
        matches: list[dict[str, str]] = []
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2.0)
            s.sendto(probe, ("127.0.0.1", sim.discovery_port))
            try:
                while True:
                    matches += parse_probe_matches(s.recv(65535))
            except TimeoutError:
                pass
    finally:
        sim.set_faults(offline.device_id, {"offline": False})
    xaddrs = {m["xaddrs"] for m in matches}
    assert xaddrs == {d.xaddr for d in sim.devices if d is not offline}
    assert all(m["address"].startswith("urn:uuid:") for m in matches)
    assert all("onvif://www.onvif.org/type/video_encoder" in m["scopes"] for m in matches)
    assert all("onvif://www.onvif.org/name/" in m["scopes"] for m in matches)


def test_zeep_parses_the_answers(dev: VirtualDevice) -> None:
    import onvif
    from zeep import Client
    from zeep.transports import Transport
    from zeep.wsse.username import UsernameToken

    wsdl = os.path.join(os.path.dirname(onvif.__file__), "wsdl")
    session_transport = Transport(timeout=10, operation_timeout=10)
    token = UsernameToken(dev.username, dev.password, use_digest=True)
    device = Client(f"{wsdl}/devicemgmt.wsdl", transport=session_transport, wsse=token).create_service(
        "{http://www.onvif.org/ver10/device/wsdl}DeviceBinding", dev.xaddr
    )
    info = device.GetDeviceInformation()
    assert info.Manufacturer == "Tianwang Simulator" and info.SerialNumber.endswith(dev.spec.serial)
    services = device.GetServices(IncludeCapability=False)
    assert {s.Namespace for s in services} >= {TDS, TRT, TEV}
    caps = device.GetCapabilities(Category="All")
    assert caps.Media.XAddr.endswith("/onvif/media_service")
    media = Client(f"{wsdl}/media.wsdl", transport=session_transport, wsse=token).create_service(
        "{http://www.onvif.org/ver10/media/wsdl}MediaBinding", caps.Media.XAddr
    )
    profiles = media.GetProfiles()
    assert profiles[0].VideoEncoderConfiguration.Resolution.Width == dev.spec.width
    uri = media.GetSnapshotUri(ProfileToken=profiles[0].token)
    assert uri.Uri == dev.snapshot_url


def test_fault_spec_parsing() -> None:
    assert flt.parse_spec("3:offline,4:slow=5,5:blur,4:blur", 10) == {
        3: {"offline": True},
        4: {"slow": 5.0, "blur": 9.0},
        5: {"blur": 9.0},
    }
    for bad in ("x:offline", "3", "3:melted", "30:offline", "4:slow=fast", "4:offline=2"):
        with pytest.raises(flt.FaultSpecError):
            flt.parse_spec(bad, 10)
    a = flt.random_assignment(100, 0.2, seed=3)
    assert len(a) == 20 and a == flt.random_assignment(100, 0.2, seed=3)
    assert all(len(f) == 1 for f in a.values())


async def test_two_hundred_devices_in_one_process() -> None:
    sim = Simulator(n_cameras=190, n_checkpoints=10, seed=2, fault_share=0.2)
    await sim.start()
    try:
        assert len({d.port for d in sim.devices}) == 200
        faulty = [d for d in sim.devices if d.faults]
        assert len(faulty) == 40
        answering = [
            d
            for d in sim.devices
            if not ({"offline", "silent", "slow", "malformed_xml", "oversized"} & set(d.faults))
        ]
        body = envelope(op("GetSystemDateAndTime"))
        async with httpx.AsyncClient(timeout=10) as client:
            rs = await asyncio.gather(*(client.post(d.xaddr, content=body) for d in answering))
        assert all(r.status_code == 200 for r in rs)
    finally:
        await sim.stop()
