"""Bad input at the API's edges: database refusals, degenerate geometry, hostile text and
look-alike digits answer clean problem JSON (never 500), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import event, text

from tests.conftest import auth
from tianwang.api.app import create_app
from tianwang.config import Settings
from tianwang.context import AppContext

CAM_ID = "44030500001320000001"
CP_ID = "44030500001210000009"  # a checkpoint code (type 121)


def camera(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {
        "device_id": CAM_ID,
        "name": "福田路口东北角",
        "kind": "bullet",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 90,
        "hfov_deg": 60,
        "range_m": 80,
        "point_class": 1,
    }
    b.update(over)
    return b


def is_problem(r: Any, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    return body


# ---------------------------------------------------------------- database refusals


def test_unknown_checkpoint_is_409_on_post_and_patch(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["installer"])
    p = is_problem(client.post("/api/v1/cameras", json=camera(checkpoint_id=CP_ID), headers=h), 409)
    assert p["errors"] == [{"field": "checkpoint_id", "message": "not registered"}]
    assert client.post("/api/v1/cameras", json=camera(), headers=h).status_code == 201
    p = is_problem(client.patch(f"/api/v1/cameras/{CAM_ID}", json={"checkpoint_id": CP_ID}, headers=h), 409)
    assert CP_ID in p["detail"]
    assert client.get(f"/api/v1/cameras/{CAM_ID}", headers=h).json()["checkpoint_id"] is None


@pytest.mark.parametrize("what", ["cameras", "checkpoints"])
def test_patch_racing_a_delete_is_404(
    client: TestClient, tokens: dict[str, str], ctx: AppContext, what: str
) -> None:
    h = auth(tokens["installer"])
    cp = {"checkpoint_id": CP_ID, "name": "卡口", "lon": 114.0, "lat": 22.5, "direction_deg": 0, "lanes": 2}
    body, rid, column = (camera(), CAM_ID, "device_id") if what == "cameras" else (cp, CP_ID, "checkpoint_id")
    assert client.post(f"/api/v1/{what}", json=body, headers=h).status_code == 201
    fired: list[str] = []

    # the DELETE commits on another connection just before the PATCH writes its UPDATE
    def delete_first(conn: Any, _cur: Any, statement: str, *_a: Any) -> None:
        if statement.lstrip().upper().startswith(f"UPDATE {what.upper()}") and not fired:
            fired.append(statement)
            with ctx.db.engine.connect() as other:
                other.execute(text(f"DELETE FROM {what} WHERE {column} = :d"), {"d": rid})
                other.commit()

    event.listen(ctx.db.engine, "before_cursor_execute", delete_first)
    try:
        r = client.patch(f"/api/v1/{what}/{rid}", json={"name": "renamed"}, headers=h)
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", delete_first)
    assert fired
    assert "deleted meanwhile" in is_problem(r, 404)["detail"]


def test_integrity_error_anywhere_is_a_409_problem(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    """The mapping in the one place problems are made: a write no route checked first is a 409."""
    from sqlalchemy.exc import IntegrityError

    app = client.app
    path = "/__test/integrity"

    @app.get(path)
    def _boom() -> None:
        raise IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: cameras.device_id"))

    body = is_problem(client.get(path), 409)
    assert "already exists" in body["detail"] and "INSERT" not in body["detail"]


# ---------------------------------------------------------------- degenerate geometry

SQUARE = [[114.0, 22.5], [114.01, 22.5], [114.01, 22.51], [114.0, 22.51], [114.0, 22.5]]
BOWTIE = [[114.0, 22.5], [114.01, 22.51], [114.01, 22.5], [114.0, 22.51], [114.0, 22.5]]


def post_raw(client: TestClient, path: str, body: Any, headers: dict[str, str]) -> Any:
    """JSON as a careless client sends it: NaN and Infinity included (Python's parser accepts them)."""
    raw = json.dumps(body, allow_nan=True).encode()
    return client.post(path, content=raw, headers={**headers, "Content-Type": "application/json"})


def area(geometry: Any) -> dict[str, Any]:
    return {"code": "G1", "name": "g", "kind": "grid", "geometry": geometry}


def roads(geometry: Any) -> dict[str, Any]:
    feat = {"type": "Feature", "id": "r1", "properties": {"road_class": "primary"}, "geometry": geometry}
    return {"type": "FeatureCollection", "features": [feat]}


def collision(geometry: Any) -> dict[str, Any]:
    w = {"area": geometry, "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"}
    return {"windows": [w, {**w, "from": "2026-01-01T02:00:00Z", "to": "2026-01-01T03:00:00Z"}]}


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ({"type": "LineString", "coordinates": [[114.0, 22.5]]}, "at least 2"),
        ({"type": "LineString", "coordinates": [[114.0, 22.5], [114.0, 22.5]]}, "degenerate"),
        ({"type": "LineString", "coordinates": []}, "empty"),
        ({"type": "LineString", "coordinates": [[114.0, 22.5], [114.0, float("nan")]]}, "non-finite"),
        ({"type": "LineString", "coordinates": [[114.0, 22.5], [200.0, 22.5]]}, "outside lon/lat"),
        ({"type": "LineString", "coordinates": [[114.0, 22.5], [114.1, "22.5"]]}, "numbers"),
        ({"type": "LineString", "coordinates": [[114.0, 22.5], [114.1]]}, "position"),
        ({"type": "LineString"}, "no coordinates"),
        ({"type": "MultiLineString", "coordinates": [[[114.0, 22.5]]]}, "at least 2"),
    ],
)
def test_degenerate_roads_are_refused_with_a_reason(
    client: TestClient, tokens: dict[str, str], geometry: dict[str, Any], reason: str
) -> None:
    r = post_raw(client, "/api/v1/roads", roads(geometry), auth(tokens["staff"]))
    assert r.status_code == 200, r.text  # an import: the bad feature is listed, the rest stored
    rejected = r.json()["rejected"]
    assert len(rejected) == 1 and reason in rejected[0]["errors"][0], rejected


