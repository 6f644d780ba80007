"""Agents: ownership by zone and capacity, heartbeats with assignments, and the command channel."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import LiveServer, auth
from tianwang.agents.assign import AgentInfo, DeviceRef, assign, owner
from tianwang.agents.commands import run_on_agent
from tianwang.auth.tokens import create_token
from tianwang.context import AppContext
from tianwang.errors import ServiceUnavailable
from tianwang.storage.models import AgentCommand
from tianwang.wakeups import WakeHub


def devices(n: int, area: str = "440305") -> list[DeviceRef]:
    return [DeviceRef(f"{area}00001320{i:06d}", area) for i in range(n)]


def test_assignment_balances_by_capacity_and_moves_little() -> None:
    agents = [AgentInfo("a", 100, ("*",)), AgentInfo("b", 100, ("4403",)), AgentInfo("c", 200, ("440305",))]
    devs = devices(4000)
    first = assign(devs, agents)
    share = Counter(first.values())
    assert abs(share["c"] / 4000 - 0.5) < 0.05 and abs(share["a"] / 4000 - 0.25) < 0.05
    # b stops: only b's devices move
    second = assign(devs, [a for a in agents if a.agent_id != "b"])
    moved = [d for d in first if first[d] != second[d]]
    assert moved and all(first[d] == "b" for d in moved)
    # a new agent takes a share from everyone and nothing else moves between old agents
    third = assign(devs, [*agents, AgentInfo("d", 100, ("*",))])
    assert all(third[d] in (first[d], "d") for d in first)


def test_zones_and_pins() -> None:
    agents = [AgentInfo("sz", 10, ("4403",)), AgentInfo("gz", 10, ("4401",))]
    assert owner(DeviceRef("44010600001320000001", "440106"), agents) == "gz"
    assert owner(DeviceRef("11010100001320000001", "110101"), agents) is None
    assert owner(DeviceRef("44030500001320000001", "440305", pinned_agent="gz"), agents) == "gz"
    # a pinned agent that is down: the zone's agent takes over
    assert owner(DeviceRef("44030500001320000001", "440305", pinned_agent="gone"), agents) == "sz"


def camera(i: int, **over: Any) -> dict[str, Any]:
    b = {
        "device_id": f"44030500001320{i:06d}",
        "name": f"cam {i}",
        "kind": "bullet",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 0,
        "hfov_deg": 60,
        "range_m": 50,
        "point_class": 2,
        "onvif": {"host": "127.0.0.1", "port": 8000 + i, "username": "admin", "password": f"pw-{i}"},
    }
    b.update(over)
    return b


def hb(agent_id: str = "edge-1", **over: Any) -> dict[str, Any]:
    return {"agent_id": agent_id, "version": "0.1", "capacity": 100, "zones": ["4403"], **over}


def test_heartbeat_gives_assignments_with_credentials(client: TestClient, tokens: dict[str, str]) -> None:
    for i in range(3):
        assert (
            client.post("/api/v1/cameras", json=camera(i), headers=auth(tokens["installer"])).status_code
            == 201
        )
    client.post("/api/v1/cameras", json=camera(9, lifecycle="removed"), headers=auth(tokens["installer"]))
    r = client.post("/api/v1/agents/heartbeat", json=hb(), headers=auth(tokens["agent"]))
    assert r.status_code == 200, r.text
    rep = r.json()
    got = {a["device_id"]: a for a in rep["assignments"]}
    assert set(got) == {f"44030500001320{i:06d}" for i in range(3)}  # the removed one is not watched
    assert got["44030500001320000001"]["onvif"]["password"] == "pw-1"
    again = client.post(
        "/api/v1/agents/heartbeat",
        json=hb(config_version=rep["config_version"]),
        headers=auth(tokens["agent"]),
    )
    assert again.json()["assignments"] is None and again.json()["config_version"] == rep["config_version"]
    # only agents heartbeat: not even admin, so credentials never reach a human's screen
    for role in ("admin", "staff", "installer", "investigator"):
        assert (
            client.post("/api/v1/agents/heartbeat", json=hb(), headers=auth(tokens[role])).status_code == 403
        )
    listed = client.get("/api/v1/agents", headers=auth(tokens["staff"])).json()
    assert listed[0]["agent_id"] == "edge-1" and listed[0]["live"] is True
    assert (
        client.post(
            "/api/v1/agents/heartbeat", json=hb(capacity=0), headers=auth(tokens["agent"])
        ).status_code
        == 422
    )


def test_agent_identity_is_bound_to_its_token(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    assert (
        client.post("/api/v1/agents/heartbeat", json=hb(), headers=auth(tokens["agent"])).status_code == 200
    )
    with ctx.db.session() as s:
        other = create_token(s, "agent", "another-agent")
    assert client.post("/api/v1/agents/heartbeat", json=hb(), headers=auth(other)).status_code == 403


def test_no_agent_online_is_503(ctx: AppContext, client: TestClient, tokens: dict[str, str]) -> None:
    client.post("/api/v1/cameras", json=camera(1), headers=auth(tokens["installer"]))

    async def go() -> None:
        await run_on_agent(
            ctx.db,
            WakeHub(),
            kind="probe",
            device_id="44030500001320000001",
            requested_by="t",
            deadline_s=1,
            payload=lambda a: {},
        )

    with pytest.raises(ServiceUnavailable, match="no agent online"):
        asyncio.run(go())


def test_command_round_trip_through_long_poll(live_server: tuple[LiveServer, AppContext]) -> None:
    srv, ctx = live_server
    with ctx.db.session() as s:
        agent_tok, inst_tok = create_token(s, "agent", "edge"), create_token(s, "installer", "inst")
    h = auth(agent_tok)
    with httpx.Client(base_url=srv.url, timeout=30) as c:
        assert c.post("/api/v1/cameras", json=camera(1), headers=auth(inst_tok)).status_code == 201
        first = c.post("/api/v1/agents/heartbeat", json=hb(), headers=h).json()
        version = first["config_version"]
        seen: dict[str, Any] = {}

        def agent_loop() -> None:
            # long poll: held open until the command is queued, then answer it
            r = c.post("/api/v1/agents/heartbeat", json=hb(wait_s=20, config_version=version), headers=h)
            cmds = r.json()["commands"]
            seen["commands"] = cmds
            for cmd in cmds:
                res = {"ok": True, "result": {"reachable": True, "device": cmd["device"]["device_id"]}}
                r = c.post(f"/api/v1/agents/commands/{cmd['id']}/result", json=res, headers=h)
                seen["post"] = (r.status_code, r.text)
                # a retried post of the same result is harmless
                c.post(f"/api/v1/agents/commands/{cmd['id']}/result", json=res, headers=h).raise_for_status()

        t = threading.Thread(target=agent_loop)
        t.start()

        async def ask() -> Any:
            # another "replica": its own wake-up hub, so the agent learns of the command from the database
            return await run_on_agent(
                ctx.db,
                WakeHub(),
                kind="probe",
                device_id="44030500001320000001",
                requested_by="inst",
                deadline_s=15,
                payload=lambda agent_id: {"snapshot_key": "k"},
            )

        row = asyncio.run(ask())
        t.join(30)
        assert seen.get("post", (204,))[0] == 204, seen
        assert row.state == "done" and row.result == {"reachable": True, "device": "44030500001320000001"}
        assert len(seen["commands"]) == 1 and seen["commands"][0]["kind"] == "probe"
        # credentials travel at delivery, from the registry; the queue row holds none
        assert seen["commands"][0]["device"]["onvif"]["password"] == "pw-1"
        assert seen["commands"][0]["snapshot_key"] == "k"
        with ctx.db.session() as s:
            assert "pw-1" not in str(s.get(AgentCommand, row.id).payload)
        # an unknown command, and a command of another agent
        assert c.post("/api/v1/agents/commands/nope/result", json={"ok": True}, headers=h).status_code == 404


def test_unanswered_command_is_503_naming_the_agent(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    client.post("/api/v1/cameras", json=camera(1), headers=auth(tokens["installer"]))
    client.post("/api/v1/agents/heartbeat", json=hb(), headers=auth(tokens["agent"]))

    async def go() -> None:
        await run_on_agent(
            ctx.db,
            WakeHub(),
            kind="probe",
            device_id="44030500001320000001",
            requested_by="t",
            deadline_s=0.6,
            payload=lambda a: {},
        )

    with pytest.raises(ServiceUnavailable, match="edge-1 never picked it up"):
        asyncio.run(go())
    # the expired command is not handed out later
    r = client.post("/api/v1/agents/heartbeat", json=hb(), headers=auth(tokens["agent"]))
    assert r.json()["commands"] == []


def test_an_undecryptable_password_does_not_stop_the_agents_other_devices(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    from sqlalchemy import update

    from tianwang.storage.models import Camera

    for i in range(2):
        client.post("/api/v1/cameras", json=camera(i), headers=auth(tokens["installer"]))
    with ctx.db.session() as s:
        s.execute(
            update(Camera)
            .where(Camera.device_id == camera(0)["device_id"])
            .values(onvif_password_enc=b"junk")
        )
    r = client.post("/api/v1/agents/heartbeat", json=hb(), headers=auth(tokens["agent"]))
    assert r.status_code == 200
    assert [a["device_id"] for a in r.json()["assignments"]] == [camera(1)["device_id"]]
