"""The synthetic city: deterministic, to scale, and every export in the public wire shapes."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import shapely
from shapely.geometry import shape

from simulator.city import CityParams, generate_city
from tianwang.cameras.schemas import CameraSpec
from tianwang.checkpoints.schemas import CheckpointSpec
from tianwang.places.schemas import AreaIn, KeySiteIn
from tianwang.places.service import ROAD_CLASSES

ROAD_CLASSES_HERE = {
    "motorway",
    "trunk",
    "primary",
    "secondary",
    "tertiary",
    "residential",
    "service",
    "ring",
    "arterial",
}


@pytest.fixture(scope="module")
def city():
    return generate_city(CityParams(cameras=1500, seed=7))


def dump(c) -> str:
    return json.dumps(
        [c.roads_geojson(), c.areas, c.key_sites, c.cameras, c.checkpoints, c.graph()],
        sort_keys=True,
        ensure_ascii=False,
    )


def test_same_seed_same_city_other_seed_other_city(tmp_path) -> None:
    a = generate_city(CityParams(cameras=300, seed=5))
    b = generate_city(CityParams(cameras=300, seed=5))
    assert dump(a) == dump(b)
    assert dump(generate_city(CityParams(cameras=300, seed=6))) != dump(a)
    paths = a.write(tmp_path)
    assert {p.name for p in paths} >= {
        "roads.geojson",
        "cameras.json",
        "checkpoints.json",
        "areas.json",
        "graph.json",
    }
    assert json.loads((tmp_path / "cameras.json").read_text(encoding="utf-8")) == a.cameras


@pytest.mark.parametrize(("cameras", "road_km"), [(50, None), (3000, None), (800, 300.0)])
def test_scale_parameters_are_honoured(cameras: int, road_km: float | None) -> None:
    c = generate_city(CityParams(cameras=cameras, seed=1, road_km=road_km))
    assert len(c.cameras) == cameras
    target = c.params.target_road_km
    assert 0.85 * target <= c.road_length_km <= (1.3 * target if cameras > 100 else 4 * target)
    assert len(c.key_sites) == max(4, cameras // 50)
    n_unguarded = int((~c.entry_guarded).sum())
    assert n_unguarded == max(1, len(c.entry_edges) // 20)
    assert len(c.checkpoints) == len(c.entry_edges) - n_unguarded


def test_cameras_are_valid_bodies_with_gbt28181_ids(city) -> None:
    districts = {a["code"] for a in city.areas if a["kind"] == "district"}
    cells = {a["code"] for a in city.areas if a["kind"] == "grid"}
    for body in city.cameras:
        spec = CameraSpec.model_validate(body)
        did = spec.device_id
        assert did[:6] in districts and did[:6] == body["area_code"][:6]
        assert did[8:10] == "00" and did[13] == "0"
        assert did[10:13] == ("121" if spec.kind.value == "checkpoint" else "132")
        assert body["area_code"] in cells
    ids = [b["device_id"] for b in city.cameras]
    assert len(set(ids)) == len(ids)


def test_camera_views_are_realistic(city) -> None:
    cams = city.cameras
    hfov = np.array([c["hfov_deg"] for c in cams])
    rng = np.array([c["range_m"] for c in cams])
    kinds = Counter(c["kind"] for c in cams)
    assert ((hfov >= 40) & (hfov <= 100)).mean() > 0.6
    assert (hfov == 360).sum() > 0 and kinds["ptz"] > 0 and kinds["checkpoint"] > 0
    assert rng.min() >= 30 and rng.max() <= 150
    headings = np.array([c["heading_deg"] for c in cams])
    assert headings.min() >= 0 and headings.max() < 360
    # a share sees no road at all (placed inside blocks, short range)
    from tianwang.coverage.geometry import LocalProjection, Roads, sector_polygons

    roads = Roads.from_geojson(city.roads_geojson())
    proj = LocalProjection(city.params.centre_lon, city.params.centre_lat)
    x, y = proj.forward([c["lon"] for c in cams], [c["lat"] for c in cams])
    polys = sector_polygons(x, y, headings, hfov, rng)
    hits = shapely.STRtree(proj.to_metric(roads.geoms)).query(polys, predicate="intersects")[0]
    blind_share = 1 - len(np.unique(hits)) / len(cams)
    assert 0.02 < blind_share < 0.2


def test_areas_nest_and_validate(city) -> None:
    by_code = {a["code"]: a for a in city.areas}
    kinds = Counter(a["kind"] for a in city.areas)
    assert kinds["city"] == 1 and kinds["district"] >= 2 and kinds["station"] >= kinds["district"]
    assert kinds["grid"] >= kinds["station"]
    width = {"district": 6, "station": 9, "grid": 12}
    for a in city.areas:
        AreaIn.model_validate(a)
        if a["kind"] == "city":
            continue
        assert len(a["code"]) == width[a["kind"]] and a["code"].isdigit()
        parent = by_code[a["parent"]]
        assert a["code"].startswith(parent["code"]) or parent["kind"] == "city"
        assert shape(a["geometry"]).covered_by(shape(parent["geometry"]))
    for d in (a for a in city.areas if a["kind"] == "district"):
        assert 440303 <= int(d["code"]) <= 440399
    # the grid cells tile the city: their areas add up to it
    grid_area = sum(shape(a["geometry"]).area for a in city.areas if a["kind"] == "grid")
    assert grid_area == pytest.approx(shape(city.city_polygon()).area, rel=1e-9)


def test_roads_sites_and_checkpoints_validate(city) -> None:
    fc = city.roads_geojson()
    ids = [f["properties"]["id"] for f in fc["features"]]
    assert len(set(ids)) == len(ids)
    classes = {f["properties"]["road_class"] for f in fc["features"]}
    assert classes <= ROAD_CLASSES_HERE <= ROAD_CLASSES | ROAD_CLASSES_HERE
    assert {"ring", "arterial", "motorway", "residential"} <= classes
    assert all(shape(f["geometry"]).is_valid for f in fc["features"][:2000])
    g = city.graph()
    assert len(g["edges"]["id"]) == len(fc["features"])
    for s in city.key_sites:
        KeySiteIn.model_validate(s)
    assert {s["category"] for s in city.key_sites} == {"school", "hospital", "station", "market"}
    cam_ids = {c["device_id"] for c in city.cameras if c["kind"] == "checkpoint"}
    area = shape(city.city_polygon())
    for body in city.checkpoints:
        cp = CheckpointSpec.model_validate(body)
        assert cp.checkpoint_id[10:13] == "121"
        assert set(cp.camera_ids or []) <= cam_ids
        assert area.contains(shape({"type": "Point", "coordinates": [cp.lon, cp.lat]}))
    guarded_roads = {city.edge_id(int(e)) for e in city.entry_edges[city.entry_guarded]}
    assert {b["road"] for b in city.checkpoints} == guarded_roads
    assert not city.entry_guarded.all()


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="cameras"):
        CityParams(cameras=0)
    with pytest.raises(ValueError, match="districts"):
        CityParams(districts=200)