@pytest.mark.parametrize(
    ("geometry", "reason"),
    [
        ({"type": "Polygon", "coordinates": [BOWTIE]}, "Self-intersection"),
        ({"type": "Polygon", "coordinates": [SQUARE[:3]]}, "at least 4"),
        ({"type": "Polygon", "coordinates": [SQUARE[:4]]}, "not closed"),
        ({"type": "Polygon", "coordinates": [[SQUARE[0], SQUARE[1], SQUARE[0], SQUARE[0]]]}, "degenerate"),
        ({"type": "Polygon", "coordinates": []}, "empty"),
        ({"type": "MultiPolygon", "coordinates": [[]]}, "no rings"),
        (
            {"type": "Polygon", "coordinates": [[[114.0, 95.0], *SQUARE[1:4], [114.0, 95.0]]]},
            "outside lon/lat",
        ),
        ({"type": "GeometryCollection", "geometries": []}, "must be one of"),
        ({"type": "Polygon", "coordinates": 5}, "must be an array"),
    ],
)
def test_degenerate_areas_are_422_with_the_field_and_reason(
    client: TestClient, tokens: dict[str, str], geometry: dict[str, Any], reason: str
) -> None:
    body = is_problem(post_raw(client, "/api/v1/areas", area(geometry), auth(tokens["staff"])), 422)
    assert body["errors"][0]["field"] == "geometry" and reason in body["errors"][0]["message"], body
    r = client.post(
        "/api/v1/analysis/collision", params={"case_no": "C-1"}, json=collision(geometry),
        headers=auth(tokens["investigator"]),
    )  # fmt: skip
    body = is_problem(r, 422)
    assert reason in json.dumps(body["errors"]), body


