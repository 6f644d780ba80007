"""Trajectories (ordered, trips, GeoJSON, pages), the audit (required, recorded, admin-only,
append-only on PostgreSQL) and day partitions on PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import auth
from tests.sightings_support import CHECKPOINTS, CP1, CP2, CP3, FACE_CAMERA, base_time, pass_item, seed
from tianwang.context import AppContext
from tianwang.records import ingest as records
from tianwang.records import partitions
from tianwang.records.trips import split

PLATE = "粤B12345"


def _drive(ctx: AppContext) -> dt.datetime:
    """Two trips of one plate: CP1→CP2→CP3, a two-hour stop, CP3→CP2; another plate in between."""
    t = base_time()
    plan = [(0, CP1), (60, CP2), (120, CP3), (120 + 7200, CP3), (120 + 7260, CP2)]
    items = [
        pass_item(f"tr-{n:07d}", PLATE, t + dt.timedelta(seconds=s), cp) for n, (s, cp) in enumerate(plan)
    ]
    items.append(pass_item("tr-other01", "粤B99999", t + dt.timedelta(seconds=30), CP2))
    items.reverse()  # arrival order is not time order
    with ctx.db.session() as s:
        assert records.ingest_passes(s, items).reply.accepted == 6
    return t


def test_vehicle_trajectory(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    seed(ctx)
    t = _drive(ctx)
    h = auth(tokens["investigator"])
    q = {
        "case_no": "A4403052026110001",
        "from": (t - dt.timedelta(hours=1)).isoformat(),
        "to": (t + dt.timedelta(hours=5)).isoformat(),
    }
    r = client.get("/api/v1/trajectories/vehicle/粤b 12345", params=q, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    pts = body["points"]
    assert [p["checkpoint_id"] for p in pts] == [CP1, CP2, CP3, CP3, CP2]
    assert [dt.datetime.fromisoformat(p["ts"]) for p in pts] == sorted(
        dt.datetime.fromisoformat(p["ts"]) for p in pts
    )
    assert (pts[0]["lon"], pts[0]["lat"]) == CHECKPOINTS[CP1]
    assert pts[0]["lane"] == 2 and pts[0]["speed_kmh"] == 48.5
    assert [tr["points"] for tr in body["trips"]] == [3, 2]  # split on the two-hour gap
    feats = body["geojson"]["features"]
    assert body["geojson"]["type"] == "FeatureCollection" and len(feats) == 2
    g0, g1 = (shape(f["geometry"]) for f in feats)
    assert g0.geom_type == "LineString" and g0.is_valid and len(g0.coords) == 3
    assert list(g1.coords) == [CHECKPOINTS[CP3], CHECKPOINTS[CP2]]
    assert body["next_cursor"] is None

    # a smaller gap threshold, a narrower window
    r = client.get("/api/v1/trajectories/vehicle/粤B12345", params={**q, "gap_s": 30}, headers=h)
    assert len(r.json()["trips"]) == 5
    r = client.get(
        "/api/v1/trajectories/vehicle/粤B12345",
        params={**q, "to": (t + dt.timedelta(minutes=1)).isoformat()},
        headers=h,
    )
    assert len(r.json()["points"]) == 2


def test_pagination_walks_the_whole_history(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    t = base_time()
    # several passes in the same second: the cursor must order on (ts, key), not ts alone
    items = [pass_item(f"pg-{i:07d}", PLATE, t + dt.timedelta(seconds=i // 3), CP1) for i in range(23)]
    with ctx.db.session() as s:
        records.ingest_passes(s, items)
    h = auth(tokens["investigator"])
    q = {"case_no": "C-1", "from": (t - dt.timedelta(hours=1)).isoformat(), "limit": 5}
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        r = client.get(
            "/api/v1/trajectories/vehicle/粤B12345",
            params={**q, **({"cursor": cursor} if cursor else {})},
            headers=h,
        ).json()
        seen += [p["key"] for p in r["points"]]
        pages += 1
        cursor = r["next_cursor"]
        if not cursor:
            break
    assert pages == 5
    assert seen == [f"pg-{i:07d}" for i in range(23)]
    bad = client.get("/api/v1/trajectories/vehicle/粤B12345", params={**q, "cursor": "garbage!"}, headers=h)
    assert bad.status_code == 422


def test_person_and_phone_trajectories(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    seed(ctx)
    t = base_time()
    with ctx.db.session() as s:
        records.ingest_faces(
            s,
            [
                {
                    "key": "face-0001",
                    "camera_id": FACE_CAMERA,
                    "ts": t.isoformat(),
                    "person_id": "P-1",
                    "confidence": 0.9,
                }
            ],
        )
        records.ingest_phones(
            s,
            [
                {
                    "key": f"ph-{i:06d}",
                    "fence_id": fid,
                    "ts": (t + dt.timedelta(minutes=i)).isoformat(),
                    "imsi": "460001234567890",
                    "rssi": -60,
                }
                for i, fid in enumerate(["F-NS-01", "F-NS-02"])
            ],
        )
    h = auth(tokens["investigator"])
    q = {"case_no": "C-2", "from": (t - dt.timedelta(hours=1)).isoformat()}
    person = client.get("/api/v1/trajectories/person/P-1", params=q, headers=h).json()
    assert [(p["camera_id"], p["confidence"]) for p in person["points"]] == [(FACE_CAMERA, 0.9)]
    assert person["geojson"]["features"][0]["geometry"]["type"] == "Point"
    phone = client.get("/api/v1/trajectories/phone/460001234567890", params=q, headers=h).json()
    assert [p["fence_id"] for p in phone["points"]] == ["F-NS-01", "F-NS-02"]
    assert shape(phone["geojson"]["features"][0]["geometry"]).length > 0


def test_split_pure() -> None:
    class P:
        def __init__(self, s: int) -> None:
            self.ts = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=s)
            self.lon, self.lat = 114.0, 22.5

    assert split([], 10) == []
    assert split([P(0), P(5), P(30), P(31)], 10) == [(0, 1), (2, 3)]
    assert split([P(0), P(10)], 10) == [(0, 1)]  # exactly the gap: same trip


def test_audit_required_recorded_and_admin_only(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    _drive(ctx)
    h = auth(tokens["investigator"])
    r = client.get("/api/v1/trajectories/vehicle/粤B12345", headers=h)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["field"] == "case_no"
    assert (
        client.get("/api/v1/trajectories/phone/4600012", params={"case_no": "  "}, headers=h).status_code
        == 422
    )
    # a staff member is refused before case_no is even looked at
    assert (
        client.get("/api/v1/trajectories/vehicle/粤B12345", headers=auth(tokens["staff"])).status_code == 403
    )

    t = base_time()
    ok = client.get(
        "/api/v1/trajectories/vehicle/粤B12345",
        params={"case_no": "A-77", "from": (t - dt.timedelta(hours=1)).isoformat()},
        headers=h,
    )
    assert ok.status_code == 200
    assert client.get("/api/v1/audit", headers=h).status_code == 403
    log = client.get(
        "/api/v1/audit", params={"user": "test-investigator"}, headers=auth(tokens["admin"])
    ).json()
    # the two refused calls (no case number, a blank one) are there with their reason, then the one answered
    assert [(x["outcome"], x["case_no"]) for x in log["items"]] == [
        ("refused", "-"),
        ("refused", "-"),
        ("ok", "A-77"),
    ]
    assert all(x["reason"].startswith("422") for x in log["items"][:2])
    e = log["items"][2]
    assert (e["user"], e["role"], e["route"], e["case_no"], e["result_size"]) == (
        "test-investigator",
        "investigator",
        "trajectories.vehicle",
        "A-77",
        5,
    )
    assert e["params"]["subject"] == "粤B12345"
    assert (
        client.get("/api/v1/audit", params={"user": "nobody"}, headers=auth(tokens["admin"])).json()["items"]
        == []
    )
    # no route changes the log
    for method in ("PUT", "PATCH", "DELETE"):
        assert client.request(method, "/api/v1/audit", headers=auth(tokens["admin"])).status_code == 405


# the trigger and the partitions are PostgreSQL's: these run there only (never skipped)
@pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)
def test_audit_log_refuses_update_and_delete_on_postgres(db_url: str, ctx: AppContext) -> None:
    assert db_url.startswith("postgresql")
    from tianwang import audit

    with ctx.db.session() as s:
        audit.record(s, user="u", role="investigator", route="r", case_no="C", params={}, result_size=0)
    eng = create_engine(db_url)
    try:
        for stmt in ("UPDATE audit_log SET case_no = 'forged'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"), eng.begin() as c:
                c.execute(text(stmt))
        with eng.connect() as c:
            assert c.execute(text("SELECT case_no FROM audit_log")).scalars().all() == ["C"]
    finally:
        eng.dispose()


@pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)
def test_partitions_on_postgres(db_url: str, ctx: AppContext) -> None:
    assert db_url.startswith("postgresql")
    seed(ctx)
    t = base_time()
    far = dt.datetime(2099, 6, 1, 8, tzinfo=dt.UTC)
    with ctx.db.session() as s:
        out = records.ingest_passes(s, [pass_item("pt-0000001", PLATE, t)])
        assert out.reply.accepted == 1
    # a far-future row (a clock gone wrong past the ingest check) goes to the default partition
    with ctx.db.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO passes (plate_no, ts, key, checkpoint_id, plate_kind, plate_valid, received_at) "
                "VALUES ('粤B12345', :ts, 'pt-far00001', :cp, 'ordinary', true, now())"
            ),
            {"ts": far, "cp": CP1},
        )
        where = dict(
            c.execute(text("SELECT key, tableoid::regclass::text FROM passes WHERE key LIKE 'pt-%'")).all()
        )
    assert where["pt-0000001"] == f"parts.passes_p{t:%Y%m%d}"
    assert where["pt-far00001"] == "parts.passes_default"

    # the maintenance job: making 2099-06-01 moves the row out of the default partition
    with ctx.db.engine.begin() as c:
        rep = partitions.maintain(c, ahead_days=2, retention_days=30, today=far.date())
    assert "parts.passes_p20990601" in rep.created and "parts.passes_p20990603" in rep.created
    assert rep.moved_from_default == 1
    assert any(d.startswith("parts.passes_p") for d in rep.dropped)  # today's days are past 30 days of 2099
    with ctx.db.engine.begin() as c:
        assert c.execute(
            text("SELECT tableoid::regclass::text FROM passes WHERE key = 'pt-far00001'")
        ).scalar() == ("parts.passes_p20990601")
        days = partitions.existing_days(c, "passes")
        assert min(days) >= dt.date(2099, 5, 2)  # retention: older days dropped
        assert c.execute(text("SELECT count(*) FROM passes WHERE key = 'pt-0000001'")).scalar() == 0
        # idempotent
        again = partitions.maintain(c, ahead_days=2, retention_days=30, today=far.date())
        assert again.created == [] and again.dropped == []
        # put today's partitions back for the tests that follow
        partitions.maintain(c, ahead_days=7, retention_days=100_000)


def test_cli_db_maintain(
    db_url: str, ctx: AppContext, tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from tianwang.cli import app
    from tianwang.config import get_settings

    seed(ctx)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=40)
    with ctx.db.session() as s:
        # an old row (stored before retention was shortened) and a fresh one
        s.execute(
            text(
                "INSERT INTO passes (plate_no, ts, key, checkpoint_id, plate_kind, plate_valid, received_at) "
                "VALUES ('粤B12345', :ts, 'cli-old0001', :cp, 'ordinary', true, :ts)"
            ),
            {"ts": old, "cp": CP1},
        )
        records.ingest_passes(s, [pass_item("cli-new0001", PLATE, base_time())])
    monkeypatch.setenv("TIANWANG_DATABASE_URL", db_url)
    monkeypatch.setenv("TIANWANG_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        r = CliRunner().invoke(app, ["db", "maintain", "--retention-days", "30"])
    finally:
        get_settings.cache_clear()
    assert r.exit_code == 0, r.output
    assert "partitions created" in r.output
    with ctx.db.session() as s:
        assert s.execute(text("SELECT key FROM passes")).scalars().all() == ["cli-new0001"]
    if db_url.startswith("postgresql"):
        with ctx.db.engine.begin() as c:
            partitions.maintain(c, ahead_days=7, retention_days=100_000)


def test_trajectory_of_an_unusual_or_misread_plate(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    """Plates stored as read (temporary, misread) can be followed; the no-plate markers cannot."""
    seed(ctx)
    t = base_time()
    items = [
        pass_item("odd-000001", "粤A12345临", t, CP1),
        pass_item("odd-000002", "粤A12345临", t + dt.timedelta(minutes=1), CP2),
        pass_item("odd-000003", "粤B1234", t + dt.timedelta(minutes=2), CP3),  # misread: not a plate
        pass_item("odd-000004", "无牌", t + dt.timedelta(minutes=3), CP3),
    ]
    with ctx.db.session() as s:
        assert records.ingest_passes(s, items).reply.accepted == 4
    h = auth(tokens["investigator"])
    q = {
        "case_no": "A1",
        "from": (t - dt.timedelta(hours=1)).isoformat(),
        "to": (t + dt.timedelta(hours=1)).isoformat(),
    }
    r = client.get("/api/v1/trajectories/vehicle/粤A12345临", params=q, headers=h)
    assert r.status_code == 200, r.text
    assert [(p["checkpoint_id"], p["plate_kind"]) for p in r.json()["points"]] == [
        (CP1, "temporary"),
        (CP2, "temporary"),
    ]
    r = client.get("/api/v1/trajectories/vehicle/粤b1234", params=q, headers=h)
    assert [(p["key"], p["plate_kind"]) for p in r.json()["points"]] == [("odd-000003", "other")]
    r = client.get("/api/v1/trajectories/vehicle/无牌", params=q, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "plate_no"


def test_a_phone_typed_in_full_width_digits_is_the_same_subject() -> None:
    from tianwang.records.query import subject_of

    assert subject_of("phone", "４６０００１２３４５６７８９０") == "460001234567890"
    assert subject_of("person", "  P-0001 ") == "P-0001"
