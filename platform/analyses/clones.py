"""Cloned plates (套牌): one plate seen where one vehicle could not have been.

A plate's consecutive passes (by time) at two checkpoints contradict when the gap is shorter than
the road allows: the distance between the checkpoints (on the road graph where the registry's
roads know it, else great-circle × a detour factor) driven faster than `max_speed_kmh` — or, where
both checkpoints' lanes have speed limits (GA/T 1400 lanes), faster than `limit_factor` × the higher
of the two limits when that is lower; or, for
pairs off the road graph, a gap under `trip_factor` × the fastest trip another plate was seen to
make between the two. A single misread (OCR) pass lands in another plate's history and
contradicts both its neighbours, so contradictions are counted as the fewest passes whose removal
would explain them all (a run of r contradicting pairs in a row needs ⌈r/2⌉). A plate is reported
with at least `min_contradictions` (2) such independent contradictions, or one plus a vehicle
colour/type mismatch between the two sides where each side's colour/type is seen on at least two
of the plate's passes (so one misread of another car is not). Passes that lie on the way of an
OCR twin of the plate (one misread away: 粤B0312B / 粤B03128) are its misreads and are taken out
first — in a city of 100k cars twins are common and misread into each other again and again.

Pure part: `find_clones` takes passes as columns sorted by (plate, ts) and returns the flagged
plates and their contradicting pairs, `explain_misreads` finds the twins' misreads — numpy
throughout, no loop over passes. `RoadNet` gives checkpoint-to-checkpoint road distances (scipy
Dijkstra over the registered roads). `analyse` loads a window from the database (one read of
plate/time/checkpoint for every pass — a binary COPY on PostgreSQL — then the full rows of the few
plates with a contradiction and of their twins) and shapes the answer.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from tianwang.errors import ValidationFailed
from tianwang.storage import sql
from tianwang.storage.models import Checkpoint, CheckpointLane, Pass, Road

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Bool = NDArray[np.bool_]

EARTH_R_M = 6_371_008.8
NOT_READ = ("none", "unread")  # plate kinds that are not a plate read off a vehicle
CHUNK = 100_000  # rows fetched per round trip
MAX_PASSES = 40_000_000  # passes one analysis reads (peak ~130 bytes each: ~5 GB)
DIJKSTRA_CHUNK = 256  # Dijkstra sources per call (rows × nodes floats held at once)
BASIS_SPEED, BASIS_TRIP = 1, 2


@dataclass(frozen=True)
class CloneParams:
    """The knobs of the analysis; `as_dict` is echoed in every answer."""

    max_speed_kmh: float = 150.0  # plausible top speed between two checkpoints
    # with speed limits on both checkpoints' lanes: top speed ≤ this × the higher of their limits
    limit_factor: float = 2.0
    detour: float = 1.3  # road length ≈ great-circle × this where the road graph does not know the pair
    max_detour: float = 3.0  # roads assumed at most this × great-circle when picking pairs to route
    jitter_s: float = 4.0  # clock tolerance added to every gap (device clocks jitter by ~2 s each)
    min_distance_m: float = 500.0  # checkpoints closer than this never contradict
    trip_min_samples: int = 30  # the fastest observed trip: over at least this many consecutive-pass gaps
    trip_factor: float = (
        0.25  # a gap under this × the fastest trip observed contradicts (pairs off the road graph)
    )
    trip_max_gap_s: float = 7200.0  # gaps longer than this are not trips (not counted in the quantile)
    min_contradictions: int = 2  # independent contradictions that make a clone on their own
    twin_window_s: float = (
        300.0  # a pass that fits between two passes of an OCR twin this close is its misread
    )
    max_evidence: int = 10  # contradicting pairs listed per plate

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PassColumns:
    """Passes sorted by (plate, ts): plate codes non-decreasing, times non-decreasing within a plate."""

    plate: I64  # plate code
    ts: F64  # epoch seconds
    cp: I64  # index into the site arrays
    profile: I64 | None = None  # (vehicle colour, vehicle type) code, −1 where unknown

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, idx: I64) -> PassColumns:
        return PassColumns(
            self.plate[idx], self.ts[idx], self.cp[idx], None if self.profile is None else self.profile[idx]
        )


def haversine_m(lon1: F64, lat1: F64, lon2: F64, lat2: F64) -> F64:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp, dl = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return np.asarray(2 * EARTH_R_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))), np.float64)


def site_vectors(lon: F64, lat: F64) -> NDArray[np.float64]:
    """Unit vectors of positions on the sphere (n × 3): great-circle distances by chord, no trig per pair."""
    lo, la = np.radians(np.asarray(lon, float)), np.radians(np.asarray(lat, float))
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def chord_distance_m(vec: NDArray[np.float64], a: I64, b: I64) -> F64:
    """Great-circle metres between sites a[i] and b[i] given their unit vectors."""
    d = vec[a] - vec[b]
    chord = np.sqrt(np.einsum("ij,ij->i", d, d))
    return np.asarray(2 * EARTH_R_M * np.arcsin(np.minimum(chord / 2, 1.0)), np.float64)


def _line_length_m(c: F64) -> float:
    return float(haversine_m(c[:-1, 0], c[:-1, 1], c[1:, 0], c[1:, 1]).sum())


class RoadNet:
    """Road distances between checkpoints over the registered road lines (undirected).

    Line ends within `snap_deg` are one node. A checkpoint is placed on the line named by its
    `road` (its position along the line by projection); a checkpoint without a known line has no
    road distance (the caller falls back to great-circle × detour), as has a pair in two
    unconnected parts of the graph.
    """

    def __init__(
        self,
        lines: Sequence[tuple[str, Any]],
        cp_lon: F64,
        cp_lat: F64,
        cp_road: Sequence[str | None],
        snap_deg: float = 1e-6,
    ) -> None:
        import shapely
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        n_cp = len(cp_lon)
        self.cp_u = np.full(n_cp, -1, np.int64)
        self.cp_v = np.full(n_cp, -1, np.int64)
        self.cp_du = np.zeros(n_cp)  # metres from the checkpoint to its line's first end
        self.cp_dv = np.zeros(n_cp)  # … and to its last end
        self.cp_edge = np.full(n_cp, -1, np.int64)
        coords = [np.asarray(c, float)[:, :2] for _, c in lines]
        coords = [c for c in coords if len(c) >= 2]
        ids = [rid for rid, c in lines if len(np.asarray(c)) >= 2]
        self.n_nodes = 0
        self._memo_codes = np.zeros(0, np.int64)
        self._memo_d = np.zeros(0)
        self.graph: Any = None
        self.component = np.zeros(0, np.int64)
        if not coords:
            return
        ends = np.vstack([np.array([c[0] for c in coords]), np.array([c[-1] for c in coords])])
        _, inv = np.unique(np.round(ends / snap_deg).astype(np.int64), axis=0, return_inverse=True)
        inv = inv.ravel()
        m = len(coords)
        eu, ev = inv[:m], inv[m:]
        length = np.array([_line_length_m(c) for c in coords])
        self.n_nodes = int(inv.max()) + 1
        n = self.n_nodes
        # parallel lines between two nodes: the shortest wins (coo → csr would add them up)
        keyed = np.minimum(eu, ev) * n + np.maximum(eu, ev)
        order = np.lexsort((length, keyed))
        first = np.r_[True, keyed[order][1:] != keyed[order][:-1]]
        k = order[first]
        self.graph = coo_matrix(
            (np.maximum(length[k], 1e-3), (np.minimum(eu[k], ev[k]), np.maximum(eu[k], ev[k]))), shape=(n, n)
        ).tocsr()
        _, self.component = connected_components(self.graph, directed=False)
        by_id = {rid: i for i, rid in enumerate(ids)}
        sel = [(j, by_id[r]) for j, r in enumerate(cp_road) if r is not None and r in by_id]
        if sel:
            cps = np.array([j for j, _ in sel], np.int64)
            edges = np.array([e for _, e in sel], np.int64)
            parts = [coords[e] for e in edges.tolist()]
            flat = np.vstack(parts)
            which = np.repeat(np.arange(len(parts)), [len(c) for c in parts])
            frac = shapely.line_locate_point(
                shapely.linestrings(flat, indices=which),
                shapely.points(cp_lon[cps], cp_lat[cps]),
                normalized=True,
            )
            self.cp_edge[cps] = edges
            self.cp_u[cps], self.cp_v[cps] = eu[edges], ev[edges]
            self.cp_du[cps] = frac * length[edges]
            self.cp_dv[cps] = (1 - frac) * length[edges]

    def knows(self, a: I64, b: I64) -> Bool:
        """Whether the graph gives a road distance between a[i] and b[i] (both placed, connected)."""
        ok = (self.cp_edge[a] >= 0) & (self.cp_edge[b] >= 0)
        if self.graph is None:
            return ok
        ok[ok] = self.component[self.cp_u[a[ok]]] == self.component[self.cp_u[b[ok]]]
        return ok

    @property
    def known(self) -> int:
        """How many checkpoints sit on a known line."""
        return int((self.cp_edge >= 0).sum())

    def distances(self, a: I64, b: I64) -> F64:
        """Road metres between checkpoints a[i] and b[i]; NaN where the graph does not know."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        out = np.full(len(a), np.nan)
        if not len(a) or self.graph is None:
            return out
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        width = len(self.cp_u) + 1
        pair, back = np.unique(lo * width + hi, return_inverse=True)
        # pairs routed before (an analysis asks again for the suspects' pairs) come from the memo
        memo = np.zeros(len(pair), bool)
        d = np.full(len(pair), np.nan)
        if len(self._memo_codes):
            pos = np.minimum(np.searchsorted(self._memo_codes, pair), len(self._memo_codes) - 1)
            memo = self._memo_codes[pos] == pair
            d[memo] = self._memo_d[pos[memo]]
        todo = np.flatnonzero(~memo)
        d[todo] = self._route(pair[todo] // width, pair[todo] % width)
        codes = np.r_[self._memo_codes, pair[todo]]
        order = np.argsort(codes)
        self._memo_codes, self._memo_d = codes[order], np.r_[self._memo_d, d[todo]][order]
        return d[back.ravel()]

    def _route(self, pa: I64, pb: I64) -> F64:
        from scipy.sparse.csgraph import dijkstra

        d = np.full(len(pa), np.nan)
        if not len(pa):
            return d
        ok = (self.cp_edge[pa] >= 0) & (self.cp_edge[pb] >= 0)
        ok[ok] = self.component[self.cp_u[pa[ok]]] == self.component[self.cp_u[pb[ok]]]
        same = ok & (self.cp_edge[pa] == self.cp_edge[pb])
        d[same] = np.abs(self.cp_du[pa[same]] - self.cp_du[pb[same]])
        rest = np.flatnonzero(ok & ~same)
        if len(rest):
            qa, qb = pa[rest], pb[rest]
            ends_a = ((self.cp_u[qa], self.cp_du[qa]), (self.cp_v[qa], self.cp_dv[qa]))
            ends_b = ((self.cp_u[qb], self.cp_du[qb]), (self.cp_v[qb], self.cp_dv[qb]))
            best = np.full(len(rest), np.inf)
            src = np.unique(np.r_[self.cp_u[qa], self.cp_v[qa]])
            for s in range(0, len(src), DIJKSTRA_CHUNK):
                chunk = src[s : s + DIJKSTRA_CHUNK]
                rows = dijkstra(self.graph, directed=False, indices=chunk)
                for xa, oa in ends_a:
                    pos = np.searchsorted(chunk, xa)
                    here = (pos < len(chunk)) & (chunk[np.minimum(pos, len(chunk) - 1)] == xa)
                    if not here.any():
                        continue
                    r = pos[here]
                    for xb, ob in ends_b:
                        cand = oa[here] + rows[r, xb[here]] + ob[here]
                        best[here] = np.minimum(best[here], cand)
            d[rest] = best
        return d


@dataclass
class TripStats:
    """The fastest observed trip per unordered checkpoint pair (pairs with enough samples only):
    the fastest gap and its plate, and the fastest by any other plate — a plate is never measured
    against its own gaps."""

    codes: I64  # sorted min(a, b) × n_sites + max(a, b)
    fastest: F64
    fastest_plate: I64
    fastest_other: F64  # the fastest by a plate other than `fastest_plate` (NaN if none)
    n_sites: int

    @classmethod
    def empty(cls, n_sites: int) -> TripStats:
        e = np.zeros(0, np.int64)
        return cls(e, np.zeros(0), e, np.zeros(0), n_sites)

    def lookup(self, a: I64, b: I64, plate: I64 | None = None) -> F64:
        """The fastest trip between a[i] and b[i] by a plate other than plate[i] (NaN: unknown)."""
        code = np.minimum(a, b) * self.n_sites + np.maximum(a, b)
        out = np.full(len(code), np.nan)
        if len(self.codes):
            pos = np.minimum(np.searchsorted(self.codes, code), len(self.codes) - 1)
            hit = self.codes[pos] == code
            best = self.fastest[pos]
            if plate is not None:
                best = np.where(self.fastest_plate[pos] == plate, self.fastest_other[pos], best)
            out[hit] = best[hit]
        return out


def trip_stats(a: I64, b: I64, gap: F64, plate: I64, n_sites: int, params: CloneParams) -> TripStats:
    """Per unordered pair with `trip_min_samples` gaps: the fastest gap, its plate, and the fastest
    by another plate (one sort)."""
    if not len(a):
        return TripStats.empty(n_sites)
    code = np.minimum(a, b).astype(np.int64) * n_sites + np.maximum(a, b)
    span = float(max(gap.max(), 0.0)) + 1.0
    order = np.argsort(code * span + np.maximum(gap, 0.0))  # by pair, then gap: one sort
    code_s, gap_s, plate_s = code[order], gap[order], plate[order]
    new = np.r_[True, code_s[1:] != code_s[:-1]]
    starts = np.flatnonzero(new)
    counts = np.diff(np.r_[starts, len(code_s)])
    group = np.cumsum(new) - 1
    n = len(code_s)
    other = np.where(plate_s != plate_s[starts][group], np.arange(n), n)
    first_other = np.minimum.reduceat(other, starts)
    second = np.where(first_other < n, gap_s[np.minimum(first_other, n - 1)], np.nan)
    keep = counts >= params.trip_min_samples
    return TripStats(code_s[starts][keep], gap_s[starts][keep], plate_s[starts][keep], second[keep], n_sites)


@dataclass
class Clones:
    """What `find_clones` found. Pair j joins passes j and j + 1 (indices into the input)."""

    pair: I64  # contradicting pairs (first pass index), all plates with at least one
    distance_m: F64
    seconds: F64
    basis: I64  # BASIS_SPEED | BASIS_TRIP bits
    fastest_s: F64  # the fastest observed trip for the pair (NaN if unknown)
    mismatch: Bool  # colour/type differ between the sides (each side seen at least twice)
    plates: I64  # plate codes with at least one contradiction, ascending
    independent: I64  # per plate: contradictions no single misread explains together
    flagged: Bool  # per plate: reported as cloned
    trips: TripStats


@dataclass
class Judged:
    """The verdict on pairs of passes (site a, site b, gap)."""

    bad: Bool
    speed_bad: Bool
    trip_bad: Bool
    distance_m: F64
    fastest_s: F64


def top_speed_kmh(a: I64, b: I64, params: CloneParams, limit_kmh: F64 | None = None) -> F64:
    """The fastest one vehicle is taken to drive from site a[i] to site b[i]: `max_speed_kmh`, or
    `limit_factor` × the higher of the two sites' lane speed limits when both are known and that
    is lower (`limit_kmh` per site, NaN where no lane has a limit)."""
    top = np.full(len(a), params.max_speed_kmh)
    if limit_kmh is None or not len(a):
        return top
    la, lb = limit_kmh[a], limit_kmh[b]
    known = ~np.isnan(la) & ~np.isnan(lb)
    return np.where(known, np.minimum(top, params.limit_factor * np.fmax(la, lb)), top)


def judge(
    a: I64,
    b: I64,
    gap: F64,
    vec: NDArray[np.float64],
    params: CloneParams,
    road: RoadNet | None,
    trips: TripStats,
    plate: I64 | None = None,
    limit_kmh: F64 | None = None,
) -> Judged:
    """Which (a → b in `gap` seconds, by `plate`) pairs no single vehicle could drive (see the
    module text); without `plate`, the fastest observed trip is every plate's."""
    gc = chord_distance_m(vec, a, b)
    far = (a != b) & (gc >= params.min_distance_m)
    # the farthest one vehicle gets
    allow = top_speed_kmh(a, b, params, limit_kmh) / 3.6 * (gap + params.jitter_s)
    fastest = trips.lookup(a, b, plate)
    trip_short = far & ~np.isnan(fastest) & (gap + params.jitter_s < params.trip_factor * fastest)
    dist = gc * params.detour
    routed = far & ((gc * params.max_detour > allow) | trip_short)
    on_roads = np.zeros(len(a), bool)
    if road is not None and routed.any():
        rd = road.distances(a[routed], b[routed])
        on_roads[routed] = ~np.isnan(rd)
        dist[routed] = np.where(np.isnan(rd), dist[routed], rd)
    speed_bad = far & (dist > allow)
    # where the road graph knows the pair, its distance bounds the trip: observed trips only add
    # false alarms there (a car taking a faster way few others take between the two)
    trip_bad = trip_short & ~on_roads
    return Judged(speed_bad | trip_bad, speed_bad, trip_bad, dist, fastest)


def find_clones(
    p: PassColumns,
    site_lon: F64,
    site_lat: F64,
    params: CloneParams,
    road: RoadNet | None = None,
    trips: TripStats | None = None,
    limit_kmh: F64 | None = None,
) -> Clones:
    """Contradicting consecutive passes and the plates they make clones (see the module text);
    `limit_kmh`: per site, the highest speed limit of its lanes (NaN where none)."""
    n_sites = len(site_lon)
    n = len(p)
    if n < 2:
        e = np.zeros(0, np.int64)
        f = np.zeros(0)
        t = trips or TripStats.empty(n_sites)
        return Clones(e, f, f, e, f, np.zeros(0, bool), e, e, np.zeros(0, bool), t)
    plate, ts, cp = p.plate, p.ts, p.cp
    a, b = cp[:-1], cp[1:]
    gap = ts[1:] - ts[:-1]
    valid = (plate[1:] == plate[:-1]) & (a != b)
    if trips is None:  # observed trips only count off the road graph: gather them only there
        t_sel = valid & (gap <= params.trip_max_gap_s) & (params.trip_factor > 0)
        if road is not None:
            t_sel[t_sel] = ~road.knows(a[t_sel], b[t_sel])
        trips = trip_stats(a[t_sel], b[t_sel], gap[t_sel], plate[:-1][t_sel], n_sites, params)
    j = np.flatnonzero(valid)
    v = judge(a[j], b[j], gap[j], site_vectors(site_lon, site_lat), params, road, trips, plate[j], limit_kmh)
    k = np.flatnonzero(v.bad)
    pair = j[k]
    basis = np.where(v.speed_bad[k], BASIS_SPEED, 0) | np.where(v.trip_bad[k], BASIS_TRIP, 0)
    # independent contradictions: a run of r pairs in a row (sharing passes) needs ⌈r/2⌉ bad passes
    new_run = np.r_[True, pair[1:] != pair[:-1] + 1] if len(pair) else np.zeros(0, bool)
    run_id = np.cumsum(new_run) - 1
    run_len = np.bincount(run_id) if len(pair) else np.zeros(0, np.int64)
    run_plate = plate[pair[new_run]]
    plates, inv = np.unique(run_plate, return_inverse=True)
    independent = np.bincount(inv.ravel(), weights=(run_len + 1) // 2, minlength=len(plates)).astype(np.int64)
    mismatch = np.zeros(len(pair), bool)
    if p.profile is not None and len(pair):
        prof = np.asarray(p.profile, np.int64)
        width = int(prof.max()) + 2
        _, pinv, pcnt = np.unique(plate * width + (prof + 1), return_inverse=True, return_counts=True)
        support = pcnt[pinv.ravel()]
        pa, pb = prof[pair], prof[pair + 1]
        mismatch = (pa >= 0) & (pb >= 0) & (pa != pb) & (support[pair] >= 2) & (support[pair + 1] >= 2)
    plate_mm = np.zeros(len(plates), bool)
    if mismatch.any():
        plate_mm[np.searchsorted(plates, plate[pair[mismatch]])] = True
    flagged = (independent >= params.min_contradictions) | ((independent >= 1) & plate_mm)
    return Clones(
        pair=pair,
        distance_m=v.distance_m[k],
        seconds=gap[pair],
        basis=basis.astype(np.int64),
        fastest_s=v.fastest_s[k],
        mismatch=mismatch,
        plates=plates.astype(np.int64),
        independent=independent,
        flagged=flagged,
        trips=trips,
    )


# ---- OCR twins: plates one misread away, whose passes can land in each other's history

_OCR_CLASSES = ("0ODQ", "1I", "8B")
_PLATE_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, O in serials


def ocr_twins(plate_no: str) -> set[str]:
    """Plate texts one OCR slip from `plate_no` (after the province): a confusable character
    swapped (O/0/D/Q, I/1, B/8), one character dropped, or one added (`plate_no` read from a
    plate with one more character)."""
    out: set[str] = set()
    p = plate_no
    for i in range(1, len(p)):
        for cls in _OCR_CLASSES:
            if p[i] in cls:
                out.update(p[:i] + c + p[i + 1 :] for c in cls if c != p[i])
        out.add(p[:i] + p[i + 1 :])
    for i in range(1, len(p) + 1):
        out.update(p[:i] + c + p[i:] for c in _PLATE_CHARS)
    out.discard(p)
    return out


def explain_misreads(
    sub: PassColumns,
    test: I64,
    twins: PassColumns,
    pairs: tuple[I64, I64],
    site_lon: F64,
    site_lat: F64,
    params: CloneParams,
    road: RoadNet | None,
    trips: TripStats,
    limit_kmh: F64 | None = None,
) -> Bool:
    """Which passes `sub[test]` fit the timeline of one of their plate's OCR twins.

    `twins`: the twins' passes (codes of their own, sorted like `PassColumns`); `pairs`: (plate
    code in `sub`, twin code) for every twin of every plate. A pass fits a twin when the twin was
    seen within `twin_window_s` before it and within `twin_window_s` after it, and neither of those
    two passes contradicts it: the pass lies on the twin's way, and is most likely its, misread.
    """
    out = np.zeros(len(test), bool)
    if not len(test) or not len(twins) or not len(pairs[0]):
        return out
    order = np.argsort(pairs[0], kind="stable")
    ps, pt = pairs[0][order], pairs[1][order]
    code = sub.plate[test]
    lo, hi = np.searchsorted(ps, code, "left"), np.searchsorted(ps, code, "right")
    n = hi - lo
    xi = np.repeat(np.arange(len(test)), n)  # (tested pass, twin) candidates
    ti = pt[lo[xi] + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))]
    if not len(xi):
        return out
    x_ts, x_cp = sub.ts[test[xi]], sub.cp[test[xi]]
    t0 = min(float(twins.ts.min()), float(x_ts.min())) - 1.0
    span = max(float(twins.ts.max()), float(x_ts.max())) - t0 + 1.0
    key = twins.plate * span + (twins.ts - t0)
    pos = np.searchsorted(key, ti * span + (x_ts - t0))
    prev, nxt = pos - 1, np.minimum(pos, len(key) - 1)
    has_prev = (pos > 0) & (twins.plate[np.maximum(prev, 0)] == ti)
    has_next = (pos < len(key)) & (twins.plate[nxt] == ti)
    prev = np.maximum(prev, 0)
    g_prev, g_next = x_ts - twins.ts[prev], twins.ts[nxt] - x_ts
    vec = site_vectors(site_lon, site_lat)
    bad_prev = judge(twins.cp[prev], x_cp, g_prev, vec, params, road, trips, limit_kmh=limit_kmh).bad
    bad_next = judge(x_cp, twins.cp[nxt], g_next, vec, params, road, trips, limit_kmh=limit_kmh).bad
    near = has_prev & has_next & (g_prev <= params.twin_window_s) & (g_next <= params.twin_window_s)
    fits = near & ~bad_prev & ~bad_next
    np.logical_or.at(out, xi, fits)
    return out