def test_vertex_cap_refuses_large_polygons_quickly(client: TestClient, tokens: dict[str, str]) -> None:
    """The issue's 8 MB self-intersecting polygon (200,000 vertices: 18–20 s in GEOS) → 422 at once."""
    rng = np.random.default_rng(1)
    ring = (np.array([114.0, 22.5]) + rng.uniform(0, 0.1, (200_000, 2))).tolist()
    big = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    t = time.perf_counter()
    body = is_problem(client.post("/api/v1/areas", json=area(big), headers=auth(tokens["staff"])), 422)
    assert "more than 10000 vertices" in body["errors"][0]["message"]
    ring = ring[:10_001]  # one over the cap
    big = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    r = client.post(
        "/api/v1/analysis/collision", params={"case_no": "C-1"}, json=collision(big),
        headers=auth(tokens["investigator"]),
    )  # fmt: skip
    assert "more than 10000 vertices" in is_problem(r, 422)["detail"]
    assert time.perf_counter() - t < 8  # parsing 8 MB of JSON, on a loaded machine; was ~20 s


def test_vertex_cap_is_a_setting(settings: Settings, ctx: AppContext, tokens: dict[str, str]) -> None:
    from tianwang.places import geojson

    small = settings.model_copy(update={"max_geometry_vertices": 5})
    square = area({"type": "Polygon", "coordinates": [SQUARE]})
    hexagon = [[114.0, 22.5], [114.01, 22.5], [114.02, 22.505], [114.01, 22.51], [114.0, 22.51],
               [113.99, 22.505], [114.0, 22.5]]  # fmt: skip
    before = geojson.MAX_VERTICES
    try:
        with TestClient(create_app(small, ctx), raise_server_exceptions=False) as c:
            h = auth(tokens["staff"])
            assert c.post("/api/v1/areas", json=square, headers=h).status_code == 201
            r = c.post("/api/v1/areas", json=area({"type": "Polygon", "coordinates": [hexagon]}), headers=h)
            assert "more than 5 vertices" in is_problem(r, 422)["errors"][0]["message"]
    finally:
        geojson.set_max_vertices(before)  # the module default other tests (and the CLI) read


def test_bodies_are_not_read_before_authentication(client: TestClient, tokens: dict[str, str]) -> None:
    """A body-carrying request with no or a wrong token is refused before its body is read: a body
    that never arrives does not hold the answer back."""
    read: list[int] = []

    def body() -> Any:
        read.append(1)
        yield b'{"code": "G1"'
        raise AssertionError("the body was read")

    for headers in ({}, {"Authorization": "Bearer tw_not-a-token"}, {"Authorization": "Basic eDp5"}):
        r = client.post(
            "/api/v1/areas", content=body(), headers={**headers, "Content-Type": "application/json"}
        )
        assert is_problem(r, 401) and r.headers["www-authenticate"] == "Bearer"
    assert read == []
    # with a valid token the body is read and judged as before
    r = client.post(
        "/api/v1/areas",
        json=area({"type": "Polygon", "coordinates": [SQUARE]}),
        headers=auth(tokens["staff"]),
    )
    assert r.status_code == 201


# anything a client could put where a geometry goes
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-200, 200),
    st.sampled_from([114.0, 22.5, 0, -0.0, 180, -90, 1e308]),
    st.integers(-(2**70), 2**70),
)
position = st.lists(numbers, min_size=0, max_size=4)
junk = st.recursive(
    st.one_of(numbers, st.none(), st.text(max_size=3), st.booleans()),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3), inner, max_size=2),
    max_leaves=20,
)


