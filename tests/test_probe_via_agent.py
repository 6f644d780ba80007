"""The installer's probe through the command channel: API → agent (long poll) → device → result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from simulator.devices import SimulatorThread
from tests.agent_support import AgentProcess, register, tokens_for
from tests.conftest import LiveServer, auth
from tianwang.context import AppContext


@pytest.mark.parametrize("db_url", ["sqlite", pytest.param("pg", marks=pytest.mark.pg)], indirect=True)
def test_probe_runs_on_the_owning_agent(live_server: tuple[LiveServer, AppContext], tmp_path: Path) -> None:
    srv, ctx = live_server
    tok = tokens_for(ctx)
    with SimulatorThread(n_cameras=3, n_checkpoints=0, seed=11, faults="1:wrong_password,2:offline") as sim:
        described = sim.describe()
        register(srv.url, tok["installer"], described)
        ids = [d["device_id"] for d in described]
        h = auth(tok["installer"])
        with httpx.Client(base_url=srv.url, timeout=60) as c:
            # no agent yet: a clear 503 naming why
            r = c.post(f"/api/v1/cameras/{ids[0]}/probe", headers=h)
            assert r.status_code == 503 and "no agent online" in r.json()["detail"]
            agent = AgentProcess(
                srv.url, tok["agent"], tmp_path / "outbox.db", tmp_path / "agent.log"
            ).start()
            try:
                agent.wait_ready(devices=3)
                r = c.post(f"/api/v1/cameras/{ids[0]}/probe", headers=h)
                assert r.status_code == 200, r.text
                res: dict[str, Any] = r.json()
                assert res["reachable"] and res["authenticated"] and res["error"] is None
                assert res["device_info"]["manufacturer"] and res["snapshot_uri"] and res["stream_uri"]
                key = res["snapshot"]["key"]
                assert key and key.startswith(f"snapshots/{ids[0]}/")
                assert ctx.store.get(key)[:2] == b"\xff\xd8"  # the agent uploaded the JPEG itself
                cam = c.get(f"/api/v1/cameras/{ids[0]}", headers=h).json()
                assert cam["manufacturer"] == res["device_info"]["manufacturer"] and cam["last_probe_at"]
                # device trouble is in the answer, never a 500
                bad = c.post(f"/api/v1/cameras/{ids[1]}/probe", headers=h).json()
                assert (
                    bad["reachable"] and not bad["authenticated"] and bad["error"]["code"] == "auth_refused"
                )
                off = c.post(f"/api/v1/cameras/{ids[2]}/probe", headers=h).json()
                assert not off["reachable"] and off["error"]["code"] == "unreachable"
            finally:
                agent.terminate()
            # the agent is gone: its heartbeat still counts as live for a while, so the command
            # waits and then says the agent did not answer
            ctx.settings.probe_deadline_s = 1.0
            r = c.post(f"/api/v1/cameras/{ids[0]}/probe", headers=h)
            assert r.status_code == 503 and "edge-test" in r.json()["detail"]
