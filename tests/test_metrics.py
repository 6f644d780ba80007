"""`GET /metrics` on the API: who may read it, request latency, ingest counters, device states, alarms;
and the agent's device-state gauge."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from edge_agent.metrics import Metrics
from tests.conftest import auth
from tests.sightings_support import CP1, CP2, FACE_CAMERA, base_time, pass_item, seed, viid_object
from tianwang.api.app import create_app
from tianwang.config import Settings
from tianwang.context import AppContext
from tianwang.storage.models import Camera


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """{(sample name, sorted labels): value} from a Prometheus text exposition."""
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(client: TestClient, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics", headers=auth(token))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


def value(m: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return m.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_needs_admin_or_staff(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.get("/metrics")
    assert r.status_code == 401 and r.json()["status"] == 401
    for role in ("investigator", "installer", "agent"):
        r = client.get("/metrics", headers=auth(tokens[role]))
        assert r.status_code == 403, role
        assert r.headers["content-type"].startswith("application/problem+json")
    for role in ("admin", "staff"):
        assert client.get("/metrics", headers=auth(tokens[role])).status_code == 200


def test_latency_by_route_template(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["staff"])
    for _ in range(3):
        assert client.get("/api/v1/cameras", headers=h).status_code == 200
    assert client.get("/api/v1/cameras/44030500001320000001", headers=h).status_code == 404
    assert client.get("/api/v1/cameras/44030500001320000002", headers=h).status_code == 404
    assert client.get("/no/such/path").status_code == 404
    m = scrape(client, tokens["staff"])
    name = "tianwang_http_request_duration_seconds_count"
    assert value(m, name, method="GET", route="/api/v1/cameras", status="2xx") == 3
    # two ids, one series: labelled by the template, never the raw path
    assert value(m, name, method="GET", route="/api/v1/cameras/{device_id}", status="4xx") == 2
    assert value(m, name, method="GET", route="unmatched", status="4xx") == 1
    assert not any("44030500001320000001" in str(k) for k in m)
    # buckets are cumulative and end at the count
    inf = value(
        m,
        "tianwang_http_request_duration_seconds_bucket",
        method="GET",
        route="/api/v1/cameras",
        status="2xx",
        le="+Inf",
    )
    assert inf == 3
    assert (
        value(
            m,
            "tianwang_http_request_duration_seconds_sum",
            method="GET",
            route="/api/v1/cameras",
            status="2xx",
        )
        > 0
    )


def test_ingest_counters_follow_the_replies(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    t = base_time()
    h = auth(tokens["agent"])
    items = [
        pass_item(f"m-{i:07d}", "粤B12345", t + dt.timedelta(minutes=i), CP1 if i % 2 else CP2)
        for i in range(5)
    ]
    bad = pass_item("m-bad-0001", "粤B12345", t, "44030500001219999999")  # checkpoint not registered
    r = client.post("/api/v1/ingest/passes", json={"items": [*items, bad]}, headers=h)
    assert r.status_code == 200 and r.json()["accepted"] == 5
    r = client.post("/api/v1/ingest/passes", json={"items": items[:2]}, headers=h)  # replayed
    assert r.json()["duplicates"] == 2
    faces = [
        {
            "key": "mf-0000001",
            "camera_id": FACE_CAMERA,
            "ts": t.isoformat(),
            "person_id": "P1",
            "confidence": 0.9,
        }
    ]
    assert client.post("/api/v1/ingest/faces", json={"items": faces}, headers=h).json()["accepted"] == 1
    # GA/T 1400: one stored, then the same one again
    local = (t + dt.timedelta(hours=8)).strftime("%Y%m%d%H%M%S")
    mid = "650100000011900000010220261122120000000010000001"
    body = {"MotorVehicleListObject": {"MotorVehicleObject": [viid_object(mid, "粤B54321", local)]}}
    assert client.post("/VIID/MotorVehicles", json=body, headers=h).status_code == 200
    assert client.post("/VIID/MotorVehicles", json=body, headers=h).status_code == 200
    # a batch refused whole (an installer may not push) stores nothing and counts no item
    assert (
        client.post(
            "/api/v1/ingest/passes", json={"items": items}, headers=auth(tokens["installer"])
        ).status_code
        == 403
    )

    m = scrape(client, tokens["admin"])
    n = "tianwang_ingest_items_total"
    assert value(m, n, kind="passes", outcome="accepted") == 5 + 1
    assert value(m, n, kind="passes", outcome="duplicate") == 2 + 1
    assert value(m, n, kind="passes", outcome="rejected") == 1
    assert value(m, n, kind="faces", outcome="accepted") == 1
    b = "tianwang_ingest_batches_total"
    assert value(m, b, kind="passes", status="2xx") == 4
    assert value(m, b, kind="passes", status="4xx") == 1
    assert value(m, b, kind="faces", status="2xx") == 1

    # counters only grow: another batch adds to them
    more = [pass_item(f"m-{i:07d}", "粤B12345", t + dt.timedelta(minutes=i)) for i in range(10, 13)]
    client.post("/api/v1/ingest/passes", json={"items": more}, headers=h)
    m2 = scrape(client, tokens["admin"])
    assert (
        value(m2, n, kind="passes", outcome="accepted") == value(m, n, kind="passes", outcome="accepted") + 3
    )


def test_device_states_match_the_database(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    with ctx.db.session() as s:
        for i, status in enumerate(("online", "online", "offline", "fault")):
            s.add(
                Camera(
                    device_id=f"4403050000132000{i + 100:04d}",
                    name=f"c{i}",
                    kind="bullet",
                    lon=114.0,
                    lat=22.5,
                    heading_deg=0,
                    hfov_deg=60,
                    range_m=50,
                    point_class=2,
                    area_code="440305",
                    status=status,
                )
            )
    m = scrape(client, tokens["staff"])
    with ctx.db.session() as s:
        want = dict(s.execute(select(Camera.status, func.count()).group_by(Camera.status)).all())
    assert want["online"] == 2
    for status in ("registered", "online", "fault", "offline"):
        assert value(m, "tianwang_devices", type="camera", status=status) == want.get(status, 0), status
    assert value(m, "tianwang_devices", type="checkpoint", status="registered") == 3
    # read at scrape time: a change in the database shows at the next scrape
    with ctx.db.session() as s:
        s.execute(update(Camera).where(Camera.status == "online").values(status="offline"))
    m = scrape(client, tokens["staff"])
    assert value(m, "tianwang_devices", type="camera", status="online") == 0
    assert value(m, "tianwang_devices", type="camera", status="offline") == 3
    assert value(m, "tianwang_alarm_listeners") == 0


def test_alarms_counted_from_the_database(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    t = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    v = auth(tokens["investigator"])
    hot = {
        "name": "metrics test",
        "reason": "a wanted plate",
        "case_no": "M-2024-1",
        "priority": 50,
        "entries": [{"plate_no": "粤B77777"}],
        "valid_from": (t - dt.timedelta(hours=1)).isoformat(),
        "valid_to": (t + dt.timedelta(days=1)).isoformat(),
    }
    r = client.post("/api/v1/hotlists", json=hot, headers=v)
    assert r.status_code == 201, r.text
    before = value(scrape(client, tokens["admin"]), "tianwang_alarms_total", kind="plate")
    items = [pass_item(f"a-000000{i}", "粤B77777", t + dt.timedelta(seconds=i), CP1) for i in range(2)]
    r = client.post("/api/v1/ingest/passes", json={"items": items}, headers=auth(tokens["agent"]))
    assert r.json()["accepted"] == 2
    after = value(scrape(client, tokens["admin"]), "tianwang_alarms_total", kind="plate")
    assert after == before + 2


def test_each_app_has_its_own_registry(settings: Settings, ctx: AppContext, tokens: dict[str, str]) -> None:
    a, b = create_app(settings, ctx), create_app(settings, ctx)
    with TestClient(a) as ca, TestClient(b) as cb:
        for _ in range(2):
            ca.get("/api/v1/cameras", headers=auth(tokens["staff"]))
        ma, mb = scrape(ca, tokens["staff"]), scrape(cb, tokens["staff"])
    name = "tianwang_http_request_duration_seconds_count"
    assert value(ma, name, method="GET", route="/api/v1/cameras", status="2xx") == 2
    assert value(mb, name, method="GET", route="/api/v1/cameras", status="2xx") == 0


def test_agent_device_states() -> None:
    m = Metrics()
    m.device_health("d1", "ok")
    m.device_health("d2", "ok")
    m.device_health("d3", "unreachable")
    m.device_health("d2", "auth_refused")  # a device is in one state: its latest
    got = samples(m.exposition().decode())
    assert value(got, "tianwang_agent_device_states", state="ok") == 1
    assert value(got, "tianwang_agent_device_states", state="auth_refused") == 1
    assert value(got, "tianwang_agent_device_states", state="unreachable") == 1
    m.forget_device("d3")
    got = samples(m.exposition().decode())
    assert value(got, "tianwang_agent_device_states", state="unreachable") == 0
    assert value(got, "tianwang_agent_device_states", state="ok") == 1
