"""Hotlists (布控) that reach people: a scope (checkpoints, areas, local night hours, directions of
travel), matching of the past passes on creation (`retro`), a status derived from the clock, the
acknowledgement of an alarm, and alarms readable only by the case that made their hotlist."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from tests.conftest import auth
from tests.sightings_support import CP1, CP2, CP3, FACE_CAMERA, base_time, pass_item, seed
from tianwang import clock
from tianwang.alarms import hotlists
from tianwang.auth.tokens import create_token
from tianwang.context import AppContext
from tianwang.storage.models import AuditEntry, Hotlist

CASE = "A4403052026120016"
PLATE = "粤B12345"


def _hotlist(t: dt.datetime, entries: list[dict[str, Any]], **kw: Any) -> dict[str, Any]:
    return {
        "name": "夜间套牌",
        "reason": "night-time thefts",
        "case_no": CASE,
        "valid_from": (t - dt.timedelta(hours=1)).isoformat(),
        "valid_to": (t + dt.timedelta(days=3)).isoformat(),
        "priority": 5,
        "entries": entries,
        **kw,
    }


def _ingest(client: TestClient, agent: str, items: list[dict[str, Any]]) -> None:
    r = client.post("/api/v1/ingest/passes", json={"items": items}, headers=auth(agent))
    assert r.status_code == 200 and r.json()["accepted"] == len(items), r.text


def test_night_hotlist_on_two_checkpoints_raises_exactly_the_planted_alarms(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    """The issue's done-when: scoped to two checkpoints and to the night (22:00-06:00 +08:00), the
    hotlist raises exactly the planted alarms, and its creation matches the planted past passes."""
    seed(ctx)
    t = base_time()  # 12:00 UTC = 20:00 local
    h = auth(tokens["investigator"])
    hour = dt.timedelta(hours=1)
    # before the hotlist exists: two passes inside (23:00 at CP1; 05:00 next morning at CP2, the
    # night wraps midnight), and passes outside one limit each
    _ingest(
        client,
        tokens["agent"],
        [
            pass_item("past-in-01", PLATE, t + 3 * hour, CP1),  # 23:00 ✓
            pass_item("past-in-02", PLATE, t + 9 * hour, CP2),  # 05:00 ✓
            pass_item("past-out-1", PLATE, t + 3 * hour, CP3),  # another checkpoint
            pass_item("past-out-2", PLATE, t, CP2),  # 20:00: evening, not night
            pass_item("past-out-3", PLATE, t + 10 * hour, CP1),  # 06:00: the night has ended
            pass_item("past-out-4", "粤B12346", t + 3 * hour, CP1),  # another plate
            pass_item("past-out-5", PLATE, t - dt.timedelta(days=2) + 3 * hour, CP1),  # before retro_days
        ],
    )
    body = _hotlist(
        t,
        [{"plate_no": PLATE}],
        scope={"checkpoint_ids": [CP1, CP2]},
        active_hours="22:00-06:00",
        retro_days=2,
    )
    r = client.post("/api/v1/hotlists", json=body, headers=h)
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["retro_alarms"] == 2 and made["status"] == "active"
    assert made["scope"] == {"checkpoint_ids": sorted([CP1, CP2])}
    assert (made["active_hours"], made["retro_days"], made["directions"]) == ("22:00-06:00", 2, None)

    # after: live passes, inside and outside
    _ingest(
        client,
        tokens["agent"],
        [
            pass_item("live-in-01", PLATE, t + 4 * hour, CP2),  # 00:00 ✓
            pass_item("live-in-02", PLATE, t + 2 * hour, CP1),  # 22:00 sharp: the night begins ✓
            pass_item("live-out-1", PLATE, t + 4 * hour, CP3),
            pass_item("live-out-2", PLATE, t + 2 * hour - dt.timedelta(minutes=1), CP1),  # 21:59
            pass_item("live-out-3", PLATE, t + 10 * hour, CP2),  # 06:00
        ],
    )
    items = client.get("/api/v1/alarms", headers=h).json()["items"]
    assert sorted((a["record_key"], a["retro"]) for a in items) == [
        ("live-in-01", False),
        ("live-in-02", False),
        ("past-in-01", True),
        ("past-in-02", True),
    ]
    assert all(a["ack"] is None and a["hotlist_id"] == made["id"] for a in items)
    # matching the past again raises nothing twice
    with ctx.db.session() as s:
        hl = s.get(Hotlist, made["id"])
        assert hl is not None
        assert hotlists.match_past(s, hl, 2, clock.now()) == []


def test_directions_and_areas(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    """Directions are GA/T 1400 行驶方向 codes matched on the stored heading within ±22.5° (the pass
    search's rule); areas are division codes or their prefixes (the checkpoints are in 440305)."""
    seed(ctx)
    t = base_time()
    h = auth(tokens["investigator"])
    east = client.post(
        "/api/v1/hotlists",
        json=_hotlist(t, [{"plate_no": PLATE}], directions=[1, "5"], scope={"area_codes": ["4403"]}),
        headers=h,
    )
    assert east.status_code == 201, east.text
    assert east.json()["directions"] == ["1", "5"]
    elsewhere = client.post(
        "/api/v1/hotlists", json=_hotlist(t, [{"plate_no": PLATE}], scope={"area_codes": ["4404"]}), headers=h
    )
    assert elsewhere.status_code == 201
    m = dt.timedelta(minutes=1)
    _ingest(
        client,
        tokens["agent"],
        [
            pass_item("dir-000001", PLATE, t + m, CP1, direction_deg=90),  # 1 西→东 ✓
            pass_item("dir-000002", PLATE, t + 2 * m, CP1, direction_deg=112.4),  # within 22.5° ✓
            pass_item("dir-000003", PLATE, t + 3 * m, CP1, direction_deg=112.5),  # just outside
            pass_item("dir-000004", PLATE, t + 4 * m, CP1, direction_deg=30),  # 5 西南→东北 (45°) ✓
            pass_item("dir-000005", PLATE, t + 5 * m, CP1, direction_deg=270),  # 2 东→西
            pass_item("dir-000006", PLATE, t + 6 * m, CP1),  # no heading: outside a direction limit
        ],
    )
    items = client.get("/api/v1/alarms", headers=h).json()["items"]
    assert sorted(a["record_key"] for a in items) == ["dir-000001", "dir-000002", "dir-000004"]
    assert {a["hotlist_id"] for a in items} == {east.json()["id"]}


def test_scope_is_validated(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    t = base_time()
    h = auth(tokens["investigator"])
    e = [{"plate_no": PLATE}]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"active_hours": "22:00-6:00"}, "active_hours"),
        ({"active_hours": "24:00-06:00"}, "active_hours"),
        ({"active_hours": "06:00-06:00"}, "active_hours"),
        ({"directions": [9]}, "directions"),
        ({"directions": ["0"]}, "directions"),
        ({"scope": {"area_codes": ["44x3"]}}, "scope.area_codes"),
        ({"scope": {"checkpoint_ids": []}}, "scope.checkpoint_ids"),
        ({"scope": {"lanes": [1]}}, "scope.lanes"),
        ({"retro_days": 93}, "retro_days"),
    ]
    for extra, field in cases:
        r = client.post("/api/v1/hotlists", json=_hotlist(t, e, **extra), headers=h)
        assert r.status_code == 422, (extra, r.text)
        assert [x["field"] for x in r.json()["errors"]] == [field], extra


