"""Credentials inside registry URLs (rtsp://user:password@…, http://user:password@…/snapshot) are
split out and encrypted like the ONVIF password: the URL is stored, returned and exported without
them, and only the owning agent's assignment (and the probe) gets them back."""

from __future__ import annotations

import io
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, text

from tests.conftest import auth
from tests.test_registry_cameras import CAM_ID, body
from tianwang.agents.service import assignments_for, record_heartbeat
from tianwang.auth.tokens import authenticate
from tianwang.context import AppContext
from tianwang.protocol.agents import Heartbeat
from tianwang.storage.models import Camera

RTSP = "rtsp://admin:Rtsp-Secret-1@10.1.2.3:554/Streaming/Channels/101"
SNAP = "http://viewer:Snap-Secret-2@10.1.2.3/ISAPI/Streaming/channels/101/picture"
SECRETS = ("Rtsp-Secret-1", "Snap-Secret-2")


def _assignment(ctx: AppContext, tokens: dict[str, str]) -> Any:
    with ctx.db.session() as s:
        record_heartbeat(
            s,
            Heartbeat(agent_id="edge-cred-1", version="t", capacity=10, zones=["*"]),
            authenticate(s, tokens["agent"]),
        )
        s.commit()
        (a,) = [a for a in assignments_for(s, "edge-cred-1", ctx.box) if a.device_id == CAM_ID]
        return a


def _stored(ctx: AppContext) -> Camera:
    with ctx.db.session() as s:
        row = s.scalars(select(Camera).where(Camera.device_id == CAM_ID)).one()
        s.expunge(row)
        return row


def test_url_credentials_are_kept_apart_and_encrypted(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    h = auth(tokens["installer"])
    r = client.post("/api/v1/cameras", json=body(rtsp_url=RTSP, snapshot_url=SNAP), headers=h)
    assert r.status_code == 201, r.text
    shown = r.json()
    assert shown["rtsp_url"] == "rtsp://10.1.2.3:554/Streaming/Channels/101"
    assert shown["snapshot_url"] == "http://10.1.2.3/ISAPI/Streaming/channels/101/picture"
    for role in ("staff", "installer", "admin", "investigator"):
        got = client.get(f"/api/v1/cameras/{CAM_ID}", headers=auth(tokens[role]))
        assert got.status_code in (200, 403) and not any(x in got.text for x in SECRETS)
    row = _stored(ctx)
    assert row.rtsp_url == shown["rtsp_url"] and row.url_credentials_enc is not None
    assert not any(x.encode() in row.url_credentials_enc for x in SECRETS)  # encrypted, not encoded
    export = client.get("/api/v1/cameras/export?format=csv", headers=auth(tokens["staff"]))
    assert export.status_code == 200 and "10.1.2.3:554" in export.text
    assert not any(x in export.text for x in SECRETS)
    # the agent gets the URLs as the device needs them
    a = _assignment(ctx, tokens)
    assert a.rtsp_url == RTSP and a.snapshot_url == SNAP

    # a URL given again without credentials at the same host keeps them (as the password is kept)
    same = "rtsp://10.1.2.3:554/Streaming/Channels/102"
    r = client.patch(f"/api/v1/cameras/{CAM_ID}", json={"rtsp_url": same}, headers=h)
    assert r.status_code == 200, r.text
    assert (
        _assignment(ctx, tokens).rtsp_url == "rtsp://admin:Rtsp-Secret-1@10.1.2.3:554/Streaming/Channels/102"
    )
    # one pointing elsewhere never takes them along (nor the ONVIF password: that must be given)
    moved = "rtsp://10.9.9.9:554/live"
    onvif = {"host": "10.1.2.3", "port": 80, "username": "admin", "password": "s3cret-pass"}
    r = client.patch(f"/api/v1/cameras/{CAM_ID}", json={"rtsp_url": moved, "onvif": onvif}, headers=h)
    assert r.status_code == 200, r.text
    a = _assignment(ctx, tokens)
    assert a.rtsp_url == moved and a.snapshot_url == SNAP
    # removing the URLs removes their credentials
    r = client.patch(
        f"/api/v1/cameras/{CAM_ID}", json={"rtsp_url": None, "snapshot_url": None, "onvif": onvif}, headers=h
    )
    assert r.status_code == 200, r.text
    assert _stored(ctx).url_credentials_enc is None


def test_a_sheet_with_credentials_in_urls_imports_them_apart(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    sheet = (
        "设备编码,设备名称,设备类型,经度,纬度,监视方向,水平视场角,监视距离,点位类型,RTSP地址,抓图地址\n"
        f"{CAM_ID},福田路口,枪机,114.05,22.54,90,60,80,一类,{RTSP},{SNAP}\n"
    ).encode()
    h = auth(tokens["staff"])
    files = {"file": ("cams.csv", io.BytesIO(sheet), "text/csv")}
    r = client.post("/api/v1/cameras/import", files=files, headers=h)
    assert r.status_code == 200 and r.json()["created"] == 1, r.text
    row = _stored(ctx)
    assert "@" not in (row.rtsp_url or "") and "@" not in (row.snapshot_url or "")
    assert _assignment(ctx, tokens).rtsp_url == RTSP
    # the same sheet again changes nothing (the encrypted bytes are kept, not re-made)
    files = {"file": ("cams.csv", io.BytesIO(sheet), "text/csv")}
    r = client.post("/api/v1/cameras/import", files=files, headers=h)
    assert r.status_code == 200 and r.json()["unchanged"] == 1, r.text


def test_urls_stored_with_credentials_before_are_sealed_at_start(
    client: TestClient, ctx: AppContext, tokens: dict[str, str]
) -> None:
    from tianwang.cameras.service import seal_url_credentials

    r = client.post("/api/v1/cameras", json=body(), headers=auth(tokens["installer"]))
    assert r.status_code == 201, r.text
    with ctx.db.session() as s:  # as an older version stored it
        s.execute(text("UPDATE cameras SET rtsp_url = :u WHERE device_id = :d"), {"u": RTSP, "d": CAM_ID})
        s.commit()
        assert seal_url_credentials(s, ctx.box) == 1
        s.commit()
        assert seal_url_credentials(s, ctx.box) == 0  # idempotent
    assert _stored(ctx).rtsp_url == "rtsp://10.1.2.3:554/Streaming/Channels/101"
    assert _assignment(ctx, tokens).rtsp_url == RTSP
