"""Fusion (三轨联控): given a plate, a person or a phone, rank the entities of the other two kinds by
spatio-temporal co-occurrence with it, with the evidence and a merged case timeline.

The scoring is pure (numpy columns in, ranked associations out); `fuse` loads the subject's
sightings and, per other kind, only the candidate sightings near them (sensor near a subject
sensor, time within the tolerance) from SQL, then scores. Method and defaults: docs/fusion.md.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import DateTime, String, and_, func, literal, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from tianwang.storage import sql
from tianwang.storage.models import (
    Camera,
    Checkpoint,
    FaceSighting,
    Fence,
    Pass,
    PhoneSighting,
)

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Obj = NDArray[np.object_]

KINDS = ("vehicle", "person", "phone")
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True)
class Params:
    """Fusion parameters; every answer echoes them (`params`)."""

    # how far apart in time two sightings may be and still be one moment, per sensor kind: a
    # checkpoint's clock is good to seconds, a face camera's to a minute with the walk past it, a
    # fence hears a phone at some moment within minutes; a pair takes the larger of its two
    tolerance_s: Mapping[str, float] = field(
        default_factory=lambda: {"vehicle": 30.0, "person": 60.0, "phone": 180.0}
    )
    # how far apart two sensors may be beyond their own catchments (a fence's radius_m, a face
    # camera's range_m; a checkpoint is a point)
    max_distance_m: float = 300.0
    bucket_s: int = 3600  # the time bucket of a co-occurrence: one per (site, bucket)
    idf_k: float = 100.0  # a bucket shared by n candidates weighs ln(1 + idf_k / n) (see `support`)
    site_m: float = 100.0  # a site is a square of the city this wide (see `sites`)
    share_power: float = 1.0  # score = support × share ** share_power (see `rank`)
    # the evidence floor: an association scoring less is not answered (a score is roughly the number
    # of co-occurrences × their weight × the shares; calibrated on the movement simulator, docs/fusion.md)
    min_score: float = 3.0
    mutual_check: int = 3  # associations per kind re-checked the other way round, at most (see `fuse`)
    mutual_window_s: float = 600.0  # … over their sightings this close in time to the subject's
    min_sites: int = 3  # an association needs co-occurrences at this many distinct subject sites …
    min_days: int = 2  # … or on this many distinct days
    day_utc_offset_h: float = 8.0  # days are local days (China Standard Time)
    top: int = 10  # associations kept per kind
    evidence_limit: int = 20  # matched pairs listed per association (one per co-occurrence)
    timeline_limit: int = 500  # entries of the merged timeline
    max_subject_sightings: int = 20_000  # a subject with more in the window is cut (said in the answer)

    def tolerance(self, a: str, b: str) -> float:
        return max(self.tolerance_s[a], self.tolerance_s[b])

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["tolerance_s"] = dict(self.tolerance_s)
        return d


@dataclass(frozen=True)
class Sightings:
    """One kind's sightings as columns: the entity seen (plate, person, IMSI), when (epoch seconds),
    the record key, the sensor and its position and catchment radius (metres)."""

    kind: str
    entity: Obj
    t: F64
    key: Obj
    sensor: Obj
    lon: F64
    lat: F64
    reach_m: F64

    def __len__(self) -> int:
        return len(self.t)

    @classmethod
    def empty(cls, kind: str) -> Sightings:
        o = np.empty(0, object)
        f = np.empty(0, np.float64)
        return cls(kind, o, f, o, o, f, f, f)

    @classmethod
    def of(cls, kind: str, rows: Sequence[Sequence[Any]]) -> Sightings:
        """From rows (entity, t, key, sensor, lon, lat, reach_m); a sensor no longer in the registry
        (no position) cannot co-occur and is dropped."""
        if not rows:
            return cls.empty(kind)
        cols = list(zip(*rows, strict=True))
        lon = np.array(cols[4], np.float64)  # None → nan
        lat = np.array(cols[5], np.float64)
        ok = ~(np.isnan(lon) | np.isnan(lat))
        return cls(
            kind,
            np.array(cols[0], object)[ok],
            np.array(cols[1], np.float64)[ok],
            np.array(cols[2], object)[ok],
            np.array(cols[3], object)[ok],
            lon[ok],
            lat[ok],
            np.nan_to_num(np.array(cols[6], np.float64))[ok],
        )

    def take(self, idx: I64 | NDArray[np.bool_]) -> Sightings:
        return Sightings(
            self.kind,
            self.entity[idx],
            self.t[idx],
            self.key[idx],
            self.sensor[idx],
            self.lon[idx],
            self.lat[idx],
            self.reach_m[idx],
        )


@dataclass(frozen=True)
class Pairs:
    """Matched (subject sighting i, candidate sighting j) pairs with their distance and time offset."""

    i: I64
    j: I64
    dist_m: F64
    dt_s: F64  # candidate time − subject time


def distance_m(lon1: F64, lat1: F64, lon2: F64, lat2: F64) -> F64:
    """Great-circle distance (haversine), metres."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(lon2 - lon1)
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), np.float64)


