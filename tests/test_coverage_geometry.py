"""Coverage geometry on hand-made cases with known answers, blind spots, and the incremental model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from pyproj import Geod, Transformer
from shapely import ops
from shapely.geometry import shape

from simulator.city import CityParams, generate_city
from tianwang.coverage.geometry import (
    Cells,
    CoverageInputError,
    CoverageModel,
    KeySites,
    Roads,
    Sectors,
    _substrings,
    key_site_coverage,
    road_coverage,
)

LON0, LAT0 = 114.05, 22.55
_TM = f"+proj=tmerc +lat_0={LAT0} +lon_0={LON0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m"
TO_LL = Transformer.from_crs(_TM, "EPSG:4326", always_xy=True)
GEOD = Geod(ellps="WGS84")


def ll(x: float, y: float) -> list[float]:
    lon, lat = TO_LL.transform(x, y)
    return [float(lon), float(lat)]


def roads_fc(*lines: list[tuple[float, float]]) -> Roads:
    feats = [
        {
            "type": "Feature",
            "id": f"r{i}",
            "geometry": {"type": "LineString", "coordinates": [ll(x, y) for x, y in line]},
            "properties": {"road_class": "primary"},
        }
        for i, line in enumerate(lines)
    ]
    return Roads.from_geojson({"type": "FeatureCollection", "features": feats})


def sectors(*cams: tuple[float, float, float, float, float]) -> Sectors:
    pos = [ll(c[0], c[1]) for c in cams]
    return Sectors(
        ids=tuple(f"c{i}" for i in range(len(cams))),
        lon=np.array([p[0] for p in pos]),
        lat=np.array([p[1] for p in pos]),
        heading_deg=np.array([c[2] for c in cams]),
        hfov_deg=np.array([c[3] for c in cams]),
        range_m=np.array([c[4] for c in cams]),
    )


def box(code: str, x0: float, y0: float, x1: float, y1: float) -> dict:
    ring = [ll(x0, y0), ll(x1, y0), ll(x1, y1), ll(x0, y1), ll(x0, y0)]
    return {"code": code, "geometry": {"type": "Polygon", "coordinates": [ring]}}


ROAD = [(-500.0, 0.0), (500.0, 0.0)]  # 1 km east–west through the origin


def test_camera_at_midpoint_covers_its_range() -> None:
    along = road_coverage(sectors((0, 0, 90, 60, 100)), roads_fc(ROAD))
    assert along.road_length_m == pytest.approx(1000, abs=0.01)
    assert along.road_covered_m == pytest.approx(100, abs=0.1)
    both = road_coverage(sectors((0, 0, 90, 60, 100), (0, 0, 270, 60, 100)), roads_fc(ROAD))
    assert both.road_covered_m == pytest.approx(200, abs=0.1)
    fisheye = road_coverage(sectors((0, 0, 0, 360, 120)), roads_fc(ROAD))
    assert fisheye.road_covered_m == pytest.approx(240, abs=0.1)
    # two cameras on the same stretch count once (union, not sum)
    twice = road_coverage(sectors((0, 0, 90, 60, 100), (10, 0, 90, 40, 100)), roads_fc(ROAD))
    assert twice.road_covered_m == pytest.approx(110, abs=0.1)
    # looking across: 20 m north of the road, facing south, 90° wide, 50 m → |x| ≤ 20
    across = road_coverage(sectors((0, 20, 180, 90, 50)), roads_fc(ROAD))
    assert across.road_covered_m == pytest.approx(40, abs=0.1)
    # pointing away from the road sees none of it
    away = road_coverage(sectors((0, 20, 0, 90, 150)), roads_fc(ROAD))
    assert away.road_covered_m == pytest.approx(0, abs=1e-6)
    assert away.road_coverage_rate == 0


def test_designed_vs_intact_mask() -> None:
    m = CoverageModel(sectors((0, 0, 90, 60, 100), (-300, 0, 270, 60, 100)), roads_fc(ROAD))
    assert m.summary(designed=True).road_covered_m == pytest.approx(200, abs=0.2)
    assert m.summary(mask=[True, False]).road_covered_m == pytest.approx(100, abs=0.1)
    assert m.summary(mask=[False, False]).road_covered_m == 0
    m.set_intact("c1", False)
    assert m.summary().road_covered_m == pytest.approx(100, abs=0.1)
    assert m.summary().cameras_counted == 1
    assert m.summary(designed=True).road_covered_m == pytest.approx(200, abs=0.2)


def test_key_sites_need_k_cameras() -> None:
    cams = sectors((0, 0, 90, 60, 100), (100, 50, 180, 90, 80), (0, 0, 270, 60, 100))
    point = {"id": "p", "geometry": {"type": "Point", "coordinates": ll(60, 5)}}  # seen by c0 and c1
    far = {"id": "far", "geometry": {"type": "Point", "coordinates": ll(130, 0)}}  # beyond c0's 100 m
    poly = {"id": "poly", "geometry": box("x", -110, -5, -90, 5)["geometry"]}  # crossed by c2's sector
    sites = KeySites.from_records([point, far, poly])
    counts = key_site_coverage(cams, sites)
    assert counts.tolist() == [2, 1, 1]  # far: c1 (100,50) looking south 80 m reaches (130,0)
    m = CoverageModel(cams, roads_fc(ROAD), sites, k_sites=2)
    s = m.summary()
    assert (s.key_sites_total, s.key_sites_covered) == (3, 1)
    blind = m.blind_key_sites()
    assert sorted(f["properties"]["id"] for f in blind["features"]) == ["far", "poly"]
    m.set_intact("c1", False)
    assert m.summary().key_sites_covered == 0
    m1 = CoverageModel(cams, roads_fc(ROAD), sites, k_sites=1)
    assert m1.summary().key_sites_covered == 3
    m1.set_intact("c2", False)
    assert m1.summary().key_sites_covered == 2
    assert [f["properties"]["id"] for f in m1.blind_key_sites()["features"]] == ["poly"]


def test_cells_by_covered_road_share() -> None:
    # cell A holds road x ∈ [-500, 0), cell B [0, 500]; a roadless cell C north of both
    cells = Cells.from_records(
        [
            box("440303001001", -500, -50, 0, 50),
            box("440303001002", 0, -50, 500, 50),
            box("440304001001", -500, 50, 500, 300),
        ]
    )
    cams = sectors((-250, 0, 0, 360, 150), (250, 0, 90, 40, 40))  # A: 300 of 500 m, B: 40 of 500 m
    m = CoverageModel(cams, roads_fc(ROAD), None, cells, cell_min_share=0.2)
    s = m.summary()
    assert (s.grid_cells_total, s.grid_cells_covered, s.grid_cells_roadless) == (2, 1, 1)
    blind = m.blind_cells()
    assert [f["properties"]["code"] for f in blind["features"]] == ["440303001002"]
    assert blind["features"][0]["properties"]["road_covered_m"] == pytest.approx(40, abs=0.1)
    assert (
        CoverageModel(cams, roads_fc(ROAD), None, cells, cell_min_share=0.05).summary().grid_cells_covered
        == 2
    )
    # scoped to a district: only its cells and road
    s3 = m.summary("440303")
    assert s3.road_length_m == pytest.approx(1000, abs=0.01)
    assert s3.road_covered_m == pytest.approx(340, abs=0.2)
    s4 = m.summary("440304")
    assert (s4.road_length_m, s4.grid_cells_total, s4.grid_cells_roadless) == (0, 0, 1)


def test_blind_roads_geojson_is_lonlat_and_measured() -> None:
    # covered [0, 100] and [110, 200] (in x): gaps -500…0 (500 m), 100…110 (10 m), 200…500 (300 m)
    cams = sectors((0, 0, 90, 60, 100), (110, 0, 90, 60, 90))
    m = CoverageModel(cams, roads_fc(ROAD))
    fc = m.blind_roads(min_length_m=20)
    lengths = sorted(f["properties"]["length_m"] for f in fc["features"])
    assert lengths == pytest.approx([300, 500], abs=0.2)
    for f in fc["features"]:
        g = shape(f["geometry"])
        assert g.geom_type == "LineString" and g.is_valid
        lon, lat = np.asarray(g.coords).T
        assert np.all(np.abs(lon - LON0) < 0.01) and np.all(np.abs(lat - LAT0) < 0.01)  # degrees, not metres
        assert GEOD.geometry_length(g) == pytest.approx(f["properties"]["length_m"], abs=0.5)
        assert f["properties"]["road_id"] == "r0"
    assert len(m.blind_roads(min_length_m=5)["features"]) == 3
    m.set_intact("c1", False)
    assert sorted(f["properties"]["length_m"] for f in m.blind_roads(20)["features"]) == pytest.approx(
        [400, 500], abs=0.2
    )


def test_substrings_match_shapely_substring() -> None:
    rng = np.random.default_rng(5)
    lines = shapely.linestrings(rng.uniform(0, 100, (20, 5, 2)))
    which = rng.integers(0, 20, 50)
    lengths = shapely.length(lines[which])
    a = rng.uniform(0, 1, 50) * lengths
    b = a + rng.uniform(0.1, 1, 50) * (lengths - a)
    got = _substrings(lines, which, a, b)
    for g, w, s0, e0 in zip(got, which, a, b, strict=True):
        want = ops.substring(lines[w], s0, e0)
        assert g.length == pytest.approx(want.length, abs=1e-6)
        assert g.hausdorff_distance(want) < 1e-6


def test_incremental_update_equals_full_recompute() -> None:
    city = generate_city(CityParams(cameras=400, seed=11))
    m = CoverageModel(
        Sectors.from_records(city.cameras),
        Roads.from_geojson(city.roads_geojson()),
        KeySites.from_records(city.key_sites),
        Cells.from_records([a for a in city.areas if a["kind"] == "grid"]),
        k_sites=2,
    )
    rng = np.random.default_rng(3)
    touched = 0
    for step in range(300):
        i = int(rng.integers(0, len(city.cameras)))
        touched += m.set_intact(city.cameras[i]["device_id"], bool(rng.random() < 0.4))
        if step % 50 == 49:
            full = m.summary(mask=m.intact)
            inc = m.summary()
            assert inc.road_covered_m == pytest.approx(full.road_covered_m, rel=1e-12, abs=1e-6)
            assert inc.key_sites_covered == full.key_sites_covered
            assert inc.grid_cells_covered == full.grid_cells_covered
            assert np.allclose(m.piece_covered, m._piece_cover(m.intact), atol=1e-9)
    assert touched > 0
    assert m.summary().road_covered_m < m.summary(designed=True).road_covered_m


def test_bad_input_is_refused() -> None:
    with pytest.raises(CoverageInputError, match="hfov"):
        sectors((0, 0, 0, 0, 100))
    with pytest.raises(CoverageInputError, match="range"):
        sectors((0, 0, 0, 90, -1))
    with pytest.raises(CoverageInputError, match="LineString"):
        Roads.from_geojson(
            {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 2]}}],
            }
        )
    m = CoverageModel(sectors((0, 0, 90, 60, 100)), roads_fc(ROAD))
    with pytest.raises(CoverageInputError, match="not in the coverage model"):
        m.set_intact("nope", False)
    with pytest.raises(CoverageInputError, match="mask"):
        m.summary(mask=[True, False])
    far_apart = [
        {"device_id": "a", "lon": 100, "lat": 20, "heading_deg": 0, "hfov_deg": 90, "range_m": 50},
        {"device_id": "b", "lon": 120, "lat": 20, "heading_deg": 0, "hfov_deg": 90, "range_m": 50},
    ]
    with pytest.raises(CoverageInputError, match="spans"):
        CoverageModel(Sectors.from_records(far_apart), roads_fc(ROAD))
    with pytest.raises(CoverageInputError, match="lacks"):
        Sectors.from_records([{"device_id": "a", "lon": 114, "lat": 22}])
    assert math.isfinite(m.summary().road_coverage_rate)
