"""Trajectories (三轨: vehicle, person, phone), each call audited with its case number; the audit read."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response

from tianwang import audit
from tianwang.api.audit import Audited, audited
from tianwang.api.defs.common import unvalidated
from tianwang.api.defs.trajectories import AuditPage, PersonTrajectory, PhoneTrajectory, VehicleTrajectory
from tianwang.api.deps import DB, require
from tianwang.pagination import decode_cursor, encode_cursor
from tianwang.protocol.fields import Instant
from tianwang.records import query

router = APIRouter(prefix="/api/v1", tags=["trajectories"])
From = Annotated[Instant | None, Query(alias="from")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Gap = Annotated[float, Query(ge=1, le=7 * 86400, description="a gap longer than this (s) starts a new trip")]


def _run(
    db: DB, a: Audited, kind: str, raw: str, frm: Any, to: Any, limit: int, cursor: Any, gap_s: float
) -> dict[str, Any]:
    subject = query.subject_of(kind, raw)
    res = query.trajectory(db, kind, subject, frm=frm, to=to, limit=limit, cursor=cursor, gap_s=gap_s)
    a.record(
        db,
        {"subject": subject, "from": res["from"], "to": res["to"], "limit": limit, "cursor": cursor},
        len(res["points"]),
    )
    return res


@router.get("/trajectories/vehicle/{plate_no}", response_model=VehicleTrajectory)
def vehicle_trajectory(
    plate_no: str,
    db: DB,
    a: Annotated[Audited, Depends(audited("trajectories.vehicle"))],
    frm: From = None,
    to: Instant | None = None,
    limit: Limit = 1000,
    cursor: str | None = None,
    gap_s: Gap = query.DEFAULT_GAP_S,
) -> Response:
    """A plate's passes in time order, split into trips, with GeoJSON (车辆轨迹)."""
    return unvalidated(_run(db, a, "vehicle", plate_no, frm, to, limit, cursor, gap_s))


@router.get("/trajectories/person/{person_id}", response_model=PersonTrajectory)
def person_trajectory(
    person_id: str,
    db: DB,
    a: Annotated[Audited, Depends(audited("trajectories.person"))],
    frm: From = None,
    to: Instant | None = None,
    limit: Limit = 1000,
    cursor: str | None = None,
    gap_s: Gap = query.DEFAULT_GAP_S,
) -> Response:
    """A person's face sightings at the cameras' positions (人员轨迹)."""
    return unvalidated(_run(db, a, "person", person_id, frm, to, limit, cursor, gap_s))


@router.get("/trajectories/phone/{imsi}", response_model=PhoneTrajectory)
def phone_trajectory(
    imsi: str,
    db: DB,
    a: Annotated[Audited, Depends(audited("trajectories.phone"))],
    frm: From = None,
    to: Instant | None = None,
    limit: Limit = 1000,
    cursor: str | None = None,
    gap_s: Gap = query.DEFAULT_GAP_S,
) -> Response:
    """A phone's sightings at the fences' positions (手机信号轨迹)."""
    return unvalidated(_run(db, a, "phone", imsi, frm, to, limit, cursor, gap_s))


@router.get("/audit", response_model=AuditPage, dependencies=[Depends(require())])
def audit_log(
    db: DB,
    user: str | None = None,
    frm: From = None,
    to: Instant | None = None,
    limit: Limit = 1000,
    cursor: str | None = None,
) -> dict[str, Any]:
    """The query audit, oldest first (admin only)."""
    if frm is not None or to is not None:
        query.window(
            frm or dt.datetime.min.replace(tzinfo=dt.UTC), to or dt.datetime.max.replace(tzinfo=dt.UTC)
        )
    rows = audit.query(db, user=user, frm=frm, to=to, limit=limit + 1, after_id=decode_cursor(cursor))
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [
            {
                "id": r.id,
                "at": r.at.isoformat(),
                "user": r.user_name,
                "role": r.role,
                "route": r.route,
                "case_no": r.case_no,
                "params": r.params,
                "result_size": r.result_size,
                "outcome": r.outcome,
                "reason": r.reason,
            }
            for r in rows
        ],
        "next_cursor": encode_cursor(rows[-1].id) if more and rows else None,
    }