@st.composite
def near_valid(draw: st.DrawFn) -> dict[str, Any]:
    """Small rings and lines on a coarse lattice: repeated points, collinear rings, bowties, holes
    outside shells, unclosed rings."""
    pt = st.tuples(st.integers(0, 3), st.integers(0, 3)).map(
        lambda p: [114.0 + p[0] * 0.01, 22.5 + p[1] * 0.01]
    )
    ring = st.lists(pt, min_size=0, max_size=7).map(lambda r: r + r[:1])
    kind = draw(st.sampled_from(["Polygon", "MultiPolygon", "LineString", "MultiLineString", "Point"]))
    if kind == "Point":
        return {"type": kind, "coordinates": draw(st.one_of(pt, position))}
    if kind == "LineString":
        return {"type": kind, "coordinates": draw(st.lists(pt, max_size=5))}
    if kind == "MultiLineString":
        return {"type": kind, "coordinates": draw(st.lists(st.lists(pt, max_size=4), max_size=3))}
    rings = st.lists(st.one_of(ring, st.lists(pt, max_size=6)), min_size=0, max_size=3)
    if kind == "Polygon":
        return {"type": kind, "coordinates": draw(rings)}
    return {"type": kind, "coordinates": draw(st.lists(rings, max_size=3))}


geometries = st.one_of(
    near_valid(),
    st.builds(
        lambda t, c: {"type": t, "coordinates": c},
        st.sampled_from(["Point", "LineString", "Polygon", "MultiPolygon", "MultiLineString", "Nope"]),
        junk,
    ),
    junk,
)


