"""Hostile input at the API: characters a database refuses, impossible times, NUL in URLs, deep JSON.

One bad item in an ingest batch is refused with its reason and the others are stored; everything
else answers 4xx, never 500 — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from tests.conftest import ROLES, auth
from tests.sightings_support import CP1, FACE_CAMERA, FENCES, base_time, pass_item, seed, viid_object
from tianwang.context import AppContext
from tianwang.protocol.fields import text_problem, time_problem
from tianwang.protocol.ingest import HealthItem, SnapshotItem
from tianwang.protocol.sightings import FaceItem, PassItem, PhoneItem
from tianwang.storage.models import FaceSighting, HealthObservation, Pass, PhoneSighting, Snapshot

# what PostgreSQL text refuses (NUL), what no UTF-8 encoder takes (a lone surrogate, sent as
# JSON's "\ud800"), and a control character that has no place in a record
BAD = {"nul": "\x00", "surrogate": "\ud800", "escape": "\x1b"}
# times that parse but overflow when turned into UTC, or that no record can carry
EXTREME_TIMES = ("0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-05:00", "1900-01-01T00:00:00Z")
FIELD_FOR_BAD = {"nul": "NUL", "surrogate": "surrogate", "escape": "control character"}
_serial = itertools.count()


def post_json(client: TestClient, url: str, body: Any, headers: dict[str, str]) -> Any:
    # json.dumps escapes a lone surrogate as \ud800, as a client would put it on the wire
    return client.post(url, content=json.dumps(body), headers={**headers, "Content-Type": "application/json"})


def text_fields(model: type[BaseModel]) -> list[str]:
    """Every field of a wire model that takes text (new ones are covered as they are added)."""
    return [n for n, f in model.model_fields.items() if "str" in str(f.annotation)]


def spoil(value: Any, bad: str) -> str:
    """A value with a bad character in it: the fault the check must name, even where the extra
    character also makes the value one too long."""
    s = "" if value is None else str(value)
    return s[: len(s) // 2] + bad + s[len(s) // 2 :]


def test_text_and_time_checks() -> None:
    assert text_problem("粤B12345") is None
    assert "NUL" in (text_problem("a\x00") or "")
    assert "surrogate" in (text_problem("\udfff") or "")
    assert text_problem("a\tb") is not None and text_problem("a\tb\r\n", multiline=True) is None
    assert text_problem("\x7f", multiline=True) is not None
    cst = dt.timezone(dt.timedelta(hours=8))
    assert time_problem(dt.datetime(1970, 1, 1, 8, 0, tzinfo=cst)) is None  # 00:00 UTC: the first
    assert time_problem(dt.datetime(1970, 1, 1, 7, 59, tzinfo=cst)) is not None
    assert time_problem(dt.datetime(1, 1, 1, tzinfo=cst)) is not None  # overflows in UTC
    assert time_problem(dt.datetime(9999, 12, 31, 23, tzinfo=dt.timezone(-dt.timedelta(hours=5)))) is not None
    assert time_problem(dt.datetime(2200, 12, 31, 23, 59)) is None
    assert time_problem(dt.datetime(2201, 1, 1)) is not None


def test_every_record_model_has_its_text_fields_checked() -> None:
    # the fields the attack found, and every other text field of the models, refuse a NUL
    for model, fields in (
        (PassItem, {"plate_no", "vehicle_type", "image_key", "checkpoint_id", "plate_color"}),
        (FaceItem, {"person_id", "camera_id", "image_key"}),
        (PhoneItem, {"imsi", "imei", "mac", "fence_id"}),
        (HealthItem, {"device_id", "error"}),
        (SnapshotItem, {"device_id", "key", "sha256"}),
    ):
        assert fields <= set(text_fields(model)), model


def test_fields_keep_their_own_formats_and_lengths() -> None:
    # the shared text check must not replace a field's own pattern or length
    base = {"key": "k-00000001", "fence_id": "F-1", "ts": "2026-01-01T00:00:00Z", "imsi": "460001234567890"}
    assert PhoneItem.model_validate(base).imsi == "460001234567890"
    for bad in (
        {"imsi": "4600abc"},
        {"imei": "86x"},
        {"mac": "zz"},
        {"key": "k 0000001"},
        {"fence_id": "F" * 65},
    ):
        with pytest.raises(ValidationError):
            PhoneItem.model_validate(base | bad)
    p = {"key": "k-00000001", "checkpoint_id": CP1, "ts": "2026-01-01T00:00:00Z"}
    for bad in ({"plate_no": "粤" * 41}, {"vehicle_type": "K" * 11}, {"checkpoint_id": "4" * 21}):
        with pytest.raises(ValidationError):
            PassItem.model_validate(p | bad)


# ---- ingest: one bad item is refused with its reason, the rest are stored


def _check_reply(r: Any, field: str, kind: str) -> None:
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 2, (field, kind, body)
    assert [x["index"] for x in body["rejected"]] == [1], (field, kind, body)
    errors = " ".join(body["rejected"][0]["errors"])
    assert field.split(".")[-1] in errors and FIELD_FOR_BAD[kind] in errors, (field, kind, errors)
    assert all(w["index"] != 1 for w in body.get("warnings", [])), "refused, not stored with a warning"


def _stored(ctx: AppContext, column: Any, keys: list[str]) -> set[str]:
    with ctx.db.session() as s:
        return set(s.scalars(select(column).where(column.in_(keys))))


def _record_cases() -> list[tuple[str, type[BaseModel], Callable[[int, dt.datetime], dict[str, Any]], Any]]:
    def passes(i: int, t: dt.datetime) -> dict[str, Any]:
        return pass_item(
            f"bad-pass-{i:06d}", "粤B12345", t, vehicle_type="K33", vehicle_color="2", image_key=f"p/{i}.jpg"
        )

    def faces(i: int, t: dt.datetime) -> dict[str, Any]:
        return {
            "key": f"bad-face-{i:06d}",
            "camera_id": FACE_CAMERA,
            "ts": t.isoformat(),
            "person_id": "P-0001",
            "confidence": 0.9,
            "image_key": f"f/{i}.jpg",
        }

    def phones(i: int, t: dt.datetime) -> dict[str, Any]:
        return {
            "key": f"bad-phone-{i:06d}",
            "fence_id": next(iter(FENCES)),
            "ts": t.isoformat(),
            "imsi": "460001234567890",
            "imei": "86000000000001",
            "mac": "AA:BB:CC:DD:EE:FF",
            "rssi": -60,
        }

    return [
        ("passes", PassItem, passes, Pass.key),
        ("faces", FaceItem, faces, FaceSighting.key),
        ("phones", PhoneItem, phones, PhoneSighting.key),
    ]


@pytest.mark.parametrize("route", ["passes", "faces", "phones"])
def test_records_refuse_only_the_item_with_a_bad_character(
    client: TestClient, ctx: AppContext, tokens: dict[str, str], route: str
) -> None:
    seed(ctx)
    _, model, make, key_col = next(c for c in _record_cases() if c[0] == route)
    h = auth(tokens["agent"])
    t0 = base_time()
    fields = text_fields(model)
    for field, (kind, bad) in itertools.product(fields, BAD.items()):
        n = next(_serial)
        t = t0 + dt.timedelta(seconds=n)
        items = [make(3 * n + j, t) for j in range(3)]
        items[1][field] = spoil(items[1][field], bad)
        r = post_json(client, f"/api/v1/ingest/{route}", {"items": items}, h)
        _check_reply(r, field, kind)
        want = [items[0]["key"], items[2]["key"]]
        assert _stored(ctx, key_col, [*want, f"bad-{route[:-1]}-{3 * n + 1:06d}"]) == set(want), field


def test_health_refuses_only_the_item_with_a_bad_character(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    h = auth(tokens["agent"])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def make(i: int) -> dict[str, Any]:
        ts = now - dt.timedelta(minutes=30) + dt.timedelta(seconds=i)
        return {
            "key": f"h-bad-{i:06d}",
            "device_id": FACE_CAMERA,
            "ts": ts.isoformat(),
            "reachable": False,
            "error": "connect timeout",
        }

    for field, (kind, bad) in itertools.product(text_fields(HealthItem), BAD.items()):
        n = next(_serial)
        items = [make(3 * n + j) for j in range(3)]
        items[1][field] = spoil(items[1][field], bad)
        r = post_json(client, "/api/v1/ingest/health", {"items": items}, h)
        _check_reply(r, field, kind)
        want = [items[0]["key"], items[2]["key"]]
        assert _stored(ctx, HealthObservation.key, [*want, f"h-bad-{3 * n + 1:06d}"]) == set(want)
    # an error message may span lines
    item = make(next(_serial) * 3) | {"error": "refused:\n\tRTSP 401"}
    assert post_json(client, "/api/v1/ingest/health", {"items": [item]}, h).json()["accepted"] == 1


def test_snapshots_refuse_only_the_item_with_a_bad_character(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    h = auth(tokens["agent"])
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def make(i: int) -> dict[str, Any]:
        ts = now - dt.timedelta(minutes=30) + dt.timedelta(seconds=i)
        data = b"\xff\xd8" + str(i).encode() + b"\xff\xd9"
        sha = hashlib.sha256(data).hexdigest()
        pre = client.post(
            "/api/v1/ingest/snapshots/presign",
            json={"device_id": FACE_CAMERA, "ts": ts.isoformat(), "sha256": sha, "size": len(data)},
            headers=h,
        ).json()
        put = client.put(pre["url"].replace("http://testserver", ""), content=data)
        assert put.status_code == 200, put.text
        quality = {"verdict": "ok", "faults": ["blur"], "vendor": {"model": "X1"}}
        return {"key": pre["key"], "device_id": FACE_CAMERA, "ts": ts.isoformat(), "sha256": sha}, quality

    def spoil_quality(q: dict[str, Any], where: str, bad: str) -> None:
        if where == "faults":
            q["faults"] = [spoil("blur", bad)]
        elif where == "extra value":
            q["vendor"] = {"model": spoil("X1", bad)}
        else:  # an extra key
            q["vendor"] = {spoil("model", bad): "X1"}

    cases = [*text_fields(SnapshotItem), "quality.faults", "quality.extra value", "quality.extra key"]
    for field, (kind, bad) in itertools.product(cases, BAD.items()):
        n = next(_serial)
        made = [make(3 * n + j) for j in range(3)]
        items = [dict(item, width=160, height=120, quality=q) for item, q in made]
        if field == "error":
            # a snapshot that gave no picture: the failure record, its reason spoiled
            failed = {k: items[1][k] for k in ("key", "device_id", "ts")}
            items[1] = dict(failed, key=f"s:fail:{n:08d}", error=spoil("connection refused", bad))
        elif field.startswith("quality."):
            spoil_quality(items[1]["quality"], field.removeprefix("quality."), bad)
        else:
            items[1][field] = spoil(items[1][field], bad)
        r = post_json(client, "/api/v1/ingest/snapshots", {"items": items}, h)
        _check_reply(r, "quality" if field.startswith("quality.") else field, kind)
        want = [items[0]["key"], items[2]["key"]]
        assert _stored(ctx, Snapshot.key, [*want, made[1][0]["key"]]) == set(want), field
    # a key the object store cannot hold is that item's refusal too, not a 422 for the batch
    n = next(_serial)
    items = [dict(item, width=160, height=120, quality=q) for item, q in (make(3 * n), make(3 * n + 2))]
    odd = dict(items[0], key=f"snapshots/{FACE_CAMERA}/../x.jpg")
    body = post_json(client, "/api/v1/ingest/snapshots", {"items": [items[0], odd, items[1]]}, h).json()
    assert body["accepted"] == 2 and body["rejected"][0]["index"] == 1, body
    # JSON has no NaN or Infinity (PostgreSQL's json refuses them): a quality holding one is refused
    for quality in ({"verdict": "ok", "blur": float("nan")}, {"verdict": "ok", "vendor": [float("inf")]}):
        n = next(_serial)
        items = [dict(item, width=160, height=120, quality=q) for item, q in (make(3 * n), make(3 * n + 2))]
        nan = dict(make(3 * n + 1)[0], width=160, height=120, quality=quality)
        body = post_json(client, "/api/v1/ingest/snapshots", {"items": [items[0], nan, items[1]]}, h).json()
        assert body["accepted"] == 2 and body["rejected"][0]["index"] == 1, body
        assert "quality" in body["rejected"][0]["errors"][0], body


VIID_TEXT = (
    "MotorVehicleID",
    "TollgateID",
    "DeviceID",
    "PlateNo",
    "PlateColor",
    "VehicleColor",
    "VehicleClass",
    "StorageUrl1",
    "LaneNo",
    "Speed",
    "Direction",
    "PassTime",
)


def _viid(client: TestClient, token: str, objs: list[Any]) -> Any:
    h = {**auth(token), "Content-Type": "application/VIID+JSON"}
    return client.post(
        "/VIID/MotorVehicles",
        content=json.dumps({"MotorVehicleListObject": {"MotorVehicleObject": objs}}),
        headers=h,
    )


def test_viid_refuses_only_the_object_with_a_bad_character(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    local = (base_time() + dt.timedelta(hours=8)).strftime("%Y%m%d%H%M%S")
    for field, (kind, bad) in itertools.product(VIID_TEXT, BAD.items()):
        n = next(_serial)
        objs = [
            viid_object(f"viid-bad-{3 * n + j:08d}", "粤B12345", local, VehicleClass="K33") for j in range(3)
        ]
        objs[1][field] = spoil(objs[1][field], bad)
        r = _viid(client, tokens["agent"], objs)
        assert r.status_code == 200, r.text
        statuses = r.json()["ResponseStatusListObject"]["ResponseStatusObject"]
        assert [s["StatusCode"] for s in statuses] == [0, 8, 0], (field, kind, statuses)
        assert field in statuses[1]["StatusString"], (field, statuses[1])
        want = [objs[0]["MotorVehicleID"], objs[2]["MotorVehicleID"]]
        assert _stored(ctx, Pass.key, [*want, f"viid-bad-{3 * n + 1:08d}"]) == set(want)


# ---- times: a year a calendar cannot carry is 422 (or an item's refusal), never 500


@pytest.mark.parametrize("route", ["passes", "faces", "phones"])
def test_records_refuse_extreme_times(
    client: TestClient, ctx: AppContext, tokens: dict[str, str], route: str
) -> None:
    seed(ctx)
    _, _, make, key_col = next(c for c in _record_cases() if c[0] == route)
    for when in EXTREME_TIMES:
        n = next(_serial)
        items = [make(3 * n + j, base_time()) for j in range(3)]
        items[1]["ts"] = when
        body = post_json(client, f"/api/v1/ingest/{route}", {"items": items}, auth(tokens["agent"])).json()
        assert body["accepted"] == 2 and body["rejected"][0]["index"] == 1, body
        assert re.search("1970|2201", body["rejected"][0]["errors"][0])
        assert _stored(ctx, key_col, [it["key"] for it in items]) == {items[0]["key"], items[2]["key"]}


def test_observations_and_presign_refuse_extreme_times(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    h = auth(tokens["agent"])
    for when in EXTREME_TIMES:
        item = {"key": "h-extreme-1", "device_id": FACE_CAMERA, "ts": when, "reachable": True}
        body = post_json(client, "/api/v1/ingest/health", {"items": [item]}, h).json()
        assert body["accepted"] == 0 and re.search("1970|2201", body["rejected"][0]["errors"][0]), body
        snap = {"key": f"snapshots/{FACE_CAMERA}/x.jpg", "device_id": FACE_CAMERA, "ts": when}
        snap |= {"sha256": "0" * 64, "width": 1, "height": 1}
        body = post_json(client, "/api/v1/ingest/snapshots", {"items": [snap]}, h).json()
        assert re.search("1970|2201", body["rejected"][0]["errors"][0]), body
        pre = {"device_id": FACE_CAMERA, "ts": when, "sha256": "0" * 64, "size": 10}
        r = post_json(client, "/api/v1/ingest/snapshots/presign", pre, h)
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "ts", r.text


def test_viid_refuses_extreme_pass_times(client: TestClient, ctx: AppContext, tokens: dict[str, str]) -> None:
    seed(ctx)
    objs = [
        viid_object(f"viid-time-{j:08d}", "粤B12345", t)
        for j, t in enumerate(("00010101000000", "99991231235959"))
    ]
    r = _viid(client, tokens["agent"], objs)
    assert r.status_code == 200, r.text
    for s in r.json()["ResponseStatusListObject"]["ResponseStatusObject"]:
        assert s["StatusCode"] == 8 and "PassTime" in s["StatusString"], s


def test_registry_hotlists_and_collision_refuse_extreme_times(
    client: TestClient, tokens: dict[str, str]
) -> None:
    camera = {
        "device_id": "44030500001320000077",
        "name": "c",
        "kind": "dome",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 0,
        "hfov_deg": 90,
        "range_m": 50,
        "point_class": 1,
    }
    hotlist = {
        "name": "h",
        "reason": "r",
        "case_no": "A-2026-001",
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_to": "2026-12-31T00:00:00Z",
        "priority": 1,
        "entries": [{"plate_no": "粤B12345"}],
    }
    window = {"checkpoint_ids": [CP1], "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}
    for when in EXTREME_TIMES:
        cases = [
            ("/api/v1/cameras", "installer", camera | {"install_time": when}, "install_time"),
            ("/api/v1/hotlists", "investigator", hotlist | {"valid_from": when}, "valid_from"),
            ("/api/v1/hotlists", "investigator", hotlist | {"valid_to": when}, "valid_to"),
            (
                "/api/v1/analysis/collision?case_no=A-2026-001",
                "investigator",
                {"windows": [window | {"from": when}]},
                "windows.0.from",
            ),
            (
                "/api/v1/analysis/collision?case_no=A-2026-001",
                "investigator",
                {"windows": [window | {"to": when}]},
                "windows.0.to",
            ),
        ]
        for url, role, body, field in cases:
            r = post_json(client, url, body, auth(tokens[role]))
            assert r.status_code == 422, (url, when, r.text)
            assert field in [e["field"] for e in r.json()["errors"]], (url, when, r.json())


def _sample_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "44030500001320000001", path)


def _get(client: TestClient, tokens: dict[str, str], url: str, params: dict[str, str]) -> Any:
    """The answer to the first role the route admits (401/403 are not answers about the input)."""
    r = None
    for role in ROLES:
        r = client.get(url, params=params, headers=auth(tokens[role]))
        if r.status_code not in (401, 403):
            return r
    return r


def _get_routes(client: TestClient) -> list[tuple[str, list[dict[str, Any]]]]:
    """Every GET route of the API (from its OpenAPI) with its parameters."""
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [(path, ops["get"].get("parameters", [])) for path, ops in spec["paths"].items() if "get" in ops]


def _time_params(client: TestClient) -> list[tuple[str, str]]:
    return [
        (path, p["name"])
        for path, params in _get_routes(client)
        for p in params
        if p["in"] == "query" and "date-time" in json.dumps(p["schema"])
    ]


def test_every_time_query_parameter_refuses_extreme_times(client: TestClient, tokens: dict[str, str]) -> None:
    found = _time_params(client)
    names = set(found)
    # the routes the attack named are among them (the list grows with the API, the check with it)
    assert {("/api/v1/alarms", "since"), ("/api/v1/trajectories/vehicle/{plate_no}", "from")} <= names
    assert len(found) >= 20
    for path, name in found:
        for when in EXTREME_TIMES:
            r = _get(client, tokens, _sample_path(path), {name: when, "case_no": "A-2026-001"})
            assert r.status_code == 422, (path, name, when, r.status_code, r.text)
            assert name in [e["field"] for e in r.json()["errors"]], (path, name, r.json())


# ---- NUL in a URL: 422 before any route


def test_nul_in_any_path_or_query_parameter_is_422(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    tried = 0
    for path, params in _get_routes(client):
        for p in params:
            if p["in"] == "path":
                url = _sample_path(path.replace("{" + p["name"] + "}", "a%00b"))
                r = _get(client, tokens, url, {"case_no": "A-2026-001"})
            elif p["in"] == "query":
                r = _get(client, tokens, _sample_path(path), {"case_no": "A-2026-001", p["name"]: "a\x00b"})
            else:
                continue
            tried += 1
            assert r.status_code == 422, (path, p["name"], r.status_code, r.text)
            assert r.json()["errors"][0]["field"] in (p["name"], "path"), r.json()
    assert tried >= 40
    r = client.get("/console/a%00.js")
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    # an encoded percent sign is no NUL
    r = client.get("/api/v1/cameras", params={"q": "100%00"}, headers=auth(tokens["staff"]))
    assert r.status_code != 422 or r.json()["errors"][0]["field"] != "q"


# ---- deep JSON


def test_deeply_nested_viid_body_is_a_4xx(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    seed(ctx)
    h = {**auth(tokens["agent"]), "Content-Type": "application/VIID+JSON"}
    deep = '{"MotorVehicleListObject": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = client.post("/VIID/MotorVehicles", content=deep, headers=h)
    assert r.status_code == 400, r.text
    status = r.json()["ResponseStatusListObject"]["ResponseStatusObject"][0]
    assert status["StatusCode"] == 7 and "deep" in status["StatusString"]
    # nested just under the parser's limit, in one field of one object: that object is refused
    local = (base_time() + dt.timedelta(hours=8)).strftime("%Y%m%d%H%M%S")
    nested: Any = "粤B12345"
    for _ in range(900):
        nested = [nested]
    objs = [
        viid_object("viid-deep-00000001", "粤B12345", local),
        viid_object("viid-deep-00000002", "x", local),
    ]
    objs[1]["PlateNo"] = nested
    r = _viid(client, tokens["agent"], objs)
    assert r.status_code == 200, r.text
    codes = [s["StatusCode"] for s in r.json()["ResponseStatusListObject"]["ResponseStatusObject"]]
    assert codes == [0, 8]
    # and a native ingest route answers such a body with a 4xx too
    deep = '{"items": ' + "[" * 100_000 + "]" * 100_000 + "}"
    h["Content-Type"] = "application/json"
    r = client.post("/api/v1/ingest/passes", content=deep, headers=h)
    assert 400 <= r.status_code < 500, r.text


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


# cursors a client could forge: a time that overflows, a key with a NUL, an id past 64 bits
FORGED_CURSORS = (
    _b64("0001-01-01T00:00:00+08:00|k-00000001"),
    _b64("2026-01-01T00:00:00+00:00|k\x00"),
    _b64("id:99999999999999999999999"),
    _b64("off:99999999999999999999999"),
)
SAMPLE = {"plate_no": "粤B12345", "person_id": "P-0001", "imsi": "460001234567890"}


def test_forged_cursors_are_422_on_every_paged_route(client: TestClient, tokens: dict[str, str]) -> None:
    paged = [
        (path, params) for path, params in _get_routes(client) if any(p["name"] == "cursor" for p in params)
    ]
    assert len(paged) >= 10
    for path, params in paged:
        url = re.sub(r"\{([^}]+)\}", lambda m: SAMPLE.get(m.group(1), "x"), path)
        required = {p["name"]: SAMPLE[p["name"]] for p in params if p["in"] == "query" and p.get("required")}
        for cursor in FORGED_CURSORS:
            r = _get(client, tokens, url, {**required, "case_no": "A-2026-001", "cursor": cursor})
            assert r.status_code == 422, (path, cursor, r.status_code, r.text)
            assert [e["field"] for e in r.json()["errors"]] == ["cursor"], (path, r.json())


def test_the_agent_escapes_what_a_device_said_in_its_health_reports() -> None:
    from edge_agent.devices.errors import BadAnswer
    from edge_agent.observe import _error

    said = _error(BadAnswer("fault string: \x00\x1b[31m\ud800"))
    item = HealthItem(key="h-agent-00000001", device_id="d1", ts=base_time(), reachable=False, error=said)
    assert (
        item.error is not None and "\\x00" in item.error and "\\x1b" in item.error and "\\ud800" in item.error
    )


def test_hotlists_refuse_text_a_database_cannot_store(client: TestClient, tokens: dict[str, str]) -> None:
    hotlist = {
        "name": "h",
        "reason": "r",
        "case_no": "A-2026-001",
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_to": "2026-12-31T00:00:00Z",
        "priority": 1,
    }
    entry = {"plate_no": "粤B12345", "note": "seen near the port"}
    h = auth(tokens["investigator"])
    for kind, bad in BAD.items():
        cases = [(hotlist | {f: spoil(hotlist[f], bad)}, [entry], f) for f in ("name", "reason", "case_no")]
        cases += [(hotlist, [entry | {f: spoil(entry[f], bad)}], f"entries.0.{f}") for f in entry]
        cases += [(hotlist, [{"person_id": spoil("P-0001", bad)}], "entries.0.person_id")]
        for body, entries, field in cases:
            r = post_json(client, "/api/v1/hotlists", body | {"entries": entries}, h)
            assert r.status_code == 422, (field, kind, r.text)
            assert field in [e["field"] for e in r.json()["errors"]], (field, kind, r.json())
    r = post_json(client, "/api/v1/hotlists", hotlist | {"reason": "two\nlines", "entries": [entry]}, h)
    assert r.status_code == 201, r.text


def test_agent_heartbeat_and_command_result_refuse_bad_characters(
    client: TestClient, tokens: dict[str, str]
) -> None:
    """The agent's own wire fields: a NUL in a heartbeat's version or a command result is a 422 naming
    the field, never a 500 from the database (PostgreSQL refuses NUL in text)."""
    h = auth(tokens["agent"])
    for bad in ("\x00", "\x07", "\ud800"):
        hb = {"agent_id": "edge-bad-1", "version": "1.0" + bad, "capacity": 10, "zones": ["*"]}
        r = post_json(client, "/api/v1/agents/heartbeat", hb, h)
        assert r.status_code == 422 and "version" in r.text, r.text
        res = {"ok": False, "error": "boom" + bad}
        r = post_json(client, "/api/v1/agents/commands/1/result", res, h)
        assert r.status_code == 422 and "error" in r.text, r.text
        res = {"ok": True, "result": {"note": "x" + bad}}
        r = post_json(client, "/api/v1/agents/commands/1/result", res, h)
        assert r.status_code == 422 and "result" in r.text, r.text
