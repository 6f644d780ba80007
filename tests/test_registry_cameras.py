"""The camera registry through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import auth
from tianwang.context import AppContext
from tianwang.storage.models import Camera

CAM_ID = "44030500001320000001"  # Shenzhen Futian, road, IP camera (132)


def body(**over: Any) -> dict[str, Any]:
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
        "onvif": {"host": "10.1.2.3", "port": 80, "username": "admin", "password": "s3cret-pass"},
    }
    b.update(over)
    return b


def test_create_get_and_password_never_returned(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    r = client.post("/api/v1/cameras", json=body(), headers=auth(tokens["installer"]))
    assert r.status_code == 201, r.text
    cam = r.json()
    assert cam["status"] == "registered"
    assert cam["division"] == "440305" and cam["area_code"] == "440305"
    assert cam["onvif"] == {
        "host": "10.1.2.3",
        "port": 80,
        "username": "admin",
        "has_password": True,
        "trust_device_addresses": False,
    }
    assert "s3cret-pass" not in r.text
    assert cam["direction_type"] == 1  # heading 90° → east
    got = client.get(f"/api/v1/cameras/{CAM_ID}", headers=auth(tokens["staff"]))
    assert got.status_code == 200 and "s3cret-pass" not in got.text
    with ctx.db.session() as s:
        row = s.scalar(select(Camera).where(Camera.device_id == CAM_ID))
        assert row is not None and row.onvif_password_enc is not None
        assert b"s3cret-pass" not in row.onvif_password_enc
        assert ctx.box.decrypt(row.onvif_password_enc) == "s3cret-pass"


def test_duplicate_is_409(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["installer"])
    assert client.post("/api/v1/cameras", json=body(), headers=h).status_code == 201
    r = client.post("/api/v1/cameras", json=body(name="again"), headers=h)
    assert r.status_code == 409
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["status"] == 409


def test_validation_lists_each_field_as_problem_json(client: TestClient, tokens: dict[str, str]) -> None:
    bad = body(lon=200, heading_deg=-1, hfov_deg=0, range_m=0, point_class=4)
    r = client.post("/api/v1/cameras", json=bad, headers=auth(tokens["installer"]))
    assert r.status_code == 422
    p = r.json()
    assert p["type"] and p["title"] and p["status"] == 422
    fields = {e["field"] for e in p["errors"]}
    assert {"lon", "heading_deg", "hfov_deg", "range_m", "point_class"} <= fields
    assert "s3cret-pass" not in r.text


def test_device_id_type_must_fit_kind(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["installer"])
    r = client.post("/api/v1/cameras", json=body(kind="checkpoint"), headers=h)
    assert r.status_code == 422 and "121" in r.text
    r = client.post("/api/v1/cameras", json=body(device_id="4403050000132000001"), headers=h)
    assert r.status_code == 422 and "20 digits" in r.text
    r = client.post("/api/v1/cameras", json=body(device_id="99030500001320000001"), headers=h)
    assert r.status_code == 422 and "province" in r.text
    ok = body(device_id="44030500001210000009", kind="checkpoint")
    assert client.post("/api/v1/cameras", json=ok, headers=h).status_code == 201


def test_patch_keeps_password_and_revalidates(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    h = auth(tokens["installer"])
    client.post("/api/v1/cameras", json=body(), headers=h)
    r = client.patch(
        f"/api/v1/cameras/{CAM_ID}", json={"heading_deg": 180, "lifecycle": "under_repair"}, headers=h
    )
    assert r.status_code == 200, r.text
    assert r.json()["heading_deg"] == 180 and r.json()["lifecycle"] == "under_repair"
    # same address, new user name: the stored password stays
    r = client.patch(
        f"/api/v1/cameras/{CAM_ID}", json={"onvif": {"host": "10.1.2.3", "username": "ops"}}, headers=h
    )
    assert r.status_code == 200 and r.json()["onvif"]["has_password"] is True
    # a new address without the password: refused, so the stored one never follows to a new host
    for moved in (
        {"onvif": {"host": "10.9.9.9", "username": "ops"}},
        {"snapshot_url": "http://10.9.9.9/s.jpg"},
    ):
        r = client.patch(f"/api/v1/cameras/{CAM_ID}", json=moved, headers=h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "onvif.password", r.text
    assert client.get(f"/api/v1/cameras/{CAM_ID}", headers=h).json()["onvif"]["host"] == "10.1.2.3"
    assert (
        client.patch(f"/api/v1/cameras/{CAM_ID}", json={"kind": "checkpoint"}, headers=h).status_code == 422
    )
    assert client.patch(f"/api/v1/cameras/{CAM_ID}", json={"device_id": "x"}, headers=h).status_code == 422
    with ctx.db.session() as s:
        row = s.scalar(select(Camera).where(Camera.device_id == CAM_ID))
        assert row is not None and row.kind == "bullet" and row.onvif_password_enc is not None
        assert ctx.box.decrypt(row.onvif_password_enc) == "s3cret-pass"


def test_list_filter_paginate_delete(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["staff"])
    for i in range(5):
        area = "440305" if i % 2 else "440304"
        r = client.post(
            "/api/v1/cameras",
            json=body(device_id=f"{area}00001320{i:06d}", kind="dome" if i < 3 else "bullet"),
            headers=h,
        )
        assert r.status_code == 201, r.text
    page = client.get("/api/v1/cameras?limit=2", headers=h).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    seen = [c["device_id"] for c in page["items"]]
    while page["next_cursor"]:
        page = client.get(f"/api/v1/cameras?limit=2&cursor={page['next_cursor']}", headers=h).json()
        seen += [c["device_id"] for c in page["items"]]
    assert len(seen) == len(set(seen)) == 5
    assert len(client.get("/api/v1/cameras?area_code=440305", headers=h).json()["items"]) == 2
    assert len(client.get("/api/v1/cameras?kind=dome", headers=h).json()["items"]) == 3
    assert client.get("/api/v1/cameras?limit=1001", headers=h).status_code == 422
    assert client.get("/api/v1/cameras?cursor=garbage!", headers=h).status_code == 422
    victim = seen[0]
    assert client.delete(f"/api/v1/cameras/{victim}", headers=h).status_code == 204
    assert client.get(f"/api/v1/cameras/{victim}", headers=h).status_code == 404


def test_unauthenticated_and_wrong_role(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.post("/api/v1/cameras", json=body())
    assert r.status_code == 401 and r.json()["status"] == 401
    assert client.post("/api/v1/cameras", json=body(), headers=auth("tw_notatoken")).status_code == 401
    assert (
        client.post("/api/v1/cameras", json=body(), headers=auth(tokens["investigator"])).status_code == 403
    )
    assert client.get("/healthz").status_code == 200


def test_nul_and_control_characters_are_refused(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["installer"])
    r = client.post("/api/v1/cameras", json=body(name="bad\u0000name"), headers=h)
    assert r.status_code == 422, r.text
    r = client.post("/api/v1/cameras", json=body(address="a\x07b"), headers=h)
    assert r.status_code == 422, r.text
    assert client.get(f"/api/v1/cameras/{CAM_ID}", headers=h).status_code == 404
