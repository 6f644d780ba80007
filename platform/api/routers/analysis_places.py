"""Place analyses for investigators (each audited with its case number): area collision (区域碰撞),
stay points (落脚点), first entry into the city (首次入城) and night-active subjects (昼伏夜出).

Every answer echoes the parameters it ran with, defaults filled in (`params`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from tianwang.analyses import collision, entries, nightlife, staypoints
from tianwang.api.audit import Audited, audited
from tianwang.api.defs.analysis import Collision, CollisionIn, FirstEntries, NightActive, StayPoints
from tianwang.api.deps import DB
from tianwang.errors import ValidationFailed
from tianwang.protocol.fields import Instant
from tianwang.records import query

router = APIRouter(prefix="/api/v1", tags=["analysis"])
From = Annotated[Instant | None, Query(alias="from")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Kind = Literal["vehicle", "phone", "person"]
MAX_SPAN = dt.timedelta(days=92)  # night-active, first entry, stay points
ECHO_IDS = 100  # sensor ids echoed per window


def _window(frm: dt.datetime | None, to: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    f, t = query.window(frm, to)
    if t - f > MAX_SPAN:
        raise ValidationFailed(
            f"the window spans at most {MAX_SPAN.days} days",
            errors=[{"field": "from", "message": "window too long"}],
        )
    return f, t


# ---------------------------------------------------------------- 区域碰撞


@router.post("/analysis/collision", response_model=Collision)
def area_collision(
    body: CollisionIn,
    db: DB,
    a: Annotated[Audited, Depends(audited("analysis.collision"))],
) -> dict[str, Any]:
    """Subjects (plates, IMSIs or person ids) seen in every window, or in `min_windows` of them (区域碰撞)."""
    n = len(body.windows)
    m = body.min_windows if body.min_windows is not None else n
    if m > n:
        raise ValidationFailed(
            f"min_windows {m} exceeds the {n} windows",
            errors=[{"field": "min_windows", "message": "more than n"}],
        )
    specs = [collision.WindowSpec(w.frm, w.to, w.area, w.checkpoint_ids) for w in body.windows]
    wins = collision.resolve(db, body.kind, specs)
    items, truncated = collision.collide(db, body.kind, wins, m, body.limit)
    params = {
        "kind": body.kind,
        "min_windows": m,
        "limit": body.limit,
        "windows": [
            {
                "from": w.frm.isoformat(),
                "to": w.to.isoformat(),
                "by": "area" if w.area is not None else "sensor_ids",
                "area_bounds": [round(v, 7) for v in w.area.bounds] if w.area is not None else None,
                "sensors": len(w.sensor_ids),
                "sensor_ids": list(w.sensor_ids[:ECHO_IDS]),
            }
            for w in wins
        ],
    }
    a.record(db, params, len(items))
    return {"params": params, "items": items, "truncated": truncated}


# ---------------------------------------------------------------- 落脚点


@router.get("/analysis/stay-points", response_model=StayPoints)
def stay_points(
    db: DB,
    a: Annotated[Audited, Depends(audited("analysis.stay_points"))],
    plate_no: str | None = None,
    imsi: str | None = None,
    person_id: str | None = None,
    frm: From = None,
    to: Instant | None = None,
    anchor: Annotated[str, Query(description="the quiet hour, local HH:MM")] = staypoints.DEFAULT_ANCHOR,
    utc_offset: Annotated[str, Query(description="the city's zone")] = nightlife.DEFAULT_UTC_OFFSET,
    min_gap_s: Annotated[int, Query(ge=600, le=7 * 86400)] = staypoints.DEFAULT_MIN_GAP_S,
    max_gap_s: Annotated[int, Query(ge=600, le=14 * 86400)] = staypoints.DEFAULT_MAX_GAP_S,
    rest_window_s: Annotated[int, Query(ge=600, le=12 * 3600)] = staypoints.DEFAULT_REST_WINDOW_S,
    link_m: Annotated[float, Query(ge=10, le=5000)] = staypoints.DEFAULT_LINK_M,
    min_nights: Annotated[int, Query(ge=1, le=366)] = staypoints.DEFAULT_MIN_NIGHTS,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Where the subject spends its nights (落脚点): clusters of the sensors that place it each night."""
    given = [
        (k, v) for k, v in (("vehicle", plate_no), ("phone", imsi), ("person", person_id)) if v is not None
    ]
    if len(given) != 1:
        raise ValidationFailed(
            "give exactly one of plate_no, imsi, person_id",
            errors=[{"field": "plate_no", "message": "one subject"}],
        )
    kind, raw = given[0]
    subject = query.subject_of(kind, raw)
    f, t = _window(frm, to)
    p = staypoints.StayParams(
        anchor_s=nightlife.parse_clock(anchor, "anchor"),
        offset_s=nightlife.parse_utc_offset(utc_offset),
        min_gap_s=min_gap_s,
        max_gap_s=max_gap_s,
        rest_window_s=rest_window_s,
        link_m=link_m,
        min_nights=min_nights,
    )
    res = staypoints.stay_points(db, kind=kind, subject=subject, frm=f, to=t, params=p, limit=limit)
    params = {
        "kind": kind,
        "subject": subject,
        "from": f.isoformat(),
        "to": t.isoformat(),
        **p.echo(),
        "limit": limit,
    }
    a.record(db, params, len(res["items"]))
    return {"params": params, **res}


