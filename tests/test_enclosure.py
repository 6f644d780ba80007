"""Checkpoint enclosure (卡口闭合) on synthetic cities and a hand-made graph."""

from __future__ import annotations

import numpy as np
import pytest
from shapely.geometry import Point, shape

from simulator.city import CityParams, generate_city
from tianwang.coverage.enclosure import CheckpointPos, RoadGraph, enclosure
from tianwang.coverage.geometry import CoverageInputError


@pytest.fixture(scope="module")
def city():
    return generate_city(CityParams(cameras=600, seed=4, unguarded=0))


def graph_of(city) -> RoadGraph:
    return RoadGraph.from_arrays(city.graph(), city.roads_geojson())


def test_all_entries_guarded_is_closed(city) -> None:
    r = enclosure(city.city_polygon(), graph_of(city), CheckpointPos.from_records(city.checkpoints))
    entries = {city.edge_id(int(e)) for e in city.entry_edges}
    assert len(entries) >= 8
    assert set(r.entry_roads) == entries
    assert r.closed and r.unguarded == [] and r.leaks["features"] == []
    assert set(r.guarded) == entries
    # the same by position alone (no `road` field), within the default 30 m tolerance
    by_pos = [
        CheckpointPos(c.checkpoint_id, c.lon, c.lat) for c in CheckpointPos.from_records(city.checkpoints)
    ]
    assert enclosure(city.city_polygon(), RoadGraph.from_roads(city.roads_geojson()), by_pos).closed


def test_removing_one_checkpoint_opens_a_leak_through_that_entry(city) -> None:
    cps = CheckpointPos.from_records(city.checkpoints)
    gone = cps[3]
    r = enclosure(city.city_polygon(), graph_of(city), [c for c in cps if c is not gone])
    assert not r.closed
    assert r.unguarded == [gone.road]
    (leak,) = r.leaks["features"]
    assert leak["properties"]["entry_road"] == gone.road
    assert leak["properties"]["edges"][0] == gone.road
    area = shape(city.city_polygon())
    path = shape(leak["geometry"])
    assert path.geom_type == "LineString" and path.is_valid
    coords = list(path.coords)
    assert not area.contains(Point(coords[0])) and area.contains(Point(coords[-1]))
    assert path.crosses(area.boundary)
    # the leak crosses the boundary on the unguarded road, near its checkpoint's place
    crossing = path.intersection(area.boundary)
    assert crossing.distance(Point(gone.lon, gone.lat)) < 0.001  # degrees: ~100 m
    assert leak["properties"]["length_m"] > 0


def test_checkpoint_beyond_tolerance_does_not_guard(city) -> None:
    cps = [CheckpointPos(c.checkpoint_id, c.lon, c.lat) for c in CheckpointPos.from_records(city.checkpoints)]
    moved = CheckpointPos(cps[0].checkpoint_id, cps[0].lon + 0.002, cps[0].lat + 0.002)  # ~280 m away
    r = enclosure(city.city_polygon(), graph_of(city), [moved, *cps[1:]])
    assert not r.closed and len(r.unguarded) == 1
    assert enclosure(city.city_polygon(), graph_of(city), [moved, *cps[1:]], tolerance_m=400).closed


def test_hand_made_graph() -> None:
    # a square area around 0..1 km; two roads come in from the west and east; one guarded
    lon0, lat0, d = 114.0, 22.5, 0.01
    node_lon = np.array([lon0, lon0 + d, lon0 + 2 * d, lon0 - d, lon0 + 3 * d])
    node_lat = np.full(5, lat0)
    g = RoadGraph(node_lon, node_lat, np.array([3, 0, 1, 2]), np.array([0, 1, 2, 4]), ("w", "a", "b", "e"))
    area = {
        "type": "Polygon",
        "coordinates": [
            [
                [lon0 - 0.005, lat0 - 0.005],
                [lon0 + 2.005 * d, lat0 - 0.005],
                [lon0 + 2.005 * d, lat0 + 0.005],
                [lon0 - 0.005, lat0 + 0.005],
                [lon0 - 0.005, lat0 - 0.005],
            ]
        ],
    }
    r = enclosure(area, g, [CheckpointPos("cp", lon0 - 0.002, lat0)])
    assert r.entry_roads == ["w", "e"] and r.guarded == {"w": ["cp"]} and r.unguarded == ["e"]
    (leak,) = r.leaks["features"]
    assert leak["properties"]["edges"] == ["e", "b"]  # from outside over "e" to the node nearest the centre
    assert enclosure(
        area, g, [CheckpointPos("cp", lon0 - 0.002, lat0), CheckpointPos("x", 0, 0, road="e")]
    ).closed
    with pytest.raises(CoverageInputError):
        enclosure({"type": "Point", "coordinates": [lon0, lat0]}, g, [])
    with pytest.raises(CoverageInputError):
        RoadGraph(node_lon, node_lat, np.array([0]), np.array([9]), ("bad",))