# ---- loading from the database


def epoch_of(session: Session, col: Any) -> Any:
    """A SQL expression for a UTC timestamp column as epoch seconds (float) on either database."""
    return sql.epoch_seconds(col, sql.dialect_of(session))


@dataclass
class Sites:
    ids: list[str]
    pk: I64  # checkpoints.id per site
    lon: F64
    lat: F64
    road: list[str | None]
    index_of_pk: I64  # checkpoints.id → site index (−1 none)
    limit_kmh: F64 | None = None  # the highest speed limit of the site's lanes (NaN: none)

    @classmethod
    def load(cls, session: Session) -> Sites:
        rows = session.execute(
            select(
                Checkpoint.id, Checkpoint.checkpoint_id, Checkpoint.lon, Checkpoint.lat, Checkpoint.road
            ).order_by(Checkpoint.id)
        ).all()
        pk = np.array([r[0] for r in rows], np.int64)
        index = np.full(int(pk.max()) + 1 if len(pk) else 1, -1, np.int64)
        index[pk] = np.arange(len(pk))
        limits: dict[str, float] = dict(
            session.execute(
                select(CheckpointLane.checkpoint_id, func.max(CheckpointLane.speed_limit_kmh))
                .where(CheckpointLane.speed_limit_kmh.is_not(None))
                .group_by(CheckpointLane.checkpoint_id)
            ).all()
        )
        return cls(
            ids=[r[1] for r in rows],
            pk=pk,
            lon=np.array([r[2] for r in rows], float),
            lat=np.array([r[3] for r in rows], float),
            road=[r[4] for r in rows],
            index_of_pk=index,
            limit_kmh=np.array([limits.get(r[1], np.nan) for r in rows], np.float64) if limits else None,
        )


