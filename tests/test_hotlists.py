"""Hotlists (布控): matching on ingest (exact and OCR-equivalent), alarms stored with the record,
the live stream over SSE with Last-Event-ID resume, and alarms still listed after a restart."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import LiveServer, auth
from tests.sightings_support import CP2, FACE_CAMERA, base_time, pass_item, seed
from tianwang.alarms import hotlists
from tianwang.api.app import create_app
from tianwang.auth.tokens import Principal, create_token
from tianwang.config import Settings
from tianwang.context import AppContext
from tianwang.errors import Forbidden, ValidationFailed
from tianwang.records import ingest as records
from tianwang.storage.models import AuditEntry, Role

TIMEOUT = httpx.Timeout(10.0)


def _hotlist(t: dt.datetime, entries: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {
        "name": "盗抢车辆",
        "reason": "stolen vehicle",
        "case_no": "A4403052026110009",
        "valid_from": (t - dt.timedelta(hours=1)).isoformat(),
        "valid_to": (t + dt.timedelta(days=3)).isoformat(),
        "priority": 10,
        "entries": entries,
        **kw,
    }


def test_hotlist_crud_and_matching(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    seed(ctx)
    t = base_time()
    h = auth(tokens["investigator"])
    r = client.post(
        "/api/v1/hotlists",
        json=_hotlist(
            t,
            [{"plate_no": "粤b-88888", "note": "silver"}, {"imsi": "460001111111111"}, {"person_id": "P-9"}],
        ),
        headers=h,
    )
    assert r.status_code == 201, r.text
    hid = r.json()["id"]
    assert [e["value"] for e in r.json()["entries"]] == ["粤B88888", "460001111111111", "P-9"]
    fuzzy = client.post(
        "/api/v1/hotlists", json=_hotlist(t, [{"plate_no": "粤B80123"}], fuzzy=True), headers=h
    )
    assert fuzzy.status_code == 201

    bad = client.post(
        "/api/v1/hotlists",
        json=_hotlist(t, [{"plate_no": "粤B88888"}, {"imsi": "460001111111111", "person_id": "x"}]),
        headers=h,
    )
    assert bad.status_code == 422
    assert [e["field"] for e in bad.json()["errors"]] == ["entries.1"]
    bad = client.post("/api/v1/hotlists", json=_hotlist(t, [{"plate_no": "粤B8888"}]), headers=h)
    assert bad.json()["errors"][0]["field"] == "entries.0.plate_no"
    no_case = _hotlist(t, [{"plate_no": "粤B88888"}])
    del no_case["case_no"]
    assert client.post("/api/v1/hotlists", json=no_case, headers=h).json()["errors"][0]["field"] == "case_no"
    assert client.get(f"/api/v1/hotlists/{hid}", headers=h).status_code == 422  # case_no needed
    got = client.get(f"/api/v1/hotlists/{hid}", params={"case_no": "A1"}, headers=h).json()
    assert got["active"] is True and len(got["entries"]) == 3

    with ctx.db.session() as s:
        out = records.ingest_passes(
            s,
            [
                pass_item("hl-0000001", "粤B88888", t + dt.timedelta(minutes=1), CP2),
                pass_item(
                    "hl-0000002", "粤B8D123", t + dt.timedelta(minutes=2), CP2
                ),  # OCR-equivalent of 粤B80123
                pass_item("hl-0000003", "粤B88889", t + dt.timedelta(minutes=3), CP2),
                pass_item(
                    "hl-0000004", "粤B88888", t - dt.timedelta(hours=2), CP2
                ),  # before the hotlist's window
            ],
        )
        assert [(a.subject, a.listed) for a in out.alarms] == [
            ("粤B88888", "粤B88888"),
            ("粤B8D123", "粤B80123"),
        ]
        assert out.alarms[0].lon is not None and out.alarms[0].case_no == "A4403052026110009"
        # replayed records raise nothing again
        assert (
            records.ingest_passes(
                s, [pass_item("hl-0000001", "粤B88888", t + dt.timedelta(minutes=1), CP2)]
            ).alarms
            == []
        )
        faces = records.ingest_faces(
            s,
            [
                {
                    "key": "hl-face001",
                    "camera_id": FACE_CAMERA,
                    "ts": t.isoformat(),
                    "person_id": "P-9",
                    "confidence": 0.8,
                }
            ],
        )
        phones = records.ingest_phones(
            s, [{"key": "hl-phone01", "fence_id": "F-NS-01", "ts": t.isoformat(), "imsi": "460001111111111"}]
        )
        assert [a.kind for a in faces.alarms + phones.alarms] == ["person", "imsi"]

    listed = client.get("/api/v1/alarms", headers=h).json()["items"]
    assert [a["subject"] for a in listed] == ["粤B88888", "粤B8D123", "P-9", "460001111111111"]
    # withdrawn: no more alarms, still readable
    assert (
        client.delete(f"/api/v1/hotlists/{hid}", params={"case_no": "A1"}, headers=h).json()["active"]
        is False
    )
    with ctx.db.session() as s:
        assert (
            records.ingest_passes(
                s, [pass_item("hl-0000005", "粤B88888", t + dt.timedelta(minutes=5), CP2)]
            ).alarms
            == []
        )
    assert client.get("/api/v1/hotlists/99999", params={"case_no": "A1"}, headers=h).status_code == 404
    log = client.get("/api/v1/audit", headers=auth(tokens["admin"])).json()["items"]
    assert [e["route"] for e in log if e["outcome"] == "ok"] == [
        "hotlists.create",
        "hotlists.create",
        "hotlists.get",
        "alarms.list",
        "hotlists.withdraw",
    ]


def _events(resp: httpx.Response, want: int) -> list[dict[str, Any]]:
    """Read SSE frames until `want` alarms came (the client's read timeout bounds the wait)."""
    got: list[dict[str, Any]] = []
    frame: dict[str, str] = {}
    for line in resp.iter_lines():
        if line == "":
            if frame.get("event") == "alarm":
                got.append({"id": int(frame["id"]), **json.loads(frame["data"])})
                if len(got) >= want:
                    return got
            frame = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(":")
            frame[k] = v.lstrip(" ")
    return got


def test_alarm_stream_and_restart(
    live_server: tuple[LiveServer, AppContext], db_url: str, tmp_path: Any
) -> None:
    srv, ctx = live_server
    seed(ctx)
    with ctx.db.session() as s:
        tok = {r: create_token(s, r, f"sse-{r}") for r in ("investigator", "agent", "admin")}
    t = base_time()
    inv = auth(tok["investigator"])
    with httpx.Client(base_url=srv.url, timeout=TIMEOUT) as c:
        assert (
            c.post("/api/v1/hotlists", json=_hotlist(t, [{"plate_no": "粤B66666"}]), headers=inv).status_code
            == 201
        )
        assert c.get("/api/v1/alarms/stream", headers=inv).status_code == 406  # not asking for SSE
        with c.stream("GET", "/api/v1/alarms/stream", headers={**inv, "Accept": "text/event-stream"}) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/event-stream")
            r = c.post(
                "/api/v1/ingest/passes",
                headers=auth(tok["agent"]),
                json={
                    "items": [
                        pass_item("sse-000001", "粤B66666", t + dt.timedelta(minutes=1), CP2),
                        pass_item("sse-000002", "粤B12121", t + dt.timedelta(minutes=1), CP2),
                    ]
                },
            )
            assert r.json()["accepted"] == 2
            got = _events(resp, 1)
        assert [(a["subject"], a["sensor_id"], a["record_key"]) for a in got] == [
            ("粤B66666", CP2, "sse-000001")
        ]
        first_id = got[0]["id"]

        # GA/T 1400 raises alarms too; a client reconnecting with Last-Event-ID gets what it missed
        local = (t + dt.timedelta(minutes=2)).astimezone(dt.timezone(dt.timedelta(hours=8)))
        c.post(
            "/VIID/MotorVehicles",
            headers=auth(tok["agent"]),
            json={
                "MotorVehicleListObject": {
                    "MotorVehicleObject": [
                        {
                            "MotorVehicleID": "viid-sse-0000001",
                            "TollgateID": CP2,
                            "PassTime": local.strftime("%Y%m%d%H%M%S"),
                            "PlateNo": "粤B66666",
                        }
                    ]
                }
            },
        )
        with c.stream(
            "GET",
            "/api/v1/alarms/stream",
            headers={**inv, "Accept": "text/event-stream", "Last-Event-ID": str(first_id)},
        ) as resp:
            again = _events(resp, 1)
        assert [a["record_key"] for a in again] == ["viid-sse-0000001"]
        assert again[0]["id"] > first_id

    # a new API process on the same database still lists both alarms
    s2 = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        object_store=f"dir:{tmp_path / 'o2'}",
        secret_key=ctx.settings.secret_key,
        public_url="http://testserver",
    )
    c2 = AppContext.build(s2)
    try:
        with TestClient(create_app(s2, c2)) as client:
            items = client.get("/api/v1/alarms", headers=inv).json()["items"]
            assert [a["record_key"] for a in items] == ["sse-000001", "viid-sse-0000001"]
            since = client.get(
                "/api/v1/alarms",
                params={"since": (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()},
                headers=inv,
            ).json()["items"]
            assert since == []
    finally:
        c2.close()


def test_only_the_creator_or_an_admin_withdraws(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    t = base_time()
    r = client.post(
        "/api/v1/hotlists", json=_hotlist(t, [{"plate_no": "粤B88888"}]), headers=auth(tokens["investigator"])
    )
    hid = r.json()["id"]
    with ctx.db.session() as s:
        other = create_token(s, "investigator", "another-case-officer")
    # another investigator (another case) may read it but not withdraw it
    r = client.delete(f"/api/v1/hotlists/{hid}", params={"case_no": "B7"}, headers=auth(other))
    assert r.status_code == 403 and "only they or an admin" in r.json()["detail"]
    got = client.get(
        f"/api/v1/hotlists/{hid}", params={"case_no": "A1"}, headers=auth(tokens["investigator"])
    )
    assert got.json()["active"] is True
    with ctx.db.session() as s:
        with pytest.raises(Forbidden):
            hotlists.revoke(s, hid, Principal(99, "another-case-officer", Role.investigator))
        h = hotlists.revoke(s, hid, Principal(1, "root", Role.admin))  # an admin may
        assert (h.revoked_by, h.revoked_at is not None) == ("root", True)
        # and the creator may withdraw their own (idempotent once withdrawn)
        assert (
            hotlists.revoke(s, hid, Principal(2, "test-investigator", Role.investigator)).revoked_by == "root"
        )


def test_alarm_reads_are_audited_and_plateless_passes_raise_none(ctx: AppContext) -> None:
    seed(ctx)
    t = base_time()
    with ctx.db.session() as s:
        body = hotlists.HotlistIn.model_validate(
            _hotlist(t, [{"plate_no": "粤A12345临"}, {"plate_no": "VA12345"}])
        )
        hotlists.create(s, body, "test-investigator")
        # a marker cannot be listed: every pass without a plate would hit it
        with pytest.raises(ValidationFailed):
            hotlists.create(s, hotlists.HotlistIn.model_validate(_hotlist(t, [{"plate_no": "无牌"}])), "x")
    with ctx.db.session() as s:
        out = records.ingest_passes(
            s,
            [
                pass_item("np-000001", "粤A12345临", t + dt.timedelta(minutes=1), CP2),
                pass_item("np-000002", "VA12345", t + dt.timedelta(minutes=2), CP2),
                pass_item("np-000003", "无牌", t + dt.timedelta(minutes=3), CP2),
                pass_item("np-000004", "未识别", t + dt.timedelta(minutes=4), CP2),
            ],
        )
        assert out.reply.accepted == 4
        assert [a.subject for a in out.alarms] == ["粤A12345临", "VA12345"]
    reader = Principal(5, "test-investigator", Role.investigator)
    since = t - dt.timedelta(days=1)
    with ctx.db.session() as s:
        got = hotlists.list_alarms(s, since=since, after_id=None, limit=10, reader=reader, case_no="A1")
        assert len(got) == 2
        hotlists.audit_alarm_read(s, reader, route="alarms.stream", since=None, after_id=7, count=0)
        assert len(hotlists.list_alarms(s, since=None, after_id=None, limit=10)) == 2  # no reader: no row
    with ctx.db.session() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    assert [(r.route, r.user_name, r.case_no, r.result_size) for r in rows] == [
        ("alarms.list", "test-investigator", "A1", 2),
        ("alarms.stream", "test-investigator", hotlists.NO_CASE, 0),
    ]
    assert rows[0].params == {"since": since.isoformat()} and rows[1].params == {"after_id": 7}


def test_stream_owes_late_committed_alarms_once(ctx: AppContext) -> None:
    """Ingest transactions commit alarm ids out of order: a smaller id visible after a larger one was
    streamed is still delivered, once; a fresh stream's floor and the settling window bound the re-read."""
    from tianwang.storage.models import Alarm, Hotlist

    now = dt.datetime.now(dt.UTC)

    def alarm(i: int, at: dt.datetime) -> Alarm:
        return Alarm(
            id=i, hotlist_id=1, entry_id=1, kind="plate", subject="粤B12345", listed="粤B12345",
            record_key=f"k{i}", sensor_id=CP2, ts=at, priority=1, case_no="C1", created_at=at,
        )  # fmt: skip

    with ctx.db.session() as s:
        s.add(
            Hotlist(
                id=1, name="h", reason="r", case_no="C1", valid_from=now, valid_to=now, priority=1,
                created_by="t",
            )
        )  # fmt: skip
        s.flush()
        s.add_all([alarm(5, now - dt.timedelta(minutes=5)), alarm(10, now), alarm(12, now)])
    with ctx.db.session() as s:
        first = hotlists.stream_batch(s, last=4, floor=0, sent={}, now=now, limit=50)
        assert [a.id for a in first] == [5, 10, 12]
        sent = {10, 12}
        assert hotlists.stream_batch(s, last=12, floor=0, sent=sent, now=now, limit=50) == []
    with ctx.db.session() as s:
        s.add(alarm(11, now))  # committed after 12 was streamed
    with ctx.db.session() as s:
        late = hotlists.stream_batch(s, last=12, floor=0, sent=sent, now=now, limit=50)
        assert [a.id for a in late] == [11]  # and not 5: raised before the settling window
        assert hotlists.stream_batch(s, last=12, floor=0, sent=sent | {11}, now=now, limit=50) == []
        # a fresh stream opened at 11 owes nothing at or below it
        fresh = hotlists.stream_batch(s, last=11, floor=11, sent=set(), now=now, limit=50)
        assert [a.id for a in fresh] == [12]
