"""区域碰撞 (area collision): the subjects seen in every one of several space-time windows, or in m of n.

A window is an area — a GeoJSON Polygon / MultiPolygon, or the sensor ids themselves — and a time
range [from, to). The area becomes the sensors inside it: checkpoints for vehicles, face cameras for
persons, fences for phones (a fence counts when its circle meets the area). Then one SQL statement:
per window the distinct subjects seen by its sensors in its time range (the `(sensor, ts)` index:
one range scan per sensor, on PostgreSQL only the day partitions of the range), stacked with the
window's bit, grouped per subject with `HAVING count(*) ≥ m`; the sum of the bits says which windows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry
from sqlalchemy import Integer, func, literal, select, union_all
from sqlalchemy.orm import Session

from tianwang.coverage.geometry import LocalProjection
from tianwang.errors import ValidationFailed
from tianwang.places.geojson import parse_geometry
from tianwang.storage import sql
from tianwang.storage.models import Camera, Checkpoint, FaceSighting, Fence, Pass, PhoneSighting

KINDS = ("vehicle", "phone", "person")
MAX_WINDOWS = 16
MAX_SENSORS = 5000  # per window: an area holding more is a city, not a place
MAX_SENSORS_TOTAL = 20_000  # over all windows (SQLite binds each id as a parameter: at most 32,766)
MAX_SPAN = dt.timedelta(days=31)  # per window
AREA_TYPES = ("Polygon", "MultiPolygon")

# kind → (record model, subject column, sensor column)
RECORDS: dict[str, tuple[Any, Any, Any]] = {
    "vehicle": (Pass, Pass.plate_no, Pass.checkpoint_id),
    "person": (FaceSighting, FaceSighting.person_id, FaceSighting.camera_id),
    "phone": (PhoneSighting, PhoneSighting.imsi, PhoneSighting.fence_id),
}


@dataclass(frozen=True)
class Window:
    frm: dt.datetime
    to: dt.datetime
    sensor_ids: tuple[str, ...]
    area: BaseGeometry | None = None


def area_geometry(obj: Any, field: str) -> BaseGeometry:
    """A GeoJSON Polygon / MultiPolygon (or a Feature holding one) → shapely, else ValidationFailed."""
    if isinstance(obj, dict) and obj.get("type") == "Feature":
        obj = obj.get("geometry")
    try:
        return parse_geometry(obj, AREA_TYPES, field)
    except ValueError as e:
        raise ValidationFailed(str(e), errors=[{"field": field, "message": str(e)}]) from None


def inside(area: BaseGeometry, lon: Any, lat: Any, radius_m: Any = None) -> np.ndarray:
    """Pure: which points lie in the area (boundary included); with `radius_m`, which circles meet it."""
    lon, lat = np.asarray(lon, float), np.asarray(lat, float)
    if lon.size == 0:
        return np.zeros(0, bool)
    if radius_m is None:
        shapely.prepare(area)
        return np.asarray(shapely.intersects_xy(area, lon, lat), bool)
    minx, miny, maxx, maxy = area.bounds
    proj = LocalProjection.around(np.concatenate([lon, [minx, maxx]]), np.concatenate([lat, [miny, maxy]]))
    poly = proj.to_metric(np.array([area], dtype=object))[0]
    x, y = proj.forward(lon, lat)
    return np.asarray(shapely.distance(poly, shapely.points(x, y)) <= np.asarray(radius_m, float), bool)


def sensors_in(session: Session, kind: str, area: BaseGeometry) -> list[str]:
    """The ids of the sensors of `kind` that watch the area, from the registry."""
    minx, miny, maxx, maxy = area.bounds
    if kind == "phone":
        # widen the box by the largest catchment so a fence centred outside but reaching in is read
        r = session.scalar(select(func.max(Fence.radius_m))) or 0.0
        dlat = float(r) / 110_540.0
        dlon = float(r) / (111_320.0 * max(0.1, np.cos(np.radians(max(abs(miny), abs(maxy))))))
        rows = session.execute(
            select(Fence.fence_id, Fence.lon, Fence.lat, Fence.radius_m).where(
                Fence.lon.between(minx - dlon, maxx + dlon), Fence.lat.between(miny - dlat, maxy + dlat)
            )
        ).all()
        if not rows:
            return []
        ids, lon, lat, rad = zip(*rows, strict=True)
        return sorted(i for i, ok in zip(ids, inside(area, lon, lat, rad), strict=True) if ok)
    if kind == "vehicle":
        stmt = select(Checkpoint.checkpoint_id, Checkpoint.lon, Checkpoint.lat)
        lon_c, lat_c = Checkpoint.lon, Checkpoint.lat
    else:
        stmt = select(Camera.device_id, Camera.lon, Camera.lat).where(Camera.kind == "face")
        lon_c, lat_c = Camera.lon, Camera.lat
    rows = session.execute(stmt.where(lon_c.between(minx, maxx), lat_c.between(miny, maxy))).all()
    if not rows:
        return []
    ids, lon, lat = zip(*rows, strict=True)
    return sorted(i for i, ok in zip(ids, inside(area, lon, lat), strict=True) if ok)


@dataclass(frozen=True)
class WindowSpec:
    """One window as asked: a time range and either an area (GeoJSON) or sensor ids."""

    frm: dt.datetime
    to: dt.datetime
    area: Any = None
    sensor_ids: list[str] | None = None


def _refuse(field: str, message: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"field": field, "message": message}])


def resolve(session: Session, kind: str, specs: list[WindowSpec]) -> list[Window]:
    """The asked windows as sensors and checked time ranges; the first problem is refused (422)."""
    if kind not in KINDS:
        raise _refuse("kind", "unknown kind", f"kind must be one of {', '.join(KINDS)}")
    if not 1 <= len(specs) <= MAX_WINDOWS:
        raise _refuse("windows", "count out of range", f"give 1 to {MAX_WINDOWS} windows")
    out = []
    for i, w in enumerate(specs):
        field = f"windows[{i}]"
        for name, t in (("from", w.frm), ("to", w.to)):
            if t.tzinfo is None:
                raise _refuse(f"{field}.{name}", "naive time", f"{field}.{name} needs a UTC offset")
        if w.to <= w.frm:
            raise _refuse(f"{field}.to", "not after from", f"{field}: from must be before to")
        if w.to - w.frm > MAX_SPAN:
            raise _refuse(
                f"{field}.to", "window too long", f"{field}: a window spans at most {MAX_SPAN.days} days"
            )
        if (w.area is None) == (w.sensor_ids is None):
            raise _refuse(
                field, "area or sensor ids, exactly one", f"{field}: give either area or checkpoint_ids"
            )
        area = None
        ids = w.sensor_ids
        if ids is None:
            area = area_geometry(w.area, f"{field}.area")
            ids = sensors_in(session, kind, area)
        uniq = sorted(set(ids))
        if len(uniq) > MAX_SENSORS:
            raise _refuse(
                field,
                "too many sensors",
                f"{field}: {len(uniq)} sensors; at most {MAX_SENSORS} per window (draw a smaller area)",
            )
        out.append(Window(w.frm.astimezone(dt.UTC), w.to.astimezone(dt.UTC), tuple(uniq), area))
    total = sum(len(w.sensor_ids) for w in out)
    if total > MAX_SENSORS_TOTAL:
        raise _refuse(
            "windows", "too many sensors", f"{total} sensors over the windows; at most {MAX_SENSORS_TOTAL}"
        )
    return out


def collide(
    session: Session, kind: str, windows: list[Window], min_windows: int, limit: int
) -> tuple[list[dict[str, Any]], bool]:
    """Subjects seen in at least `min_windows` of the windows, most windows first; (items, truncated)."""
    model, subj, sensor = RECORDS[kind]
    pg = sql.is_pg(session)
    parts = []
    for i, w in enumerate(windows):
        if not w.sensor_ids:
            continue
        q = (
            select(subj.label("subject"), literal(1 << i, Integer).label("bit"))
            .where(sql.any_of(sensor, list(w.sensor_ids), pg), model.ts >= w.frm, model.ts < w.to)
            .distinct()
        )
        if kind == "vehicle":
            q = q.where(Pass.plate_valid.is_(True))  # 无牌 / 未识别 markers are no one
        parts.append(q)
    if len(parts) < min_windows:
        return [], False
    u = union_all(*parts).subquery()
    n = func.count()
    stmt = (
        select(u.c.subject, n, func.sum(u.c.bit))
        .group_by(u.c.subject)
        .having(n >= min_windows)
        .order_by(n.desc(), u.c.subject)
        .limit(limit + 1)
    )
    rows = session.execute(stmt).all()
    items = [
        {"id": r[0], "count": int(r[1]), "windows": [i for i in range(len(windows)) if int(r[2]) >> i & 1]}
        for r in rows[:limit]
    ]
    return items, len(rows) > limit
