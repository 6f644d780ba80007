"""Trajectory queries (车辆 / 人员 / 手机信号轨迹): one subject's records over a window, in time order.

The SQL walks the record table's primary key (subject, ts, key) — one index range scan, and on
PostgreSQL only the day partitions of the window — joined to the sensor registry for positions.
Pages are keyset pages on (ts, key), so a long history is read in constant time per page.
"""

from __future__ import annotations

import base64
import datetime as dt
import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import literal, select, tuple_
from sqlalchemy.orm import Session

from tianwang.checkpoints import plates
from tianwang.errors import ValidationFailed
from tianwang.protocol.fields import text_problem, time_problem
from tianwang.records import trips
from tianwang.storage.models import Camera, Checkpoint, FaceSighting, Fence, Pass, PhoneSighting, utcnow

DEFAULT_WINDOW = dt.timedelta(days=7)
DEFAULT_GAP_S = 30 * 60


@dataclass(frozen=True)
class Point:
    ts: dt.datetime
    key: str
    sensor_id: str
    lon: float | None
    lat: float | None
    extra: dict[str, Any]


def encode_cursor(ts: dt.datetime, key: str) -> str:
    raw = f"{ts.astimezone(dt.UTC).isoformat()}|{key}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[dt.datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, key = raw.split("|", 1)
        t = dt.datetime.fromisoformat(ts)
        # a cursor is the client's to send back: a forged one may hold any time and any key
        if t.tzinfo is None or time_problem(t) is not None or text_problem(key) is not None:
            raise ValueError
        return t, key
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(
            "invalid cursor", errors=[{"field": "cursor", "message": "not a cursor"}]
        ) from None


def window(frm: dt.datetime | None, to: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    to = to or utcnow()
    frm = frm or to - DEFAULT_WINDOW
    for name, t in (("from", frm), ("to", to)):
        if t.tzinfo is None:
            raise ValidationFailed(
                f"{name} needs a UTC offset", errors=[{"field": name, "message": "naive time"}]
            )
    if frm > to:
        raise ValidationFailed("from is after to", errors=[{"field": "from", "message": "after to"}])
    return frm, to


# kind → (record model, subject column, sensor column, sensor model, its id column, output name, extras)
_KINDS: dict[str, tuple[Any, Any, Any, Any, Any, str, tuple[str, ...]]] = {
    "vehicle": (
        Pass,
        Pass.plate_no,
        Pass.checkpoint_id,
        Checkpoint,
        Checkpoint.checkpoint_id,
        "checkpoint_id",
        ("lane", "speed_kmh", "image_key", "plate_color", "direction_deg", "plate_kind"),
    ),
    "person": (
        FaceSighting,
        FaceSighting.person_id,
        FaceSighting.camera_id,
        Camera,
        Camera.device_id,
        "camera_id",
        ("confidence", "image_key"),
    ),
    "phone": (
        PhoneSighting,
        PhoneSighting.imsi,
        PhoneSighting.fence_id,
        Fence,
        Fence.fence_id,
        "fence_id",
        ("rssi", "imei", "mac"),
    ),
}


def subject_of(kind: str, raw: str) -> str:
    if kind == "vehicle":
        # any plate text stored as read can be followed, including one that is not a valid plate;
        # the markers cannot: every pass without a plate shares them
        p = plates.read(raw)
        if p.kind in (plates.PlateKind.none, plates.PlateKind.unread):
            why = f"{p.plate_no}: passes without a readable plate have no trajectory (query the checkpoint)"
            raise plates.InvalidPlate(why, errors=[{"field": "plate_no", "message": why}])
        return p.plate_no
    # an IMSI is a number: typed in full-width digits it is the same subject as ingest stored (NFKC)
    s = (unicodedata.normalize("NFKC", raw) if kind == "phone" else raw).strip()
    if not s or len(s) > 64:
        raise ValidationFailed(f"{kind} id must be 1–64 characters")
    return s


def trajectory(
    session: Session,
    kind: str,
    subject: str,
    *,
    frm: dt.datetime | None,
    to: dt.datetime | None,
    limit: int,
    cursor: str | None,
    gap_s: float = DEFAULT_GAP_S,
) -> dict[str, Any]:
    model, subj_col, sensor_col, sensor_model, sensor_id_col, sensor_name, extras = _KINDS[kind]
    f, t = window(frm, to)
    stmt = (
        select(
            model.ts,
            model.key,
            sensor_col,
            sensor_model.lon,
            sensor_model.lat,
            *[getattr(model, e) for e in extras],
        )
        .outerjoin(sensor_model, sensor_id_col == sensor_col)
        .where(subj_col == subject, model.ts >= f, model.ts <= t)
    )
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(
            tuple_(model.ts, model.key) > tuple_(literal(after[0], model.ts.type), literal(after[1]))
        )
    rows = session.execute(stmt.order_by(model.ts, model.key).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    points = [Point(r[0], r[1], r[2], r[3], r[4], {e: r[5 + n] for n, e in enumerate(extras)}) for r in rows]
    ranges = trips.split(points, gap_s)
    return {
        "kind": kind,
        "subject": subject,
        "from": f.isoformat(),
        "to": t.isoformat(),
        "points": [
            {
                "ts": p.ts.isoformat(),
                sensor_name: p.sensor_id,
                "lon": p.lon,
                "lat": p.lat,
                "key": p.key,
                **p.extra,
            }
            for p in points
        ],
        "trips": trips.trip_summaries(points, ranges),
        "geojson": trips.geojson(points, ranges),
        "next_cursor": encode_cursor(points[-1].ts, points[-1].key) if more and points else None,
    }