def load_roadnet(session: Session, sites: Sites) -> RoadNet | None:
    """The registered roads as a graph for the checkpoints; None when no road is registered."""
    lines: list[tuple[str, Any]] = []
    for rid, geom in session.execute(select(Road.road_id, Road.geometry)):
        if not isinstance(geom, dict):
            continue
        if geom.get("type") == "LineString":
            lines.append((rid, geom["coordinates"]))
        elif geom.get("type") == "MultiLineString":  # each part an edge; the road id names the first
            lines.extend(
                (rid if k == 0 else f"{rid}#{k}", part) for k, part in enumerate(geom["coordinates"])
            )
    if not lines:
        return None
    return RoadNet(lines, sites.lon, sites.lat, sites.road)


def _window_filter(frm: dt.datetime, to: dt.datetime) -> Any:
    return and_(
        Pass.ts >= frm,
        Pass.ts <= to,
        Pass.plate_valid.is_(True),
        Pass.plate_kind.not_in(NOT_READ),
    )


@dataclass
class Loaded:
    """The window's readable passes as columns (see `PassColumns`) and how to name their plates."""

    cols: PassColumns
    n_plates: int
    _names: list[str] | None = None  # code → text (the portable loader has them all)
    _hashes: I64 | None = None  # code → hashtextextended(plate_no, 0) (the PostgreSQL loader)
    _first: I64 | None = None  # code → its first pass (index into cols)
    _pk: I64 | None = None  # checkpoints.id per pass

    def names(self, session: Session, sites: Sites, codes: I64) -> list[str]:
        """The plate texts of `codes`."""
        if self._names is not None:
            return [self._names[c] for c in codes.tolist()]
        assert self._hashes is not None and self._first is not None and self._pk is not None
        # one index probe per plate: its first pass, by (checkpoint, time ± 1 ms), picked by the hash
        found: dict[int, str] = {}
        first = self._first[codes]
        for i in range(0, len(first), 200):
            part = first[i : i + 200]
            conds = [
                and_(
                    Pass.checkpoint_id == sites.ids[int(sites.index_of_pk[pk])],
                    Pass.ts >= dt.datetime.fromtimestamp(t - 0.001, dt.UTC),
                    Pass.ts <= dt.datetime.fromtimestamp(t + 0.001, dt.UTC),
                )
                for pk, t in zip(self._pk[part].tolist(), self.cols.ts[part].tolist(), strict=True)
            ]
            rows = session.execute(
                select(func.hashtextextended(Pass.plate_no, 0), Pass.plate_no).where(or_(*conds))
            )
            found.update((int(h), p) for h, p in rows)
        return [found[int(h)] for h in self._hashes[codes].tolist()]


