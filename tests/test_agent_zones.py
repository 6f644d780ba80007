"""Agent tokens bound to zones and agent ids: what a heartbeat may claim, and what an agent may report.

The attack this guards against: any agent token heart-beating as a new agent with zones ["*"]
received every region's ONVIF passwords, pulled devices away from the real agents, and could
report health about devices it did not watch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import auth
from tianwang.agents import service
from tianwang.agents.assign import AgentInfo, DeviceRef, intersect_zones, owner
from tianwang.auth.tokens import create_token
from tianwang.cli import app
from tianwang.config import Settings, get_settings
from tianwang.context import AppContext
from tianwang.errors import Forbidden, ValidationFailed
from tianwang.storage import migrate
from tianwang.storage.models import ApiToken, utcnow

SZ = "44030500001320000001"  # 深圳 (440305)
SZ2 = "44030500001320000002"
GZ = "44010600001320000001"  # 广州 (440106)


def camera(device_id: str, password: str) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "name": f"cam {device_id[-4:]}",
        "kind": "bullet",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 0,
        "hfov_deg": 60,
        "range_m": 50,
        "point_class": 2,
        "onvif": {"host": "127.0.0.1", "port": 8000, "username": "admin", "password": password},
    }


def hb(agent_id: str, zones: list[str], **over: Any) -> dict[str, Any]:
    return {"agent_id": agent_id, "version": "0.1", "capacity": 100, "zones": zones, **over}


def agent_token(
    ctx: AppContext, name: str, zones: list[str] | None, agent_ids: list[str] | None = None
) -> str:
    with ctx.db.session() as s:
        tok = create_token(s, "agent", name, agent_ids=agent_ids)
        row = s.query(ApiToken).filter_by(name=name).one()
        row.zones = zones  # None: a token made before zones existed
    return tok


@pytest.fixture
def city(client: TestClient, tokens: dict[str, str]) -> None:
    for dev, pw in ((SZ, "pw-sz-1"), (SZ2, "pw-sz-2"), (GZ, "pw-gz")):
        r = client.post("/api/v1/cameras", json=camera(dev, pw), headers=auth(tokens["installer"]))
        assert r.status_code == 201, r.text


def assigned(client: TestClient, token: str, agent_id: str, zones: list[str]) -> dict[str, Any]:
    r = client.post("/api/v1/agents/heartbeat", json=hb(agent_id, zones), headers=auth(token))
    assert r.status_code == 200, r.text
    return {a["device_id"]: a for a in r.json()["assignments"] or []}


def test_zone_intersection() -> None:
    assert intersect_zones(["*"], ["4403", "4404"]) == ("4403", "4404")
    assert intersect_zones(["44"], ["4403"]) == ("4403",)
    assert intersect_zones(["440305", "4401"], ["4403"]) == ("440305",)
    assert intersect_zones(["4401"], ["4403"]) == ()
    assert intersect_zones(["4401"], None) == ("4401",)
    assert intersect_zones(["4401", "4403"], ["*"]) == ("4401", "4403")


def test_a_pin_does_not_reach_past_the_tokens_zones() -> None:
    sz = AgentInfo("sz", 10, ("4403",), limit=("4403",))
    gz = AgentInfo("gz", 10, (), limit=("4401",))
    # pinned to an agent whose token does not reach the device: the zone's agent keeps it
    assert owner(DeviceRef(SZ, "440305", pinned_agent="gz"), [sz, gz]) == "sz"
    assert owner(DeviceRef(SZ, "440305", pinned_agent="gz"), [gz]) is None
    # a token without bounds (made before zones): the pin is honoured as before
    assert owner(DeviceRef(SZ, "440305", pinned_agent="old"), [sz, AgentInfo("old", 10, ("4401",))]) == "old"


def test_rogue_heartbeat_gets_only_its_tokens_zones(
    client: TestClient, ctx: AppContext, tokens: dict[str, str], city: None
) -> None:
    real = agent_token(ctx, "edge-sz", ["4403"])
    rogue = agent_token(ctx, "edge-gz", ["4401"])
    mine = assigned(client, real, "sz-1", ["4403"])
    assert set(mine) == {SZ, SZ2}
    # the attack: a new agent id, claiming every zone, with a much larger capacity
    r = client.post(
        "/api/v1/agents/heartbeat", json=hb("rogue-1", ["*"], capacity=100_000), headers=auth(rogue)
    )
    assert r.status_code == 200, r.text
    got = {a["device_id"]: a for a in r.json()["assignments"]}
    assert set(got) == {GZ}
    assert "pw-sz-1" not in r.text and "pw-sz-2" not in r.text
    # and the real agent keeps every device of its zone
    assert set(assigned(client, real, "sz-1", ["4403"])) == {SZ, SZ2}
    listed = {a["agent_id"]: a for a in client.get("/api/v1/agents", headers=auth(tokens["staff"])).json()}
    assert listed["rogue-1"]["zones"] == ["4401"]


def test_a_claim_outside_the_token_gets_nothing(client: TestClient, ctx: AppContext, city: None) -> None:
    tok = agent_token(ctx, "edge-sz", ["4403"])
    assert assigned(client, tok, "sz-1", ["4401"]) == {}
    assert set(assigned(client, tok, "sz-1", ["440305", "4401"])) == {SZ, SZ2}


def test_a_pinned_device_outside_the_zones_is_not_given(
    client: TestClient, ctx: AppContext, tokens: dict[str, str], city: None
) -> None:
    tok = agent_token(ctx, "edge-sz", ["4403"])
    r = client.patch(f"/api/v1/cameras/{GZ}", json={"agent_id": "sz-1"}, headers=auth(tokens["installer"]))
    assert r.status_code == 200, r.text
    assert GZ not in assigned(client, tok, "sz-1", ["*"])


def test_one_token_is_one_agent(client: TestClient, ctx: AppContext, city: None) -> None:
    tok = agent_token(ctx, "edge-sz", ["4403"])
    assert assigned(client, tok, "sz-1", ["4403"])
    r = client.post("/api/v1/agents/heartbeat", json=hb("rogue-1", ["*"]), headers=auth(tok))
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"] == "urn:tianwang:problem:forbidden" and "sz-1" in r.json()["detail"]
    # the bound agent carries on
    assert assigned(client, tok, "sz-1", ["4403"])


def test_a_token_may_allow_several_agent_ids(client: TestClient, ctx: AppContext, city: None) -> None:
    tok = agent_token(ctx, "edge-pair", ["4403"], agent_ids=["sz-a", "sz-b"])
    assigned(client, tok, "sz-a", ["4403"])
    b = assigned(client, tok, "sz-b", ["4403"])
    a = assigned(client, tok, "sz-a", ["4403"])  # now that both are live, they share the zone
    assert set(a) | set(b) == {SZ, SZ2} and not set(a) & set(b)
    r = client.post("/api/v1/agents/heartbeat", json=hb("sz-c", ["4403"]), headers=auth(tok))
    assert r.status_code == 403


def test_a_token_from_before_zones_reaches_all_but_keeps_its_agents(
    client: TestClient, ctx: AppContext, city: None
) -> None:
    from tianwang.auth.tokens import unbounded_agent_tokens

    tok = agent_token(ctx, "old-edge", None, agent_ids=["old-1"])  # as migration 0005 leaves it
    with ctx.db.session() as s:
        assert unbounded_agent_tokens(s) == ["old-edge"]
    assert set(assigned(client, tok, "old-1", ["*"])) == {SZ, SZ2, GZ}
    assert (
        client.post("/api/v1/agents/heartbeat", json=hb("other", ["*"]), headers=auth(tok)).status_code == 403
    )


def test_token_bounds_are_validated(ctx: AppContext) -> None:
    with ctx.db.session() as s:
        for zones in ([], ["44a"], ["4403/"], [""]):
            with pytest.raises(ValidationFailed):
                create_token(s, "agent", "bad", zones=zones)
        with pytest.raises(ValidationFailed):
            create_token(s, "agent", "bad", zones=["4403"], agent_ids=["no spaces"])
        with pytest.raises(ValidationFailed):
            create_token(s, "staff", "bad", zones=["4403"])
        create_token(s, "agent", "ok", zones=[" 4403", "4404 ", "4403"])
        assert s.query(ApiToken).filter_by(name="ok").one().zones == ["4403", "4404"]
        create_token(s, "agent", "all", zones=["4403", "*"])
        assert s.query(ApiToken).filter_by(name="all").one().zones == ["*"]


def _metric(client: TestClient, staff: str, kind: str) -> float:
    text = client.get("/metrics", headers=auth(staff)).text
    line = next(
        ln for ln in text.splitlines() if ln.startswith(f'tianwang_ingest_not_owned_total{{kind="{kind}"}}')
    )
    return float(line.split()[-1])


def test_ingest_refuses_reports_about_devices_outside_the_zones(
    client: TestClient, ctx: AppContext, tokens: dict[str, str], city: None
) -> None:
    tok = agent_token(ctx, "edge-sz", ["4403"])
    assigned(client, tok, "sz-1", ["4403"])
    now = utcnow().isoformat()
    items = [
        {
            "key": "h:sz-1:gz:1",
            "device_id": GZ,
            "ts": now,
            "reachable": False,
            "error": "unreachable: forged",
        },
        {"key": "h:sz-1:sz:1", "device_id": SZ, "ts": now, "reachable": True, "authenticated": True},
        {"key": "h:sz-1:bad:1", "device_id": SZ2, "ts": "not a time", "reachable": True},
    ]
    before = _metric(client, tokens["staff"], "health")
    r = client.post("/api/v1/ingest/health", json={"items": items}, headers=auth(tok))
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["accepted"] == 1
    # the refusal and the ingest's own rejection, each at its index in the batch
    assert [x["index"] for x in rep["rejected"]] == [0, 2]
    assert rep["rejected"][0]["key"] == "h:sz-1:gz:1" and "zones" in rep["rejected"][0]["errors"][0]
    assert _metric(client, tokens["staff"], "health") == before + 1
    cams = {
        c["device_id"]: c
        for c in client.get("/api/v1/cameras", headers=auth(tokens["staff"])).json()["items"]
    }
    assert cams[GZ]["status"] == "registered"  # nothing recorded about it
    assert cams[SZ]["status"] == "online"

    # presign: one device per request, so the request is refused (403) and counted
    jpeg_sha = hashlib.sha256(b"jpeg").hexdigest()
    body = {"device_id": GZ, "ts": now, "sha256": jpeg_sha, "size": 4}
    r = client.post("/api/v1/ingest/snapshots/presign", json=body, headers=auth(tok))
    assert r.status_code == 403 and "zones" in r.json()["detail"]
    assert _metric(client, tokens["staff"], "presign") == 1
    assert (
        client.post(
            "/api/v1/ingest/snapshots/presign", json={**body, "device_id": SZ}, headers=auth(tok)
        ).status_code
        == 200
    )

    # snapshot records: refused per item
    snap = {
        "key": f"snapshots/{GZ}/x.jpg",
        "device_id": GZ,
        "ts": now,
        "sha256": jpeg_sha,
        "width": 1,
        "height": 1,
    }
    r = client.post("/api/v1/ingest/snapshots", json={"items": [snap]}, headers=auth(tok))
    assert r.status_code == 200 and r.json()["accepted"] == 0
    assert "zones" in r.json()["rejected"][0]["errors"][0]
    assert _metric(client, tokens["staff"], "snapshots") == 1


def test_a_token_with_all_zones_reports_on_any_device(
    client: TestClient, ctx: AppContext, city: None
) -> None:
    tok = agent_token(ctx, "edge-all", ["*"])
    now = utcnow().isoformat()
    items = [{"key": f"h:x:{d}:1", "device_id": d, "ts": now, "reachable": True} for d in (SZ, GZ)]
    r = client.post("/api/v1/ingest/health", json={"items": items}, headers=auth(tok))
    assert r.json()["accepted"] == 2 and r.json()["rejected"] == []


def test_a_command_result_about_a_device_outside_the_zones_is_refused(
    client: TestClient, ctx: AppContext, tokens: dict[str, str], city: None
) -> None:
    tok = agent_token(ctx, "edge-sz", ["4403"])
    assigned(client, tok, "sz-1", ["4403"])
    with ctx.db.session() as s:
        # queued for this agent by a bug or an older ownership: the reply must still not be taken
        cmd = service.enqueue(
            s, kind="probe", device_id=GZ, agent_id="sz-1", deadline_s=30, requested_by="t", payload={}
        )
        cmd_id = cmd.id
    r = client.post(
        f"/api/v1/agents/commands/{cmd_id}/result", json={"ok": True, "result": {}}, headers=auth(tok)
    )
    assert r.status_code == 403 and "zones" in r.json()["detail"]
    assert _metric(client, tokens["staff"], "result") == 1
    # another agent token cannot answer a command queued for this one
    other = agent_token(ctx, "edge-other", ["*"])
    with ctx.db.session() as s:
        cmd_id = service.enqueue(
            s, kind="probe", device_id=SZ, agent_id="sz-1", deadline_s=30, requested_by="t", payload={}
        ).id
    r = client.post(f"/api/v1/agents/commands/{cmd_id}/result", json={"ok": True}, headers=auth(other))
    assert r.status_code == 403
    r = client.post(f"/api/v1/agents/commands/{cmd_id}/result", json={"ok": True}, headers=auth(tok))
    assert r.status_code == 204


def test_first_heartbeats_race_for_the_binding(ctx: AppContext) -> None:
    """Two first heartbeats with different ids: exactly one binds the token."""
    with ctx.db.session() as s:
        create_token(s, "agent", "racy", zones=["*"])
        token_id = s.query(ApiToken).filter_by(name="racy").one().id
    with ctx.db.session() as s1:
        service.bind_agent_id(s1, token_id, "first")
    with ctx.db.session() as s2, pytest.raises(Forbidden, match="not second"):
        service.bind_agent_id(s2, token_id, "second")
    with ctx.db.session() as s:
        assert s.get(ApiToken, token_id).agent_ids == ["first"]


# -- tokens made before zones: the migration ----------------------------------------------------


def test_migration_binds_old_agent_tokens_to_the_agents_they_had(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/m.db"
    migrate.upgrade(url, "0004")
    eng = create_engine(url)
    now = utcnow()
    with eng.begin() as c:
        for i, (name, role) in enumerate((("edge", "agent"), ("fresh", "agent"), ("ops", "staff"))):
            c.execute(
                text(
                    "INSERT INTO api_tokens (name, role, token_hash, prefix, created_at)"
                    " VALUES (:n, :r, :h, 'tw_', :t)"
                ),
                {"n": name, "r": role, "h": f"{i:064d}", "t": now},
            )
        for agent_id in ("edge-b", "edge-a"):
            c.execute(
                text(
                    "INSERT INTO agents (agent_id, version, capacity, zones, token_name, first_seen,"
                    " last_heartbeat) VALUES (:a, '1', 10, '[\"*\"]', 'edge', :t, :t)"
                ),
                {"a": agent_id, "t": now},
            )
    migrate.upgrade(url)
    with Session(eng) as s:
        rows = {t.name: t for t in s.scalars(select(ApiToken))}
        # the agents it already had keep working; nobody else may take its name
        assert rows["edge"].agent_ids == ["edge-a", "edge-b"] and rows["edge"].zones is None
        # none yet: the first to heartbeat binds it
        assert rows["fresh"].agent_ids is None and rows["fresh"].zones is None
        assert rows["ops"].agent_ids is None
        from tianwang.auth.tokens import unbounded_agent_tokens

        assert unbounded_agent_tokens(s) == ["edge", "fresh"]
    migrate.downgrade(url, "0004")
    assert "zones" not in {c["name"] for c in inspect(eng).get_columns("api_tokens")}
    eng.dispose()


# -- the CLI ----------------------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TIANWANG_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TIANWANG_DATABASE_URL", db_url)
    monkeypatch.setenv("TIANWANG_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_cli_agent_tokens_need_zones(cli_env: Path) -> None:
    run = CliRunner().invoke
    r = run(app, ["token", "create", "--role", "agent", "--name", "edge-x"])
    assert r.exit_code == 1 and "--zones" in r.output
    r = run(app, ["token", "create", "--role", "agent", "--name", "edge-x", "--zones", "44a"])
    assert r.exit_code == 1 and "invalid zone" in r.output
    r = run(app, ["token", "create", "--role", "staff", "--name", "ops-x", "--zones", "4403"])
    assert r.exit_code == 1 and "agent tokens only" in r.output
    r = run(app, ["token", "create", "--role", "agent", "--name", "edge-x", "--zones", "4403,4404"])
    assert r.exit_code == 0 and r.output.strip().startswith("tw_")
    r = run(
        app,
        ["token", "create", "--role", "agent", "--name", "edge-y", "--zones", "*", "--agent-ids", "y1,y2"],
    )
    assert r.exit_code == 0, r.output
    listed = run(app, ["token", "list"]).output
    line_x = next(ln for ln in listed.splitlines() if "edge-x" in ln)
    line_y = next(ln for ln in listed.splitlines() if "edge-y" in ln)
    assert "zones 4403,4404" in line_x and "(first to heartbeat)" in line_x
    assert "zones *" in line_y and "agents y1,y2" in line_y
    assert "warning" not in listed


def test_cli_bounds_a_token_made_before_zones(cli_env: Path) -> None:
    run = CliRunner().invoke
    assert run(app, ["token", "create", "--role", "agent", "--name", "old", "--zones", "*"]).exit_code == 0
    ctx = AppContext.build(get_settings())
    try:
        with ctx.db.session() as s:
            row = s.scalars(select(ApiToken).where(ApiToken.name == "old")).one()
            row.zones, token_id = None, row.id  # as a token from before 0005
    finally:
        ctx.close()
    r = run(app, ["token", "list"])
    assert "ALL (made before zones" in r.output and "warning: 1 agent token(s) reach every zone" in r.output
    r = run(app, ["token", "limit", str(token_id), "--zones", "4403", "--agent-ids", "old-1"])
    assert r.exit_code == 0 and "zones 4403, agents old-1" in r.output, r.output
    assert "warning" not in run(app, ["token", "list"]).output
    assert run(app, ["token", "limit", "99999", "--zones", "4403"]).exit_code == 1
    assert run(app, ["token", "limit", str(token_id)]).exit_code == 1


def test_the_api_warns_at_start_about_tokens_without_zones(
    settings: Settings, ctx: AppContext, caplog: pytest.LogCaptureFixture
) -> None:
    from tianwang.api.app import create_app

    agent_token(ctx, "bounded", ["4403"])
    with caplog.at_level("WARNING", logger="tianwang.api"), TestClient(create_app(settings, ctx)):
        pass
    assert "reach every zone" not in caplog.text
    agent_token(ctx, "old-edge", None)
    caplog.clear()
    with caplog.at_level("WARNING", logger="tianwang.api"), TestClient(create_app(settings, ctx)):
        pass
    assert "1 agent token(s) made before zones existed reach every zone (old-edge)" in caplog.text


def test_the_demo_agent_token_is_bound_and_an_old_one_gets_bounds(ctx: AppContext, tmp_path: Path) -> None:
    from tianwang.auth.tokens import authenticate
    from tianwang.demo import DEMO_AGENT_ID, demo_tokens

    path = tmp_path / "demo-tokens.json"
    tok = demo_tokens(ctx, path)["agent"]
    with ctx.db.session() as s:
        who = authenticate(s, tok)
        assert who.zones == ("*",)
        row = s.get(ApiToken, who.token_id)
        assert row is not None and row.agent_ids == [DEMO_AGENT_ID]
        row.zones, row.agent_ids = None, None  # a data directory from before zones
    assert demo_tokens(ctx, path)["agent"] == tok  # the same token, now bounded
    with ctx.db.session() as s:
        row = s.get(ApiToken, authenticate(s, tok).token_id)
        assert row is not None and (row.zones, row.agent_ids) == (["*"], [DEMO_AGENT_ID])