@examples(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(g=geometries)
def test_any_geometry_is_never_a_5xx(client: TestClient, tokens: dict[str, str], g: Any) -> None:
    staff, inv = auth(tokens["staff"]), auth(tokens["investigator"])
    for path, body, h in (
        ("/api/v1/areas", area(g), staff),
        ("/api/v1/key-sites", {"id": "k1", "name": "k", "category": "school", "geometry": g}, staff),
        ("/api/v1/roads", roads(g), staff),
        ("/api/v1/analysis/collision?case_no=C-1", collision(g), inv),
    ):
        r = post_raw(client, path, body, h)
        assert r.status_code < 500, (path, g, r.status_code, r.text)
        if r.status_code == 422:
            errors = r.json().get("errors") or []
            assert errors and all(e["field"] and e["message"] for e in errors), r.text


# ---------------------------------------------------------------- files, audit log, text


def test_sqlite_database_and_its_wal_are_private(tmp_path: Path) -> None:
    from tianwang.storage import migrate
    from tianwang.storage.db import Database

    path = tmp_path / "new" / "tw.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    db = Database(url)
    try:
        with db.session() as s:  # a write, so the -wal and -shm files exist
            s.execute(text("CREATE TABLE t (x INTEGER)"))
            s.execute(text("INSERT INTO t VALUES (1)"))
        files = [path, path.with_name("tw.db-wal"), path.with_name("tw.db-shm")]
        assert all(f.exists() for f in files)
        assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o600" for f in files}
    finally:
        db.dispose()
    # a database left open to others by an older version is narrowed when opened
    path.chmod(0o644)
    Database(url).dispose()
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("db_url", [pytest.param("pg", marks=pytest.mark.pg)], indirect=True)
def test_audit_log_refuses_truncate_on_postgres(db_url: str, ctx: AppContext) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.exc import DBAPIError

    from tianwang import audit

    with ctx.db.session() as s:
        audit.record(s, user="u", role="investigator", route="r", case_no="C", params={}, result_size=0)
    eng = create_engine(db_url)
    try:
        with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"), eng.begin() as c:
            c.execute(text("TRUNCATE audit_log"))
        with pytest.raises(DBAPIError, match="append-only"), eng.begin() as c:
            c.execute(text("TRUNCATE audit_log CASCADE"))
        with eng.connect() as c:
            assert c.execute(text("SELECT case_no FROM audit_log")).scalars().all() == ["C"]
    finally:
        eng.dispose()


@pytest.mark.pg
def test_truncate_trigger_migration_goes_down_and_up() -> None:
    from sqlalchemy import create_engine

    from tests.conftest import PG_URL, _fresh_pg_database
    from tianwang.storage import migrate

    name, url = _fresh_pg_database()
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        migrate.upgrade(url)
        triggers = "SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_log'::regclass AND NOT tgisinternal"
        eng = create_engine(url)
        with eng.connect() as c:
            assert set(c.execute(text(triggers)).scalars()) == {
                "audit_log_append_only",
                "audit_log_no_truncate",
            }
        migrate.downgrade(url, "0004")
        with eng.connect() as c:
            assert set(c.execute(text(triggers)).scalars()) == {"audit_log_append_only"}
        migrate.upgrade(url)
        with eng.connect() as c:
            assert "audit_log_no_truncate" in set(c.execute(text(triggers)).scalars())
        eng.dispose()
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


HIDDEN = {
    "C1 control (NEL)": "\u0085",
    "right-to-left override": "\u202e",
    "left-to-right isolate": "\u2066",
    "zero-width space": "\u200b",
    "zero-width joiner": "\u200d",
    "byte-order mark": "\ufeff",
    "line separator": "\u2028",
}


@pytest.mark.parametrize("char", list(HIDDEN.values()), ids=list(HIDDEN))
def test_hidden_characters_are_refused_in_registry_text(
    client: TestClient, tokens: dict[str, str], char: str
) -> None:
    inst, staff, inv = auth(tokens["installer"]), auth(tokens["staff"]), auth(tokens["investigator"])
    bad = f"东门{char}gpj.exe"
    square = {"type": "Polygon", "coordinates": [SQUARE]}
    hot = {
        "name": "h", "reason": "r", "case_no": "C-1", "valid_from": "2026-01-01T00:00:00Z",
        "valid_to": "2026-02-01T00:00:00Z", "priority": 1, "entries": [{"imsi": "460001234567890"}],
    }  # fmt: skip
    cases = [
        ("/api/v1/cameras", camera(name=bad), inst, "name"),
        ("/api/v1/cameras", camera(address=bad), inst, "address"),
        ("/api/v1/cameras", camera(maintenance_unit=bad), inst, "maintenance_unit"),
        (
            "/api/v1/checkpoints",
            {"checkpoint_id": CP_ID, "name": bad, "lon": 114.0, "lat": 22.5, "direction_deg": 0, "lanes": 2},
            inst,
            "name",
        ),
        (
            "/api/v1/checkpoints",
            {
                "checkpoint_id": CP_ID,
                "name": "n",
                "road": bad,
                "lon": 114.0,
                "lat": 22.5,
                "direction_deg": 0,
                "lanes": 2,
            },
            inst,
            "road",
        ),
        ("/api/v1/areas", {**area(square), "name": bad}, staff, "name"),
        (
            "/api/v1/key-sites",
            {"id": "k", "name": bad, "category": "school", "geometry": square},
            staff,
            "name",
        ),
        (
            "/api/v1/fences",
            {"fence_id": "F1", "name": bad, "lon": 114.0, "lat": 22.5, "radius_m": 100},
            staff,
            "name",
        ),
        ("/api/v1/hotlists", {**hot, "name": bad}, inv, "name"),
        ("/api/v1/hotlists", {**hot, "reason": bad}, inv, "reason"),
        (
            "/api/v1/hotlists",
            {**hot, "entries": [{"imsi": "460001234567890", "note": bad}]},
            inv,
            "entries.0.note",
        ),
    ]
    for path, body, h, field in cases:
        p = is_problem(client.post(path, json=body, headers=h), 422)
        assert [e["field"] for e in p["errors"]] == [field], (path, p)
        assert f"U+{ord(char):04X}" in p["errors"][0]["message"]
    fc = roads({"type": "LineString", "coordinates": [[114.0, 22.5], [114.01, 22.5]]})
    fc["features"][0]["properties"]["name"] = bad
    rejected = client.post("/api/v1/roads", json=fc, headers=staff).json()["rejected"]
    assert len(rejected) == 1 and "properties.name" in rejected[0]["errors"][0]
    # the same text without the hidden character is fine
    assert (
        client.post("/api/v1/cameras", json=camera(name=bad.replace(char, "")), headers=inst).status_code
        == 201
    )


def test_full_width_digits_are_one_number(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    """NFKC where the field is a number: a full-width IMSI is the same subject as the ASCII one."""
    from sqlalchemy import select

    from tests.sightings_support import base_time, seed
    from tianwang.storage.models import Camera, HotlistEntry, PhoneSighting

    seed(ctx)
    t = base_time()
    wide = "４６０００１２３４５６７８９０"  # 460001234567890 in full-width digits
    items = [
        {"key": "p-wide-01", "fence_id": "F-NS-01", "ts": t.isoformat(), "imsi": wide,
         "imei": "３５６９３８０３５６４３８０９", "mac": "ＡＡ:ＢＢ:ＣＣ:ＤＤ:ＥＥ:ＦＦ"},
        {"key": "p-ascii-1", "fence_id": "F-NS-01", "ts": (t + dt.timedelta(minutes=1)).isoformat(),
         "imsi": "460001234567890"},
        {"key": "p-arabic1", "fence_id": "F-NS-01", "ts": t.isoformat(), "imsi": "٤٦٠٠٠١٢٣٤٥٦٧٨٩٠"},
    ]  # fmt: skip
    r = client.post("/api/v1/ingest/phones", json={"items": items}, headers=auth(tokens["agent"])).json()
    assert r["accepted"] == 2 and [x["index"] for x in r["rejected"]] == [
        2
    ]  # other digits: not a number here
    with ctx.db.session() as s:
        rows = s.execute(select(PhoneSighting.imsi, PhoneSighting.imei, PhoneSighting.mac)).all()
    assert sorted(rows, key=str) == sorted(
        [("460001234567890", "356938035643809", "AA:BB:CC:DD:EE:FF"), ("460001234567890", None, None)],
        key=str,
    )
    # hotlist entries and registry codes normalise the same way
    hot = {
        "name": "h", "reason": "r", "case_no": "C-1", "valid_from": "2026-01-01T00:00:00Z",
        "valid_to": "2026-02-01T00:00:00Z", "priority": 1, "entries": [{"imsi": wide}],
    }  # fmt: skip
    assert client.post("/api/v1/hotlists", json=hot, headers=auth(tokens["investigator"])).status_code == 201
    with ctx.db.session() as s:
        assert s.scalars(select(HotlistEntry.value).where(HotlistEntry.kind == "imsi")).all() == [
            "460001234567890"
        ]
    wide_id = CAM_ID.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"})
    r = client.post(
        "/api/v1/cameras",
        json=camera(device_id=wide_id, area_code="４４０３０５"),
        headers=auth(tokens["installer"]),
    )
    assert r.status_code == 201, r.text
    assert (r.json()["device_id"], r.json()["area_code"]) == (CAM_ID, "440305")
    with ctx.db.session() as s:
        assert CAM_ID in s.scalars(select(Camera.device_id)).all()
        assert s.scalar(select(Camera.id).where(Camera.device_id == wide_id)) is None


@examples(max_examples=500, deadline=None)
@given(g=geometries, allowed=st.sampled_from([("Polygon", "MultiPolygon"), ("LineString", "MultiLineString"),
                                              ("Point", "Polygon", "MultiPolygon")]))  # fmt: skip
def test_parse_geometry_answers_a_valid_geometry_or_a_reason(g: Any, allowed: tuple[str, ...]) -> None:
    """Pure: whatever arrives, a valid non-empty geometry of an allowed type, or ValueError — never
    a GEOS, type or index error (each of those was a 500)."""
    from tianwang.places.geojson import parse_geometry

    try:
        geom = parse_geometry(g, allowed)
    except ValueError as e:
        assert str(e).startswith("geometry")
        return
    assert geom.geom_type in allowed and geom.is_valid and not geom.is_empty
    minx, miny, maxx, maxy = geom.bounds
    assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90
