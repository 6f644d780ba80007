"""Ingest of passes, faces, phones and GA/T 1400 MotorVehicles: item-level validation, idempotency."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import auth
from tests.sightings_support import CP1, CP2, FACE_CAMERA, base_time, pass_item, seed, viid_object
from tianwang import record_time
from tianwang.checkpoints import viid
from tianwang.context import AppContext
from tianwang.protocol.sightings import EXTRA_WARNINGS
from tianwang.records import ingest as records
from tianwang.records import partitions
from tianwang.storage.models import FaceSighting, Pass, PhoneSighting


def test_passes_native_batch(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    seed(ctx)
    t = base_time()
    h = auth(tokens["agent"])
    days = records.retention(None)  # what the API enforces: the configured pass_retention_days
    no_plate = pass_item("k-0000008", "", t + dt.timedelta(minutes=3))
    del no_plate["plate_no"]
    items = [
        pass_item("k-0000001", "粤b·12345", t),
        pass_item("k-0000002", "粤Ｂ１２３４６", t + dt.timedelta(minutes=1), CP2, plate_color="蓝"),
        pass_item("k-0000003", "XX12345", t),  # no such province: stored as read, not valid
        pass_item("k-0000004", "粤B12345", t, "44030500001219999999"),  # checkpoint not registered
        {"key": "k-0000005", "checkpoint_id": CP1},  # no time
        pass_item("k-0000006", "粤B12345", t.replace(tzinfo=None)),  # no offset
        pass_item(
            "k-0000007", "粤B12345", t + dt.timedelta(minutes=2), plate_color="mauve"
        ),  # colour dropped
        no_plate,  # nothing read
        pass_item("k-0000009", "无牌", t + dt.timedelta(minutes=4)),
        pass_item("k-0000010", "粤B12345", t + dt.timedelta(minutes=5), lane=120, direction_deg=400),
        pass_item("k-0000011", "粤B12345", dt.datetime.now(dt.UTC) - dt.timedelta(days=days + 2)),
        pass_item("k-0000012", "粤B12345", dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)),
        {"checkpoint_id": CP1, "ts": t.isoformat(), "plate_no": "粤B12345"},  # no key
    ]
    r = client.post("/api/v1/ingest/passes", json={"items": items}, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["duplicates"]) == (7, 0)
    why = {x["index"]: " ".join(x["errors"]) for x in body["rejected"]}
    assert sorted(why) == [3, 4, 5, 10, 11, 12]
    assert "44030500001219999999 is not registered" in why[3]
    assert "ts" in why[4] and "plate_no" not in why[4]
    assert "UTC offset" in why[5]
    assert f"older than the retention of {days} days" in why[10]
    assert "more than an hour in the future" in why[11]
    assert "key" in why[12]
    assert body["rejected"][0]["key"] == "k-0000004"

    # replay: all duplicates, nothing stored twice
    r = client.post("/api/v1/ingest/passes", json={"items": items[:2]}, headers=h)
    assert (r.json()["accepted"], r.json()["duplicates"]) == (0, 2)
    with ctx.db.session() as s:
        rows = {p.key: p for p in s.scalars(select(Pass))}
    got = {
        k: (p.plate_no, p.plate_kind, p.plate_valid, p.plate_color, p.lane, p.direction_deg)
        for k, p in rows.items()
    }
    assert got == {
        "k-0000001": ("粤B12345", "ordinary", True, "5", 2, None),
        "k-0000002": ("粤B12346", "ordinary", True, "5", 2, None),
        "k-0000003": ("XX12345", "other", False, "5", 2, None),
        "k-0000007": ("粤B12345", "ordinary", True, None, 2, None),
        "k-0000008": ("未识别", "unread", False, "5", 2, None),
        "k-0000009": ("无牌", "none", False, "5", 2, None),
        "k-0000010": ("粤B12345", "ordinary", True, "5", None, None),
    }
    assert rows["k-0000001"].ts == t


def test_pass_warnings_name_what_was_dropped(ctx: AppContext) -> None:
    seed(ctx)
    t = base_time()
    items = [
        pass_item("w-0000001", "粤B12345", t, lane=120, direction_deg=400, speed_kmh="fast"),
        pass_item("w-0000002", "粤B1234", t, vehicle_color="0"),  # not a plate; colour code 0 unknown
        pass_item("w-0000003", "粤B12345", t + dt.timedelta(seconds=1)),
        {**pass_item("w-0000004", "粤B12345", t, lane=120), "ts": "yesterday"},  # time broken: refused
    ]
    with ctx.db.session() as s:
        out = records.ingest_passes(s, items)
    assert (out.reply.accepted, [r.index for r in out.reply.rejected]) == (3, [3])
    warned = {w.index: " | ".join(w.warnings) for w in out.reply.warnings}
    assert sorted(warned) == [0, 1]
    assert all(f in warned[0] for f in ("lane", "direction_deg", "speed_kmh", "dropped"))
    assert "plate_valid false" in warned[1] and "vehicle_color" in warned[1]
    assert out.reply.warnings[0].key == "w-0000001"
    with ctx.db.session() as s:
        p = s.get(Pass, ("粤B12345", t, "w-0000001"))
        assert p is not None and (p.lane, p.direction_deg, p.speed_kmh, p.plate_color) == (
            None,
            None,
            None,
            "5",
        )
        q = s.get(Pass, ("粤B1234", t, "w-0000002"))
        assert q is not None and (q.plate_valid, q.vehicle_color) == (False, None)


def test_retention_edge_is_refused_not_silently_dropped(ctx: AppContext) -> None:
    """A record the ingest accepts survives the next maintenance run; one it would not is refused."""
    seed(ctx)
    now = dt.datetime.now(dt.UTC)
    edge = record_time.oldest_accepted(now, 30)
    items = [
        pass_item("r-0000001", "粤B12345", edge + dt.timedelta(minutes=1)),
        pass_item("r-0000002", "粤B12345", edge - dt.timedelta(minutes=1)),
    ]
    faces = [
        {
            "key": "r-face001",
            "camera_id": FACE_CAMERA,
            "ts": (edge - dt.timedelta(minutes=1)).isoformat(),
            "person_id": "P-1",
            "confidence": 0.9,
        }
    ]
    with ctx.db.session() as s:
        out = records.ingest_passes(s, items, retention_days=30)
        assert out.reply.accepted == 1
        assert "older than the retention of 30 days" in out.reply.rejected[0].errors[0]
        assert records.ingest_faces(s, faces, retention_days=30).reply.rejected[0].index == 0
    # the maintenance run of tomorrow (the next one that could drop anything new) keeps it
    with ctx.db.engine.begin() as conn:
        partitions.maintain(conn, ahead_days=1, retention_days=30, today=now.date() + dt.timedelta(days=1))
    with ctx.db.session() as s:
        assert s.scalars(select(Pass.key)).all() == ["r-0000001"]


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
        viid_object(
            "650100000011900000010220261122120000000010000002", "粤B5432", stamp
        ),  # not a plate: kept
        viid_object("650100000011900000010220261122120000000010000003", "粤B54322", "2026-11-22"),
        viid_object(
            "650100000011900000010220261122120000000010000004",
            "粤B54323",
            stamp,
            tollgate="44030500001219999999",
        ),
        {"PlateNo": "粤B54324"},
        # no plate read, an unknown Direction and colour code, an overlong DeviceID: stored without them
        {
            **{
                k: v
                for k, v in viid_object("650100000011900000010220261122120000000010000006", "", stamp).items()
                if k != "PlateNo"
            },
            "Direction": "9",
            "PlateColor": "0",
            "DeviceID": "4" * 25,
        },
    ]
    import json

    r = client.post(
        "/VIID/MotorVehicles",
        content=json.dumps({"MotorVehicleListObject": {"MotorVehicleObject": objs}}),
        headers=h,
    )
    assert r.status_code == 200, r.text
    st = r.json()["ResponseStatusListObject"]["ResponseStatusObject"]
    assert len(st) == 6
    assert [s["StatusCode"] for s in st] == [0, 0, 8, 8, 8, 0]
    assert st[0]["Id"] == objs[0]["MotorVehicleID"] and st[0]["RequestURL"] == "/VIID/MotorVehicles"
    assert len(st[0]["LocalTime"]) == 14 and st[0]["LocalTime"].isdigit()
    assert "PassTime" in st[2]["StatusString"]
    assert "not registered" in st[3]["StatusString"]
    assert "MotorVehicleID" in st[4]["StatusString"]
    with ctx.db.session() as s:
        odd = {q.key: q for q in s.scalars(select(Pass).where(Pass.key != objs[0]["MotorVehicleID"]))}
        p = s.scalars(select(Pass).where(Pass.key == objs[0]["MotorVehicleID"])).one()
    assert (odd[objs[1]["MotorVehicleID"]].plate_no, odd[objs[1]["MotorVehicleID"]].plate_valid) == (
        "粤B5432",
        False,
    )
    q = odd[objs[5]["MotorVehicleID"]]
    assert (q.plate_no, q.plate_kind, q.direction_deg, q.plate_color, q.device_id) == (
        "未识别",
        "unread",
        None,
        None,
        None,
    )
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
        assert len(s.scalars(select(Pass.key)).all()) == 3


def test_viid_mapping_keeps_odd_fields_as_warnings() -> None:
    obj = {
        "MotorVehicleID": "650100000011900000010220261122120000000010000009",
        "TollgateID": CP1,
        "PassTime": "20261122120000",
        "Direction": "0",
        "DeviceID": "x" * 21,
    }
    item, more = viid.to_pass(obj)
    assert item["plate_no"] is None and item["direction_deg"] is None
    assert more["device_id"] is None
    assert [w.split(":")[0] for w in more[EXTRA_WARNINGS]] == ["Direction", "DeviceID"]


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