def _ranges(start: I64, count: I64) -> I64:
    """The concatenation of arange(start[n], start[n] + count[n]) over n, without a loop."""
    total = int(count.sum())
    first = np.repeat(np.cumsum(count) - count, count)
    return np.asarray(np.repeat(start, count) + (np.arange(total, dtype=np.int64) - first), np.int64)


def match(subject: Sightings, cand: Sightings, params: Params) -> Pairs:
    """Every (subject, candidate) pair within the pair's time tolerance whose sensors are within
    max_distance_m beyond their catchments. Candidates are searched by time (sorted + searchsorted),
    so the work is the number of pairs in time, not subject × candidates."""
    tol = params.tolerance(subject.kind, cand.kind)
    order = np.argsort(cand.t, kind="stable")
    ct = cand.t[order]
    lo = np.searchsorted(ct, subject.t - tol, "left")
    hi = np.searchsorted(ct, subject.t + tol, "right")
    n = hi - lo
    i = np.repeat(np.arange(len(subject), dtype=np.int64), n)
    j = order[_ranges(lo, n)].astype(np.int64)
    d = distance_m(subject.lon[i], subject.lat[i], cand.lon[j], cand.lat[j])
    ok = d <= params.max_distance_m + subject.reach_m[i] + cand.reach_m[j]
    i, j, d = i[ok], j[ok], d[ok]
    return Pairs(i, j, d, cand.t[j] - subject.t[i])


def _codes(a: Obj) -> tuple[Obj, I64]:
    u, inv = np.unique(a.astype(str), return_inverse=True)
    return u, inv.astype(np.int64).reshape(-1)


def sites(lon: F64, lat: F64, params: Params, lat0: float) -> I64:
    """The site of each sensor position: its cell in a grid of site_m squares (a local
    equirectangular projection at latitude lat0), so a cluster of sensors around one place — the
    cameras around a key site, a fence and the checkpoint under it — is one site."""
    k = math.radians(1.0) * EARTH_RADIUS_M / params.site_m
    gx = np.floor(lon * k * math.cos(math.radians(lat0))).astype(np.int64)
    gy = np.floor(lat * k).astype(np.int64)
    return gx * 1_000_003 + gy


def buckets(s: Sightings, params: Params, lat0: float) -> tuple[I64, I64, I64]:
    """Per sighting its (site, time-bucket) index; per bucket its site and local day number."""
    site = sites(s.lon, s.lat, params, lat0)
    tb = np.floor(s.t / params.bucket_s).astype(np.int64)
    ub, inv = np.unique(np.stack([site, tb], axis=1), axis=0, return_inverse=True)
    day = np.floor((ub[:, 1] * params.bucket_s + params.day_utc_offset_h * 3600) / 86400).astype(np.int64)
    return inv.reshape(-1).astype(np.int64), ub[:, 0].astype(np.int64), day


def _distinct_per(group: I64, value: I64, n_groups: int) -> I64:
    """How many distinct values each group has."""
    if len(group) == 0:
        return np.zeros(n_groups, np.int64)
    v = value - value.min()
    u = np.unique(group * (int(v.max()) + 1) + v) // (int(v.max()) + 1)
    return np.bincount(u, minlength=n_groups).astype(np.int64)


