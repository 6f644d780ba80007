"""Device health as real cameras give it: a clock years off, pictures that never come or come as PNG.

The clock: any skew is measured and stored; beyond `max_clock_skew_s` it is the `clock` fault beside
an online status. Snapshots: every failure is evidence; `allowed_snapshot_misses` of them in a row
make a camera not intact (`no_picture`), listed in /faults.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path
from typing import Any, ClassVar

import cv2
import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import select

from edge_agent.devices.snapshot import check_image, image_size, storable
from edge_agent.diagnosis import diagnose_jpeg
from edge_agent.observe import health_item
from simulator.devices import SimulatorThread
from tests.agent_support import AgentProcess, register, tokens_for, wait_until
from tests.conftest import LiveServer, auth, free_port
from tests.onvif_replay import ReplayThread
from tianwang.cameras.evidence import clock_fault, derive_status
from tianwang.context import AppContext
from tianwang.coverage import rates
from tianwang.protocol.ingest import HealthItem
from tianwang.storage.models import Camera, HealthObservation, Snapshot

CAM = "44030500001320000071"
RECORDED_YEAR = 2014  # the recorded camera's own clock (GetSystemDateAndTime.xml)


def _camera(device_id: str = CAM, **over: Any) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "name": "recorded camera",
        "kind": "dome",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 0,
        "hfov_deg": 90,
        "range_m": 50,
        "point_class": 1,
        "health_interval_s": 10,
        "snapshot_interval_s": 3600,
        **over,
    }


# -- the clock ---------------------------------------------------------------------------------


def test_any_real_skew_is_a_valid_observation_and_nonsense_is_left_out_not_fatal() -> None:
    base = {"key": "h:agent:x:1", "device_id": CAM, "ts": dt.datetime(2026, 12, 7, tzinfo=dt.UTC)}
    for years in (-57, -12, -26, 30):  # a 1970 clock, the recorded 2014 one, 2000, a far-future one
        skew = years * 365.25 * 86400
        assert HealthItem(**base, reachable=True, clock_skew_s=skew).clock_skew_s == skew
    with pytest.raises(ValidationError):
        HealthItem(**base, reachable=True, clock_skew_s=-8000 * 365.25 * 86400)  # the year 0001
    # the agent's path: the observation is still reported, reachable, with the refusal named
    item = health_item(base, reachable=True, authenticated=True, latency_ms=3.0, clock_skew_s=-2.5e11)
    assert item.reachable and item.authenticated and item.clock_skew_s is None
    assert item.error is not None and "clock_skew_s" in item.error


def test_clock_fault_rule() -> None:
    assert clock_fault(None, 60) is None and clock_fault(59.0, 60) is None and clock_fault(-60.0, 60) is None
    reason = clock_fault(-378_000_000.0, 60)
    assert reason is not None and "behind" in reason and "years" in reason and "-378000000" in reason
    assert "ahead" in (clock_fault(3600.0 * 5, 60) or "")


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_recorded_camera_with_its_2014_clock_is_online_with_a_clock_fault(
    live_server: tuple[LiveServer, AppContext], tmp_path: Path
) -> None:
    """Done-when of issue 15 §1: online within two health intervals, a `clock` fault with the skew."""
    srv, ctx = live_server
    tok = tokens_for(ctx)
    with ReplayThread(free_port()) as replay:
        onvif = {"host": "127.0.0.1", "port": replay.port, "username": "admin", "password": "replay-pass"}
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            r = c.post("/api/v1/cameras", json=_camera(onvif=onvif), headers=auth(tok["installer"]))
            assert r.status_code == 201, r.text
            agent = AgentProcess(
                srv.url,
                tok["agent"],
                tmp_path / "outbox.db",
                tmp_path / "agent.log",
                interval_scale=0.1,  # the registered 10 s → every second
                heartbeat_wait_s=2,
            ).start()
            try:
                agent.wait_ready(devices=1)

                def online() -> dict[str, Any] | None:
                    cam: dict[str, Any] = c.get(f"/api/v1/cameras/{CAM}", headers=auth(tok["staff"])).json()
                    return cam if cam["status"] == "online" else None

                cam = wait_until("the recorded camera online", online, 30, every_s=0.2)
            finally:
                assert agent.terminate() == 0, agent.log_tail()
            expected = dt.datetime(RECORDED_YEAR, 12, 24, 19, 14, 37, tzinfo=dt.UTC) - dt.datetime.now(dt.UTC)
            assert (
                cam["clock_skew_s"] is not None and abs(cam["clock_skew_s"] - expected.total_seconds()) < 60
            )
            assert cam["clock_fault_since"] is not None
            # online within two health intervals: the first or the second check decided it
            with ctx.db.session() as s:
                since = s.scalar(select(Camera.status_since).where(Camera.device_id == CAM))
                assert since is not None
                checks = s.scalars(
                    select(HealthObservation)
                    .where(HealthObservation.device_id == CAM)
                    .order_by(HealthObservation.ts)
                ).all()
            assert checks and checks[0].reachable and checks[0].authenticated is True
            assert sum(h.ts <= since for h in checks) <= 2
            assert checks[0].clock_skew_s is not None and checks[0].clock_skew_s < -10 * 365 * 86400
            faults = c.get("/api/v1/faults", headers=auth(tok["staff"])).json()
            mine = [f for f in faults if f["device_id"] == CAM]
            assert len(mine) == 1 and mine[0]["status"] == "online" and mine[0]["faults"] == ["clock"]
            assert mine[0]["clock_skew_s"] == pytest.approx(cam["clock_skew_s"], abs=30)
            assert "behind" in mine[0]["reason"] and mine[0]["since"]


def test_clock_fault_clears_when_the_clock_is_set(client: TestClient, tokens: dict[str, str]) -> None:
    assert (
        client.post("/api/v1/cameras", json=_camera(), headers=auth(tokens["installer"])).status_code == 201
    )
    h = auth(tokens["agent"])
    now = dt.datetime.now(dt.UTC)

    def check(i: int, skew: float) -> None:
        item = {
            "key": f"h:t:{CAM}:{i}",
            "device_id": CAM,
            "ts": (now - dt.timedelta(seconds=5 - i)).isoformat(),
            "reachable": True,
            "authenticated": True,
            "clock_skew_s": skew,
        }
        assert client.post("/api/v1/ingest/health", json={"items": [item]}, headers=h).json()["accepted"] == 1

    check(0, -1_800_000_000.0)  # a 1970 clock
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert cam["status"] == "online" and cam["clock_skew_s"] == -1_800_000_000.0 and cam["clock_fault_since"]
    assert [f["faults"] for f in client.get("/api/v1/faults", headers=auth(tokens["staff"])).json()] == [
        ["clock"]
    ]
    check(1, 1.5)  # set right (within the allowed 60 s)
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert cam["status"] == "online" and cam["clock_skew_s"] == 1.5 and cam["clock_fault_since"] is None
    assert client.get("/api/v1/faults", headers=auth(tokens["staff"])).json() == []


# -- snapshots that fail -------------------------------------------------------------------------


def test_derive_status_counts_snapshot_misses() -> None:
    now = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
    base: dict[str, Any] = {
        "now": now,
        "interval_s": 60,
        "allowed_misses": 3,
        "current": "online",
        "last_checked": now - dt.timedelta(seconds=10),
        "failures": 0,
        "last_authenticated": True,
        "last_error": None,
        "verdict": None,
        "faults": None,
        "allowed_snapshot_misses": 3,
    }
    assert derive_status(**base, snapshot_failures=2, last_snapshot_error="x").status == "online"
    v = derive_status(**base, snapshot_failures=3, last_snapshot_error="bad_answer: HTTP 500")
    assert v.status == "fault" and "no picture in the last 3 snapshots" in v.reason and "HTTP 500" in v.reason
    # unreachable outranks it: the camera is offline, not merely without pictures
    assert derive_status(**{**base, "failures": 3}, snapshot_failures=5).status == "offline"


def test_failed_snapshots_are_evidence_and_make_a_camera_not_intact(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    assert (
        client.post("/api/v1/cameras", json=_camera(), headers=auth(tokens["installer"])).status_code == 201
    )
    h = auth(tokens["agent"])
    now = dt.datetime.now(dt.UTC)
    hl = {
        "key": f"h:t:{CAM}:0",
        "device_id": CAM,
        "ts": (now - dt.timedelta(seconds=2)).isoformat(),
        "reachable": True,
        "authenticated": True,
    }
    assert client.post("/api/v1/ingest/health", json={"items": [hl]}, headers=h).json()["accepted"] == 1

    def failure(i: int) -> dict[str, Any]:
        ts = now - dt.timedelta(seconds=30 - i)
        return {
            "key": f"s:t:{CAM}:{i}",
            "device_id": CAM,
            "ts": ts.isoformat(),
            "error": "bad_answer: HTTP 500",
        }

    r = client.post("/api/v1/ingest/snapshots", json={"items": [failure(1), failure(2)]}, headers=h).json()
    assert r == {"accepted": 2, "duplicates": 0, "rejected": []}
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert (
        cam["status"] == "online"
        and cam["snapshot_failures"] == 2
        and "HTTP 500" in cam["last_snapshot_error"]
    )
    # a failure with picture fields, or posing as an object, is refused
    bad = [
        {**failure(9), "sha256": "0" * 64},
        {**failure(8), "key": f"snapshots/{CAM}/x.jpg"},
        {"key": "s:t:x", "device_id": CAM, "ts": now.isoformat()},
    ]
    r = client.post("/api/v1/ingest/snapshots", json={"items": bad}, headers=h).json()
    assert r["accepted"] == 0 and [x["index"] for x in r["rejected"]] == [0, 1, 2]

    assert (
        client.post("/api/v1/ingest/snapshots", json={"items": [failure(3)]}, headers=h).json()["accepted"]
        == 1
    )
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert cam["status"] == "fault" and "no picture in the last 3 snapshots" in cam["status_reason"]
    faults = client.get("/api/v1/faults", headers=auth(tokens["staff"])).json()
    assert [(f["device_id"], f["faults"]) for f in faults] == [(CAM, ["no_picture"])]
    assert "HTTP 500" in faults[0]["reason"]
    history = client.get(f"/api/v1/cameras/{CAM}/snapshots", headers=auth(tokens["staff"])).json()
    assert len(history) == 3 and all(s["error"] and s["url"] is None for s in history)
    # the intact rate rebuilt from the stored evidence agrees with the live status
    with ctx.db.session() as s:
        ids, present, intact = rates.intact_at(s, dt.datetime.now(dt.UTC), 3)
        assert ids == (CAM,) and present.tolist() == [True] and intact.tolist() == [False]

    # one good picture ends it
    jpeg = cv2.imencode(".png", np.full((48, 64, 3), 128, np.uint8))[1].tobytes()
    sha = hashlib.sha256(jpeg).hexdigest()
    ts = now - dt.timedelta(seconds=20)
    p = client.post(
        "/api/v1/ingest/snapshots/presign",
        json={
            "device_id": CAM,
            "ts": ts.isoformat(),
            "sha256": sha,
            "size": len(jpeg),
            "content_type": "image/png",
        },
        headers=h,
    ).json()
    assert p["key"].endswith(".png")
    ctx.store.put(p["key"], jpeg, "image/png")
    good = {"key": p["key"], "device_id": CAM, "ts": ts.isoformat(), "sha256": sha, "width": 64, "height": 48}
    assert client.post("/api/v1/ingest/snapshots", json={"items": [good]}, headers=h).json()["accepted"] == 1
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert cam["status"] == "online" and cam["snapshot_failures"] == 0
    latest = client.get(f"/api/v1/cameras/{CAM}/snapshots", headers=auth(tokens["staff"])).json()[0]
    assert latest["content_type"] == "image/png" and latest["url"] and latest["error"] is None


# -- pictures in other formats ------------------------------------------------------------------


def test_png_and_bmp_pictures_are_read_checked_and_diagnosed() -> None:
    y, x = np.mgrid[0:240, 0:320]
    img = np.dstack([x * 255 // 320, y * 255 // 240, (x + y) % 256]).astype(np.uint8)
    for ext, kind in ((".png", "image/png"), (".bmp", "image/bmp"), (".jpg", "image/jpeg")):
        data = cv2.imencode(ext, img)[1].tobytes()
        assert image_size(data) == (320, 240, kind) and check_image(data) == (320, 240, kind)
        stored, stored_kind = storable(data, kind)
        assert stored_kind == ("image/jpeg" if kind == "image/jpeg" else "image/png")
        assert cv2.imdecode(np.frombuffer(stored, np.uint8), cv2.IMREAD_COLOR).shape == (240, 320, 3)
        d = diagnose_jpeg(data)
        assert d.as_dict()["verdict"] in ("ok", "fault")
    from edge_agent.devices.errors import BadAnswer

    with pytest.raises(BadAnswer):
        image_size(b"<html>login</html>")
    png = cv2.imencode(".png", img)[1].tobytes()
    with pytest.raises(BadAnswer):
        check_image(png[:60])  # a header without the picture does not decode


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_agent_delivers_png_pictures_and_reports_a_camera_without_pictures(
    live_server: tuple[LiveServer, AppContext], tmp_path: Path
) -> None:
    srv, ctx = live_server
    tok = tokens_for(ctx)
    faults = {0: {"png_snapshot": True}, 1: {"snapshot_broken": True}, 2: {"bmp_snapshot": True}}
    with SimulatorThread(n_cameras=3, n_checkpoints=0, seed=5, faults=faults) as sim:
        described = sim.describe()
        ids = [d["device_id"] for d in described]
        over = {d: {"health_interval_s": 10, "snapshot_interval_s": 30} for d in ids}
        register(srv.url, tok["installer"], described, **over)
        agent = AgentProcess(
            srv.url,
            tok["agent"],
            tmp_path / "outbox.db",
            tmp_path / "agent.log",
            interval_scale=0.1,
            heartbeat_wait_s=2,
            rtsp_timeout_s=2,
        ).start()
        try:
            agent.wait_ready(devices=3)

            def cam(i: int) -> dict[str, Any]:
                r = httpx.get(f"{srv.url}/api/v1/cameras/{ids[i]}", headers=auth(tok["staff"]), timeout=10)
                return dict(r.json())

            wait_until("the broken camera called without pictures", lambda: cam(1)["status"] == "fault", 60)

            def pictures(i: int) -> list[Snapshot]:
                with ctx.db.session() as s:
                    return list(
                        s.scalars(
                            select(Snapshot).where(Snapshot.device_id == ids[i], Snapshot.error.is_(None))
                        )
                    )

            wait_until("a PNG and a BMP camera's pictures", lambda: pictures(0) and pictures(2), 60)
        finally:
            assert agent.terminate() == 0, agent.log_tail()
        for i in (0, 2):  # a BMP is stored as lossless PNG
            snap = pictures(i)[0]
            assert snap.key.endswith(".png") and snap.quality is not None and snap.width and snap.height
            data, info = ctx.store.read(snap.key)
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and info.content_type == "image/png"
            assert cam(i)["status"] == "online"
        broken = cam(1)
        assert "no picture in the last" in broken["status_reason"] and "HTTP 500" in broken["status_reason"]
        # the stream was tried too (the simulator serves none yet), and said so
        assert "stream" in broken["last_snapshot_error"]
        faults_now = httpx.get(f"{srv.url}/api/v1/faults", headers=auth(tok["staff"]), timeout=10).json()
        assert [(f["device_id"], f["faults"]) for f in faults_now] == [(ids[1], ["no_picture"])]


# -- setting the clock (校时) ---------------------------------------------------------------------


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_staff_set_a_cameras_clock_through_its_agent_and_it_is_audited(
    live_server: tuple[LiveServer, AppContext], tmp_path: Path
) -> None:
    srv, ctx = live_server
    tok = tokens_for(ctx)
    behind = -100_000.0  # hours: the clock says 2015
    with SimulatorThread(n_cameras=1, n_checkpoints=0, seed=9, faults={0: {"clock_skew": behind}}) as sim:
        described = sim.describe()
        cam_id = described[0]["device_id"]
        register(srv.url, tok["installer"], described, **{cam_id: {"health_interval_s": 10}})
        agent = AgentProcess(
            srv.url, tok["agent"], tmp_path / "outbox.db", tmp_path / "agent.log", interval_scale=0.1
        ).start()
        try:
            agent.wait_ready(devices=1)
            with httpx.Client(base_url=srv.url, timeout=60) as c:

                def camera() -> dict[str, Any]:
                    return dict(c.get(f"/api/v1/cameras/{cam_id}", headers=auth(tok["staff"])).json())

                wait_until("the clock fault", lambda: camera()["clock_fault_since"], 30)
                assert camera()["status"] == "online"
                url = f"/api/v1/cameras/{cam_id}/clock"
                assert c.post(url, json={"reason": "WO-1"}, headers=auth(tok["installer"])).status_code == 403
                assert c.post(url, json={}, headers=auth(tok["staff"])).status_code == 422
                r = c.post(url, json={"reason": "工单 WO-2026-118"}, headers=auth(tok["staff"]))
                assert r.status_code == 200, r.text
                res = r.json()
                assert res["ok"] and res["error"] is None and res["agent_id"] == "edge-test"
                assert abs(res["clock_skew_s_before"] - behind * 3600) < 60
                assert abs(res["clock_skew_s_after"]) < 5
                cam = camera()
                assert cam["clock_fault_since"] is None and abs(cam["clock_skew_s"]) < 5
                assert abs(sim.devices[0].now().timestamp() - dt.datetime.now(dt.UTC).timestamp()) < 5
                # the next health checks agree (one already in flight may still carry the old reading)
                wait_until(
                    "no open fault",
                    lambda: c.get("/api/v1/faults", headers=auth(tok["staff"])).json() == [],
                    10,
                )
                assert abs(camera()["clock_skew_s"]) < 5
        finally:
            assert agent.terminate() == 0, agent.log_tail()
    from tianwang.storage.models import AuditEntry

    with ctx.db.session() as s:
        (entry,) = s.scalars(select(AuditEntry).where(AuditEntry.route == "cameras.set_clock")).all()
        assert entry.case_no == "工单 WO-2026-118" and entry.user_name.startswith("agent-test-staff")
        assert entry.params["device_id"] == cam_id and entry.params["ok"] is True


# -- the stream as the picture's last resort ------------------------------------------------------


class _FakeCapture:
    """cv2.VideoCapture at the FFmpeg boundary (no RTSP server on this machine): one frame, for the
    URLs in `streams` only; records what was opened."""

    streams: ClassVar[set[str]] = set()
    opened: ClassVar[list[str]] = []

    def __init__(self, url: str, *args: Any) -> None:
        self.url = url
        _FakeCapture.opened.append(url)

    def isOpened(self) -> bool:
        return any(self.url.endswith(s.split("://", 1)[1]) for s in self.streams)

    def read(self) -> tuple[bool, Any]:
        return True, np.full((90, 160, 3), 100, np.uint8)

    def release(self) -> None:
        pass


async def test_snapshot_falls_back_to_a_frame_of_the_stream_the_probe_learned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edge_agent.devices.onvif_client import OnvifPool, warm_wsdl
    from edge_agent.metrics import Metrics
    from edge_agent.observe import DeviceWork, Judge
    from edge_agent.outbox import Outbox
    from edge_agent.settings import AgentSettings
    from simulator.devices import Simulator
    from tianwang.protocol.agents import Assignment, OnvifCredentials

    monkeypatch.setattr(cv2, "VideoCapture", _FakeCapture)
    await warm_wsdl()
    async with Simulator(n_cameras=1, n_checkpoints=0, faults={0: {"snapshot_broken": True}}) as sim:
        dev = sim.devices[0]
        s = AgentSettings(central="http://127.0.0.1:9", token="tw_" + "x" * 20, outbox=tmp_path / "o.db")
        box, pool = Outbox(s.outbox), OnvifPool(max_size=4, timeout_s=2.0)
        http = httpx.AsyncClient(timeout=5, trust_env=False)
        work = DeviceWork(s, box, Metrics(), pool, http, Judge(box))
        onvif = OnvifCredentials(
            host="127.0.0.1", port=dev.port, username=dev.username, password=dev.password
        )
        learned = f"rtsp://127.0.0.1:8554/{dev.device_id}/learned"
        try:
            # the stream URI the installer's probe learned (no rtsp_url registered)
            _FakeCapture.streams = {learned}
            a = Assignment(
                device_id=dev.device_id,
                kind="dome",
                onvif=onvif,
                stream_uri=learned,
                health_interval_s=60,
                snapshot_interval_s=900,
            )
            key = await work.snapshot(a)
            (entry,) = [e for e in box.take("snapshot", 10) if e.key == key]
            assert (
                entry.blob is not None and entry.blob[:3] == b"\xff\xd8\xff" and "error" not in entry.payload
            )
            assert (entry.payload["width"], entry.payload["height"]) == (160, 90)
            assert entry.payload["content_type"] == "image/jpeg" and entry.payload["quality"]["verdict"]
            # credentials go into the stream URL on the device's own host
            assert _FakeCapture.opened[-1].startswith(f"rtsp://{dev.username}:")
            box.ack([entry.id])

            # nothing learned: the device's own GetStreamUri answer is used
            _FakeCapture.streams = {dev.rtsp_url}
            work.forget(dev.device_id)
            b = a.model_copy(update={"stream_uri": None})
            key = await work.snapshot(b)
            (entry,) = [e for e in box.take("snapshot", 10) if e.key == key]
            assert entry.blob is not None and _FakeCapture.opened[-1].endswith(f"/{dev.device_id}/main")
            box.ack([entry.id])

            # a stream-only camera (no snapshot URI at all): the stream is the picture
            sim.set_faults(dev.device_id, {"no_snapshot_uri": True}, replace=True)
            work.forget(dev.device_id)
            key = await work.snapshot(b)
            (entry,) = [e for e in box.take("snapshot", 10) if e.key == key]
            assert entry.blob is not None and "error" not in entry.payload
            box.ack([entry.id])
            sim.set_faults(dev.device_id, {"snapshot_broken": True}, replace=True)
            work.forget(dev.device_id)

            # neither gives a picture: one failure naming both reasons
            _FakeCapture.streams = set()
            key = await work.snapshot(b)
            (entry,) = [e for e in box.take("snapshot", 10) if e.key == key]
            assert entry.blob is None and "HTTP 500" in entry.payload["error"]
            assert "stream" in entry.payload["error"] and "did not open" in entry.payload["error"]
        finally:
            await http.aclose()
            await pool.close()
            box.close()
