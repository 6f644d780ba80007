"""Road coverage by the vectorised shapely method against an independent oracle.

The oracle walks every road in 0.1 m steps (in its own transverse Mercator) and tests each step's
midpoint against each camera by plain distance and bearing arithmetic — no shapely, no polygons.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pyproj import Transformer

from tianwang.coverage.geometry import CoverageModel, Roads, Sectors

LON0, LAT0 = 114.05, 22.55
_TM = f"+proj=tmerc +lat_0={LAT0} +lon_0={LON0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m"
TO_LL = Transformer.from_crs(_TM, "EPSG:4326", always_xy=True)
STEP_M = 0.1  # each boundary crossing is then off by at most 5 cm


def oracle_covered(roads_xy: list[np.ndarray], cams: list[tuple[float, float, float, float, float]]) -> float:
    """Covered metres: sum of step lengths whose midpoint lies in some sector (distance + angle)."""
    total = 0.0
    for line in roads_xy:
        for p, q in itertools.pairwise(line):
            seg = math.hypot(*(q - p))
            n = max(1, math.ceil(seg / STEP_M))
            t = (np.arange(n) + 0.5) / n
            px, py = p[0] + (q[0] - p[0]) * t, p[1] + (q[1] - p[1]) * t
            hit = np.zeros(n, bool)
            for cx, cy, heading, hfov, rng in cams:
                dx, dy = px - cx, py - cy
                inside = np.hypot(dx, dy) <= rng
                if hfov < 360:
                    bearing = np.degrees(np.arctan2(dx, dy)) % 360
                    off = np.abs((bearing - heading + 180) % 360 - 180)
                    inside &= off <= hfov / 2
                hit |= inside
            total += hit.sum() * seg / n
    return total


def model_for(
    roads_xy: list[np.ndarray], cams: list[tuple[float, float, float, float, float]]
) -> CoverageModel:
    features = []
    for i, line in enumerate(roads_xy):
        lon, lat = TO_LL.transform(line[:, 0], line[:, 1])
        features.append(
            {
                "type": "Feature",
                "id": f"r{i}",
                "geometry": {"type": "LineString", "coordinates": np.column_stack([lon, lat]).tolist()},
                "properties": {"road_class": "residential"},
            }
        )
    cx = np.array([c[0] for c in cams])
    cy = np.array([c[1] for c in cams])
    lon, lat = TO_LL.transform(cx, cy)
    sectors = Sectors(
        ids=tuple(f"c{i}" for i in range(len(cams))),
        lon=np.asarray(lon),
        lat=np.asarray(lat),
        heading_deg=np.array([c[2] for c in cams]),
        hfov_deg=np.array([c[3] for c in cams]),
        range_m=np.array([c[4] for c in cams]),
    )
    return CoverageModel(sectors, Roads.from_geojson({"type": "FeatureCollection", "features": features}))


coord = st.floats(-400, 400, allow_nan=False)
heading = st.one_of(st.floats(0, 359.9), st.floats(320, 359.9), st.floats(0, 40))
hfov = st.one_of(st.sampled_from([360.0, 270.0, 200.0, 181.0, 180.0, 90.0]), st.floats(5, 359))
camera = st.tuples(coord, coord, heading, hfov, st.floats(30, 150))


@st.composite
def polyline(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(2, 4))
    pts = np.array([[draw(coord), draw(coord)] for _ in range(n)])
    assume(bool((np.hypot(*np.diff(pts, axis=0).T) >= 20.0).all()))  # a road, not a stub
    return pts


@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(roads=st.lists(polyline(), min_size=2, max_size=5), cams=st.lists(camera, min_size=1, max_size=10))
def test_vectorised_road_coverage_matches_oracle(roads: list[np.ndarray], cams: list) -> None:
    total = sum(float(np.hypot(*np.diff(r, axis=0).T).sum()) for r in roads)
    assume(total >= 500)  # a small city, not a few metres: 0.1 pp must be above sampling noise
    model = model_for(roads, cams)
    s = model.summary()
    expected = oracle_covered(roads, cams)
    assert abs(s.road_length_m - total) < 1e-3 * total + 0.01
    assert abs(s.road_coverage_rate - expected / total) < 0.001
    # counting only some cameras: the same agreement
    keep = [i % 2 == 0 for i in range(len(cams))]
    sub = model.summary(mask=keep)
    expected_sub = oracle_covered(roads, [c for c, k in zip(cams, keep, strict=True) if k])
    assert abs(sub.road_coverage_rate - expected_sub / total) < 0.001


def test_wide_and_north_crossing_sectors() -> None:
    # a cross of roads through the origin, cameras at the centre with awkward views
    roads = [np.array([[-300.0, 0.0], [300.0, 0.0]]), np.array([[0.0, -300.0], [0.0, 300.0]])]
    for cam, expect_m in (
        ((0.0, 0.0, 350.0, 60.0, 100.0), 100.0),  # 320°…20°: only the north arm
        ((0.0, 0.0, 0.0, 360.0, 100.0), 400.0),  # fisheye: all four arms
        ((0.0, 0.0, 180.0, 270.0, 100.0), 300.0),  # 270° facing south: all but the north arm
        ((0.0, 0.0, 10.0, 190.0, 100.0), 200.0),  # -85°…105°: north and east arms
    ):
        s = model_for(roads, [cam]).summary()
        assert abs(s.road_covered_m - expect_m) < 0.5, (cam, s.road_covered_m)
        assert abs(s.road_covered_m - oracle_covered(roads, [cam])) < 1.0
    # off-centre, heading across north: 340° ± 40° from 50 m south of the east-west road
    roads2 = [np.array([[-300.0, 50.0], [300.0, 50.0]])]
    cam = (0.0, 0.0, 340.0, 80.0, 150.0)
    got = model_for(roads2, [cam]).summary().road_covered_m
    # bearings 300°…20° on a line 50 m north: x from 50·tan(-60°) to 50·tan(20°)
    assert abs(got - 50 * (math.tan(math.radians(60)) + math.tan(math.radians(20)))) < 0.5
    assert abs(got - oracle_covered(roads2, [cam])) < 1.0
