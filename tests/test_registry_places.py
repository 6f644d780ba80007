"""Checkpoints, areas, key sites, roads and fences through the API, on both databases."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth

KK = "44030500001210000001"  # a video checkpoint (121)


def square(x: float, y: float, d: float = 0.01) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + d, y], [x + d, y + d], [x, y + d], [x, y]]]}


def cam(device_id: str) -> dict[str, Any]:
    return {
        "device_id": device_id,
        "name": "卡口相机",
        "kind": "checkpoint",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 0,
        "hfov_deg": 30,
        "range_m": 40,
        "point_class": 1,
    }


def test_checkpoint_with_cameras(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["installer"])
    for i in (2, 3):
        assert (
            client.post("/api/v1/cameras", json=cam(f"4403050000121000000{i}"), headers=h).status_code == 201
        )
    body = {
        "checkpoint_id": KK,
        "name": "深南大道卡口",
        "lon": 114.06,
        "lat": 22.54,
        "direction_deg": 270,
        "lanes": 4,
        "road": "深南大道",
        "camera_ids": ["44030500001210000002", "44030500001210000003"],
        "onvif": {"host": "127.0.0.1", "port": 8080, "username": "u", "password": "kk-secret"},
    }
    r = client.post("/api/v1/checkpoints", json=body, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["camera_ids"] == body["camera_ids"] and "kk-secret" not in r.text
    assert client.post("/api/v1/checkpoints", json=body, headers=h).status_code == 409
    r = client.patch(
        f"/api/v1/checkpoints/{KK}", json={"lanes": 6, "camera_ids": [body["camera_ids"][0]]}, headers=h
    )
    assert r.status_code == 200 and r.json()["lanes"] == 6 and len(r.json()["camera_ids"]) == 1
    assert r.json()["onvif"]["has_password"] is True
    bad = client.patch(f"/api/v1/checkpoints/{KK}", json={"camera_ids": ["44030500001320099999"]}, headers=h)
    assert bad.status_code == 422 and "not registered" in bad.text
    assert (
        client.get(f"/api/v1/checkpoints/{KK}", headers=h).json()["lanes"] == 6
    )  # unchanged by the bad patch
    wrong_type = dict(body, checkpoint_id="44030500001320000001", camera_ids=[])
    assert client.post("/api/v1/checkpoints", json=wrong_type, headers=h).status_code == 422
    assert client.delete(f"/api/v1/checkpoints/{KK}", headers=h).status_code == 204
    assert client.get("/api/v1/cameras/44030500001210000002", headers=h).json()["checkpoint_id"] is None


def test_areas_tree_and_geometry_validation(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["staff"])
    city = {"code": "4403", "name": "深圳市", "kind": "city", "geometry": square(113.8, 22.4, 0.5)}
    assert client.post("/api/v1/areas", json=city, headers=h).status_code == 201
    assert client.post("/api/v1/areas", json=city, headers=h).status_code == 200  # upsert
    dist = {
        "code": "440305",
        "name": "南山区",
        "kind": "district",
        "parent": "4403",
        "geometry": square(113.9, 22.5),
    }
    assert client.post("/api/v1/areas", json=dist, headers=h).status_code == 201
    orphan = dict(dist, code="440399", parent="9999")
    r = client.post("/api/v1/areas", json=orphan, headers=h)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "parent"
    bowtie = {"type": "Polygon", "coordinates": [[[0.1, 0.1], [1, 1], [1, 0.1], [0.1, 1], [0.1, 0.1]]]}
    r = client.post("/api/v1/areas", json=dict(dist, code="440306", geometry=bowtie), headers=h)
    assert r.status_code == 422 and "valid" in r.text
    latlon_swapped = square(22.5, 113.9)
    r = client.post("/api/v1/areas", json=dict(dist, code="440307", geometry=latlon_swapped), headers=h)
    assert r.status_code == 422 and "lon" in r.text
    kids = client.get("/api/v1/areas?parent=4403", headers=h).json()["items"]
    assert [a["code"] for a in kids] == ["440305"]
    assert client.delete("/api/v1/areas/4403", headers=h).status_code == 409
    assert client.delete("/api/v1/areas/440305", headers=h).status_code == 204
    assert client.delete("/api/v1/areas/4403", headers=h).status_code == 204


def test_roads_import_reports_bad_features(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["staff"])
    fc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "r1",
                "properties": {"road_class": "primary", "name": "深南大道"},
                "geometry": {"type": "LineString", "coordinates": [[114.0, 22.5], [114.01, 22.5]]},
            },
            {
                "type": "Feature",
                "properties": {"id": "r2", "road_class": "nonsense"},
                "geometry": {"type": "LineString", "coordinates": [[114.0, 22.5], [114.0, 22.51]]},
            },
            {
                "type": "Feature",
                "properties": {"id": "r3", "road_class": "service"},
                "geometry": {"type": "Point"},
            },
            {"type": "Feature", "id": "r1", "properties": {"road_class": "primary"}, "geometry": None},
        ],
    }
    r = client.post("/api/v1/roads", json=fc, headers=h)
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["created"] == 1 and rep["updated"] == 0
    assert [x["index"] for x in rep["rejected"]] == [1, 2, 3]
    roads = client.get("/api/v1/roads", headers=h).json()
    assert roads["type"] == "FeatureCollection" and len(roads["features"]) == 1
    # 0.01° of longitude at 22.5°N is about 1028 m
    assert 1000 < roads["features"][0]["properties"]["length_m"] < 1060
    assert client.post("/api/v1/roads", json={"type": "Nope"}, headers=h).status_code == 422


def test_key_sites_and_fences(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["staff"])
    site = {
        "id": "school-1",
        "name": "实验小学",
        "category": "school",
        "geometry": square(114.05, 22.54, 0.002),
    }
    assert client.post("/api/v1/key-sites", json=site, headers=h).status_code == 201
    assert client.get("/api/v1/key-sites?category=school", headers=h).json()["items"][0]["id"] == "school-1"
    fence = {"fence_id": "F001", "name": "车站围栏", "lon": 114.1, "lat": 22.53, "radius_m": 150}
    assert client.post("/api/v1/fences", json=fence, headers=h).status_code == 201
    assert client.post("/api/v1/fences", json=dict(fence, radius_m=-1), headers=h).status_code == 422
    assert (
        client.get("/api/v1/fences", headers=auth(tokens["investigator"])).json()["items"][0]["radius_m"]
        == 150
    )
    assert client.delete("/api/v1/fences/F001", headers=h).status_code == 204
    assert client.delete("/api/v1/fences/F001", headers=h).status_code == 404


def test_malformed_bodies_are_problems_not_500(client: TestClient, tokens: dict[str, str]) -> None:
    h = {**auth(tokens["staff"]), "Content-Type": "application/json"}
    for path in (
        "/api/v1/cameras",
        "/api/v1/checkpoints",
        "/api/v1/areas",
        "/api/v1/roads",
        "/api/v1/fences",
    ):
        for raw in (b"{not json", b"[]", b"null", b'{"geometry": 5}', '{"name": "\u0000"}'.encode()):
            r = client.post(path, content=raw, headers=h)
            assert 400 <= r.status_code < 500, (path, raw, r.status_code, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
    r = client.get("/api/v1/nowhere", headers=h)
    assert r.status_code == 404 and r.json()["status"] == 404


def test_oversized_bodies_are_refused_before_authentication(
    client: TestClient, tokens: dict[str, str]
) -> None:
    huge = b'{"items": [' + b'{"key": "x"},' * 2_000_000 + b"{}]}"  # ~26 MB, over the 16 MiB default
    r = client.post("/api/v1/ingest/health", content=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["status"] == 413

    # without a length header (chunked), counted as it arrives
    def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * (1024 * 1024)

    r = client.post(
        "/api/v1/fences",
        content=chunks(),
        headers={**auth(tokens["staff"]), "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    # without a token, a small body is refused as unauthenticated
    r = client.post("/api/v1/fences", json={"fence_id": "F"})
    assert r.status_code in (401, 422)
