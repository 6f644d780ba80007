"""Coverage on a real road map: the OpenStreetMap extract of central Helsinki shipped inside the pyrosm
package (read offline), registered through the API, checked against an independent sampled oracle."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pyproj import Transformer

from tests.conftest import auth

pyrosm = pytest.importorskip("pyrosm", reason="pyrosm is in the [test] extras")

CLASSES = {"motorway", "trunk", "primary", "secondary", "tertiary", "residential", "service", "unclassified"}
STEP_M = 0.1


def helsinki_roads() -> dict[str, Any]:
    """The drivable network as the POST /api/v1/roads body: one LineString per graph edge."""
    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
    edges = osm.get_network(network_type="driving")
    feats = []
    for i, (geom, highway) in enumerate(zip(edges.geometry, edges["highway"], strict=True)):
        cls = str(highway).removesuffix("_link")
        feats.append(
            {
                "type": "Feature",
                "id": f"osm{i:05d}",
                "geometry": {"type": "LineString", "coordinates": [list(c[:2]) for c in geom.coords]},
                "properties": {"road_class": cls if cls in CLASSES else "unclassified"},
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def oracle(roads: dict[str, Any], cams: list[dict[str, Any]]) -> tuple[float, float]:
    """(road length, covered length) in metres: every road walked in 0.1 m steps in its own transverse
    Mercator, each step's midpoint tested against each camera by distance and bearing — no polygons."""
    lon = [c[0] for f in roads["features"] for c in f["geometry"]["coordinates"]]
    lat = [c[1] for f in roads["features"] for c in f["geometry"]["coordinates"]]
    lon0, lat0 = (min(lon) + max(lon)) / 2, (min(lat) + max(lat)) / 2
    tm = Transformer.from_crs(
        "EPSG:4326", f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +ellps=WGS84 +units=m", always_xy=True
    )
    cx, cy = tm.transform([c["lon"] for c in cams], [c["lat"] for c in cams])
    total = covered = 0.0
    for f in roads["features"]:
        xy = np.column_stack(tm.transform(*np.asarray(f["geometry"]["coordinates"]).T))
        for p, q in itertools.pairwise(xy):
            seg = math.hypot(*(q - p))
            total += seg
            near = [k for k in range(len(cams)) if math.hypot(cx[k] - p[0], cy[k] - p[1]) <= seg + 200]
            if not near:
                continue
            n = max(1, math.ceil(seg / STEP_M))
            t = (np.arange(n) + 0.5) / n
            px, py = p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t
            hit = np.zeros(n, bool)
            for k in near:
                dx, dy = px - cx[k], py - cy[k]
                bearing = np.degrees(np.arctan2(dx, dy)) % 360
                off = np.abs((bearing - cams[k]["heading_deg"] + 180) % 360 - 180)
                hit |= (np.hypot(dx, dy) <= cams[k]["range_m"]) & (off <= cams[k]["hfov_deg"] / 2)
            covered += hit.sum() * seg / n
    return total, covered


def test_helsinki_coverage_matches_the_oracle(client: TestClient, tokens: dict[str, str]) -> None:
    roads = helsinki_roads()
    assert len(roads["features"]) > 500  # OSM ways of the drivable network
    r = client.post("/api/v1/roads", json=roads, headers=auth(tokens["staff"])).json()
    assert r["rejected"] == [] and r["created"] == len(roads["features"])
    # cameras along a spread of real streets, looking along them (and one fisheye at a junction)
    rng = np.random.default_rng(11)
    cams = []
    for k, i in enumerate(rng.choice(len(roads["features"]), 12, replace=False)):
        coords = roads["features"][int(i)]["geometry"]["coordinates"]
        (x0, y0), (x1, y1) = coords[0], coords[1]
        heading = math.degrees(math.atan2((x1 - x0) * math.cos(math.radians(y0)), y1 - y0)) % 360
        cams.append(
            {
                "device_id": f"4403050000132{k:07d}",
                "name": f"Helsinki {k}",
                "kind": "fisheye" if k == 0 else "bullet",
                "lon": x0,
                "lat": y0,
                "heading_deg": round(heading, 3),
                "hfov_deg": 360.0 if k == 0 else 70.0,
                "range_m": 40.0 if k == 0 else 90.0,
                "point_class": 2,
            }
        )
    for c in cams:
        assert client.post("/api/v1/cameras", json=c, headers=auth(tokens["installer"])).status_code == 201
    now = dt.datetime.now(dt.UTC)
    items = [
        {"key": f"h-{c['device_id']}", "device_id": c["device_id"], "ts": now.isoformat(), "reachable": True,
         "authenticated": True}
        for c in cams
    ]  # fmt: skip
    assert client.post("/api/v1/ingest/health", json={"items": items}, headers=auth(tokens["agent"])).json()[
        "accepted"
    ] == len(cams)
    s = client.get("/api/v1/coverage/summary", headers=auth(tokens["staff"])).json()
    length, covered = oracle(roads, cams)
    assert s["intact"] == len(cams)
    assert s["road_length_m"] == pytest.approx(length, rel=1e-4)
    assert covered > 500  # the cameras do see real road
    assert abs(s["road_coverage_rate"] - covered / length) < 0.001  # within 0.1 percentage point
    assert s["road_covered_m"] == pytest.approx(covered, rel=0.005, abs=1.0)
    assert s["designed"]["road_covered_m"] == pytest.approx(s["road_covered_m"], abs=0.01)
    blind = client.get("/api/v1/coverage/blind-spots", headers=auth(tokens["staff"])).json()
    assert sum(f["properties"]["length_m"] for f in blind["features"]) <= length - covered + 1.0