@dataclass
class Support:
    """Every candidate entity that co-occurred with the subject at least once, with its support.

    `co` counts co-occurrences: distinct subject (site, bucket)s, but never more than the distinct
    (site, bucket)s of the candidate's matched sightings — one face seen once near five checkpoints
    is one co-occurrence, not five. `sites` and `days` are counted the same way (the smaller side).
    """

    kind: str
    names: Obj
    support: F64  # sum of the bucket weights, scaled down like `co`
    confidence: F64  # support / the weight of all covered subject buckets
    co: I64
    sites: I64
    days: I64
    matched: I64  # distinct candidate sightings matched
    pairs: Pairs
    pair_entity: I64  # per pair, the entity's index in names
    pair_bucket: I64  # per pair, the subject bucket
    weight: F64  # per subject bucket
    covered: int  # subject buckets where any candidate co-occurred

    def eligible(self, params: Params) -> I64:
        """Entities meeting min_sites or min_days, by support (best first)."""
        ok = np.flatnonzero((self.sites >= params.min_sites) | (self.days >= params.min_days))
        return ok[np.lexsort((self.names[ok].astype(str), -self.co[ok], -self.support[ok]))]


def support(subject: Sightings, cand: Sightings, params: Params, pairs: Pairs | None = None) -> Support:
    """Weigh the co-occurrences of every candidate entity with the subject.

    A subject bucket b where n_b distinct candidates co-occurred weighs w_b = ln(1 + idf_k / n_b)
    (IDF-like, over a nominal population of idf_k): a busy site or hour (many candidates) says
    little about any one of them, a quiet one says much. The population is a constant, not the
    candidates of this query, so scores compare across subjects and min_score means the same for all.
    """
    p = pairs if pairs is not None else match(subject, cand, params)
    lat0 = float(np.mean(subject.lat)) if len(subject) else 0.0
    b_of, b_site, b_day = buckets(subject, params, lat0)
    names, ent = _codes(cand.entity[p.j])
    ne, nb = len(names), len(b_site)
    pb = b_of[p.i]
    u = np.unique(pb * max(ne, 1) + ent)  # one co-occurrence per (bucket, entity)
    ub, ue = u // max(ne, 1), u % max(ne, 1)
    n_b = np.bincount(ub, minlength=nb)
    w = np.zeros(nb)
    seen = n_b > 0
    w[seen] = np.log1p(params.idf_k / n_b[seen])
    raw = np.bincount(ue, weights=w[ub], minlength=ne)
    s_co = np.bincount(ue, minlength=ne)
    s_sites = _distinct_per(ue, b_site[ub], ne)
    s_days = _distinct_per(ue, b_day[ub], ne)
    # the candidate's side of the same pairs
    c_b, c_site, c_day = buckets(cand.take(p.j), params, lat0) if len(p.j) else (np.empty(0, np.int64),) * 3
    c_co = _distinct_per(ent, c_b, ne)
    c_sites = _distinct_per(ent, c_site[c_b], ne) if len(p.j) else c_co
    c_days = _distinct_per(ent, c_day[c_b], ne) if len(p.j) else c_co
    co = np.minimum(s_co, c_co)
    sup = np.asarray(raw * np.divide(co, s_co, out=np.zeros(ne), where=s_co > 0), np.float64)
    total_w = float(w.sum())
    return Support(
        cand.kind,
        names,
        sup,
        sup / total_w if total_w > 0 else np.zeros(ne),
        co,
        np.minimum(s_sites, c_sites),
        np.minimum(s_days, c_days),
        _distinct_per(ent, p.j, ne),
        p,
        ent,
        pb,
        w,
        int(seen.sum()),
    )


@dataclass
class Association:
    """One ranked association with the pairs behind it."""

    kind: str
    id: str
    score: float
    support: float
    confidence: float
    share: float  # of the candidate's own sightings in the window, the share that co-occurred
    co_occurrences: int
    sites: int
    days: int
    sightings: int  # the candidate's sightings in the window
    evidence: list[tuple[int, int, float, float, float]]  # (subject i, candidate j, dist_m, dt_s, weight)


def scores(sup: Support, entities: I64, activity: I64, params: Params) -> tuple[F64, F64, I64]:
    """score, share and sightings of `entities` given their sighting counts in the window; a score is
    never above the support (share ≤ 1), which bounds the entities not yet counted (`fuse`)."""
    act = np.maximum(activity, sup.matched[entities]).astype(np.int64)
    share = sup.matched[entities] / np.maximum(act, 1)
    return np.asarray(sup.support[entities] * share**params.share_power, np.float64), share, act


