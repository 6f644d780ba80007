"""The installer's probe against the simulator's virtual cameras, each fault kind, and the API route."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import select

from edge_agent.devices.onvif_client import warm_wsdl
from edge_agent.probes import ProbeSettings, run_with_deadline
from edge_agent.probes import onvif as onvif_probe
from edge_agent.probes import snapshot as snapshot_probe
from edge_agent.probes.installer import run as run_installer
from simulator.devices import Simulator, SimulatorThread
from tests.conftest import auth
from tianwang.config import Settings
from tianwang.context import AppContext
from tianwang.protocol import OnvifEndpoint, ProbeRequest
from tianwang.storage.models import Camera

FAST = ProbeSettings(call_timeout_s=2.0)


def request_for(dev: Any, deadline_s: float = 4.0, password: str | None = None) -> ProbeRequest:
    return ProbeRequest(
        device_id=dev.device_id,
        onvif=OnvifEndpoint(
            host="127.0.0.1",
            port=dev.port,
            username=dev.username,
            password=password if password is not None else dev.password,
        ),
        deadline_s=deadline_s,
    )


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    await warm_wsdl()
    async with Simulator(n_cameras=2, n_checkpoints=0) as s:
        yield s


def steps(result: Any) -> dict[str, tuple[str, str | None]]:
    return {s.name: (s.outcome, s.code) for s in result.steps}


async def test_healthy_camera_full_probe(sim: Simulator) -> None:
    dev = sim.devices[0]
    out = await run_installer(request_for(dev), FAST)
    r = out.result
    assert r.error is None, r.error
    assert r.reachable and r.authenticated
    assert r.clock_skew_s is not None and abs(r.clock_skew_s) <= 2
    assert r.device_info is not None and r.device_info.manufacturer and r.device_info.serial
    assert r.profiles and r.profiles[0].width and r.profiles[0].encoding
    assert r.snapshot_uri == dev.snapshot_url and r.stream_uri == dev.rtsp_url
    assert r.snapshot is not None and out.jpeg is not None and out.jpeg[:3] == b"\xff\xd8\xff"
    assert (r.snapshot.width, r.snapshot.height, r.snapshot.size) == (*_dims(dev), len(out.jpeg))
    assert all(outcome == "ok" for outcome, _ in steps(r).values()) and len(r.steps) == 5
    assert r.snapshot.judged == (r.snapshot.quality is not None)
    assert 0 < r.duration_ms < 4000


def _dims(dev: Any) -> tuple[int, int]:
    w, h = dev.describe()["resolution"].split("x")
    return int(w), int(h)


# `authenticated`, as the health check says it: True / False (refused) / None (never got that far)
@pytest.mark.parametrize(
    ("faults", "code", "reachable", "failed_step", "authenticated"),
    [
        ({"offline": True}, "unreachable", False, "clock", None),
        ({"silent": True}, "timeout", False, "clock", None),
        ({"wrong_password": True}, "auth_refused", True, "auth", False),
        ({"malformed_xml": True}, "bad_answer", True, "auth", None),
        ({"oversized": 50}, "bad_answer", True, "auth", None),
    ],
)
async def test_each_fault_gives_its_typed_outcome(
    sim: Simulator,
    faults: dict[str, Any],
    code: str,
    reachable: bool,
    failed_step: str,
    authenticated: bool | None,
) -> None:
    dev = sim.devices[0]
    sim.set_faults(dev.device_id, faults, replace=True)
    out = await run_installer(request_for(dev, deadline_s=4.0), FAST)
    r = out.result
    assert r.error is not None and r.error.code == code, r.error
    assert r.reachable is reachable and r.authenticated is authenticated
    assert steps(r)[failed_step] == ("failed", code)
    # everything after the failed step is skipped with a reason
    names = [s.name for s in r.steps]
    for s in r.steps[names.index(failed_step) + 1 :]:
        assert s.outcome == "skipped" and s.message
    assert r.snapshot is None and out.jpeg is None
    assert r.duration_ms < 4000 + 1000  # the deadline held (plus teardown)


async def test_slow_device_beyond_the_deadline_is_cut_by_the_runner(sim: Simulator) -> None:
    dev = sim.devices[0]
    sim.set_faults(dev.device_id, {"slow": 10}, replace=True)
    # calls may take 30 s each, so only the outer deadline can stop it
    out = await run_installer(request_for(dev, deadline_s=1.0), ProbeSettings(call_timeout_s=30))
    r = out.result
    assert r.error is not None and r.error.code == "timeout" and "deadline" in r.error.message
    assert steps(r)["clock"] == ("failed", "timeout")
    assert [s.outcome for s in r.steps[1:]] == ["skipped"] * 4
    assert r.duration_ms < 3000


async def test_clock_five_hours_off_still_authenticates(sim: Simulator) -> None:
    dev = sim.devices[1]
    sim.set_faults(dev.device_id, {"clock_skew": 5}, replace=True)
    out = await run_installer(request_for(dev), FAST)
    r = out.result
    assert r.error is None, r.error
    assert r.authenticated and r.profiles and r.snapshot is not None
    assert r.clock_skew_s is not None and abs(r.clock_skew_s - 18000) <= 2
    # without the adjustment the same camera refuses the (local-time) WS-Security token
    out = await run_installer(request_for(dev), ProbeSettings(call_timeout_s=2.0, adjust_time=False))
    assert out.result.error is not None and out.result.error.code == "auth_refused"


async def test_blackbox_probes_and_the_deadline_runner(sim: Simulator) -> None:
    dev = sim.devices[0]
    res = await run_with_deadline(onvif_probe.probe, request_for(dev).onvif, FAST, 4.0)
    assert res.success and set(res.phases) == {"clock", "auth", "profiles"}
    assert res.data["authenticated"] and res.data["profiles"]
    target = snapshot_probe.SnapshotTarget(dev.snapshot_url, dev.username, dev.password)
    res = await run_with_deadline(snapshot_probe.probe, target, FAST, 10.0)
    assert res.success and res.data["width"] > 0 and res.data["jpeg"][:2] == b"\xff\xd8"
    sim.set_faults(dev.device_id, {"silent": True}, replace=True)
    res = await run_with_deadline(
        onvif_probe.probe, request_for(dev).onvif, ProbeSettings(call_timeout_s=30), 0.5
    )
    assert not res.success and res.error_code == "timeout" and res.data["deadline_phase"] == "clock"


async def test_200_devices_probed_concurrently_all_answer() -> None:
    await warm_wsdl()
    async with Simulator(n_cameras=200, n_checkpoints=0) as big:
        gate = asyncio.Semaphore(50)

        async def one(dev: Any) -> Any:
            async with gate:
                return await run_with_deadline(
                    onvif_probe.probe, request_for(dev).onvif, ProbeSettings(), 60.0
                )

        results = await asyncio.gather(*(one(d) for d in big.devices))
    failures = [(r.error_code, r.error_message) for r in results if not r.success]
    assert not failures, failures[:3]
    assert len({r.data["device_info"]["serial"] for r in results}) == 200


# -- the API route, direct probe on ------------------------------------------------------------


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        object_store=f"dir:{tmp_path / 'objects'}",
        secret_key=Fernet.generate_key().decode(),
        public_url="http://testserver",
        direct_probe=True,
        probe_deadline_s=8,
    )


@pytest.fixture
def simulated() -> Iterator[Simulator]:
    with SimulatorThread(n_cameras=2, n_checkpoints=0) as s:
        yield s


def register(client: TestClient, token: str, body: dict[str, Any]) -> None:
    body = {k: v for k, v in body.items() if k != "faults"}
    r = client.post("/api/v1/cameras", json=body, headers=auth(token))
    assert r.status_code == 201, r.text


def test_api_probe_end_to_end(
    client: TestClient, tokens: dict[str, str], ctx: AppContext, simulated: Simulator
) -> None:
    body = simulated.describe()[0]
    dev_id = body["device_id"]
    register(client, tokens["installer"], body)
    r = client.post(f"/api/v1/cameras/{dev_id}/probe", headers=auth(tokens["installer"]))
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["reachable"] and p["authenticated"] and p["error"] is None
    assert body["onvif"]["password"] not in r.text
    key = p["snapshot"]["key"]
    assert key.startswith(f"snapshots/{dev_id}/")
    stored = ctx.store.get(key)
    assert stored[:3] == b"\xff\xd8\xff" and len(stored) == p["snapshot"]["size"]
    assert ctx.store.stat(key).content_type == "image/jpeg"
    with ctx.db.session() as s:
        row = s.scalar(select(Camera).where(Camera.device_id == dev_id))
        assert row is not None
        assert (
            row.manufacturer == p["device_info"]["manufacturer"] and row.serial == p["device_info"]["serial"]
        )
        assert row.stream_uri == p["stream_uri"] and row.snapshot_uri == p["snapshot_uri"]
        assert row.last_probe is not None and row.last_probe["authenticated"] is True
        assert row.last_probe_at is not None and row.last_seen is not None

    # roles: an investigator may not probe
    r = client.post(f"/api/v1/cameras/{dev_id}/probe", headers=auth(tokens["investigator"]))
    assert r.status_code == 403


def test_api_probe_of_an_offline_device_is_200_with_the_error(
    client: TestClient, tokens: dict[str, str], ctx: AppContext, simulated: Simulator
) -> None:
    body = simulated.describe()[1]
    register(client, tokens["staff"], body)
    simulated.set_faults(body["device_id"], {"offline": True})
    r = client.post(f"/api/v1/cameras/{body['device_id']}/probe", headers=auth(tokens["staff"]))
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["reachable"] is False and p["error"]["code"] == "unreachable" and p["snapshot"] is None
    with ctx.db.session() as s:
        row = s.scalar(select(Camera).where(Camera.device_id == body["device_id"]))
        assert (
            row is not None
            and row.last_probe is not None
            and row.last_probe["error"]["code"] == "unreachable"
        )
        assert row.manufacturer is None and row.last_seen is None


def test_api_probe_without_direct_mode_is_503_problem(
    client: TestClient, tokens: dict[str, str], ctx: AppContext, simulated: Simulator
) -> None:
    body = simulated.describe()[0]
    register(client, tokens["installer"], body)
    ctx.settings.direct_probe = False
    r = client.post(f"/api/v1/cameras/{body['device_id']}/probe", headers=auth(tokens["installer"]))
    assert r.status_code == 503
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "no agent online" in r.json()["detail"]
    r = client.post("/api/v1/cameras/44030500001320009999/probe", headers=auth(tokens["installer"]))
    assert r.status_code == 404
