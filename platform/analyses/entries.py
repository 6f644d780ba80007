"""首次入城 (first entry into the city): vehicles whose first pass at a city-entry checkpoint in a window
has no earlier pass within a look-back — at any entry checkpoint (default) or anywhere.

Which checkpoints are city-entry checkpoints: given by the caller, or derived from the registry. A
checkpoint whose lanes say which way they lead (GA/T 1400 CityPass, `CheckpointLane.city_pass`) is
one when a lane leads into the city (进城, or 进出城混合), and then only the passes on such a lane
(or on no known lane) are entries. For the others the road geometry decides: a checkpoint whose road
(`Checkpoint.road`, a registered road) crosses the boundary of the city area (the area of kind
`city`, or `area_code`); a checkpoint whose road is not registered counts when it lies within
`EDGE_M` of that boundary (see docs/analyses-places.md).

One SQL statement: the passes of [from − look-back, to) at the entry checkpoints (or, for scope
`any`, every pass of the plates seen at one in the window), each with the time of the plate's previous
such pass (a window function), and per plate the first entry pass in [from, to).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import BigInteger, and_, func, literal, or_, select
from sqlalchemy.orm import Session

from tianwang.checkpoints.codes import CITY_ENTRY
from tianwang.coverage.geometry import LocalProjection
from tianwang.errors import NotFound, ValidationFailed
from tianwang.storage import sql
from tianwang.storage.models import Area, Checkpoint, CheckpointLane, Pass, Road

DEFAULT_LOOKBACK_DAYS = 30
EDGE_M = 50.0  # a checkpoint without a registered road this close to the city boundary is on an entry
SCOPES = ("entry", "any")


def entry_flags(
    boundary_area: BaseGeometry,
    cp_lon: Any,
    cp_lat: Any,
    cp_road_lines: list[BaseGeometry | None],
    edge_m: float = EDGE_M,
) -> np.ndarray:
    """Pure: which checkpoints sit on a way into the area — their road line has one end inside the
    area and the other outside (it crosses the boundary), or, without a road, the checkpoint lies
    within `edge_m` of the boundary."""
    lon, lat = np.asarray(cp_lon, float), np.asarray(cp_lat, float)
    n = len(lon)
    if n == 0:
        return np.zeros(0, bool)
    minx, miny, maxx, maxy = boundary_area.bounds
    proj = LocalProjection.around(np.concatenate([lon, [minx, maxx]]), np.concatenate([lat, [miny, maxy]]))
    poly = proj.to_metric(np.array([boundary_area], dtype=object))[0]
    shapely.prepare(poly)
    flags = np.zeros(n, bool)
    has_road = np.array([g is not None for g in cp_road_lines], bool)
    if has_road.any():
        lines = proj.to_metric(np.array([g for g in cp_road_lines if g is not None], dtype=object))
        starts = shapely.get_point(lines, 0)
        ends = shapely.get_point(lines, -1)
        a = shapely.contains(poly, starts)
        b = shapely.contains(poly, ends)
        flags[has_road] = a != b
    if (~has_road).any():
        x, y = proj.forward(lon[~has_road], lat[~has_road])
        d = shapely.distance(poly.boundary, shapely.points(x, y))
        flags[~has_road] = d <= edge_m
    return flags


def _city_area(session: Session, area_code: str | None) -> Area:
    if area_code:
        a = session.scalar(select(Area).where(Area.code == area_code))
        if a is None:
            raise NotFound(f"area {area_code} is not registered")
        return a
    cities = session.scalars(select(Area).where(Area.kind == "city").limit(2)).all()
    if len(cities) != 1:
        why = "no area of kind city" if not cities else "more than one area of kind city"
        raise ValidationFailed(
            f"cannot tell the city-entry checkpoints: {why} is registered; "
            "give area_code or entry_checkpoint_ids",
            errors=[{"field": "area_code", "message": why}],
        )
    return cities[0]


def entry_lanes(session: Session) -> dict[str, list[int]]:
    """Per checkpoint whose lanes declare CityPass: the numbers of its lanes into the city (进城,
    进出城混合), possibly none."""
    out: dict[str, list[int]] = {}
    rows = session.execute(
        select(CheckpointLane.checkpoint_id, CheckpointLane.lane_no, CheckpointLane.city_pass)
        .where(CheckpointLane.city_pass.is_not(None))
        .order_by(CheckpointLane.checkpoint_id, CheckpointLane.lane_no)
    )
    for cp, lane_no, city_pass in rows:
        into = out.setdefault(cp, [])
        if city_pass in CITY_ENTRY:
            into.append(lane_no)
    return out


def entry_checkpoints(session: Session, area_code: str | None = None) -> tuple[list[str], str | None]:
    """The city-entry checkpoints derived from the registry, and the area code they guard (None when
    the lanes of every checkpoint decide and no area was named)."""
    declared = entry_lanes(session)
    cps = [
        r
        for r in session.execute(
            select(Checkpoint.checkpoint_id, Checkpoint.lon, Checkpoint.lat, Checkpoint.road).order_by(
                Checkpoint.checkpoint_id
            )
        ).all()
        if r[0] not in declared
    ]
    ids = [cp for cp, into in declared.items() if into]
    if not cps:
        return sorted(ids), area_code
    area = _city_area(session, area_code)
    try:
        poly = shape(area.geometry)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError):
        raise ValidationFailed(f"area {area.code} has no usable geometry") from None
    road_ids = sorted({r[3] for r in cps if r[3]})
    geoms: dict[str, BaseGeometry] = {}
    for i in range(0, len(road_ids), 1000):
        for rid, g in session.execute(
            select(Road.road_id, Road.geometry).where(Road.road_id.in_(road_ids[i : i + 1000]))
        ):
            try:
                geoms[rid] = shape(g)
            except (KeyError, TypeError, ValueError, AttributeError, IndexError):
                continue
    lines = [geoms.get(r[3]) if r[3] else None for r in cps]
    flags = entry_flags(poly, [r[1] for r in cps], [r[2] for r in cps], lines)
    ids += [cps[i][0] for i in np.flatnonzero(flags).tolist()]
    return sorted(ids), area.code


def _at_entry(cp_col: Any, lane_col: Any, entry_ids: list[str], lanes: dict[str, list[int]], pg: bool) -> Any:
    """A pass at one of `entry_ids`; at a checkpoint of `lanes`, only on one of its entry lanes or on
    no known lane."""
    whole = [cp for cp in entry_ids if cp not in lanes]
    by_lanes: dict[tuple[int, ...], list[str]] = {}
    for cp in entry_ids:
        if cp in lanes:
            by_lanes.setdefault(tuple(lanes[cp]), []).append(cp)
    if not by_lanes:
        return sql.any_of(cp_col, entry_ids, pg)
    parts = [sql.any_of(cp_col, whole, pg)] if whole else []
    for into, cps in by_lanes.items():
        on_lane = or_(lane_col.is_(None), lane_col.in_(into)) if into else lane_col.is_(None)
        parts.append(and_(sql.any_of(cp_col, cps, pg), on_lane))
    return or_(*parts)


def first_entries(
    session: Session,
    *,
    frm: dt.datetime,
    to: dt.datetime,
    entry_ids: list[str],
    lookback: dt.timedelta,
    scope: str = "entry",
    limit: int = 100,
    lanes: dict[str, list[int]] | None = None,
) -> tuple[list[dict[str, Any]], bool]:
    """Vehicles whose first pass at an entry checkpoint in [frm, to) follows no pass (at an entry
    checkpoint, or anywhere for scope `any`) within `lookback`; earliest first; (items, truncated).
    At a checkpoint of `lanes` (`entry_lanes`) only the passes on its entry lanes count as entries."""
    if scope not in SCOPES:
        raise ValidationFailed(f"scope must be one of {', '.join(SCOPES)}")
    if not entry_ids:
        return [], False
    pg = sql.is_pg(session)
    chosen = set(entry_ids)
    lanes = {cp: into for cp, into in (lanes or {}).items() if cp in chosen}
    at_entry = _at_entry(Pass.checkpoint_id, Pass.lane, entry_ids, lanes, pg)
    lb_s = int(lookback.total_seconds())
    e = sql.epoch_whole_seconds(Pass.ts)
    base = select(
        Pass.plate_no,
        Pass.ts,
        Pass.key,
        Pass.checkpoint_id,
        Pass.direction_deg,
        Pass.lane,
        e.label("e"),
        func.lag(e).over(partition_by=Pass.plate_no, order_by=(Pass.ts, Pass.key)).label("prev_e"),
    ).where(Pass.ts >= frm - lookback, Pass.ts < to, Pass.plate_valid.is_(True))
    if scope == "entry":
        base = base.where(at_entry)
    else:
        seen = (
            select(Pass.plate_no)
            .where(at_entry, Pass.ts >= frm, Pass.ts < to, Pass.plate_valid.is_(True))
            .distinct()
            .scalar_subquery()
        )
        base = base.where(Pass.plate_no.in_(seen))
    rows = base.subquery()
    c = rows.c
    firsts = (
        select(
            c.plate_no,
            c.ts,
            c.key,
            c.checkpoint_id,
            c.direction_deg,
            c.e,
            c.prev_e,
            func.row_number().over(partition_by=c.plate_no, order_by=(c.ts, c.key)).label("rn"),
        )
        .where(c.ts >= frm, _at_entry(c.checkpoint_id, c.lane, entry_ids, lanes, pg))
        .subquery()
    )
    f = firsts.c
    stmt = (
        select(f.plate_no, f.ts, f.key, f.checkpoint_id, f.direction_deg, f.e - f.prev_e)
        .where(f.rn == 1, or_(f.prev_e.is_(None), f.e - f.prev_e > literal(lb_s, BigInteger)))
        .order_by(f.ts, f.plate_no)
        .limit(limit + 1)
    )
    out = session.execute(stmt).all()[: limit + 1]
    facing: dict[str, float] = dict(
        session.execute(
            select(Checkpoint.checkpoint_id, Checkpoint.direction_deg).where(
                Checkpoint.checkpoint_id.in_(sorted({r[3] for r in out}))
            )
        ).all()
    )
    items = [
        {
            "plate_no": r[0],
            "ts": r[1].isoformat(),
            "checkpoint_id": r[3],
            "key": r[2],
            "direction_deg": r[4],
            "inbound": inbound(r[4], facing.get(r[3])),
            "previous_pass_s": int(r[5]) if r[5] is not None else None,
        }
        for r in out[:limit]
    ]
    return items, len(out) > limit


def inbound(travel_deg: float | None, checkpoint_deg: float | None) -> bool | None:
    """Whether a pass heads the way the checkpoint faces (its inbound direction), within 90°."""
    if travel_deg is None or checkpoint_deg is None:
        return None
    return abs((travel_deg - checkpoint_deg + 180.0) % 360.0 - 180.0) < 90.0