# ---------------------------------------------------------------- 首次入城


@router.get("/analysis/first-entry", response_model=FirstEntries)
def first_entry(
    db: DB,
    a: Annotated[Audited, Depends(audited("analysis.first_entry"))],
    frm: From = None,
    to: Instant | None = None,
    lookback_days: Annotated[float, Query(gt=0, le=366)] = entries.DEFAULT_LOOKBACK_DAYS,
    scope: Annotated[Literal["entry", "any"], Query(description="earlier passes that count")] = "entry",
    entry_checkpoint_ids: Annotated[
        str | None,
        Query(max_length=20_000, description="comma-separated; default: derived from the registry"),
    ] = None,
    area_code: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z_\-]{2,32}$")] = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Vehicles entering the city for the first time in the window (首次入城): their first pass at a
    city-entry checkpoint has no earlier pass (at one, or anywhere) within the look-back."""
    f, t = _window(frm, to)
    if entry_checkpoint_ids is not None:
        ids = sorted({s.strip() for s in entry_checkpoint_ids.split(",") if s.strip()})
        if not ids:
            raise ValidationFailed(
                "entry_checkpoint_ids is empty",
                errors=[{"field": "entry_checkpoint_ids", "message": "empty"}],
            )
        source, code = "parameter", None
    else:
        ids, code = entries.entry_checkpoints(db, area_code)
        source = "registry"
    lookback = dt.timedelta(days=lookback_days)
    chosen = set(ids)
    lanes = {cp: into for cp, into in entries.entry_lanes(db).items() if cp in chosen}
    items, truncated = entries.first_entries(
        db, frm=f, to=t, entry_ids=ids, lookback=lookback, scope=scope, limit=limit, lanes=lanes
    )
    params = {
        "from": f.isoformat(),
        "to": t.isoformat(),
        "lookback_days": lookback_days,
        "scope": scope,
        "entry_checkpoints": {
            "source": source,
            "area_code": code,
            "count": len(ids),
            "ids": ids[:ECHO_IDS],
            "by_lanes": len(lanes),  # of them, those whose entry lanes (CityPass) decide
        },
        "limit": limit,
    }
    a.record(db, params, len(items))
    return {"params": params, "items": items, "truncated": truncated}


# ---------------------------------------------------------------- 昼伏夜出


@router.get("/analysis/night-active", response_model=NightActive)
def night_active(
    db: DB,
    a: Annotated[Audited, Depends(audited("analysis.night_active"))],
    frm: From = None,
    to: Instant | None = None,
    kind: Kind = "vehicle",
    night_start: Annotated[str, Query(description="local HH:MM")] = nightlife.DEFAULT_NIGHT_START,
    night_end: Annotated[str, Query(description="local HH:MM")] = nightlife.DEFAULT_NIGHT_END,
    utc_offset: Annotated[str, Query(description="the city's zone")] = nightlife.DEFAULT_UTC_OFFSET,
    min_nights: Annotated[int, Query(ge=1, le=366)] = nightlife.DEFAULT_MIN_NIGHTS,
    min_share: Annotated[float, Query(ge=0, le=1)] = nightlife.DEFAULT_MIN_SHARE,
    rest_s: Annotated[
        int, Query(ge=600, le=86400, description="phones: a fence heard again after this is an arrival")
    ] = (nightlife.DEFAULT_REST_S),
    limit: Limit = 100,
) -> dict[str, Any]:
    """Subjects moving on at least `min_nights` nights with at least `min_share` of their movement at
    night (昼伏夜出): plates by default, phones or persons by `kind`."""
    f, t = _window(frm, to)
    night = nightlife.Night.parse(night_start, night_end, utc_offset)
    items, truncated = nightlife.night_active(
        db,
        kind=kind,
        frm=f,
        to=t,
        night=night,
        min_nights=min_nights,
        min_share=min_share,
        rest_s=rest_s,
        limit=limit,
    )
    params = {
        "kind": kind,
        "from": f.isoformat(),
        "to": t.isoformat(),
        **night.echo(),
        "min_nights": min_nights,
        "min_share": min_share,
        "rest_s": rest_s if kind == "phone" else None,
        "limit": limit,
    }
    a.record(db, params, len(items))
    return {"params": params, "items": items, "truncated": truncated}
