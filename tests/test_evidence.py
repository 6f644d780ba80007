"""Device status derived from stored evidence: health and snapshot ingest, idempotency, faults, sweep."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import cv2
import numpy as np
from fastapi.testclient import TestClient

from tests.conftest import auth
from tianwang.cameras.evidence import derive_status, sweep
from tianwang.context import AppContext

NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
CAM = "44030500001320000001"


def ev(**over: Any) -> Any:
    base: dict[str, Any] = {
        "now": NOW,
        "interval_s": 60,
        "allowed_misses": 3,
        "current": "online",
        "last_checked": NOW - dt.timedelta(seconds=30),
        "failures": 0,
        "last_authenticated": True,
        "last_error": None,
        "verdict": "ok",
        "faults": [],
    }
    base.update(over)
    return derive_status(**base)


def test_derive_status_rules() -> None:
    assert ev(last_checked=None).status == "registered"
    assert ev().status == "online"
    v = ev(last_checked=NOW - dt.timedelta(seconds=181))
    assert v.status == "offline" and "no report" in v.reason and "3 checks" in v.reason
    assert ev(failures=2, last_error="timeout").status == "online"  # within the allowed misses
    v = ev(failures=3, last_error="connection refused")
    assert v.status == "offline" and "connection refused" in v.reason
    assert ev(last_authenticated=False).status == "fault"
    v = ev(verdict="fault", faults=["blur", "noise"])
    assert v.status == "fault" and "blur, noise" in v.reason


def register(client: TestClient, tokens: dict[str, str]) -> None:
    body = {
        "device_id": CAM,
        "name": "c",
        "kind": "dome",
        "lon": 114.05,
        "lat": 22.54,
        "heading_deg": 0,
        "hfov_deg": 90,
        "range_m": 50,
        "point_class": 1,
        "health_interval_s": 60,
    }
    assert client.post("/api/v1/cameras", json=body, headers=auth(tokens["installer"])).status_code == 201


def health(i: int, ts: dt.datetime, reachable: bool = True, **over: Any) -> dict[str, Any]:
    return {
        "key": f"h-{CAM}-{i:06d}",
        "device_id": CAM,
        "ts": ts.isoformat(),
        "reachable": reachable,
        "authenticated": reachable,
        "latency_ms": 12.5,
        "error": None if reachable else "connect timeout",
        **over,
    }


def test_health_ingest_is_idempotent_and_drives_status(client: TestClient, tokens: dict[str, str]) -> None:
    register(client, tokens)
    h = auth(tokens["agent"])
    now = dt.datetime.now(dt.UTC)
    items = [health(0, now - dt.timedelta(seconds=50))]
    r = client.post("/api/v1/ingest/health", json={"items": items}, headers=h)
    assert r.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert client.post("/api/v1/ingest/health", json={"items": items}, headers=h).json()["duplicates"] == 1
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert cam["status"] == "online" and cam["last_seen"]
    # a mixed batch: bad items are listed, good ones stored
    mixed = [
        health(1, now - dt.timedelta(seconds=40), reachable=False),
        {"key": "bad", "device_id": CAM},
        dict(health(2, now), device_id="44030500001320099999"),
        dict(health(3, now), ts="2026-11-22T08:00:00"),
        health(4, now - dt.timedelta(seconds=30), reachable=False),
        health(5, now - dt.timedelta(seconds=20), reachable=False),
    ]
    r = client.post("/api/v1/ingest/health", json={"items": mixed}, headers=h).json()
    assert r["accepted"] == 3 and [x["index"] for x in r["rejected"]] == [1, 2, 3]
    assert "not registered" in r["rejected"][1]["errors"][0]
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert cam["status"] == "offline" and "3 checks" in cam["status_reason"]
    faults = client.get("/api/v1/faults", headers=auth(tokens["staff"])).json()
    assert [f["device_id"] for f in faults] == [CAM] and faults[0]["since"]
    hist = client.get(f"/api/v1/cameras/{CAM}/health", headers=auth(tokens["staff"])).json()
    assert len(hist) == 4 and hist[0]["reachable"] is False
    # an old observation replayed late is stored but does not rewrite the present
    late = [health(9, now - dt.timedelta(hours=1))]
    assert client.post("/api/v1/ingest/health", json={"items": late}, headers=h).json()["accepted"] == 1
    assert client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()["status"] == "offline"
    for role in ("staff", "installer", "admin"):
        assert (
            client.post(
                "/api/v1/ingest/health", json={"items": items}, headers=auth(tokens[role])
            ).status_code
            == 403
        )


def jpeg() -> bytes:
    img = np.zeros((120, 160, 3), np.uint8)
    cv2.putText(img, "tw", (20, 70), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def test_snapshot_presign_upload_ingest_and_fault(client: TestClient, tokens: dict[str, str]) -> None:
    register(client, tokens)
    h = auth(tokens["agent"])
    now = dt.datetime.now(dt.UTC)
    client.post("/api/v1/ingest/health", json={"items": [health(0, now)]}, headers=h)
    data = jpeg()
    sha = hashlib.sha256(data).hexdigest()
    pre = client.post(
        "/api/v1/ingest/snapshots/presign",
        json={"device_id": CAM, "ts": now.isoformat(), "sha256": sha, "size": len(data)},
        headers=h,
    ).json()
    assert pre["key"].startswith(f"snapshots/{CAM}/{now:%Y/%m/%d}/")
    item = {
        "key": pre["key"],
        "device_id": CAM,
        "ts": now.isoformat(),
        "sha256": sha,
        "width": 160,
        "height": 120,
    }
    item["quality"] = {"blur": 0.9, "verdict": "fault", "faults": ["blur"]}
    # not uploaded yet: refused, nothing stored
    r = client.post("/api/v1/ingest/snapshots", json={"items": [item]}, headers=h).json()
    assert r["accepted"] == 0 and "upload" in r["rejected"][0]["errors"][0]
    put = client.put(
        pre["url"].replace("http://testserver", ""), content=data, headers={"Content-Type": "image/jpeg"}
    )
    assert put.status_code == 200, put.text
    wrong = dict(item, sha256="0" * 64)
    r = client.post("/api/v1/ingest/snapshots", json={"items": [wrong]}, headers=h).json()
    assert "sha256" in r["rejected"][0]["errors"][0]
    r = client.post("/api/v1/ingest/snapshots", json={"items": [item, item]}, headers=h).json()
    assert r["accepted"] == 1 and r["duplicates"] == 1
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert cam["status"] == "fault" and "blur" in cam["status_reason"]
    snaps = client.get(f"/api/v1/cameras/{CAM}/snapshots", headers=auth(tokens["staff"])).json()
    assert snaps[0]["quality"]["verdict"] == "fault"
    got = client.get(snaps[0]["url"].replace("http://testserver", ""))
    assert got.status_code == 200 and got.content == data
    # a good picture clears the picture fault
    later = now + dt.timedelta(seconds=5)
    data2 = data + b"\x00"
    pre2 = client.post(
        "/api/v1/ingest/snapshots/presign",
        json={
            "device_id": CAM,
            "ts": later.isoformat(),
            "sha256": hashlib.sha256(data2).hexdigest(),
            "size": len(data2),
        },
        headers=h,
    ).json()
    client.put(pre2["url"].replace("http://testserver", ""), content=data2)
    ok = dict(item, key=pre2["key"], ts=later.isoformat(), sha256=hashlib.sha256(data2).hexdigest())
    ok["quality"] = {"verdict": "ok", "faults": []}
    assert client.post("/api/v1/ingest/snapshots", json={"items": [ok]}, headers=h).json()["accepted"] == 1
    assert client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()["status"] == "online"
    other = dict(ok, device_id="44030500001320000002")
    assert "not registered" in str(
        client.post("/api/v1/ingest/snapshots", json={"items": [other]}, headers=h).json()
    )


def test_sweep_marks_silent_devices_offline(
    client: TestClient, tokens: dict[str, str], ctx: AppContext
) -> None:
    register(client, tokens)
    now = dt.datetime.now(dt.UTC)
    client.post("/api/v1/ingest/health", json={"items": [health(0, now)]}, headers=auth(tokens["agent"]))
    with ctx.db.session() as s:
        assert sweep(s, 3, now=now + dt.timedelta(seconds=60)) == 0
        assert sweep(s, 3, now=now + dt.timedelta(seconds=200)) == 1
        assert sweep(s, 3, now=now + dt.timedelta(seconds=300)) == 0
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert cam["status"] == "offline" and "no report" in cam["status_reason"]


def test_a_failed_commit_is_not_acknowledged(
    client: TestClient, tokens: dict[str, str], ctx: AppContext, monkeypatch: Any
) -> None:
    """The agent deletes what the API acknowledged: a 200 must mean the rows are committed."""
    from sqlalchemy import event, func, select

    from tianwang.cameras import evidence
    from tianwang.storage.models import HealthObservation

    register(client, tokens)
    original = evidence.ingest_health

    def ingest_then_doom(session: Any, *a: Any, **kw: Any) -> Any:
        session.info["doom"] = True
        return original(session, *a, **kw)

    def before_commit(session: Any) -> None:
        if session.info.pop("doom", False):
            raise RuntimeError("disk full")

    monkeypatch.setattr(evidence, "ingest_health", ingest_then_doom)
    event.listen(ctx.db.sessions, "before_commit", before_commit)
    try:
        r = client.post(
            "/api/v1/ingest/health",
            json={"items": [health(0, dt.datetime.now(dt.UTC))]},
            headers=auth(tokens["agent"]),
        )
    finally:
        event.remove(ctx.db.sessions, "before_commit", before_commit)
    assert r.status_code == 500
    with ctx.db.session() as s:
        assert s.scalar(select(func.count()).select_from(HealthObservation)) == 0


def test_object_store_outage_is_503_not_a_rejection(
    client: TestClient, tokens: dict[str, str], ctx: AppContext, monkeypatch: Any
) -> None:
    from tianwang.storage.objectstore import ObjectStoreUnavailable

    register(client, tokens)

    def down(key: str) -> Any:
        raise ObjectStoreUnavailable("connection refused")

    monkeypatch.setattr(ctx.store, "stat", down)
    now = dt.datetime.now(dt.UTC)
    item = {"key": f"snapshots/{CAM}/x.jpg", "device_id": CAM, "ts": now.isoformat(), "sha256": "a" * 64}
    r = client.post(
        "/api/v1/ingest/snapshots",
        json={"items": [item | {"width": 4, "height": 4}]},
        headers=auth(tokens["agent"]),
    )
    assert r.status_code == 503 and r.json()["status"] == 503


def test_stored_snapshots_cannot_be_replaced_or_served_as_pages(
    client: TestClient, tokens: dict[str, str]
) -> None:
    register(client, tokens)
    h = auth(tokens["agent"])
    now = dt.datetime.now(dt.UTC)
    data = jpeg()
    sha = hashlib.sha256(data).hexdigest()
    ask = {"device_id": CAM, "ts": now.isoformat(), "sha256": sha, "size": len(data)}
    pre = client.post("/api/v1/ingest/snapshots/presign", json=ask, headers=h).json()
    assert (
        client.put(
            pre["url"].replace("http://testserver", ""), content=data, headers={"Content-Type": "image/jpeg"}
        ).status_code
        == 200
    )
    # the same bytes again: fine (a retried upload); other bytes under the same key: refused
    assert client.post("/api/v1/ingest/snapshots/presign", json=ask, headers=h).status_code == 200
    other = dict(ask, sha256="b" * 64)
    assert client.post("/api/v1/ingest/snapshots/presign", json=other, headers=h).status_code == 409
    # an uploaded page is kept as opaque bytes, never served as HTML
    page = b"<script>alert(1)</script>"
    later = dict(ask, ts=(now + dt.timedelta(seconds=1)).isoformat(), sha256=hashlib.sha256(page).hexdigest())
    url = client.post("/api/v1/ingest/snapshots/presign", json=later, headers=h).json()["url"]
    put = client.put(
        url.replace("http://testserver", ""), content=page, headers={"Content-Type": "text/html"}
    )
    assert put.status_code == 200
    snaps_key = url.split("/objects/tianwang/")[1].split("?")[0]
    from urllib.parse import unquote

    from tianwang.storage.objectstore import DirectoryStore

    store = client.app.state.ctx.store  # type: ignore[attr-defined]
    assert isinstance(store, DirectoryStore)
    got = client.get(store.presigned_get(unquote(snaps_key), 60).replace("http://testserver", ""))
    assert (
        got.headers["content-type"] == "application/octet-stream"
        and got.headers["x-content-type-options"] == "nosniff"
    )


def test_future_observations_are_refused_and_do_not_freeze_status(
    client: TestClient, tokens: dict[str, str]
) -> None:
    """A 2099 health reading (an agent's clock gone wrong) must not keep a camera online forever."""
    register(client, tokens)
    h = auth(tokens["agent"])
    now = dt.datetime.now(dt.UTC)
    future = [
        health(0, dt.datetime(2099, 1, 1, tzinfo=dt.UTC)),
        health(1, now + dt.timedelta(minutes=50)),  # within the hour's tolerance: a skewed clock
    ]
    r = client.post("/api/v1/ingest/health", json={"items": future}, headers=h).json()
    assert r["accepted"] == 1 and [x["index"] for x in r["rejected"]] == [0]
    assert "more than an hour in the future" in r["rejected"][0]["errors"][0]
    # later real failures still count: the device goes offline
    down = [health(i, now + dt.timedelta(minutes=50, seconds=i), reachable=False) for i in range(2, 5)]
    assert client.post("/api/v1/ingest/health", json={"items": down}, headers=h).json()["accepted"] == 3
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=auth(tokens["staff"])).json()
    assert cam["status"] == "offline" and "2099" not in cam["status_reason"]
    snap = {
        "key": f"snapshots/{CAM}/2099/01/01/x.jpg",
        "device_id": CAM,
        "ts": "2099-01-01T00:00:00+00:00",
        "sha256": "0" * 64,
        "width": 160,
        "height": 120,
    }
    r = client.post("/api/v1/ingest/snapshots", json={"items": [snap]}, headers=h).json()
    assert r["accepted"] == 0 and "future" in r["rejected"][0]["errors"][0]
