"""Per-device evidence for people: health history, snapshots (short-lived URLs), the open fault list."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select

from tianwang import clock
from tianwang.api.deps import DB, HUMANS, Ctx, require
from tianwang.cameras import service
from tianwang.errors import ValidationFailed
from tianwang.storage.models import Camera, Checkpoint, HealthObservation, Role, Snapshot, StreamCheck

router = APIRouter(prefix="/api/v1", tags=["evidence"])
Limit = Annotated[int, Query(ge=1, le=1000)]
READ = [Depends(require(*HUMANS))]


def _window(frm: dt.datetime | None, to: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    to = to or clock.now()
    frm = frm or to - dt.timedelta(days=1)
    for name, t in (("from", frm), ("to", to)):
        if t.tzinfo is None:
            raise ValidationFailed(
                f"{name} needs a UTC offset", errors=[{"field": name, "message": "naive time"}]
            )
    if frm > to:
        raise ValidationFailed("from is after to", errors=[{"field": "from", "message": "after to"}])
    return frm, to


class HealthOut(BaseModel):
    ts: dt.datetime
    reachable: bool
    authenticated: bool | None
    latency_ms: float | None
    clock_skew_s: float | None
    stream_ok: bool | None
    error: str | None
    agent: str | None


@router.get(
    "/cameras/{device_id}/health", response_model=list[HealthOut], dependencies=[Depends(require(*HUMANS))]
)
def camera_health(
    device_id: str,
    db: DB,
    frm: Annotated[dt.datetime | None, Query(alias="from")] = None,
    to: dt.datetime | None = None,
    limit: Limit = 1000,
) -> list[HealthOut]:
    service.get_row(db, device_id)
    f, t = _window(frm, to)
    rows = db.scalars(
        select(HealthObservation)
        .where(HealthObservation.device_id == device_id, HealthObservation.ts >= f, HealthObservation.ts <= t)
        .order_by(HealthObservation.ts.desc())
        .limit(limit)
    )
    return [HealthOut.model_validate(r, from_attributes=True) for r in rows]


class StreamCheckOut(BaseModel):
    ts: dt.datetime
    ok: bool
    faults: list[str]
    codec: str | None
    width: int | None
    height: int | None
    fps: float | None
    bitrate_kbps: float | None
    declared: dict[str, Any] | None
    measured: dict[str, Any] | None
    error: str | None
    agent: str | None


@router.get(
    "/cameras/{device_id}/streams",
    response_model=list[StreamCheckOut],
    dependencies=[Depends(require(*HUMANS))],
)
def camera_streams(
    device_id: str,
    db: DB,
    frm: Annotated[dt.datetime | None, Query(alias="from")] = None,
    to: dt.datetime | None = None,
    limit: Limit = 1000,
) -> list[StreamCheckOut]:
    """The stored stream checks (码流检测): measured against the profile the camera declared."""
    service.get_row(db, device_id)
    f, t = _window(frm, to)
    rows = db.scalars(
        select(StreamCheck)
        .where(StreamCheck.device_id == device_id, StreamCheck.ts >= f, StreamCheck.ts <= t)
        .order_by(StreamCheck.ts.desc())
        .limit(limit)
    )
    return [StreamCheckOut.model_validate(r, from_attributes=True) for r in rows]


class SnapshotOut(BaseModel):
    key: str
    ts: dt.datetime
    width: int
    height: int
    quality: dict[str, Any] | None
    url: str


@router.get(
    "/cameras/{device_id}/snapshots",
    response_model=list[SnapshotOut],
    dependencies=[Depends(require(*HUMANS))],
)
def camera_snapshots(
    device_id: str,
    db: DB,
    ctx: Ctx,
    frm: Annotated[dt.datetime | None, Query(alias="from")] = None,
    to: dt.datetime | None = None,
    limit: Limit = 100,
) -> list[SnapshotOut]:
    service.get_row(db, device_id)
    f, t = _window(frm, to)
    rows = db.scalars(
        select(Snapshot)
        .where(Snapshot.device_id == device_id, Snapshot.ts >= f, Snapshot.ts <= t)
        .order_by(Snapshot.ts.desc())
        .limit(limit)
    )
    ttl = min(ctx.settings.presign_expiry_s, 900)
    return [
        SnapshotOut(
            key=r.key,
            ts=r.ts,
            width=r.width,
            height=r.height,
            quality=r.quality,
            url=ctx.store.presigned_get(r.key, ttl),
        )
        for r in rows
    ]


class FaultOut(BaseModel):
    device_id: str
    kind: str
    name: str
    area_code: str
    status: str
    since: dt.datetime | None
    reason: str | None
    last_seen: dt.datetime | None
    last_checked: dt.datetime | None
    last_snapshot_key: str | None
    # the latest stream check's faults ([] passed, None never checked): the `stream` fault's evidence
    stream_faults: list[str] | None = None


@router.get("/faults", response_model=list[FaultOut], dependencies=[Depends(require(Role.staff))])
def faults(
    db: DB,
    status: Annotated[str, Query(pattern="^(open)$")] = "open",
    area_code: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
    limit: Limit = 1000,
) -> list[FaultOut]:
    """Devices offline or failing diagnosis, with since when and the evidence that says so."""
    out: list[FaultOut] = []
    cams = select(Camera).where(Camera.status.in_(("offline", "fault")), Camera.lifecycle == "in_use")
    if area_code:
        cams = cams.where(Camera.area_code.startswith(area_code))
    for c in db.scalars(cams.order_by(Camera.status_since).limit(limit)):
        out.append(
            FaultOut(
                device_id=c.device_id,
                kind=c.kind,
                name=c.name,
                area_code=c.area_code,
                status=c.status,
                since=c.status_since,
                reason=c.status_reason,
                last_seen=c.last_seen,
                last_checked=c.last_checked,
                last_snapshot_key=c.last_snapshot_key,
                stream_faults=c.last_stream_faults,
            )
        )
    cps = select(Checkpoint).where(Checkpoint.status.in_(("offline", "fault")))
    if area_code:
        cps = cps.where(Checkpoint.area_code.startswith(area_code))
    for p in db.scalars(cps.order_by(Checkpoint.status_since).limit(limit)):
        out.append(
            FaultOut(
                device_id=p.checkpoint_id,
                kind="checkpoint",
                name=p.name,
                area_code=p.area_code,
                status=p.status,
                since=p.status_since,
                reason=p.status_reason,
                last_seen=p.last_seen,
                last_checked=p.last_checked,
                last_snapshot_key=None,
            )
        )
    return out[:limit]