def load_columns(
    session: Session, sites: Sites, frm: dt.datetime, to: dt.datetime, *, portable: bool = False
) -> Loaded:
    """Every readable pass of the window as (plate code, epoch, site) columns sorted by plate and time.

    On PostgreSQL one binary COPY of fixed-width numbers (plate hash, epoch, checkpoint row id) read
    straight into numpy and sorted there; elsewhere one scan in (plate, ts) order fetched in chunks.
    """
    if sql.is_pg(session) and not portable:
        return _load_columns_pg(session, sites, frm, to)
    stmt = (
        select(Pass.plate_no, epoch_of(session, Pass.ts), Checkpoint.id)
        .join(Checkpoint, Checkpoint.checkpoint_id == Pass.checkpoint_id)
        .where(_window_filter(frm, to))
        .order_by(Pass.plate_no, Pass.ts, Pass.key)
        .execution_options(yield_per=CHUNK)
    )
    names: list[str] = []
    codes: list[I64] = []
    tss: list[F64] = []
    cps: list[I64] = []
    last: str | None = None
    for part in session.execute(stmt).partitions(CHUNK):
        pl, t, c = zip(*part, strict=True)
        arr = np.array(pl, dtype=object)
        new = np.r_[arr[0] != last, arr[1:] != arr[:-1]]
        base = len(names)
        names.extend(arr[new].tolist())
        codes.append(base + np.cumsum(new) - 1)
        tss.append(np.array(t, float))
        cps.append(sites.index_of_pk[np.array(c, np.int64)])
        last = arr[-1]
    if not codes:
        e = np.zeros(0, np.int64)
        return Loaded(PassColumns(e, np.zeros(0), e), 0, _names=names)
    cols = PassColumns(np.concatenate(codes), np.concatenate(tss), np.concatenate(cps))
    return Loaded(cols, len(names), _names=names)


