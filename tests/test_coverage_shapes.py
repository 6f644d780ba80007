"""Coverage over city shapes the synthetic generator never makes: areas without grid cells, no roads,
no key sites, no areas, areas with no cameras, cameras outside every area. Every coverage route
answers (never 5xx) with sane figures: rates in [0, 1], numerators at most their denominators."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from tests.conftest import auth
from tianwang.context import AppContext
from tianwang.coverage.geometry import Cells, CoverageModel, KeySites, Roads, Sectors
from tianwang.storage.models import Area, Camera, KeySite, Road

LON0, LAT0 = 114.0, 22.5
KINDS = ("city", "district", "station", "grid")
TO = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
WINDOW = {"from": (TO - dt.timedelta(hours=2)).isoformat(), "to": TO.isoformat()}

coord = st.floats(0.0, 0.02, allow_nan=False)


@st.composite
def rect(draw: st.DrawFn) -> dict[str, Any]:
    x, y = LON0 + draw(coord), LAT0 + draw(coord)
    w, h = draw(st.floats(0.0005, 0.02)), draw(st.floats(0.0005, 0.02))
    ring = [[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]]
    return {"type": "Polygon", "coordinates": [ring]}


@st.composite
def line(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 4))
    step = st.integers(0, 200)  # a 1e-4° lattice: distinct points stay distinct after the offset
    pts = draw(st.lists(st.tuples(step, step), min_size=n, max_size=n, unique=True))
    return {"type": "LineString", "coordinates": [[LON0 + a * 1e-4, LAT0 + b * 1e-4] for a, b in pts]}


@st.composite
def city(draw: st.DrawFn) -> dict[str, Any]:
    areas = [
        {"code": f"A{i}", "name": f"area {i}", "kind": draw(st.sampled_from(KINDS)), "geometry": draw(rect())}
        for i in range(draw(st.integers(0, 3)))
    ]
    roads = [
        {"type": "Feature", "id": f"r{i}", "properties": {"road_class": "primary"}, "geometry": draw(line())}
        for i in range(draw(st.integers(0, 3)))
    ]
    sites = [
        {
            "id": f"k{i}",
            "name": f"site {i}",
            "category": "school",
            "geometry": draw(
                st.one_of(
                    rect(),
                    st.builds(
                        lambda a, b: {"type": "Point", "coordinates": [LON0 + a, LAT0 + b]}, coord, coord
                    ),
                )
            ),
        }
        for i in range(draw(st.integers(0, 2)))
    ]
    cameras = [
        {
            "device_id": f"440305000013200{i:05d}",
            "name": f"cam {i}",
            "kind": "bullet",
            # a little wider than the areas: some cameras stand outside every area
            "lon": LON0 - 0.005 + draw(st.floats(0, 0.03)),
            "lat": LAT0 - 0.005 + draw(st.floats(0, 0.03)),
            "heading_deg": draw(st.floats(0, 359)),
            "hfov_deg": draw(st.floats(1, 360)),
            "range_m": draw(st.floats(1, 500)),
            "point_class": 1,
        }
        for i in range(draw(st.integers(0, 3)))
    ]
    return {"areas": areas, "roads": roads, "sites": sites, "cameras": cameras}


def sane_row(r: dict[str, Any]) -> None:
    for name, f in r["figures"].items():
        assert 0 <= f["numerator"] <= f["denominator"] + 1e-6, (name, f)
        assert 0.0 <= f["rate"] <= 1.0, (name, f)
    for k in (
        "online_rate",
        "intact_rate",
        "road_coverage_rate",
        "key_site_coverage_rate",
        "grid_coverage_rate",
    ):
        assert 0.0 <= r[k] <= 1.0, (k, r[k])
    assert 0 <= r["online"] <= r["devices_total"] and 0 <= r["intact"] <= r["devices_total"]
    assert r["road_covered_m"] <= r["road_length_m"] + 1e-6
    assert r["key_sites_covered"] <= r["key_sites_total"]
    assert r["grid_cells_covered"] <= r["grid_cells_total"]
    d = r["designed"]
    assert d["road_covered_m"] <= r["road_length_m"] + 1e-6
    assert d["key_sites_covered"] <= r["key_sites_total"]
    assert d["grid_cells_covered"] <= r["grid_cells_total"]
    for k in ("road_coverage_rate", "key_site_coverage_rate", "grid_coverage_rate"):
        assert 0.0 <= d[k] <= 1.0


def ok(r: Any) -> Any:
    assert r.status_code == 200, (r.request.url, r.status_code, r.text[:500])
    return r


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(c=city())
def test_coverage_routes_on_any_city_shape(
    client: TestClient, tokens: dict[str, str], ctx: AppContext, c: dict[str, Any]
) -> None:
    with ctx.db.session() as s:
        for model in (Camera, Area, Road, KeySite):
            s.execute(delete(model))
    staff, inst = auth(tokens["staff"]), auth(tokens["installer"])
    for a in c["areas"]:
        assert client.post("/api/v1/areas", json=a, headers=staff).status_code == 201
    if c["roads"]:
        rep = client.post(
            "/api/v1/roads", json={"type": "FeatureCollection", "features": c["roads"]}, headers=staff
        )
        assert ok(rep).json()["rejected"] == []
    for k in c["sites"]:
        assert client.post("/api/v1/key-sites", json=k, headers=staff).status_code == 201
    for cam in c["cameras"]:
        assert client.post("/api/v1/cameras", json=cam, headers=inst).status_code == 201

    n = len(c["cameras"])
    total = ok(client.get("/api/v1/coverage/summary", params=WINDOW, headers=staff)).json()
    sane_row(total)
    assert total["devices_total"] == n
    codes = [a["code"] for a in c["areas"]]
    for code in codes:
        sane_row(
            ok(
                client.get("/api/v1/coverage/summary", params={**WINDOW, "area_code": code}, headers=staff)
            ).json()
        )
        for what in ("roads", "grid", "key-sites"):
            fc = ok(
                client.get(
                    "/api/v1/coverage/blind-spots", params={"area_code": code, "what": what}, headers=staff
                )
            )
            assert fc.json()["type"] == "FeatureCollection"
        enc = ok(client.get("/api/v1/coverage/enclosure", params={"area_code": code}, headers=staff)).json()
        assert isinstance(enc["closed"], bool)
    for level in KINDS:
        rows = ok(
            client.get("/api/v1/coverage/areas", params={**WINDOW, "level": level}, headers=staff)
        ).json()
        assert len(rows["items"]) == sum(1 for a in c["areas"] if a["kind"] == level)
        assert sum(r["devices_total"] for r in rows["items"]) + rows["devices_outside"] == n
        for r in rows["items"]:
            sane_row(r)
        for code in [None, *codes[:1]]:
            q = {**WINDOW, "level": level, **({"area_code": code} if code else {})}
            rep = ok(client.get("/api/v1/coverage/report", params=q, headers=staff))
            assert rep.content.startswith("\ufeffarea_code,".encode())
    hist = ok(client.get("/api/v1/coverage/history", params={**WINDOW, "step": "1h"}, headers=staff)).json()
    for p in hist["points"]:
        assert 0.0 <= p["online_rate"] <= 1.0 and 0.0 <= p["intact_rate"] <= 1.0
        assert p["online_s"] <= p["scheduled_s"] + 1e-6 and p["intact"] <= p["devices"]


def test_area_without_grid_cells_answers_zeros(client: TestClient, tokens: dict[str, str]) -> None:
    """The issue's case: a district, a road and a camera, but no grid cells (was IndexError → 500)."""
    staff = auth(tokens["staff"])
    poly = {
        "type": "Polygon",
        "coordinates": [[[114.0, 22.5], [114.02, 22.5], [114.02, 22.52], [114.0, 22.52], [114.0, 22.5]]],
    }
    assert (
        client.post(
            "/api/v1/areas",
            json={"code": "D1", "name": "d", "kind": "district", "geometry": poly},
            headers=staff,
        ).status_code
        == 201
    )
    road = {"type": "LineString", "coordinates": [[114.001, 22.51], [114.019, 22.51]]}
    fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": "r", "properties": {"road_class": "primary"}, "geometry": road}
        ],
    }
    assert client.post("/api/v1/roads", json=fc, headers=staff).json()["created"] == 1
    cam = {"device_id": "44030500001320000001", "name": "c", "kind": "bullet", "lon": 114.01, "lat": 22.5105,
           "heading_deg": 90, "hfov_deg": 90, "range_m": 100, "point_class": 1}  # fmt: skip
    assert client.post("/api/v1/cameras", json=cam, headers=auth(tokens["installer"])).status_code == 201
    s = ok(client.get("/api/v1/coverage/summary", params={"area_code": "D1"}, headers=staff)).json()
    assert s["devices_total"] == 1
    assert (s["road_length_m"], s["grid_cells_total"], s["key_sites_total"]) == (0.0, 0, 0)
    rows = ok(client.get("/api/v1/coverage/areas", params={"level": "district"}, headers=staff)).json()
    assert [r["road_length_m"] for r in rows["items"]] == [0.0]
    rep = ok(
        client.get("/api/v1/coverage/report", params={"level": "district", "area_code": "D1"}, headers=staff)
    )
    assert b"D1" in rep.content
    whole = ok(client.get("/api/v1/coverage/summary", headers=staff)).json()
    assert whole["road_length_m"] > 1000  # the city as a whole still counts the road


