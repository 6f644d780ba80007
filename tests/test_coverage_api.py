"""Coverage routes on a synthetic city loaded through the API: time-weighted online rate against a
known timeline, per-area roll-ups, blind spots, enclosure, the report, and live status changes."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import numpy as np
import openpyxl
import pytest
from fastapi.testclient import TestClient
from shapely.geometry import shape
from sqlalchemy import update

from simulator.city import CityParams, generate_city
from tests.conftest import auth
from tianwang.context import AppContext
from tianwang.coverage.geometry import Cells, CoverageModel, KeySites, Roads, Sectors
from tianwang.storage.models import Camera

CITY = generate_city(CityParams(cameras=60, seed=3))
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
W0 = NOW - dt.timedelta(hours=3)
W1 = W0 + dt.timedelta(hours=1)


def load_city(client: TestClient, tokens: dict[str, str], ctx: AppContext) -> list[str]:
    staff, inst = auth(tokens["staff"]), auth(tokens["installer"])
    for a in CITY.areas:
        assert client.post("/api/v1/areas", json=a, headers=staff).status_code == 201
    r = client.post("/api/v1/roads", json=CITY.roads_geojson(), headers=staff).json()
    assert r["rejected"] == [] and r["created"] == len(CITY.edge_coords)
    for s in CITY.key_sites:
        assert client.post("/api/v1/key-sites", json=s, headers=staff).status_code == 201
    for cp in CITY.checkpoints:
        body = {k: v for k, v in cp.items() if k != "camera_ids"}
        assert client.post("/api/v1/checkpoints", json=body, headers=inst).status_code == 201, body
    for c in CITY.cameras:
        r2 = client.post("/api/v1/cameras", json=c, headers=inst)
        assert r2.status_code == 201, r2.text
    # registered long before the window, so every device is scheduled for all of it
    with ctx.db.session() as s:
        s.execute(update(Camera).values(created_at=W0 - dt.timedelta(days=1)))
    return [c["device_id"] for c in CITY.cameras]


def obs(device_id: str, t: dt.datetime, up: bool = True, authenticated: bool | None = None) -> dict[str, Any]:
    return {
        "key": f"h-{device_id}-{t.timestamp():.0f}",
        "device_id": device_id,
        "ts": t.isoformat(),
        "reachable": up,
        "authenticated": up if authenticated is None else authenticated,
        "error": None if up else "connect timeout",
    }


def ingest(client: TestClient, tokens: dict[str, str], items: list[dict[str, Any]]) -> None:
    r = client.post("/api/v1/ingest/health", json={"items": items}, headers=auth(tokens["agent"]))
    assert r.status_code == 200 and r.json()["rejected"] == [], r.text


def timeline(ids: list[str]) -> tuple[list[dict[str, Any]], float]:
    """Three devices with a known history (interval 60 s × 3 misses = 180 s cap); online seconds."""
    a, b, c = ids[10], ids[20], ids[30]
    s = dt.timedelta(seconds=1)
    items = [obs(a, W0 - 30 * s + 60 * k * s) for k in range(31)]  # up every minute to W0+1770
    items.append(obs(a, W0 + 1830 * s, up=False))  # down: ends A's time online at W0+1830
    items.append(obs(b, W0 + 100 * s))  # one answer, then silence: 180 s online
    items.append(obs(c, W0 + 3000 * s, up=True, authenticated=False))  # refuses credentials: not online
    items.append(obs(c, W0 + 3300 * s))  # 180 s online, cut by nothing before the window ends
    return items, 1830.0 + 180.0 + 180.0


def test_time_weighted_rate_areas_history_and_report(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    ids = load_city(client, tokens, ctx)
    items, online_s = timeline(ids)
    ingest(client, tokens, items)
    h = auth(tokens["staff"])
    q = {"from": W0.isoformat(), "to": W1.isoformat()}
    s = client.get("/api/v1/coverage/summary", params=q, headers=h).json()
    n = len(ids)
    assert s["devices_total"] == n
    f = s["figures"]["online_rate"]
    assert f["numerator"] == pytest.approx(online_s, abs=1e-3)
    assert f["denominator"] == pytest.approx(n * 3600.0, abs=1e-3)
    assert s["online_rate"] == pytest.approx(online_s / (n * 3600), abs=1e-6)
    assert f["window"]["from"] == W0.isoformat() and f["window"]["seconds"] == 3600
    assert s["online"] == 0 and s["intact"] == 0  # all that evidence is hours old: offline now
    # as designed (every in-use camera counted) against the core computed from the same city
    model = CoverageModel(
        Sectors.from_records(CITY.cameras),
        Roads.from_geojson(CITY.roads_geojson()),
        KeySites.from_records(CITY.key_sites),
        Cells.from_records([a for a in CITY.areas if a["kind"] == "grid"]),
    )
    designed = model.summary(designed=True)
    assert s["designed"]["road_covered_m"] == pytest.approx(designed.road_covered_m, abs=0.01)
    assert s["road_length_m"] == pytest.approx(designed.road_length_m, abs=0.01)
    assert s["road_covered_m"] == 0.0  # nobody intact now
    assert s["designed"]["key_sites_covered"] == designed.key_sites_covered

    # per-area rows add up: every device in at most one area of a level, every cell in one district
    for level in ("district", "station", "grid"):
        rows = client.get("/api/v1/coverage/areas", params={**q, "level": level}, headers=h).json()
        items_ = rows["items"]
        assert len(items_) == sum(1 for a in CITY.areas if a["kind"] == level)
        assert sum(r["devices_total"] for r in items_) + rows["devices_outside"] == n
        num = sum(r["figures"]["online_rate"]["numerator"] for r in items_)
        assert num == pytest.approx(online_s, abs=1e-2)  # the three devices lie inside the city
        cells = sum(r["grid_cells_total"] for r in items_)
        assert cells == designed.grid_cells_total
        road = sum(r["road_length_m"] for r in items_)
        city_row = client.get(
            "/api/v1/coverage/summary", params={**q, "area_code": "440300"}, headers=h
        ).json()
        assert road == pytest.approx(city_row["road_length_m"], rel=1e-6)
    one = items_[0]
    alone = client.get(
        "/api/v1/coverage/summary", params={**q, "area_code": one["area_code"]}, headers=h
    ).json()
    for k in ("devices_total", "road_length_m", "designed", "figures", "key_sites_total"):
        assert alone[k] == one[k]

    # history: the steps' online seconds add up to the window's; intact rebuilt from the evidence
    hist = client.get("/api/v1/coverage/history", params={**q, "step": "30m"}, headers=h).json()
    pts = hist["points"]
    assert len(pts) == 2 and sum(p["online_s"] for p in pts) == pytest.approx(online_s, abs=1e-2)
    assert [p["intact"] for p in pts] == [1, 0]  # A answered 30 s before the first step's end
    assert all(p["devices"] == n for p in pts)

    # the assessment report: CSV and XLSX, each rate with numerator, denominator and window
    r = client.get("/api/v1/coverage/report", params={**q, "level": "district", "format": "csv"}, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    text = r.content.decode("utf-8-sig")
    area_part, dev_part = text.split("\r\n\r\n")
    arows = list(csv.DictReader(io.StringIO(area_part)))
    assert {"online_s", "scheduled_s", "window_from", "window_to"} <= set(arows[0])
    assert sum(float(x["online_s"]) for x in arows) == pytest.approx(online_s, abs=1e-2)
    assert all(x["window_from"] == W0.isoformat() for x in arows)
    drows = list(csv.DictReader(io.StringIO(dev_part)))
    assert len(drows) == 20 and float(drows[0]["offline_s"]) == 3600.0
    assert ids[10] not in [d["device_id"] for d in drows[:-3]]  # A is among the best, not the worst
    x = client.get("/api/v1/coverage/report", params={**q, "format": "xlsx"}, headers=h)
    wb = openpyxl.load_workbook(io.BytesIO(x.content), read_only=True)
    sheet = list(wb["areas"].iter_rows(values_only=True))
    head = list(sheet[0])
    assert sum(float(row[head.index("online_s")]) for row in sheet[1:]) == pytest.approx(online_s, abs=1e-2)
    assert next(iter(wb["worst_devices"].iter_rows(values_only=True)))[0] == "device_id"


def test_status_change_updates_the_model_at_once(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    ids = load_city(client, tokens, ctx)
    h = auth(tokens["staff"])
    now = dt.datetime.now(dt.UTC)
    ingest(client, tokens, [obs(d, now - dt.timedelta(seconds=5)) for d in ids])
    s = client.get("/api/v1/coverage/summary", headers=h).json()
    assert s["online"] == s["intact"] == len(ids)
    assert s["road_covered_m"] == pytest.approx(s["designed"]["road_covered_m"], abs=0.01)
    live = client.app.state.coverage  # type: ignore[attr-defined]
    rebuilds = live.rebuilds
    # the camera whose loss costs the most road goes offline: three unanswered checks
    sectors, roads = Sectors.from_records(CITY.cameras), Roads.from_geojson(CITY.roads_geojson())
    model = CoverageModel(sectors, roads)
    loss = [model.summary(mask=np.arange(len(ids)) != i).road_covered_m for i in range(len(ids))]
    worst = int(np.argmin(loss))
    ingest(client, tokens, [obs(ids[worst], now - dt.timedelta(seconds=k), up=False) for k in (3, 2, 1)])
    s2 = client.get("/api/v1/coverage/summary", headers=h).json()
    assert s2["online"] == s2["intact"] == len(ids) - 1
    assert s2["road_covered_m"] == pytest.approx(loss[worst], abs=0.01) and loss[worst] < s["road_covered_m"]
    assert live.rebuilds == rebuilds and live.incremental_updates >= 1  # no rebuild for a status change
    faults = client.get("/api/v1/faults", headers=h).json()
    assert [f_["device_id"] for f_ in faults] == [ids[worst]]
    # back online: coverage returns
    ingest(client, tokens, [obs(ids[worst], now)])
    s3 = client.get("/api/v1/coverage/summary", headers=h).json()
    assert s3["road_covered_m"] == pytest.approx(s["road_covered_m"], abs=0.01)
    # a registry change (a new road) rebuilds the model
    road = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "EXTRA1",
                "geometry": {"type": "LineString", "coordinates": [[114.05, 22.55], [114.051, 22.55]]},
                "properties": {"road_class": "local"},
            }
        ],
    }
    assert client.post("/api/v1/roads", json=road, headers=h).json()["created"] == 1
    s4 = client.get("/api/v1/coverage/summary", headers=h).json()
    assert live.rebuilds == rebuilds + 1
    assert s4["road_length_m"] > s3["road_length_m"] + 90


def test_blind_spots_enclosure_and_errors(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    ids = load_city(client, tokens, ctx)
    h = auth(tokens["staff"])
    ingest(client, tokens, [obs(d, dt.datetime.now(dt.UTC)) for d in ids[::6]])
    for what in ("roads", "grid", "key-sites"):
        fc = client.get("/api/v1/coverage/blind-spots", params={"what": what}, headers=h).json()
        assert fc["type"] == "FeatureCollection" and fc["features"], what
        for feat in fc["features"]:
            g = shape(feat["geometry"])
            assert g.is_valid and not g.is_empty
            minx, miny, maxx, maxy = g.bounds
            assert 113 < minx <= maxx < 115 and 22 < miny <= maxy < 23  # lon/lat, not metres
    roads_fc = client.get("/api/v1/coverage/blind-spots", params={"what": "roads"}, headers=h).json()
    s = client.get("/api/v1/coverage/summary", headers=h).json()
    gap = sum(f_["properties"]["length_m"] for f_ in roads_fc["features"])
    assert gap <= s["road_length_m"] - s["road_covered_m"] + 0.05 * len(roads_fc["features"])

    # enclosure of the city: the entries the generator left unguarded, and one more once a
    # checkpoint is deleted
    unguarded = {CITY.edge_id(int(e)) for e in CITY.entry_edges[~CITY.entry_guarded]}
    enc = client.get("/api/v1/coverage/enclosure", params={"area_code": "440300"}, headers=h).json()
    assert set(enc["unguarded"]) == unguarded and enc["closed"] is (not unguarded)
    assert len(enc["entry_roads"]) == len(CITY.entry_edges)
    victim = CITY.checkpoints[0]
    assert client.delete(f"/api/v1/checkpoints/{victim['checkpoint_id']}", headers=h).status_code == 204
    enc2 = client.get("/api/v1/coverage/enclosure", params={"area_code": "440300"}, headers=h).json()
    assert set(enc2["unguarded"]) == unguarded | {victim["road"]} and enc2["closed"] is False
    leak = [f_ for f_ in enc2["leaks"]["features"] if f_["properties"]["entry_road"] == victim["road"]]
    assert len(leak) == 1 and shape(leak[0]["geometry"]).length > 0

    # errors are problem JSON
    for path, params, code in (
        ("summary", {"area_code": "999999"}, 404),
        ("blind-spots", {"area_code": "999999"}, 404),
        ("enclosure", {"area_code": "999999"}, 404),
        ("enclosure", {}, 422),
        ("blind-spots", {"what": "rivers"}, 422),
        ("areas", {"level": "planet"}, 422),
        ("history", {"step": "5x"}, 422),
        ("history", {"step": "1m", "from": "2020-01-01T00:00:00Z", "to": "2021-01-01T00:00:00Z"}, 422),
        ("summary", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, 422),
        ("summary", {"from": "2026-01-01T00:00:00", "to": "2026-01-02T00:00:00Z"}, 422),
        ("report", {"format": "pdf"}, 422),
    ):
        r = client.get(f"/api/v1/coverage/{path}", params=params, headers=h)
        assert r.status_code == code, (path, params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