def test_fuzzy_hotlist_matches_past_ocr_misreads_only(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    """A fuzzy hotlist's past passes are found by look-alike patterns, then kept only when their OCR
    key equals the entry's (as a live match would): 2/Z is a look-alike of the search, not of OCR."""
    seed(ctx)
    t = base_time()
    m = dt.timedelta(minutes=1)
    _ingest(
        client,
        tokens["agent"],
        [
            pass_item("fz-0000001", "粤B8D123", t + m, CP1),  # OCR-equivalent of 粤B80123 ✓
            pass_item("fz-0000002", "粤B80123", t + 2 * m, CP2),  # exact ✓
            pass_item("fz-0000003", "粤B80Z23", t + 3 * m, CP2),  # 1→Z: not an OCR confusion
            pass_item("fz-0000004", "粤B80124", t + 4 * m, CP2),
        ],
    )
    r = client.post(
        "/api/v1/hotlists",
        json=_hotlist(t, [{"plate_no": "粤B80123"}], fuzzy=True),
        headers=auth(tokens["investigator"]),
    )
    assert r.status_code == 201 and r.json()["retro_alarms"] == 2, r.text
    items = client.get("/api/v1/alarms", headers=auth(tokens["investigator"])).json()["items"]
    assert sorted((a["record_key"], a["subject"], a["retro"]) for a in items) == [
        ("fz-0000001", "粤B8D123", True),
        ("fz-0000002", "粤B80123", True),
    ]
    # retro_days 0: nothing from the past
    r = client.post(
        "/api/v1/hotlists",
        json=_hotlist(t, [{"plate_no": "粤B80123"}], fuzzy=True, retro_days=0),
        headers=auth(tokens["investigator"]),
    )
    assert r.json()["retro_alarms"] == 0 and r.json()["retro_days"] == 0


def test_status_expires_by_itself_and_withdrawal_keeps_its_reason(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    h = auth(tokens["investigator"])
    now = clock.now()
    body = _hotlist(now, [{"plate_no": PLATE}])
    body["valid_from"], body["valid_to"] = (
        (now - dt.timedelta(hours=1)).isoformat(),
        (now + dt.timedelta(hours=1)).isoformat(),
    )
    hid = client.post("/api/v1/hotlists", json=body, headers=h).json()["id"]
    later = {
        **body,
        "valid_from": (now + dt.timedelta(hours=2)).isoformat(),
        "valid_to": (now + dt.timedelta(hours=5)).isoformat(),
    }
    pending = client.post("/api/v1/hotlists", json=later, headers=h).json()
    assert pending["status"] == "pending" and pending["active"] is False

    def status(i: int) -> str:
        got = client.get(f"/api/v1/hotlists/{i}", params={"case_no": CASE}, headers=h).json()
        return str(got["status"])

    assert status(hid) == "active"
    with clock.travel(now + dt.timedelta(hours=3)):  # nobody ended it: its valid_to passed
        assert status(hid) == "expired"
        assert status(pending["id"]) == "active"
        listed = client.get("/api/v1/hotlists", params={"case_no": CASE, "active": "true"}, headers=h).json()[
            "items"
        ]
        assert [x["id"] for x in listed] == [pending["id"]]
    r = client.delete(
        f"/api/v1/hotlists/{pending['id']}",
        params={"case_no": CASE, "reason": "  vehicle recovered "},
        headers=h,
    )
    assert r.status_code == 200
    assert (r.json()["status"], r.json()["revoked_reason"]) == ("withdrawn", "vehicle recovered")
    with ctx.db.session() as s:
        row = s.scalars(select(AuditEntry).where(AuditEntry.route == "hotlists.withdraw")).one()
    assert row.params["reason"] == "vehicle recovered"


def test_alarms_belong_to_their_case_and_are_acknowledged(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    t = base_time()
    mine = auth(tokens["investigator"])
    with ctx.db.session() as s:
        other = auth(create_token(s, "investigator", "another-case-officer"))
    theirs = _hotlist(t, [{"plate_no": "粤B99999"}, {"person_id": "P-7"}], case_no="B7")
    assert client.post("/api/v1/hotlists", json=theirs, headers=other).status_code == 201
    assert (
        client.post("/api/v1/hotlists", json=_hotlist(t, [{"plate_no": PLATE}]), headers=mine).status_code
        == 201
    )
    m = dt.timedelta(minutes=1)
    _ingest(
        client,
        tokens["agent"],
        [pass_item("own-000001", PLATE, t + m, CP1), pass_item("own-000002", "粤B99999", t + 2 * m, CP2)],
    )
    face = {"key": "own-face01", "camera_id": FACE_CAMERA, "ts": (t + 3 * m).isoformat(), "person_id": "P-7"}
    r = client.post(
        "/api/v1/ingest/faces", json={"items": [{**face, "confidence": 0.9}]}, headers=auth(tokens["agent"])
    )
    assert r.json()["accepted"] == 1, r.text

    def keys(headers: dict[str, str]) -> list[str]:
        return [a["record_key"] for a in client.get("/api/v1/alarms", headers=headers).json()["items"]]

    assert keys(mine) == ["own-000001"]
    assert keys(other) == ["own-000002", "own-face01"]
    assert keys(auth(tokens["admin"])) == ["own-000001", "own-000002", "own-face01"]
    with ctx.db.session() as s:
        # the stream reads through the same filter
        owner = "another-case-officer"
        got = hotlists.stream_batch(s, last=0, floor=0, sent=set(), now=clock.now(), limit=10, owner=owner)
        assert [a.record_key for a in got] == ["own-000002", "own-face01"]
    my_alarm = client.get("/api/v1/alarms", headers=mine).json()["items"][0]["id"]
    their_alarm = client.get("/api/v1/alarms", headers=other).json()["items"][0]["id"]

    ack = {"verdict": "false_positive", "note": "a look-alike car, owner checked"}
    r = client.post(f"/api/v1/alarms/{their_alarm}/ack", json=ack, headers=mine)
    assert r.status_code == 404  # another case's alarm is not there for this investigator
    assert client.post("/api/v1/alarms/99999/ack", json=ack, headers=mine).status_code == 404
    bad = client.post(f"/api/v1/alarms/{my_alarm}/ack", json={"verdict": "maybe"}, headers=mine)
    assert bad.status_code == 422
    r = client.post(f"/api/v1/alarms/{my_alarm}/ack", json=ack, headers=mine)
    assert r.status_code == 200, r.text
    got_ack = r.json()["ack"]
    assert (got_ack["verdict"], got_ack["note"], got_ack["by"]) == (
        "false_positive",
        "a look-alike car, owner checked",
        "test-investigator",
    )
    assert dt.datetime.fromisoformat(got_ack["at"]) <= clock.now()
    listed = client.get("/api/v1/alarms", headers=mine).json()["items"]
    assert listed[0]["ack"] == got_ack
    # an admin may acknowledge any; it is audited under the case of the alarm's hotlist
    r = client.post(
        f"/api/v1/alarms/{their_alarm}/ack", json={"verdict": "confirmed"}, headers=auth(tokens["admin"])
    )
    assert r.json()["ack"]["verdict"] == "confirmed" and r.json()["ack"]["note"] is None
    with ctx.db.session() as s:
        rows = s.scalars(
            select(AuditEntry).where(AuditEntry.route == "alarms.ack").order_by(AuditEntry.id)
        ).all()
    assert [(x.user_name, x.case_no, x.params["verdict"]) for x in rows] == [
        ("test-investigator", CASE, "false_positive"),
        ("test-admin", "B7", "confirmed"),
    ]


@pytest.mark.parametrize(
    ("hours", "local", "inside"),
    [
        ("22:00-06:00", "21:59", False),
        ("22:00-06:00", "22:00", True),
        ("22:00-06:00", "00:00", True),
        ("22:00-06:00", "05:59", True),
        ("22:00-06:00", "06:00", False),
        ("08:30-17:00", "08:29", False),
        ("08:30-17:00", "12:00", True),
        ("08:30-17:00", "17:00", False),
    ],
)
def test_active_hours_are_local_time(hours: str, local: str, inside: bool) -> None:
    hh, mm = (int(x) for x in local.split(":"))
    ts = dt.datetime(2026, 3, 1, hh, mm, tzinfo=hotlists.CST).astimezone(dt.UTC)
    assert hotlists.in_hours(ts, hotlists.parse_hours(hours)) is inside


@pytest.mark.parametrize(
    ("deg", "inside"),
    [(0.0, True), (337.4, False), (337.5, True), (359.9, True), (22.4, True), (22.5, False), (180.0, False)],
)
def test_heading_rule_wraps_north(deg: float, inside: bool) -> None:
    north = hotlists.direction_codes([4])  # 4 南→北: heading 0°
    headings = [float(hotlists.codes.DIRECTIONS[c][0] or 0) for c in north]
    assert hotlists.heading_within(deg, headings) is inside