def rank(sup: Support, entities: I64, activity: I64, params: Params) -> list[Association]:
    """Rank `entities` (indices into sup.names) given their sighting counts in the window.

    score = support × share ** share_power: an entity seen everywhere (a bus, a taxi driver's phone)
    co-occurs with anyone by sheer volume, and only a small share of its own sightings is with the
    subject; the subject's own phone or car co-occurs on a large share of its sightings. (`fuse`
    multiplies the first ones by their reciprocity.)
    """
    if len(entities) == 0:
        return []
    sc, share, act = scores(sup, entities, activity, params)
    o = np.lexsort((sup.names[entities].astype(str), -sup.co[entities], -sc))[: params.top]
    keep, share, sc, act = entities[o], share[o], sc[o], act[o]
    # evidence: per kept entity and subject bucket, the pair closest in time; the heaviest buckets
    pos = np.full(len(sup.names), -1, np.int64)
    pos[keep] = np.arange(len(keep))
    p = sup.pairs
    sel = np.flatnonzero(pos[sup.pair_entity] >= 0)
    r = pos[sup.pair_entity[sel]]
    sel = sel[np.lexsort((np.abs(p.dt_s[sel]), sup.pair_bucket[sel], r))]
    r = pos[sup.pair_entity[sel]]
    first = np.ones(len(sel), bool)
    first[1:] = (r[1:] != r[:-1]) | (sup.pair_bucket[sel[1:]] != sup.pair_bucket[sel[:-1]])
    sel = sel[first]
    evidence: list[list[tuple[int, int, float, float, float]]] = [[] for _ in keep]
    for k in sel:  # bounded by the kept entities' co-occurrences
        evidence[int(pos[sup.pair_entity[k]])].append(
            (
                int(p.i[k]),
                int(p.j[k]),
                float(p.dist_m[k]),
                float(p.dt_s[k]),
                float(sup.weight[sup.pair_bucket[k]]),
            )
        )
    out = []
    for n, e in enumerate(keep):
        ev = sorted(evidence[n], key=lambda x: -x[4])[: params.evidence_limit]
        out.append(
            Association(
                sup.kind,
                str(sup.names[e]),
                float(sc[n]),
                float(sup.support[e]),
                float(sup.confidence[e]),
                float(share[n]),
                int(sup.co[e]),
                int(sup.sites[e]),
                int(sup.days[e]),
                int(act[n]),
                sorted(ev, key=lambda x: (x[0], x[1])),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------------
# loading from the database


@dataclass(frozen=True)
class _Kind:
    model: Any
    entity: Any  # the subject column (plate_no, person_id, imsi)
    sensor: Any  # the record's sensor column
    sensor_model: Any
    sensor_id: Any
    reach: Any  # the sensor's catchment radius column, or None (a point)
    sensor_name: str  # how the answer names the sensor
    sensor_filter: Any = None  # which registry rows are sensors of this kind


_K: dict[str, _Kind] = {
    "vehicle": _Kind(
        Pass, Pass.plate_no, Pass.checkpoint_id, Checkpoint, Checkpoint.checkpoint_id, None, "checkpoint_id"
    ),
    "person": _Kind(
        FaceSighting,
        FaceSighting.person_id,
        FaceSighting.camera_id,
        Camera,
        Camera.device_id,
        Camera.range_m,
        "camera_id",
        Camera.kind == "face",
    ),
    "phone": _Kind(
        PhoneSighting,
        PhoneSighting.imsi,
        PhoneSighting.fence_id,
        Fence,
        Fence.fence_id,
        Fence.radius_m,
        "fence_id",
    ),
}
SUBJECT_PARAM = {"vehicle": "plate_no", "person": "person_id", "phone": "imsi"}
_CHUNK = 5000  # intervals per candidate query
_PRE_RANK = 100  # eligible candidates whose sightings are counted at a time (see `fuse`)
_MAX_COUNTED = 1000  # … and at most


def _at(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def _iso(t: float) -> str:
    return _at(round(t, 3)).isoformat(timespec="milliseconds")


def _sensors(session: Session, kind: str) -> tuple[Obj, F64, F64, F64]:
    """The registry's sensors of one kind, sorted by id: ids, lon, lat, catchment radius."""
    k = _K[kind]
    reach = k.reach if k.reach is not None else literal(0.0)
    stmt = select(k.sensor_id, k.sensor_model.lon, k.sensor_model.lat, reach).order_by(k.sensor_id)
    if k.sensor_filter is not None:
        stmt = stmt.where(k.sensor_filter)
    rows = session.execute(stmt).all()
    if not rows:
        return np.empty(0, object), np.empty(0), np.empty(0), np.empty(0)
    ids, lon, lat, r = zip(*rows, strict=True)
    return (
        np.array(ids, object),
        np.array(lon, np.float64),
        np.array(lat, np.float64),
        np.nan_to_num(np.array(r, np.float64)),
    )


def _track(
    session: Session, kind: str, entity: str, f: dt.datetime, t: dt.datetime, limit: int
) -> tuple[Sightings, bool]:
    """One entity's sightings in [f, t] in time order, at their sensors' positions; and whether cut."""
    k = _K[kind]
    reach = k.reach if k.reach is not None else literal(0.0)
    stmt = (
        select(
            k.entity,
            sql.epoch_seconds(k.model.ts, sql.dialect_of(session)),
            k.model.key,
            k.sensor,
            k.sensor_model.lon,
            k.sensor_model.lat,
            reach,
        )
        .outerjoin(k.sensor_model, k.sensor_id == k.sensor)
        .where(k.entity == entity, k.model.ts >= f, k.model.ts <= t)
        .order_by(k.model.ts, k.model.key)
        .limit(limit + 1)
    )
    rows = session.execute(stmt).all()
    return Sightings.of(kind, rows[:limit]), len(rows) > limit


def _windows(
    subject: Sightings,
    kind: str,
    sensors: tuple[Obj, F64, F64, F64],
    params: Params,
    span: tuple[float, float] = (-math.inf, math.inf),
) -> list[tuple[str, float, float]]:
    """The (sensor, from, to) intervals where a candidate of `kind` may co-occur with the subject:
    every sensor of the kind near a subject sensor, around each subject sighting, merged per sensor,
    inside `span` (epoch seconds: the query's window)."""
    ids, lon, lat, reach = sensors
    if len(subject) == 0 or len(ids) == 0:
        return []
    tol = params.tolerance(subject.kind, kind)
    _, first, s_of = np.unique(subject.sensor.astype(str), return_index=True, return_inverse=True)
    s_of = s_of.reshape(-1)
    d = distance_m(subject.lon[first][:, None], subject.lat[first][:, None], lon[None, :], lat[None, :])
    near = d <= params.max_distance_m + subject.reach_m[first][:, None] + reach[None, :]
    # (subject sighting, nearby sensor) pairs, as intervals in integer milliseconds
    ns, nk = np.nonzero(near)  # sorted by subject sensor
    count = np.bincount(ns, minlength=len(first))
    offset = np.cumsum(count) - count
    i = np.repeat(np.arange(len(subject)), count[s_of])
    k = nk[_ranges(offset[s_of], count[s_of])]
    if len(k) == 0:
        return []
    lo = np.round(np.maximum(subject.t[i] - tol, span[0]) * 1000).astype(np.int64)
    hi = np.round(np.minimum(subject.t[i] + tol, span[1]) * 1000).astype(np.int64)
    o = np.lexsort((lo, k))
    k, lo, hi = k[o], lo[o], hi[o]
    # merge overlapping intervals of one sensor: a new one starts past the running end of the last
    big = np.int64(1) << np.int64(45)  # > any time in ms until the year 3000
    run_end = np.maximum.accumulate(k.astype(np.int64) * big + hi) - k.astype(np.int64) * big
    start = np.ones(len(k), bool)
    start[1:] = (k[1:] != k[:-1]) | (lo[1:] > run_end[:-1])
    m_lo, m_k = lo[start], k[start]
    m_hi = np.maximum.reduceat(hi, np.flatnonzero(start))
    return [(str(ids[a]), b / 1000.0, c / 1000.0) for a, b, c in zip(m_k, m_lo, m_hi, strict=True)]


def _join_intervals(session: Session, k: _Kind, rows: Sequence[tuple[str, float, float]]) -> Any:
    """select(records) joined to the (sensor, lo, hi) intervals, passed as one parameter each: arrays
    unnested on PostgreSQL, a JSON array on SQLite — the database walks the intervals and does one
    index range scan on (sensor, ts) per interval."""
    dialect = session.get_bind().dialect
    cols = (k.entity, sql.epoch_seconds(k.model.ts, sql.dialect_of(session)), k.model.key, k.sensor)
    if dialect.name == "postgresql":
        q = (
            func.unnest(
                literal([r[0] for r in rows], ARRAY(String)),
                literal([_at(r[1]) for r in rows], ARRAY(DateTime(timezone=True))),
                literal([_at(r[2]) for r in rows], ARRAY(DateTime(timezone=True))),
            )
            .table_valued("sensor", "lo", "hi")
            .render_derived(name="q")
        )
        on = and_(k.sensor == q.c.sensor, k.model.ts >= q.c.lo, k.model.ts <= q.c.hi)
        return select(*cols).select_from(q).join(k.model, on)
    # SQLite compares the stored text; format the bounds exactly as the column type stores them
    fmt = dialect.type_descriptor(DateTime(timezone=True)).bind_processor(dialect)
    assert fmt is not None  # SQLite's DATETIME formats text
    doc = json.dumps([[r[0], fmt(_at(r[1])), fmt(_at(r[2]))] for r in rows])
    je = func.json_each(literal(doc)).table_valued("value").alias("q")
    on = and_(
        k.sensor == func.json_extract(je.c.value, "$[0]"),
        k.model.ts >= func.json_extract(je.c.value, "$[1]"),
        k.model.ts <= func.json_extract(je.c.value, "$[2]"),
    )
    return select(*cols).select_from(je).join(k.model, on)


def candidates(
    session: Session,
    subject: Sightings,
    kind: str,
    sensors: tuple[Obj, F64, F64, F64],
    params: Params,
    frm: dt.datetime,
    to: dt.datetime,
) -> Sightings:
    """The sightings of `kind` in [frm, to] that may co-occur with the subject: at sensors near the
    subject's, within the tolerance of one of its sightings."""
    k = _K[kind]
    wins = _windows(subject, kind, sensors, params, (frm.timestamp(), to.timestamp()))
    ids, lon, lat, reach = sensors
    rows: list[Any] = []
    for n in range(0, len(wins), _CHUNK):
        chunk = wins[n : n + _CHUNK]
        stmt = _join_intervals(session, k, chunk)
        if sql.is_pg(session):
            # the whole span too, so PostgreSQL prunes the day partitions at plan time (SQLite would
            # take these constants as the bounds of every interval's index range instead)
            span = (_at(min(w[1] for w in chunk)), _at(max(w[2] for w in chunk)))
            stmt = stmt.where(k.model.ts >= span[0], k.model.ts <= span[1])
        if kind == "vehicle":  # the no-plate / unread markers are not vehicles
            stmt = stmt.where(Pass.plate_kind.notin_(("none", "unread")))
        rows.extend(session.execute(stmt).all())
    if not rows:
        return Sightings.empty(kind)
    ent, t, key, sensor = (np.array(c, object) for c in zip(*rows, strict=True))
    at = np.searchsorted(ids, sensor)  # every sensor came from `ids` (the join)
    return Sightings(kind, ent, t.astype(np.float64), key, sensor, lon[at], lat[at], reach[at])


def activity(
    session: Session, kind: str, entities: Sequence[str], f: dt.datetime, t: dt.datetime
) -> dict[str, int]:
    """How many sightings each entity has in [f, t] (the primary key's range scans)."""
    if not entities:
        return {}
    k = _K[kind]
    stmt = (
        select(k.entity, func.count())
        .where(k.entity.in_(list(entities)), k.model.ts >= f, k.model.ts <= t)
        .group_by(k.entity)
    )
    return {str(e): int(n) for e, n in session.execute(stmt).all()}


def _sighting(kind: str, s: Sightings, i: int) -> dict[str, Any]:
    return {
        "kind": kind,
        "id": str(s.entity[i]),
        "ts": _iso(float(s.t[i])),
        "key": str(s.key[i]),
        _K[kind].sensor_name: str(s.sensor[i]),
        "lon": float(s.lon[i]),
        "lat": float(s.lat[i]),
    }


@dataclass
class _Found:
    """The ranked associations of one kind with a subject, their candidate sightings, the counts."""

    ranked: list[Association]
    cand: Sightings
    stats: dict[str, Any]
    sup: Support


def _associate(
    session: Session,
    subject: Sightings,
    other: str,
    frm: dt.datetime,
    to: dt.datetime,
    p: Params,
    sensors: dict[str, tuple[Obj, F64, F64, F64]],
) -> _Found:
    """Load, weigh and rank the entities of kind `other` that co-occur with `subject`."""
    if other not in sensors:
        sensors[other] = _sensors(session, other)
    cand = candidates(session, subject, other, sensors[other], p, frm, to)
    sup = support(subject, cand, p)
    eligible = sup.eligible(p)
    # count the sightings of the best-supported first, a block at a time, until no entity left
    # uncounted could beat the best score so far (a score is at most its support)
    counts: list[int] = []
    while len(counts) < min(len(eligible), _MAX_COUNTED):
        block = [str(x) for x in sup.names[eligible[len(counts) : len(counts) + _PRE_RANK]]]
        got = activity(session, other, block, frm, to)
        counts += [got.get(x, 0) for x in block]
        n = len(counts)
        best = scores(sup, eligible[:n], np.array(counts, np.int64), p)[0].max()
        if n < len(eligible) and best >= sup.support[eligible[n]]:
            break
    n = len(counts)
    ranked = rank(sup, eligible[:n], np.array(counts, np.int64), p)
    stats = {
        "candidate_sightings": len(cand),
        "co_occurring": len(sup.names),
        "eligible": len(eligible),
        "counted": n,
        # the best score is the best of all eligible entities (not cut by _MAX_COUNTED)
        "top_exact": n == len(eligible) or bool(ranked and ranked[0].score >= sup.support[eligible[n]]),
        "covered_buckets": sup.covered,
    }
    return _Found(ranked, cand, stats, sup)


def near_in_time(t: F64, ref: F64, window_s: float) -> NDArray[np.bool_]:
    """Which of the times `t` lie within window_s of one of the times `ref`."""
    r = np.sort(ref)
    return np.asarray(np.searchsorted(r, t + window_s, "right") > np.searchsorted(r, t - window_s, "left"))


def reciprocity(back: _Found, subject_id: str, subject_sightings: int, params: Params) -> float:
    """How much the candidate, looked at the other way round, prefers the subject: the subject's score
    among the candidate's associations of the subject's kind over the best of them (1: the subject is
    its best — a mutual association; 0: the subject is not even eligible)."""
    if not back.ranked:
        return 0.0
    hit = np.flatnonzero(back.sup.names.astype(str) == subject_id)
    if len(hit) == 0 or hit[0] not in back.sup.eligible(params):
        return 0.0
    mine = scores(back.sup, hit[:1], np.array([subject_sightings], np.int64), params)[0][0]
    return float(min(1.0, mine / back.ranked[0].score)) if back.ranked[0].score > 0 else 0.0


def recheck(raw: Sequence[float], check: Any, limit: int) -> tuple[F64, list[float | None]]:
    """Final scores: raw × reciprocity for the first `limit`, checked in order (check(n) → reciprocity)
    until no later raw score (an upper bound: reciprocity ≤ 1) could beat the best final one."""
    final = np.array(raw, np.float64)
    recip: list[float | None] = [None] * len(raw)
    for n in range(min(limit, len(raw))):
        if n and final[:n].max() >= raw[n]:
            break
        recip[n] = r = check(n)
        final[n] = raw[n] * r
    return final, recip


def fuse(
    session: Session,
    kind: str,
    subject_id: str,
    *,
    frm: dt.datetime,
    to: dt.datetime,
    params: Params | None = None,
    kinds: Sequence[str] | None = None,
) -> dict[str, Any]:
    """三轨联控 for one subject over [frm, to]: associations of the other two kinds (or of `kinds`),
    best first, with their evidence, and the merged timeline of the subject and the top association
    of each kind.

    The first associations of each kind are checked the other way round (互证): the candidate's own
    associations of the subject's kind, over its sightings within mutual_window_s of one of the
    subject's, and the association's score is multiplied by its `reciprocity` (`reciprocity`; it is
    `mutual` when the subject is the candidate's best). A phone that travelled with the car but
    whose own best car is another — a neighbour on the same commute in their own car — gives way to
    the car's own phone.
    """
    p = params or Params()
    subject, cut = _track(session, kind, subject_id, frm, to, p.max_subject_sightings)
    associations: list[dict[str, Any]] = []
    stats: dict[str, Any] = {}
    sensors: dict[str, tuple[Obj, F64, F64, F64]] = {}
    tracks = [subject]
    back = replace(p, top=1)
    for other in KINDS:
        if other == kind or (kinds is not None and other not in kinds):
            continue
        found = _associate(session, subject, other, frm, to, p, sensors)

        def check(n: int, found: _Found = found, other: str = other) -> float:
            track, _ = _track(session, other, found.ranked[n].id, frm, to, p.max_subject_sightings)
            track = track.take(near_in_time(track.t, subject.t, p.mutual_window_s))
            return reciprocity(
                _associate(session, track, kind, frm, to, back, sensors), subject_id, len(subject), p
            )

        final, recip = recheck([a.score for a in found.ranked], check, p.mutual_check)
        order = [n for n in np.lexsort((np.arange(len(final)), -final)).tolist() if final[n] >= p.min_score]
        stats[other] = found.stats | {"rechecked": sum(r is not None for r in recip)}
        for n in order:
            a = found.ranked[n]
            associations.append(
                {
                    "kind": a.kind,
                    "id": a.id,
                    "score": round(float(final[n]), 4),
                    "reciprocity": None if recip[n] is None else round(recip[n], 4),
                    "mutual": None if recip[n] is None else recip[n] >= 1.0,
                    "support": round(a.support, 4),
                    "confidence": round(a.confidence, 4),
                    "share": round(a.share, 4),
                    "co_occurrences": a.co_occurrences,
                    "sites": a.sites,
                    "days": a.days,
                    "sightings": a.sightings,
                    "evidence": [
                        {
                            "subject": _sighting(kind, subject, i),
                            "other": _sighting(other, found.cand, j),
                            "distance_m": round(d, 1),
                            "dt_s": round(g, 3),
                            "weight": round(w, 4),
                        }
                        for i, j, d, g, w in a.evidence
                    ],
                }
            )
        if order:
            first = found.ranked[order[0]].id
            tracks.append(_track(session, other, first, frm, to, p.max_subject_sightings)[0])
    timeline = _timeline(tracks, p.timeline_limit)
    n_buckets = len(buckets(subject, p, float(np.mean(subject.lat)))[1]) if len(subject) else 0
    return {
        "subject": {
            "kind": kind,
            "id": subject_id,
            SUBJECT_PARAM[kind]: subject_id,
            "sightings": len(subject),
            "buckets": n_buckets,
            "truncated": cut,
        },
        "from": frm.isoformat(),
        "to": to.isoformat(),
        "params": p.as_dict(),
        "associations": associations,
        "candidates": stats,
        "timeline": timeline[0],
        "timeline_truncated": timeline[1],
    }


def timeline_order(tracks: Sequence[Sightings], limit: int) -> tuple[list[tuple[int, int]], bool]:
    """The merged case timeline as (track, index) in time order, at most `limit` entries: all of the
    subject's sightings (tracks[0]) first, then the others' closest in time to one of the subject's;
    and whether anything was left out."""
    subj_t = np.sort(tracks[0].t)[:limit]
    keep = [(np.zeros(len(subj_t), np.int64), np.argsort(tracks[0].t, kind="stable")[:limit])]
    others_t = np.concatenate([s.t for s in tracks[1:]]) if len(tracks) > 1 else np.empty(0)
    src = np.concatenate([np.full(len(s), n + 1) for n, s in enumerate(tracks[1:])] + [np.empty(0, np.int64)])
    idx = np.concatenate([np.arange(len(s)) for s in tracks[1:]] + [np.empty(0, np.int64)])
    budget = limit - len(subj_t)
    if len(others_t) and budget > 0:
        if len(subj_t):
            at = np.clip(np.searchsorted(subj_t, others_t), 1, len(subj_t)) - 1
            gap = np.minimum(
                np.abs(others_t - subj_t[at]), np.abs(others_t - subj_t[np.minimum(at + 1, len(subj_t) - 1)])
            )
        else:
            gap = others_t - others_t.min()
        pick = np.argsort(gap, kind="stable")[:budget]
        keep.append((src[pick].astype(np.int64), idx[pick].astype(np.int64)))
    ks = np.concatenate([k[0] for k in keep])
    ki = np.concatenate([k[1] for k in keep])
    sizes = np.array([len(s) for s in tracks], np.int64)
    t = np.concatenate([s.t for s in tracks])[(np.cumsum(sizes) - sizes)[ks] + ki]
    o = np.lexsort((ks, t))
    total = sum(len(s) for s in tracks)
    return [(int(ks[n]), int(ki[n])) for n in o], total > len(o)


def _timeline(tracks: Sequence[Sightings], limit: int) -> tuple[list[dict[str, Any]], bool]:
    order, cut = timeline_order(tracks, limit)
    return [_sighting(tracks[a].kind, tracks[a], b) for a, b in order], cut
