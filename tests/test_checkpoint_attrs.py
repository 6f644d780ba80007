"""Checkpoints as GA/T 1400 describes them: type (卡口类型), use (卡口用途) and lanes."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.sightings_support import CP1, CP2, CP3, base_time, pass_item, seed
from tianwang.analyses import clones, entries
from tianwang.analyses.clones import CloneParams, PassColumns, find_clones
from tianwang.checkpoints import codes
from tianwang.context import AppContext
from tianwang.records import ingest as records

KK = "44030500001210000001"

# 卡口类型 / 卡口用途 / CityPass as 648540858/wvp-GB28181-pro src/main/resources/gb_dict.json
# (tollgateCatType, tollgateUsageType) and OverwindSlash/CargoX .../Entities/Tollgates/Tollgate.cs,
# .../Entities/Lanes/Lane.cs (CityPass) list them.
TOLLGATE_TYPE = {
    "10": "国际",
    "20": "省际",
    "30": "市际",
    "31": "市区",
    "40": "县际",
    "41": "县区",
    "99": "其他",
}
TOLLGATE_USE = {"80": "治安卡口", "81": "交通卡口", "82": "其他"}
CITY_PASS = {1: "进城", 2: "出城", 3: "非进出城", 4: "进出城混合"}


def test_checkpoint_code_tables() -> None:
    assert codes.TOLLGATE_TYPES == TOLLGATE_TYPE
    assert codes.TOLLGATE_USES == TOLLGATE_USE
    assert codes.CITY_PASS == CITY_PASS
    # the lanes vehicles enter the city by: 进城 and 进出城混合
    assert {c for c, name in CITY_PASS.items() if name.startswith("进")} == codes.CITY_ENTRY


def _body(**kw: Any) -> dict[str, Any]:
    return {
        "checkpoint_id": KK,
        "name": "南山大道入城卡口",
        "lon": 113.93,
        "lat": 22.52,
        "direction_deg": 90,
        "lanes": 3,
        **kw,
    }


def test_checkpoint_type_use_and_lanes(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["staff"])
    lanes = [
        {"lane_no": 2, "direction": 1, "city_pass": 1, "speed_limit_kmh": 60},
        {"lane_no": 1, "direction": "1", "city_pass": 1, "speed_limit_kmh": 80},
        {"lane_no": 3, "direction": "2", "city_pass": 2},
    ]
    r = client.post(
        "/api/v1/checkpoints", json=_body(tollgate_type=30, tollgate_use="81", lane_list=lanes), headers=h
    )
    assert r.status_code == 201, r.text
    got = r.json()
    assert (got["tollgate_type"], got["tollgate_use"]) == ("30", "81")
    assert got["lane_list"] == [
        {"lane_no": 1, "direction": "1", "city_pass": 1, "speed_limit_kmh": 80},
        {"lane_no": 2, "direction": "1", "city_pass": 1, "speed_limit_kmh": 60},
        {"lane_no": 3, "direction": "2", "city_pass": 2, "speed_limit_kmh": None},
    ]
    assert client.get(f"/api/v1/checkpoints/{KK}", headers=h).json()["lane_list"] == got["lane_list"]

    # a patch without lane_list keeps the lanes; fewer lanes than a lane's number is refused
    r = client.patch(f"/api/v1/checkpoints/{KK}", json={"tollgate_use": 80}, headers=h)
    assert r.status_code == 200 and r.json()["tollgate_use"] == "80" and len(r.json()["lane_list"]) == 3
    r = client.patch(f"/api/v1/checkpoints/{KK}", json={"lanes": 2}, headers=h)
    assert r.status_code == 422 and "lane 3" in r.text
    r = client.patch(f"/api/v1/checkpoints/{KK}", json={"lanes": 2, "lane_list": lanes[:2]}, headers=h)
    assert r.status_code == 200 and [x["lane_no"] for x in r.json()["lane_list"]] == [1, 2]
    r = client.patch(f"/api/v1/checkpoints/{KK}", json={"lane_list": []}, headers=h)
    assert r.status_code == 200 and r.json()["lane_list"] == []

    # deleting the checkpoint deletes its lanes: registering it again starts without them
    client.patch(f"/api/v1/checkpoints/{KK}", json={"lane_list": lanes[:1]}, headers=h)
    assert client.delete(f"/api/v1/checkpoints/{KK}", headers=h).status_code == 204
    r = client.post("/api/v1/checkpoints", json=_body(), headers=h)
    assert r.status_code == 201 and r.json()["lane_list"] == [] and r.json()["tollgate_type"] is None


def test_checkpoint_attrs_refused_with_the_field_named(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["staff"])
    bad: list[tuple[dict[str, Any], str]] = [
        ({"tollgate_type": "32"}, "tollgate_type"),
        ({"tollgate_type": True}, "tollgate_type"),
        ({"tollgate_use": "83"}, "tollgate_use"),
        ({"lane_list": [{"lane_no": 1, "direction": "0"}]}, "direction"),
        ({"lane_list": [{"lane_no": 1, "city_pass": 5}]}, "city_pass"),
        ({"lane_list": [{"lane_no": 0}]}, "lane_no"),
        ({"lane_list": [{"lane_no": 1, "speed_limit_kmh": 500}]}, "speed_limit_kmh"),
        ({"lane_list": [{"lane_no": 1}, {"lane_no": 1}]}, "twice"),
        ({"lane_list": [{"lane_no": 4}]}, "beyond"),
        ({"lane_list": [{"lane_no": 1, "lanes": 2}]}, "lanes"),
    ]
    for extra, word in bad:
        r = client.post("/api/v1/checkpoints", json=_body(**extra), headers=h)
        assert r.status_code == 422, (extra, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert word in r.text, (extra, r.text)
    assert client.get(f"/api/v1/checkpoints/{KK}", headers=h).status_code == 404


def test_first_entry_uses_the_entry_lanes(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    """With CityPass on the lanes, the entry checkpoints and the entry passes come from the lanes:
    no city area is needed, and a pass on an outbound lane of an entry checkpoint is no entry."""
    seed(ctx)  # CP1, CP2, CP3 with 4 lanes each, and no city area
    h = auth(tokens["staff"])
    declared = {
        CP1: [{"lane_no": 1, "city_pass": 1}, {"lane_no": 2, "city_pass": 1}, {"lane_no": 3, "city_pass": 2}],
        CP2: [{"lane_no": n, "city_pass": 3} for n in (1, 2, 3, 4)],
        CP3: [{"lane_no": 1, "city_pass": 4}, {"lane_no": 2, "direction": "2"}],  # lane 2: no CityPass
    }
    for cp, lane_list in declared.items():
        assert (
            client.patch(f"/api/v1/checkpoints/{cp}", json={"lane_list": lane_list}, headers=h).status_code
            == 200
        )
    with ctx.db.session() as s:
        assert entries.entry_lanes(s) == {CP1: [1, 2], CP2: [], CP3: [1]}
        assert entries.entry_checkpoints(s) == ([CP1, CP3], None)
    t = base_time()
    at = [
        ("粤B00001", CP1, 3),  # out of the city
        ("粤B00002", CP1, 1),  # in
        ("粤B00003", CP1, None),  # lane not known: may be in
        ("粤B00004", CP2, 1),  # not an entry checkpoint
        ("粤B00005", CP3, 2),  # a lane that does not lead in
        ("粤B00006", CP3, 1),  # in (mixed lane)
    ]
    items = [
        pass_item(f"lane-entry-{n:03d}", p, t + dt.timedelta(minutes=n), cp, lane=lane)
        for n, (p, cp, lane) in enumerate(at)
    ]
    with ctx.db.session() as s:
        assert records.ingest_passes(s, items).reply.accepted == len(items)
    q = {
        "case_no": "A4403052026120001",
        "from": (t - dt.timedelta(hours=1)).isoformat(),
        "to": (t + dt.timedelta(hours=1)).isoformat(),
    }
    r = client.get("/api/v1/analysis/first-entry", params=q, headers=auth(tokens["investigator"]))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["plate_no"] for i in body["items"]] == ["粤B00002", "粤B00003", "粤B00006"]
    assert body["params"]["entry_checkpoints"] == {
        "source": "registry",
        "area_code": None,
        "count": 2,
        "ids": [CP1, CP3],
        "by_lanes": 2,
    }
    # checkpoints named by the caller: their lanes still decide which passes are entries
    r = client.get(
        "/api/v1/analysis/first-entry",
        params={**q, "entry_checkpoint_ids": f"{CP1},{CP2}"},
        headers=auth(tokens["investigator"]),
    )
    assert [i["plate_no"] for i in r.json()["items"]] == ["粤B00002", "粤B00003"]  # CP2: no lane leads in


def test_cloned_plates_use_the_lanes_speed_limits() -> None:
    """Two sites 10 km apart driven back and forth at 100 km/h: within the default 150 km/h, but a
    contradiction where both sites' lanes are limited to 40 km/h (twice that: 80 km/h at most)."""
    lon = np.array([114.0, 114.0973])  # 10 km apart on 22.5° N
    lat = np.full(2, 22.5)
    d = float(clones.haversine_m(lon[:1], lat[:1], lon[1:], lat[1:])[0])
    leg = d / (100 / 3.6)
    rows = [(0, k * leg, k % 2) for k in range(5)]
    p = PassColumns(
        plate=np.array([r[0] for r in rows], np.int64),
        ts=np.array([r[1] for r in rows], float),
        cp=np.array([r[2] for r in rows], np.int64),
    )
    params = CloneParams(detour=1.0, trip_factor=0)
    assert len(find_clones(p, lon, lat, params).pair) == 0
    both = np.array([40.0, 40.0])
    found = find_clones(p, lon, lat, params, limit_kmh=both)
    assert found.pair.tolist() == [0, 1, 2, 3] and found.flagged.tolist() == [True]
    assert (
        len(find_clones(p, lon, lat, params, limit_kmh=np.array([40.0, np.nan])).pair) == 0
    )  # one side unknown
    assert (
        len(find_clones(p, lon, lat, params, limit_kmh=np.array([40.0, 60.0])).pair) == 0
    )  # 120 km/h allowed
    assert (
        len(
            find_clones(
                p, lon, lat, CloneParams(detour=1.0, trip_factor=0, limit_factor=3), limit_kmh=both
            ).pair
        )
        == 0
    )
    top = clones.top_speed_kmh(np.array([0, 0]), np.array([1, 1]), CloneParams(max_speed_kmh=70), both)
    assert top.tolist() == [70.0, 70.0]  # never above max_speed_kmh


def test_cloned_plates_read_the_lane_limits_from_the_registry(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    h = auth(tokens["staff"])
    lanes = [{"lane_no": 1, "speed_limit_kmh": 40}, {"lane_no": 2, "speed_limit_kmh": 60}, {"lane_no": 3}]
    assert client.patch(f"/api/v1/checkpoints/{CP2}", json={"lane_list": lanes}, headers=h).status_code == 200
    with ctx.db.session() as s:
        sites = clones.Sites.load(s)
    assert sites.limit_kmh is not None
    got = dict(zip(sites.ids, sites.limit_kmh.tolist(), strict=True))
    assert got[CP2] == 60.0 and np.isnan(got[CP1]) and np.isnan(got[CP3])  # the highest lane limit
