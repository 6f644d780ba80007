"""落脚点 (stay points): the places where a subject spends its nights, clustered over days.

For each night of the window the subject's position at a quiet hour (the anchor, 03:00 local by
default) is bracketed from its sightings:

- resting: a sensor that heard the subject both within `rest_window_s` before and after the anchor
  (a phone inside a fence is heard about hourly while it rests there);
- otherwise the gap: the last sighting before the anchor and the first after it, when they are at
  least `min_gap_s` and at most `max_gap_s` apart — a car's last checkpoint in the evening and its
  first in the morning, both on the way to and from where it spent the night.

The bracketing sensors of every night are clustered by position (single linkage within `link_m`);
a cluster is a stay point with the nights it was seen. One index range scan reads the subject's
sightings (SQL); the bracketing and the clustering are vectorised (numpy, scipy), no loop over rows.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree
from sqlalchemy import select
from sqlalchemy.orm import Session

from tianwang.analyses.nightlife import DAY_S, format_offset
from tianwang.coverage.geometry import LocalProjection
from tianwang.errors import ValidationFailed
from tianwang.storage.models import Camera, FaceSighting, Fence, Pass, PhoneSighting

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

DEFAULT_ANCHOR = "03:00"
DEFAULT_MIN_GAP_S = 3 * 3600
DEFAULT_MAX_GAP_S = 36 * 3600
DEFAULT_REST_WINDOW_S = 2 * 3600
DEFAULT_LINK_M = 300.0
DEFAULT_MIN_NIGHTS = 1
MAX_ROWS = 200_000  # sightings of one subject read for one answer


@dataclass(frozen=True)
class StayParams:
    anchor_s: int  # seconds after local midnight
    offset_s: int  # local = UTC + offset
    min_gap_s: int = DEFAULT_MIN_GAP_S
    max_gap_s: int = DEFAULT_MAX_GAP_S
    rest_window_s: int = DEFAULT_REST_WINDOW_S
    link_m: float = DEFAULT_LINK_M
    min_nights: int = DEFAULT_MIN_NIGHTS

    def __post_init__(self) -> None:
        if not 0 < self.min_gap_s <= self.max_gap_s:
            raise ValidationFailed(
                "min_gap_s must be > 0 and ≤ max_gap_s",
                errors=[{"field": "min_gap_s", "message": "not in (0, max_gap_s]"}],
            )

    def echo(self) -> dict[str, Any]:
        return {
            "anchor": f"{self.anchor_s // 3600:02d}:{self.anchor_s % 3600 // 60:02d}",
            "utc_offset": format_offset(self.offset_s),
            "min_gap_s": self.min_gap_s,
            "max_gap_s": self.max_gap_s,
            "rest_window_s": self.rest_window_s,
            "link_m": self.link_m,
            "min_nights": self.min_nights,
        }


def anchors(frm_s: float, to_s: float, p: StayParams) -> F64:
    """Epoch seconds of every night's anchor inside [frm_s, to_s)."""
    first_day = np.floor((frm_s + p.offset_s - p.anchor_s) / DAY_S)
    last_day = np.floor((to_s + p.offset_s - p.anchor_s) / DAY_S)
    days = np.arange(first_day, last_day + 1)
    a = days * DAY_S + p.anchor_s - p.offset_s
    return a[(a >= frm_s) & (a < to_s)]


@dataclass
class Brackets:
    """The sightings that place the subject on each night: row index and night (anchor) index."""

    row: I64
    night: I64
    how: I64  # 0 resting, 1 gap (before the anchor), 2 gap (after it)


