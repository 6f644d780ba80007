"""Ingest of passes, faces, phones and GA/T 1400 MotorVehicles: item-level validation, idempotency."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import auth
from tests.sightings_support import CP1, CP2, FACE_CAMERA, base_time, pass_item, seed, viid_object
from tianwang.context import AppContext
from tianwang.storage.models import FaceSighting, Pass, PhoneSighting
from tianwang.trajectories import records


def test_passes_native_batch(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    seed(ctx)
    t = base_time()
    h = auth(tokens["agent"])
    items = [
        pass_item("k-0000001", "粤b·12345", t),
        pass_item("k-0000002", "粤Ｂ１２３４６", t + dt.timedelta(minutes=1), CP2, plate_color="蓝"),
        pass_item("k-0000003", "XX12345", t),  # no such province
        pass_item("k-0000004", "粤B12345", t, "44030500001219999999"),  # checkpoint not registered
        {"key": "k-0000005", "checkpoint_id": CP1},  # fields missing
        pass_item("k-0000006", "粤B12345", t.replace(tzinfo=None)),  # no offset
        pass_item("k-0000007", "粤B12345", t, plate_color="mauve"),
    ]
    r = client.post("/api/v1/ingest/passes", json={"items": items}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    why = {x["index"]: " ".join(x["errors"]) for x in body["rejected"]}
    assert sorted(why) == [2, 3, 4, 5, 6]
    assert "province" in why[2]
    assert "44030500001219999999 is not registered" in why[3]
    assert "ts" in why[4] and "plate_no" in why[4]
    assert "UTC offset" in why[5]
    assert "unknown colour" in why[6]
    assert body["rejected"][0]["key"] == "k-0000003"

    # replay: all duplicates, nothing stored twice
    r = client.post("/api/v1/ingest/passes", json={"items": items[:2]}, headers=h)
    assert (r.json()["accepted"], r.json()["duplicates"]) == (0, 2)
    with ctx.db.session() as s:
        rows = s.scalars(select(Pass).order_by(Pass.ts)).all()
    assert [(p.plate_no, p.plate_color, p.lane) for p in rows] == [("粤B12345", "5", 2), ("粤B12346", "5", 2)]
    assert rows[0].ts == t


def test_passes_need_the_agent_role(client: TestClient, tokens: dict[str, str]) -> None:
    r = client.post("/api/v1/ingest/passes", json={"items": []}, headers=auth(tokens["admin"]))
    assert r.status_code == 403


def test_faces_and_phones(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    seed(ctx)
    t = base_time()
    h = auth(tokens["agent"])
    faces = [
        {
            "key": "f-0000001",
            "camera_id": FACE_CAMERA,
            "ts": t.isoformat(),
            "person_id": "P-77",
            "confidence": 0.93,
        },
        {
            "key": "f-0000002",
            "camera_id": "44030500001329999999",
            "ts": t.isoformat(),
            "person_id": "P-77",
            "confidence": 0.9,
        },
        {
            "key": "f-0000003",
            "camera_id": FACE_CAMERA,
            "ts": t.isoformat(),
            "person_id": "P-77",
            "confidence": 1.7,
        },
    ]
    r = client.post("/api/v1/ingest/faces", json={"items": faces}, headers=h).json()
    assert r["accepted"] == 1
    assert {x["index"]: x["errors"][0] for x in r["rejected"]}[1].startswith("camera_id: camera")
    assert "confidence" in r["rejected"][1]["errors"][0]
    assert client.post("/api/v1/ingest/faces", json={"items": faces[:1]}, headers=h).json()["duplicates"] == 1

    phones = [
        {
            "key": "p-0000001",
            "fence_id": "F-NS-01",
            "ts": t.isoformat(),
            "imsi": "460001234567890",
            "mac": "aa:bb:cc:dd:ee:ff",
            "rssi": -71,
        },
        {"key": "p-0000002", "fence_id": "F-NOPE", "ts": t.isoformat(), "imsi": "460001234567890"},
        {"key": "p-0000003", "fence_id": "F-NS-01", "ts": t.isoformat(), "imsi": "46000abc"},
        {
            "key": "p-0000004",
            "fence_id": "F-NS-01",
            "ts": (t + dt.timedelta(days=3)).isoformat(),
            "imsi": "460001234567890",
        },
    ]
    r = client.post("/api/v1/ingest/phones", json={"items": phones}, headers=h).json()
    assert r["accepted"] == 1
    why = {x["index"]: " ".join(x["errors"]) for x in r["rejected"]}
    assert "fence F-NOPE is not registered" in why[1]
    assert "imsi" in why[2]
    assert "future" in why[3]
    with ctx.db.session() as s:
        assert s.scalars(select(PhoneSighting.mac)).all() == ["AA:BB:CC:DD:EE:FF"]
        assert s.scalars(select(FaceSighting.person_id)).all() == ["P-77"]


def test_large_batch_takes_the_copy_path_and_stays_idempotent(ctx: AppContext) -> None:
    """Above the threshold PostgreSQL uses COPY + staging; SQLite the plain insert — same answers."""
    seed(ctx)
    t = base_time()
    items = [
        pass_item(f"bulk-{i:06d}", f"粤B{i % 90000 + 10000:05d}", t + dt.timedelta(seconds=i), CP1)
        for i in range(1200)
    ]
    items.append(items[5])  # the same key twice in one batch
    with ctx.db.session() as s:
        out = records.ingest_passes(s, items, copy_threshold=1000)
    assert (out.reply.accepted, out.reply.duplicates, out.reply.rejected) == (1200, 1, [])
    with ctx.db.session() as s:
        out = records.ingest_passes(
            s, [*items[:1100], pass_item("bulk-new0001", "粤B99999", t, CP1)], copy_threshold=1000
        )
    assert (out.reply.accepted, out.reply.duplicates) == (1, 1100)
    with ctx.db.session() as s:
        assert len(s.scalars(select(Pass.key)).all()) == 1201


def test_viid_motor_vehicles(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    seed(ctx)
    h = {**auth(tokens["agent"]), "Content-Type": "application/VIID+JSON"}
    local = (dt.datetime.now(dt.timezone(dt.timedelta(hours=8))) - dt.timedelta(hours=2)).replace(
        microsecond=0
    )
    stamp = local.strftime("%Y%m%d%H%M%S")
    objs = [
        viid_object("650100000011900000010220261122120000000010000001", "粤B54321", stamp),
        viid_object("650100000011900000010220261122120000000010000002", "粤B5432", stamp),  # bad plate
        viid_object("650100000011900000010220261122120000000010000003", "粤B54322", "2026-11-22"),
        viid_object(
            "650100000011900000010220261122120000000010000004",
            "粤B54323",
            stamp,
            tollgate="44030500001219999999",
        ),
        {"PlateNo": "粤B54324"},
    ]
    import json

    r = client.post(
        "/VIID/MotorVehicles",
        content=json.dumps({"MotorVehicleListObject": {"MotorVehicleObject": objs}}),
        headers=h,
    )
    assert r.status_code == 200, r.text
    st = r.json()["ResponseStatusListObject"]["ResponseStatusObject"]
    assert len(st) == 5
    assert [s["StatusCode"] for s in st] == [0, 8, 8, 8, 8]
    assert st[0]["Id"] == objs[0]["MotorVehicleID"] and st[0]["RequestURL"] == "/VIID/MotorVehicles"
    assert len(st[0]["LocalTime"]) == 14 and st[0]["LocalTime"].isdigit()
    assert "plate_no" in st[1]["StatusString"]
    assert "PassTime" in st[2]["StatusString"]
    assert "not registered" in st[3]["StatusString"]
    assert "MotorVehicleID" in st[4]["StatusString"]
    with ctx.db.session() as s:
        p = s.scalars(select(Pass)).one()
    # PassTime is local time (+08:00): stored as the same instant in UTC
    assert p.ts == local.astimezone(dt.UTC)
    assert p.ts.hour == (local.hour - 8) % 24
    assert (p.plate_color, p.vehicle_color, p.speed_kmh, p.direction_deg, p.lane) == ("5", "2", 61.0, 90.0, 1)
    assert (p.device_id, p.image_key) == ("44030500001320000001", "http://10.0.0.9/pic/1.jpg")

    # resend: idempotent on MotorVehicleID, still answered OK
    r = client.post(
        "/VIID/MotorVehicles",
        json={"MotorVehicleListObject": {"MotorVehicleObject": objs[:1]}},
        headers=auth(tokens["agent"]),
    )
    assert r.json()["ResponseStatusListObject"]["ResponseStatusObject"][0]["StatusCode"] == 0
    with ctx.db.session() as s:
        assert len(s.scalars(select(Pass.key)).all()) == 1


def test_viid_malformed_bodies(client: TestClient, tokens: dict[str, str]) -> None:
    h = auth(tokens["agent"])
    r = client.post("/VIID/MotorVehicles", content=b"{not json", headers=h)
    assert r.status_code == 400
    assert r.json()["ResponseStatusListObject"]["ResponseStatusObject"][0]["StatusCode"] == 7
    r = client.post("/VIID/MotorVehicles", json={"Something": 1}, headers=h)
    assert r.status_code == 400
    assert r.json()["ResponseStatusListObject"]["ResponseStatusObject"][0]["StatusCode"] == 8
    assert (
        client.post("/VIID/MotorVehicles", json={}, headers=auth(tokens["investigator"])).status_code == 403
    )