@settings(max_examples=60, deadline=None)
@given(
    n_cams=st.integers(0, 3),
    n_roads=st.integers(0, 3),
    n_cells=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_model_scopes_on_any_shape(n_cams: int, n_roads: int, n_cells: int, seed: int) -> None:
    """Pure: a cell mask as scope (an area's cells, possibly none) never indexes out of range."""
    assume(n_cams + n_roads > 0)  # the service builds no model for a city without both
    rng = np.random.default_rng(seed)
    sectors = Sectors.from_records(
        {"device_id": f"c{i}", "lon": LON0 + rng.uniform(0, 0.02), "lat": LAT0 + rng.uniform(0, 0.02),
         "heading_deg": rng.uniform(0, 359), "hfov_deg": rng.uniform(1, 360), "range_m": rng.uniform(1, 500)}
        for i in range(n_cams)
    )  # fmt: skip

    def seg() -> list[list[float]]:
        return (np.array([LON0, LAT0]) + rng.uniform(0, 0.02, (2, 2))).tolist()

    def cell(x: float) -> dict[str, Any]:
        ring = [[x, LAT0], [x + 0.01, LAT0], [x + 0.01, LAT0 + 0.02], [x, LAT0 + 0.02], [x, LAT0]]
        return {"type": "Polygon", "coordinates": [ring]}

    feats = [
        {
            "type": "Feature",
            "id": f"r{i}",
            "properties": {},
            "geometry": {"type": "LineString", "coordinates": seg()},
        }
        for i in range(n_roads)
    ]
    cells = Cells.from_records(
        {"code": f"G{i}", "geometry": cell(LON0 + 0.01 * (i + 1))} for i in range(n_cells)
    )
    roads = Roads.from_geojson({"type": "FeatureCollection", "features": feats})
    model = CoverageModel(sectors, roads, KeySites.from_records([]), cells)
    for scope in (None, np.zeros(n_cells, bool), np.ones(n_cells, bool)):
        s = model.summary(scope)
        assert 0 <= s.road_covered_m <= s.road_length_m + 1e-6
        assert 0 <= s.grid_cells_covered <= s.grid_cells_total <= n_cells
        model.blind_roads(0.0, scope)
        model.blind_key_sites(scope)
        model.blind_cells(scope)
        if scope is not None and not scope.any():
            assert s.road_length_m == 0.0 and s.grid_cells_total == 0