def brackets(ts_s: F64, sensor: I64, anchor_s: F64, p: StayParams) -> Brackets:
    """Pure: `ts_s` sorted epoch seconds with `sensor` codes (0..S-1), the anchors → the bracketing rows."""
    n = len(ts_s)
    empty = Brackets(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))
    if n == 0 or len(anchor_s) == 0:
        return empty
    # resting: rows within the rest window of a night's anchor, per (night, sensor) heard on both sides
    k = np.clip(np.searchsorted(anchor_s, ts_s), 0, len(anchor_s) - 1)
    # the nearest anchor of each row is k or k-1
    km = np.clip(k - 1, 0, len(anchor_s) - 1)
    near = np.where(np.abs(ts_s - anchor_s[km]) < np.abs(ts_s - anchor_s[k]), km, k)
    rel = ts_s - anchor_s[near]
    inw = np.abs(rel) <= p.rest_window_s
    rows = np.flatnonzero(inw)
    s_max = int(sensor.max()) + 1
    key = near[rows] * s_max + sensor[rows]
    uk, inv = np.unique(key, return_inverse=True)
    before = np.bincount(inv, weights=(rel[rows] < 0).astype(float), minlength=len(uk)) > 0
    after = np.bincount(inv, weights=(rel[rows] >= 0).astype(float), minlength=len(uk)) > 0
    both = before & after
    rest_rows = rows[both[inv]]
    rest_night = near[rest_rows]
    rested = np.zeros(len(anchor_s), bool)
    rested[rest_night] = True
    # the gap around each anchor not already placed by resting
    j = np.searchsorted(ts_s, anchor_s, side="left")
    ok = (j > 0) & (j < n) & ~rested
    jj = np.clip(j, 1, max(n - 1, 1))
    gap = ts_s[np.minimum(jj, n - 1)] - ts_s[jj - 1]
    ok &= (gap >= p.min_gap_s) & (gap <= p.max_gap_s)
    nights = np.flatnonzero(ok)
    return Brackets(
        np.concatenate([rest_rows, jj[nights] - 1, jj[nights]]).astype(np.int64),
        np.concatenate([rest_night, nights, nights]).astype(np.int64),
        np.concatenate(
            [np.zeros(len(rest_rows), np.int64), np.ones(len(nights), np.int64), np.full(len(nights), 2)]
        ).astype(np.int64),
    )


def cluster(x: F64, y: F64, link_m: float) -> I64:
    """Pure: single-linkage clusters of points (metres) joined within `link_m`; a label per point."""
    n = len(x)
    if n == 0:
        return np.zeros(0, np.int64)
    pairs = cKDTree(np.column_stack([x, y])).query_pairs(link_m, output_type="ndarray")
    g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, label = connected_components(g, directed=False)
    return np.asarray(label, np.int64)


_KINDS: dict[str, tuple[Any, Any, Any, Any, Any]] = {
    "vehicle": (Pass, Pass.plate_no, Pass.checkpoint_id, None, None),
    "phone": (PhoneSighting, PhoneSighting.imsi, PhoneSighting.fence_id, Fence, Fence.fence_id),
    "person": (FaceSighting, FaceSighting.person_id, FaceSighting.camera_id, Camera, Camera.device_id),
}


def _sightings(
    session: Session, kind: str, subject: str, frm: dt.datetime, to: dt.datetime
) -> tuple[F64, list[str], F64, F64, bool]:
    from tianwang.storage.models import Checkpoint

    model, subj_col, sensor_col, sensor_model, sensor_id = _KINDS[kind]
    if sensor_model is None:
        sensor_model, sensor_id = Checkpoint, Checkpoint.checkpoint_id
    stmt = (
        select(model.ts, sensor_col, sensor_model.lon, sensor_model.lat)
        .join(sensor_model, sensor_id == sensor_col)
        .where(subj_col == subject, model.ts >= frm, model.ts < to)
        .order_by(model.ts, model.key)
        .limit(MAX_ROWS + 1)
    )
    rows = session.execute(stmt).all()
    truncated = len(rows) > MAX_ROWS
    rows = rows[:MAX_ROWS]
    if not rows:
        return np.zeros(0), [], np.zeros(0), np.zeros(0), False
    t, s, x, y = zip(*rows, strict=True)
    ts = np.array([v.timestamp() for v in t], float)
    return ts, list(s), np.asarray(x, float), np.asarray(y, float), truncated