# one row of `COPY (SELECT int8, float8, int4) TO STDOUT (FORMAT binary)`: field count, then
# (length, value) per field, big-endian
_COPY_ROW = np.dtype(
    [("n", ">i2"), ("l1", ">i4"), ("h", ">i8"), ("l2", ">i4"), ("t", ">f8"), ("l3", ">i4"), ("c", ">i4")]
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00"


def _load_columns_pg(session: Session, sites: Sites, frm: dt.datetime, to: dt.datetime) -> Loaded:
    from psycopg import sql

    query = sql.SQL(
        "COPY (SELECT hashtextextended(p.plate_no, 0), extract(epoch FROM p.ts)::float8, c.id "
        "FROM passes p JOIN checkpoints c ON c.checkpoint_id = p.checkpoint_id "
        "WHERE p.ts >= {} AND p.ts <= {} AND p.plate_valid AND p.plate_kind NOT IN ({}, {})"
        ") TO STDOUT (FORMAT binary)"
    ).format(sql.Literal(frm), sql.Literal(to), *(sql.Literal(k) for k in NOT_READ))
    raw = session.connection().connection.driver_connection
    assert raw is not None
    size = _COPY_ROW.itemsize
    hs: list[I64] = []
    tss: list[F64] = []
    pks: list[I64] = []
    buf = bytearray()
    head = True

    def take(final: bool) -> None:
        """Parse the whole rows received so far into native columns; keep the rest for later."""
        nonlocal head
        if head:
            if len(buf) < 19:
                return
            if buf[:11] != _COPY_HEADER:
                raise RuntimeError("COPY binary: unexpected header")
            del buf[: 19 + int.from_bytes(buf[15:19], "big")]
            head = False
        n = (len(buf) - (2 if final else 0)) // size
        if n > 0:
            rec = np.frombuffer(buf, _COPY_ROW, count=n)
            if not ((rec["n"] == 3) & (rec["l1"] == 8) & (rec["l2"] == 8) & (rec["l3"] == 4)).all():
                raise RuntimeError("COPY binary: unexpected row layout")
            hs.append(rec["h"].astype(np.int64))
            tss.append(rec["t"].astype(np.float64))
            pks.append(rec["c"].astype(np.int64))
            del rec  # release the buffer before it shrinks
            del buf[: n * size]

    with raw.cursor() as cur, cur.copy(query) as copy:
        for chunk in copy:  # a message per row: copy each into one buffer (holding them is slow)
            buf += chunk
            if len(buf) >= 1 << 22:
                take(False)
    take(True)
    if buf != b"\xff\xff":
        raise RuntimeError("COPY binary: unexpected trailer")
    e = np.zeros(0, np.int64)
    h = np.concatenate(hs) if hs else e
    t = np.concatenate(tss) if tss else np.zeros(0)
    pk = np.concatenate(pks) if pks else e
    order = np.lexsort((t, h))
    h, t, pk = h[order], t[order], pk[order]
    new = np.r_[True, h[1:] != h[:-1]] if len(h) else np.zeros(0, bool)
    code = np.cumsum(new) - 1
    first = np.flatnonzero(new)
    cols = PassColumns(code.astype(np.int64), t, sites.index_of_pk[pk])
    return Loaded(cols, len(first), _hashes=h[first], _first=first, _pk=pk)


def _load_plates(
    session: Session, sites: Sites, code_of: dict[str, int], frm: dt.datetime, to: dt.datetime
) -> tuple[PassColumns, list[dict[str, Any]]]:
    """The full rows of a few plates' passes, coded `code_of[plate_no]` and sorted by (code, ts),
    with (colour, type) profile codes."""
    plates = list(code_of)
    rows: list[Any] = []
    for i in range(0, len(plates), 500):
        rows.extend(
            session.execute(
                select(
                    Pass.plate_no,
                    epoch_of(session, Pass.ts),
                    Checkpoint.id,
                    Pass.ts,
                    Pass.key,
                    Pass.vehicle_color,
                    Pass.vehicle_type,
                )
                .join(Checkpoint, Checkpoint.checkpoint_id == Pass.checkpoint_id)
                .where(_window_filter(frm, to), Pass.plate_no.in_(plates[i : i + 500]))
                .order_by(Pass.plate_no, Pass.ts, Pass.key)
            ).all()
        )
    rows.sort(key=lambda r: (code_of[r[0]], r[3], r[4]))
    prof_names: dict[tuple[Any, Any], int] = {}
    profile = np.array(
        [
            -1 if r[5] is None and r[6] is None else prof_names.setdefault((r[5], r[6]), len(prof_names))
            for r in rows
        ],
        np.int64,
    )
    cols = PassColumns(
        plate=np.array([code_of[r[0]] for r in rows], np.int64),
        ts=np.array([r[1] for r in rows], float),
        cp=sites.index_of_pk[np.array([r[2] for r in rows], np.int64)] if rows else np.zeros(0, np.int64),
        profile=profile,
    )
    detail = [
        {
            "plate_no": r[0],
            "ts": r[3].isoformat(),
            "checkpoint_id": sites.ids[int(sites.index_of_pk[r[2]])],
            "lon": float(sites.lon[sites.index_of_pk[r[2]]]),
            "lat": float(sites.lat[sites.index_of_pk[r[2]]]),
            "key": r[4],
            "vehicle_color": r[5],
            "vehicle_type": r[6],
        }
        for r in rows
    ]
    return cols, detail


def _load_twins(
    session: Session, sites: Sites, names: list[str], frm: dt.datetime, to: dt.datetime
) -> tuple[PassColumns, list[str]]:
    """The passes of those of `names` seen in the window (plate, ts, site), and the names seen."""
    rows: list[Any] = []
    for i in range(0, len(names), 500):
        rows.extend(
            session.execute(
                select(Pass.plate_no, epoch_of(session, Pass.ts), Checkpoint.id)
                .join(Checkpoint, Checkpoint.checkpoint_id == Pass.checkpoint_id)
                .where(_window_filter(frm, to), Pass.plate_no.in_(names[i : i + 500]))
            ).all()
        )
    seen = sorted({r[0] for r in rows})
    code = {p: k for k, p in enumerate(seen)}
    if not rows:
        e = np.zeros(0, np.int64)
        return PassColumns(e, np.zeros(0), e), seen
    plate = np.array([code[r[0]] for r in rows], np.int64)
    ts = np.array([r[1] for r in rows], float)
    order = np.lexsort((ts, plate))
    pk = np.array([r[2] for r in rows], np.int64)[order]
    return PassColumns(plate[order], ts[order], sites.index_of_pk[pk]), seen


def _basis_names(bits: int) -> list[str]:
    return [name for bit, name in ((BASIS_SPEED, "speed"), (BASIS_TRIP, "trip")) if bits & bit]


def analyse(
    session: Session, frm: dt.datetime, to: dt.datetime, params: CloneParams
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Cloned plates over a window: the flagged plates (most contradictions first), and figures
    about the run (passes scanned, plates, road-graph coverage, seconds per step)."""
    clock = [time.perf_counter()]
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        clock.append(time.perf_counter())
        seconds[name] = round(clock[-1] - clock[-2], 2)

    n_window = session.execute(
        select(func.count()).select_from(Pass).where(_window_filter(frm, to))
    ).scalar_one()
    if n_window > MAX_PASSES:
        why = (
            f"the window holds {n_window:,} passes; cloned plates reads at most {MAX_PASSES:,} at once "
            "(~130 bytes each): narrow the window"
        )
        raise ValidationFailed(why, errors=[{"field": "from", "message": why}])
    sites = Sites.load(session)
    road = load_roadnet(session, sites)
    lap("registry")
    loaded = load_columns(session, sites, frm, to)
    cols = loaded.cols
    lap("read")
    first = find_clones(cols, sites.lon, sites.lat, params, road, limit_kmh=sites.limit_kmh)
    lap("scan")
    suspect_codes = first.plates[first.independent >= 1]
    suspects = loaded.names(session, sites, suspect_codes)
    name_of = dict(zip(suspect_codes.tolist(), suspects, strict=True))
    stats: dict[str, Any] = {
        "passes": len(cols),
        "plates": loaded.n_plates,
        "checkpoints": len(sites.ids),
        "checkpoints_on_roads": road.known if road else 0,
        "suspect_plates": len(suspects),
        "seconds": seconds,
    }
    if not suspects:
        return [], stats
    sub, detail = _load_plates(session, sites, {n: c for c, n in name_of.items()}, frm, to)
    found = find_clones(sub, sites.lon, sites.lat, params, road, trips=first.trips, limit_kmh=sites.limit_kmh)
    # passes that fit an OCR twin's timeline are its misreads: out of the plate's history
    test = np.unique(np.r_[found.pair, found.pair + 1])
    twins_of = {name: ocr_twins(name) for name in suspects}
    slack = dt.timedelta(seconds=params.twin_window_s)
    twin_cols, seen = _load_twins(
        session, sites, sorted(set().union(*twins_of.values())), frm - slack, to + slack
    )
    seen_code = {p: k for k, p in enumerate(seen)}
    pairs = [(c, seen_code[t]) for c, name in name_of.items() for t in twins_of[name] if t in seen_code]
    explained = explain_misreads(
        sub,
        test,
        twin_cols,
        (np.array([c for c, _ in pairs], np.int64), np.array([t for _, t in pairs], np.int64)),
        sites.lon,
        sites.lat,
        params,
        road,
        first.trips,
        sites.limit_kmh,
    )
    stats |= {"twin_plates": len(seen), "explained_as_misreads": int(explained.sum())}
    if explained.any():
        keep = np.setdiff1d(np.arange(len(sub)), test[explained])
        sub, detail = sub.take(keep), [detail[i] for i in keep.tolist()]
        found = find_clones(
            sub, sites.lon, sites.lat, params, road, trips=first.trips, limit_kmh=sites.limit_kmh
        )
    pair_plate = sub.plate[found.pair]
    items: list[dict[str, Any]] = []
    for pi in np.flatnonzero(found.flagged).tolist():
        code = int(found.plates[pi])
        rows = np.flatnonzero(pair_plate == code)
        # strongest first: how far over the allowance the pair is (distance ÷ allowed distance)
        top = top_speed_kmh(sub.cp[found.pair[rows]], sub.cp[found.pair[rows] + 1], params, sites.limit_kmh)
        allow = top / 3.6 * (found.seconds[rows] + params.jitter_s)
        ratio = np.maximum(
            found.distance_m[rows] / allow,
            np.nan_to_num(
                params.trip_factor * found.fastest_s[rows] / (found.seconds[rows] + params.jitter_s)
            ),
        )
        rows = rows[np.argsort(-ratio, kind="stable")]
        evidence = [_pair(found, int(r), detail) for r in rows[: params.max_evidence].tolist()]
        items.append(
            {
                "plate_no": name_of[code],
                **evidence[0],
                "contradictions": int(found.independent[pi]),
                "contradicting_pairs": len(rows),
                "attribute_mismatch": bool(found.mismatch[rows].any()),
                "evidence": evidence,
            }
        )
    items.sort(key=lambda it: (-it["contradictions"], it["plate_no"]))
    stats["flagged"] = len(items)
    lap("suspects")
    return items, stats


def _pair(found: Clones, r: int, detail: list[dict[str, Any]]) -> dict[str, Any]:
    i = int(found.pair[r])
    sec = float(found.seconds[r])
    dist = float(found.distance_m[r])
    side = ("ts", "checkpoint_id", "lon", "lat", "key", "vehicle_color", "vehicle_type")
    fastest = float(found.fastest_s[r])
    return {
        "a": {k: detail[i][k] for k in side},
        "b": {k: detail[i + 1][k] for k in side},
        "distance_m": round(dist, 1),
        "seconds": round(sec, 3),
        "implied_speed_kmh": round(dist / sec * 3.6, 1) if sec > 0 else None,
        "fastest_trip_s": None if np.isnan(fastest) else round(fastest, 1),
        "basis": _basis_names(int(found.basis[r])),
        "attribute_mismatch": bool(found.mismatch[r]),
    }
