"""The stream check as central evidence: stored per check, the `stream` fault derived from the latest
one (pure, with its reason), shown in /faults and in the camera's stream history; idempotent."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import auth
from tests.test_evidence import CAM, ev, health, register
from tianwang.cameras.stream import stream_reason


def check(i: int, ts: dt.datetime, faults: list[str], **over: Any) -> dict[str, Any]:
    return {
        "key": f"v-{CAM}-{i:06d}",
        "device_id": CAM,
        "ts": ts.isoformat(),
        "ok": not faults,
        "faults": faults,
        "declared": {"encoding": "H264", "width": 1280, "height": 720, "fps": 25, "bitrate_kbps": 4096},
        "measured": {
            "codec": "h264",
            "width": 1280,
            "height": 720,
            "fps": 5.0 if "low_fps" in faults else 25.0,
            "bitrate_kbps": 2100.5,
            "gop_frames": 50,
            "frames": 75,
            "seconds": 3.0,
        },
        **over,
    }


def test_the_stream_fault_is_derived_from_the_latest_check_with_its_reason() -> None:
    assert stream_reason(None) is None and stream_reason([]) is None
    reason = stream_reason(["low_fps", "frozen"])
    assert reason is not None and "frame rate below the profile, frozen picture" in reason
    v = ev(stream=reason)
    assert v.status == "fault" and v.reason == reason
    assert ev(stream=None).status == "online"
    # an offline camera is offline, whatever its last stream check said
    assert ev(stream=reason, failures=3, last_error="refused").status == "offline"
    v = ev(stream=stream_reason(["no_stream"], "unreachable: 404 Not Found"))
    assert v.status == "fault" and "no stream" in v.reason and "404" in v.reason


def test_stream_checks_are_stored_drive_the_status_and_show_in_faults(
    client: TestClient, tokens: dict[str, str]
) -> None:
    register(client, tokens)
    h, staff = auth(tokens["agent"]), auth(tokens["staff"])
    now = dt.datetime.now(dt.UTC)
    r = client.post(
        "/api/v1/ingest/health", json={"items": [health(0, now - dt.timedelta(seconds=30))]}, headers=h
    )
    assert r.json()["accepted"] == 1
    assert client.get(f"/api/v1/cameras/{CAM}", headers=staff).json()["status"] == "online"

    items = [check(1, now - dt.timedelta(seconds=20), ["low_fps"])]
    r = client.post("/api/v1/ingest/streams", json={"items": items}, headers=h)
    assert r.status_code == 200 and r.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert client.post("/api/v1/ingest/streams", json={"items": items}, headers=h).json()["duplicates"] == 1
    cam = client.get(f"/api/v1/cameras/{CAM}", headers=staff).json()
    assert cam["status"] == "fault" and "frame rate below the profile" in cam["status_reason"]
    faults = client.get("/api/v1/faults", headers=staff).json()
    assert [(f["device_id"], f["stream_faults"]) for f in faults] == [(CAM, ["low_fps"])]
    hist = client.get(f"/api/v1/cameras/{CAM}/streams", headers=staff).json()
    assert len(hist) == 1 and hist[0]["fps"] == 5.0 and hist[0]["faults"] == ["low_fps"]
    assert hist[0]["declared"]["fps"] == 25 and hist[0]["measured"]["gop_frames"] == 50

    # bad items are refused one by one: an unknown fault name, a device not registered
    bad = [
        check(2, now - dt.timedelta(seconds=15), ["melted"]),
        dict(check(3, now - dt.timedelta(seconds=15), []), device_id="44030500001320099999"),
    ]
    r = client.post("/api/v1/ingest/streams", json={"items": bad}, headers=h).json()
    assert r["accepted"] == 0 and [x["index"] for x in r["rejected"]] == [0, 1]

    # a good check clears the fault; an older one replayed late does not bring it back
    r = client.post(
        "/api/v1/ingest/streams", json={"items": [check(4, now - dt.timedelta(seconds=10), [])]}, headers=h
    )
    assert r.json()["accepted"] == 1
    assert client.get(f"/api/v1/cameras/{CAM}", headers=staff).json()["status"] == "online"
    late = [check(5, now - dt.timedelta(hours=1), ["black"])]
    assert client.post("/api/v1/ingest/streams", json={"items": late}, headers=h).json()["accepted"] == 1
    assert client.get(f"/api/v1/cameras/{CAM}", headers=staff).json()["status"] == "online"
    assert client.get("/api/v1/faults", headers=staff).json() == []
    # only agents report
    assert client.post("/api/v1/ingest/streams", json={"items": items}, headers=staff).status_code == 403
