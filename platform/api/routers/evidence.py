"""Per-device evidence for people: health history, snapshots (short-lived URLs), the open fault list."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import case, func, or_, select

from tianwang import clock
from tianwang.api.deps import DB, HUMANS, Ctx, require
from tianwang.cameras import service
from tianwang.cameras.evidence import clock_fault, open_faults
from tianwang.errors import ValidationFailed
from tianwang.protocol.fields import Instant
from tianwang.protocol.ingest import IMAGE_TYPES
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
    frm: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None,
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
    frm: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None,
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
    """A picture (with a short-lived URL and its content type), or a snapshot that failed (`error`)."""

    key: str
    ts: dt.datetime
    width: int | None
    height: int | None
    quality: dict[str, Any] | None
    url: str | None
    content_type: str | None = None
    error: str | None = None


def _content_type(key: str) -> str | None:
    ext = key.rsplit(".", 1)[-1].lower() if "." in key else ""
    return next((t for t, e in IMAGE_TYPES.items() if e == ext), None)


@router.get(
    "/cameras/{device_id}/snapshots",
    response_model=list[SnapshotOut],
    dependencies=[Depends(require(*HUMANS))],
)
def camera_snapshots(
    device_id: str,
    db: DB,
    ctx: Ctx,
    frm: Annotated[Instant | None, Query(alias="from")] = None,
    to: Instant | None = None,
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
            url=None if r.error is not None else ctx.store.presigned_get(r.key, ttl),
            content_type=None if r.error is not None else _content_type(r.key),
            error=r.error,
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
    # the open faults by name (offline, auth, no_picture, blur…, clock) and the clock's evidence
    faults: list[str] = []
    clock_skew_s: float | None = None
    # the latest stream check's faults ([] passed, None never checked): the `stream` fault's evidence
    stream_faults: list[str] | None = None


@router.get("/faults", response_model=list[FaultOut], dependencies=[Depends(require(Role.staff))])
def faults(
    db: DB,
    ctx: Ctx,
    status: Annotated[str, Query(pattern="^(open)$")] = "open",
    area_code: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
    limit: Limit = 1000,
) -> list[FaultOut]:
    """Devices offline or faulty, or online with a wrong clock, with since when and the evidence."""
    out: list[FaultOut] = []
    misses = ctx.settings.allowed_snapshot_misses
    cams = select(Camera).where(
        or_(Camera.status.in_(("offline", "fault")), Camera.clock_fault_since.is_not(None)),
        Camera.lifecycle == "in_use",
    )
    if area_code:
        cams = cams.where(Camera.area_code.startswith(area_code))
    since = func.coalesce(
        case((Camera.status.in_(("offline", "fault")), Camera.status_since)), Camera.clock_fault_since
    )
    for c in db.scalars(cams.order_by(since).limit(limit)):
        by_status = c.status in ("offline", "fault")
        clock = clock_fault(c.clock_skew_s, ctx.settings.max_clock_skew_s) if c.clock_fault_since else None
        reasons = [r for r in (c.status_reason if by_status else None, clock) if r]
        out.append(
            FaultOut(
                device_id=c.device_id,
                kind=c.kind,
                name=c.name,
                area_code=c.area_code,
                status=c.status,
                since=c.status_since if by_status else c.clock_fault_since,
                reason="; ".join(reasons) or None,
                last_seen=c.last_seen,
                last_checked=c.last_checked,
                last_snapshot_key=c.last_snapshot_key,
                faults=open_faults(c, misses),
                clock_skew_s=c.clock_skew_s,
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
                faults=open_faults(p, misses),
            )
        )
    return out[:limit]