def _local_date(anchor_s: float, p: StayParams) -> str:
    """The local date of the evening before an anchor (the night's name)."""
    d = dt.datetime.fromtimestamp(anchor_s + p.offset_s, dt.UTC).date()
    return (d - dt.timedelta(days=1) if p.anchor_s < 12 * 3600 else d).isoformat()


def stay_points(
    session: Session,
    *,
    kind: str,
    subject: str,
    frm: dt.datetime,
    to: dt.datetime,
    params: StayParams,
    limit: int = 20,
) -> dict[str, Any]:
    """The subject's stay points over [frm, to): clusters with position, sensors, nights, first/last."""
    # read the margin around the window so the first and last nights can be bracketed
    margin = dt.timedelta(seconds=params.max_gap_s)
    ts, sensor_ids, lon, lat, truncated = _sightings(session, kind, subject, frm - margin, to + margin)
    anc = anchors(frm.timestamp(), to.timestamp(), params)
    names: list[str] = sorted(set(sensor_ids))
    codes = np.searchsorted(np.array(names, dtype=object), np.array(sensor_ids, dtype=object)).astype(
        np.int64
    )
    b = brackets(ts, codes, anc, params)
    out: dict[str, Any] = {
        "nights": len(anc),
        "nights_placed": len(np.unique(b.night)),
        "sightings": len(ts),
        "truncated": truncated,
        "clusters": 0,
        "items": [],
    }
    if len(b.row) == 0:
        return out
    b_code = codes[b.row]
    proj = LocalProjection.around(lon[b.row], lat[b.row])
    # cluster the distinct sensors that placed a night, then give each bracket its sensor's cluster
    s_codes, s_first = np.unique(b_code, return_index=True)
    sx, sy = proj.forward(lon[b.row][s_first], lat[b.row][s_first])
    lab = cluster(sx, sy, params.link_m)[np.searchsorted(s_codes, b_code)]
    n_anc = len(anc)
    items: list[dict[str, Any]] = []
    for c in np.unique(lab).tolist():  # one pass per cluster (a handful), not per row
        m = lab == c
        rows, nights, cc = b.row[m], b.night[m], b_code[m]
        night_set = np.unique(nights)
        if len(night_set) < params.min_nights:
            continue
        # the cluster's sensors, each with the number of nights it placed
        sc, first = np.unique(cc, return_index=True)
        pair = np.unique(cc * (n_anc + 1) + nights)
        per_sensor = np.bincount(np.searchsorted(sc, pair // (n_anc + 1)), minlength=len(sc))
        slon, slat = lon[rows][first], lat[rows][first]
        wx, wy = proj.forward(slon, slat)
        cx, cy = float(np.average(wx, weights=per_sensor)), float(np.average(wy, weights=per_sensor))
        clon, clat = proj.inverse(cx, cy)
        order = np.argsort(-per_sensor, kind="stable").tolist()
        items.append(
            {
                "lon": round(float(clon), 7),
                "lat": round(float(clat), 7),
                "radius_m": round(float(np.hypot(wx - cx, wy - cy).max()), 1),
                "nights": len(night_set),
                "first_night": _local_date(anc[night_set[0]], params),
                "last_night": _local_date(anc[night_set[-1]], params),
                "first_ts": dt.datetime.fromtimestamp(ts[rows].min(), dt.UTC).isoformat(),
                "last_ts": dt.datetime.fromtimestamp(ts[rows].max(), dt.UTC).isoformat(),
                "resting_nights": len(np.unique(nights[b.how[m] == 0])),
                "sensors": [
                    {
                        "id": names[int(sc[i])],
                        "lon": round(float(slon[i]), 7),
                        "lat": round(float(slat[i]), 7),
                        "nights": int(per_sensor[i]),
                    }
                    for i in order
                ],
            }
        )
    items.sort(key=lambda it: (-it["nights"], -len(it["sensors"]), it["lon"], it["lat"]))
    out["items"] = items[:limit]
    out["clusters"] = len(items)
    return out
