"""Vehicle analyses (研判): cloned plates (套牌) and companions (同行车). Audited with the case number.

Each answer is `{params, items, next_cursor, total, stats}`: `params` echoes every parameter as
applied (defaults filled in), `items` is one page of the result list (the contract's fields plus
evidence), `total` the length of the list, `stats` figures about the run (passes read, candidates,
cuts, seconds). Pages are offsets into the list, which is computed afresh on each call.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from tianwang.analyses import clones, companions
from tianwang.api.audit import Audited, audited
from tianwang.api.defs.analysis import ClonedPlates, Companions
from tianwang.api.deps import DB
from tianwang.errors import ValidationFailed
from tianwang.pagination import decode_cursor, encode_cursor
from tianwang.protocol.fields import Instant
from tianwang.records import query

router = APIRouter(prefix="/api/v1", tags=["analysis"])
From = Annotated[Instant | None, Query(alias="from", description="window start (default: to − 7 days)")]
To = Annotated[Instant | None, Query(description="window end (default: now)")]
Limit = Annotated[int, Query(ge=1, le=1000)]
MAX_WINDOW = dt.timedelta(days=31)

_C = clones.CloneParams()
_P = companions.CompanionParams()


def _window(frm: dt.datetime | None, to: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    f, t = query.window(frm, to)
    if t - f > MAX_WINDOW:
        why = f"the window is longer than {MAX_WINDOW.days} days: split it"
        raise ValidationFailed(why, errors=[{"field": "from", "message": why}])
    return f, t


def _offset(cursor: str | None) -> int:
    return decode_cursor(cursor, "off") or 0


def _page(items: list[dict[str, Any]], limit: int, start: int) -> tuple[list[dict[str, Any]], str | None]:
    end = start + limit
    nxt = encode_cursor(end, "off") if end < len(items) else None
    return items[start:end], nxt


@router.get("/analysis/cloned-plates", response_model=ClonedPlates)
def cloned_plates(
    db: DB,
    a: Annotated[Audited, Depends(audited("analysis.cloned_plates"))],
    frm: From = None,
    to: To = None,
    max_speed_kmh: Annotated[
        float, Query(gt=0, le=1000, description="plausible top speed")
    ] = _C.max_speed_kmh,
    detour: Annotated[
        float, Query(ge=1, le=5, description="great-circle × this where the road graph does not know a pair")
    ] = _C.detour,
    jitter_s: Annotated[
        float, Query(ge=0, le=600, description="clock tolerance added to each gap")
    ] = _C.jitter_s,
    min_distance_m: Annotated[
        float, Query(ge=0, le=100_000, description="closer checkpoints never contradict")
    ] = _C.min_distance_m,
    trip_factor: Annotated[
        float,
        Query(ge=0, le=1, description="off the road graph: a gap under this × others' fastest trip (0: off)"),
    ] = _C.trip_factor,
    min_contradictions: Annotated[
        int, Query(ge=1, le=100, description="independent contradictions that make a clone alone")
    ] = _C.min_contradictions,
    limit: Limit = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Plates seen at two checkpoints too far apart for the time between (套牌), most contradictions first.

    Each item: `plate_no`, the strongest contradicting pair `a`, `b` (ts, checkpoint, position, key,
    vehicle colour/type), `distance_m` (road where known), `seconds`, `implied_speed_kmh`, then
    `contradictions` (independent), `contradicting_pairs`, `attribute_mismatch`, `evidence`.
    """
    f, t = _window(frm, to)
    start = _offset(cursor)
    params = clones.CloneParams(
        max_speed_kmh=max_speed_kmh,
        detour=detour,
        jitter_s=jitter_s,
        min_distance_m=min_distance_m,
        trip_factor=trip_factor,
        min_contradictions=min_contradictions,
    )
    items, stats = clones.analyse(db, f, t, params)
    page, nxt = _page(items, limit, start)
    echo = {"from": f.isoformat(), "to": t.isoformat(), **params.as_dict(), "limit": limit, "cursor": cursor}
    a.record(db, echo, len(page))
    return {"params": echo, "items": page, "next_cursor": nxt, "total": len(items), "stats": stats}


@router.get("/analysis/companions", response_model=Companions)
def companion_vehicles(
    db: DB,
    a: Annotated[Audited, Depends(audited("analysis.companions"))],
    plate_no: Annotated[str, Query(min_length=1, max_length=40, description="the subject plate")],
    frm: From = None,
    to: To = None,
    window_s: Annotated[float, Query(gt=0, le=3600, description="± seconds at one checkpoint")] = _P.window_s,
    min_sites: Annotated[int, Query(ge=1, le=1000, description="distinct checkpoints shared")] = _P.min_sites,
    min_outings: Annotated[
        int, Query(ge=1, le=1000, description="distinct outings of the subject shared")
    ] = _P.min_outings,
    outing_gap_s: Annotated[
        float, Query(ge=60, le=7 * 86400, description="a longer gap starts a new outing")
    ] = _P.outing_gap_s,
    min_share: Annotated[
        float, Query(ge=0, le=1, description="share of the subject's passes met on the shared outings")
    ] = _P.min_share,
    freq_factor: Annotated[
        float, Query(gt=0, le=1e6, description="leave out plates with more passes than this × the median")
    ] = _P.freq_factor,
    max_passes: Annotated[
        int | None,
        Query(ge=1, description="leave out plates with more passes than this (overrides freq_factor)"),
    ] = None,
    limit: Limit = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Plates passing the same checkpoints as `plate_no` within ±window_s (同行车), best first.

    Each item: `plate_no`, `sites` (distinct checkpoints), `co_occurrences` (the subject's passes
    met), `outings`, `share` (of the subject's passes on those outings), `mean_abs_dt_s`,
    `checkpoint_ids`.
    """
    subject = query.subject_of("vehicle", plate_no)
    f, t = _window(frm, to)
    start = _offset(cursor)
    params = companions.CompanionParams(
        window_s=window_s,
        min_sites=min_sites,
        min_outings=min_outings,
        outing_gap_s=outing_gap_s,
        min_share=min_share,
        freq_factor=freq_factor,
        max_passes=max_passes,
    )
    items, stats = companions.analyse(db, subject, f, t, params)
    page, nxt = _page(items, limit, start)
    echo = {
        "plate_no": subject,
        "from": f.isoformat(),
        "to": t.isoformat(),
        **params.as_dict(),
        "frequency_cut": stats.get("frequency_cut"),
        "limit": limit,
        "cursor": cursor,
    }
    a.record(db, echo, len(page))
    return {"params": echo, "items": page, "next_cursor": nxt, "total": len(items), "stats": stats}
