"""The movement model: people with homes, workplaces, vehicles and phones, the road graph they travel,
route templates (which sensors a trip meets, and when), and each day's trips.

Everything is numpy arrays indexed by person / vehicle / phone / node; a trip is (template, start,
direction, speed factor, vehicle, person), and a template is computed once per (origin node, hub)
pair by walking a shortest-path tree (travel time from road-class speeds) rooted at the hub.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from simulator.city import City

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
I32 = NDArray[np.int32]
I64 = NDArray[np.int64]
B = NDArray[np.bool_]

DAY = 86_400.0
TZ_OFFSET_S = 8 * 3600  # China Standard Time: timestamps carry +08:00
# free-flow speeds by road class, km/h
SPEED_KMH = {
    "motorway": 90.0,
    "trunk": 70.0,
    "ring": 70.0,
    "primary": 55.0,
    "arterial": 50.0,
    "secondary": 40.0,
    "tertiary": 35.0,
    "residential": 25.0,
    "service": 15.0,
}
PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵青藏川宁琼"
PROVINCE_MAIN = "粤"
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"  # no I, no O
PLATE_ALNUM = "0123456789" + PLATE_LETTERS
# 普通车牌: province, letter, 5 of [A-Z0-9 without I/O]; 新能源: province, letter, D|F then 5 more
PLATE_RE = (
    "^[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Z]"
    "(?:[A-HJ-NP-Z0-9]{5}|[DF][A-HJ-NP-Z0-9][0-9]{4})$"
)
VEHICLE_COLORS = ("white", "black", "grey", "red", "blue", "brown")  # GA/T 1400 ColorType names
MNC = ("00", "01", "02", "03", "11")  # China Mobile, Unicom, Mobile, Telecom, Telecom
TACS = ("35332510", "86456203", "86891903", "35875110", "86769804", "35420911")

# person roles
COMMUTER, NIGHT, DRIVER = 0, 1, 2
# vehicle kinds
PRIVATE, TAXI, BUS = 0, 1, 2
# template event kinds
EV_CP, EV_FACE, EV_FENCE = 0, 1, 2


@dataclass(frozen=True)
class MovementParams:
    """What to simulate and how well the sensors see it. Counts left None follow the population size."""

    people: int = 1000
    vehicles: int = 600
    days: int = 1
    seed: int = 1
    start: dt.date = dt.date(2024, 3, 4)  # a Monday; days 5 and 6 of each week are the weekend
    pass_miss: float = 0.05  # share of vehicle passes a checkpoint does not record
    ocr_error: float = 0.01  # share of recorded passes whose plate is misread
    ts_jitter_s: float = 2.0  # checkpoint clock noise (normal, s)
    speed_noise: float = 0.12  # log-normal sigma of the measured speed
    face_miss: float = 0.3  # share of people in a face camera's view not recognised (×2 behind a windscreen)
    phone_miss: float = 0.1  # share of phone passes through a fence not captured
    phone_noise_s: float = 120.0  # fence clock noise, uniform ± this
    phone_off: float = 0.05  # share of phones switched off on a given day
    ping_s: float = 3600.0  # a phone dwelling inside a fence is captured every ping_s
    taxi_share: float = 0.03
    bus_share: float = 0.01
    night_share: float = 0.01  # 昼伏夜出 people among vehicle owners
    stay_share: float = 0.03  # people with a second place (落脚点) among vehicle owners
    clones: int | None = None  # cloned-plate pairs (套牌); default max(1, vehicles // 2000)
    companion_groups: int | None = None  # default max(1, vehicles // 1000)
    companion_window_s: float = 60.0
    entries: int | None = (
        None  # vehicles arriving from outside (first entry); default max(1, vehicles // 500)
    )
    fences: int | None = None  # phone fences; default from the city's size
    window_s: float = 900.0  # observations are produced one window of simulated time at a time
    batch_size: int = 5000

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.people <= 5_000_000:
            problems.append("people must be between 1 and 5,000,000")
        if not 0 <= self.vehicles <= 5_000_000:
            problems.append("vehicles must be between 0 and 5,000,000")
        if not 1 <= self.days <= 366:
            problems.append("days must be between 1 and 366")
        for name in ("pass_miss", "ocr_error", "face_miss", "phone_miss", "phone_off"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                problems.append(f"{name} must be between 0 and 1")
        for name in ("taxi_share", "bus_share", "night_share", "stay_share"):
            if not 0.0 <= getattr(self, name) <= 0.5:
                problems.append(f"{name} must be between 0 and 0.5")
        if self.ts_jitter_s < 0 or self.phone_noise_s < 0 or self.speed_noise < 0:
            problems.append("noise figures must be ≥ 0")
        if self.ping_s < 60:
            problems.append("ping_s must be ≥ 60")
        if not 60 <= self.window_s <= DAY:
            problems.append("window_s must be between 60 and 86400")
        if not 1 <= self.batch_size <= 5000:
            problems.append("batch_size must be between 1 and 5000")
        for name in ("clones", "companion_groups", "entries", "fences"):
            v = getattr(self, name)
            if v is not None and v < 0:
                problems.append(f"{name} must be ≥ 0")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def n_taxis(self) -> int:
        return round(self.vehicles * self.taxi_share)

    @property
    def n_buses(self) -> int:
        return round(self.vehicles * self.bus_share)

    @property
    def t0(self) -> float:
        """Epoch seconds of local midnight starting day 0."""
        return dt.datetime.combine(self.start, dt.time(), dt.UTC).timestamp() - TZ_OFFSET_S


def _csr(owner: I64, n: int) -> tuple[I64, I64]:
    """CSR pointers and order for items grouped by `owner` (0 … n-1)."""
    order = np.argsort(owner, kind="stable")
    ptr = np.concatenate([[0], np.cumsum(np.bincount(owner, minlength=n))]).astype(np.int64)
    return ptr, order.astype(np.int64)


@dataclass
class Roads:
    """The city's road graph in metres, with what each edge and node carries: checkpoints, face
    cameras, phone fences."""

    xy: F64
    eu: I64
    ev: I64
    tt: F64  # free-flow travel time per edge, s
    speed: F64  # km/h
    bearing: F64  # u → v, degrees clockwise from north
    keys: I64  # sorted (min(u,v)·N + max(u,v)) of the best edge between two nodes
    best: I64
    csr: Any
    main: B  # nodes of the largest connected component
    cp_of_edge: I64
    cp_frac: F64
    cp_ids: list[str]
    cp_lanes: I64
    cp_dir: F64
    face_ids: list[str]
    face_ptr: I64 = field(default_factory=lambda: np.zeros(1, np.int64))
    face_idx: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    fence_bodies: list[dict[str, Any]] = field(default_factory=list)
    fence_ptr: I64 = field(default_factory=lambda: np.zeros(1, np.int64))
    fence_idx: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    fence_dist: F64 = field(default_factory=lambda: np.zeros(0))
    fence_radius: F64 = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        return len(self.xy)

    def edge_between(self, a: I64, b: I64) -> I64:
        n = self.n
        k = np.minimum(a, b) * n + np.maximum(a, b)
        i = np.searchsorted(self.keys, k)
        return self.best[i]


def metric(city: City) -> tuple[F64, float, float]:
    """Node positions in a local east/north plane (m) around the city centre; good to ~0.1 % at city size."""
    lon0, lat0 = city.params.centre_lon, city.params.centre_lat
    kx = 111_320.0 * math.cos(math.radians(lat0))
    xy = np.column_stack([(city.node_lon - lon0) * kx, (city.node_lat - lat0) * 110_574.0])
    return xy, lon0, lat0


def to_metric(city: City, lon: F64, lat: F64) -> F64:
    lon0, lat0 = city.params.centre_lon, city.params.centre_lat
    kx = 111_320.0 * math.cos(math.radians(lat0))
    return np.column_stack([(np.asarray(lon) - lon0) * kx, (np.asarray(lat) - lat0) * 110_574.0])


def to_lonlat(city: City, xy: F64) -> tuple[F64, F64]:
    lon0, lat0 = city.params.centre_lon, city.params.centre_lat
    kx = 111_320.0 * math.cos(math.radians(lat0))
    return xy[:, 0] / kx + lon0, xy[:, 1] / 110_574.0 + lat0


def site_centres(city: City) -> F64:
    pts = []
    for s in city.key_sites:
        g = s["geometry"]
        if g["type"] == "Point":
            pts.append(g["coordinates"])
        else:
            ring = np.asarray(g["coordinates"][0][:-1], float)
            pts.append(ring.mean(0).tolist())
    if not pts:
        return np.zeros((0, 2))
    a = np.asarray(pts, float)
    return to_metric(city, a[:, 0], a[:, 1])


def build_roads(city: City, rng: np.random.Generator, n_fences: int | None) -> Roads:
    xy, _, _ = metric(city)
    n = len(xy)
    eu, ev = city.edge_u.astype(np.int64), city.edge_v.astype(np.int64)
    speed = np.array([SPEED_KMH.get(c, 30.0) for c in city.edge_class])
    tt = city.edge_length_m / (speed / 3.6)
    d = xy[ev] - xy[eu]
    bearing = np.degrees(np.arctan2(d[:, 0], d[:, 1])) % 360.0
    # the fastest edge between each pair of nodes (parallel edges would otherwise be summed by scipy)
    k = np.minimum(eu, ev) * n + np.maximum(eu, ev)
    order = np.lexsort((tt, k))
    first = np.concatenate([[True], k[order][1:] != k[order][:-1]])
    best = order[first]
    keys = k[best]
    csr = csr_matrix((tt[best], (eu[best], ev[best])), shape=(n, n))
    _, labels = connected_components(csr, directed=False)
    main = labels == np.bincount(labels).argmax()

    m = len(eu)
    cp_of_edge = np.full(m, -1, np.int64)
    cps = city.checkpoints
    cp_xy = to_metric(city, np.array([c["lon"] for c in cps]), np.array([c["lat"] for c in cps]))
    cp_frac = np.zeros(len(cps))
    for i, c in enumerate(cps):
        road = str(c.get("road") or "")
        if not road.startswith("R"):
            continue
        e = int(road[1:])
        if not 0 <= e < m or cp_of_edge[e] >= 0:
            continue
        cp_of_edge[e] = i
        a, v = xy[eu[e]], xy[ev[e]] - xy[eu[e]]
        cp_frac[i] = float(np.clip(np.dot(cp_xy[i] - a, v) / max(np.dot(v, v), 1e-9), 0, 1))
    roads = Roads(
        xy=xy,
        eu=eu,
        ev=ev,
        tt=tt,
        speed=speed,
        bearing=bearing,
        keys=keys,
        best=best,
        csr=csr,
        main=main,
        cp_of_edge=cp_of_edge,
        cp_frac=cp_frac,
        cp_ids=[c["checkpoint_id"] for c in cps],
        cp_lanes=np.array([max(1, int(c.get("lanes") or 1)) for c in cps], np.int64),
        cp_dir=np.array([float(c.get("direction_deg") or 0.0) for c in cps]),
        face_ids=[],
    )
    tree = cKDTree(xy)
    _face_cameras(city, roads, tree)
    _fences(city, roads, tree, rng, cp_xy, n_fences)
    return roads


def _face_cameras(city: City, roads: Roads, tree: cKDTree) -> None:
    """A face camera sees the graph nodes inside its sector (plus a pedestrian's few metres), and the
    entrance of the key site it looks at."""
    faces = [c for c in city.cameras if c.get("kind") == "face"]
    roads.face_ids = [c["device_id"] for c in faces]
    if not faces:
        return
    fxy = to_metric(city, np.array([c["lon"] for c in faces]), np.array([c["lat"] for c in faces]))
    sites = site_centres(city)
    site_node = tree.query(sites)[1] if len(sites) else np.zeros(0, np.int64)
    owners: list[int] = []
    nodes: list[int] = []
    for i, c in enumerate(faces):
        reach = float(c["range_m"]) + 15.0
        for j in tree.query_ball_point(fxy[i], reach):
            dx, dy = roads.xy[j] - fxy[i]
            off = (math.degrees(math.atan2(dx, dy)) - float(c["heading_deg"]) + 180) % 360 - 180
            if (
                float(c["hfov_deg"]) >= 359
                or abs(off) <= float(c["hfov_deg"]) / 2 + 15
                or dx * dx + dy * dy < 100
            ):
                owners.append(i)
                nodes.append(j)
        if len(sites):
            ds = np.hypot(*(sites - fxy[i]).T)
            s = int(ds.argmin())
            if ds[s] < 100:
                owners.append(i)
                nodes.append(int(site_node[s]))
    pairs = np.unique(np.array([nodes, owners], np.int64).reshape(2, -1), axis=1)
    roads.face_ptr, order = _csr(pairs[0], roads.n)
    roads.face_idx = pairs[1][order]


def _fences(
    city: City, roads: Roads, tree: cKDTree, rng: np.random.Generator, cp_xy: F64, count: int | None
) -> None:
    """Phone fences (电子围栏, IMSI catchers): at key sites, at checkpoints, at major junctions."""
    sites = site_centres(city)
    n_cp = len(cp_xy)
    if count is None:
        count = (len(sites) + 1) // 2 + (n_cp + 3) // 4 + max(3, roads.n // 400)
    n_site = min(len(sites), count // 3 if count < len(sites) * 3 else len(sites))
    n_cp_f = min(n_cp, (count - n_site) * 2 // 3)
    n_junc = count - n_site - n_cp_f
    centres: list[F64] = []
    radius: list[F64] = []
    kinds: list[str] = []
    if n_site:
        si = np.sort(rng.choice(len(sites), n_site, replace=False))
        centres.append(sites[si])
        radius.append(rng.uniform(150, 300, n_site))
        kinds += [f"{city.key_sites[int(i)]['name']}围栏" for i in si]
    if n_cp_f:
        ci = np.sort(rng.choice(n_cp, n_cp_f, replace=False))
        centres.append(cp_xy[ci])
        radius.append(rng.uniform(120, 200, n_cp_f))
        kinds += [f"{city.checkpoints[int(i)]['name']}围栏" for i in ci]
    if n_junc > 0:
        cand = np.flatnonzero(roads.main & city.node_inside)
        ji = rng.choice(cand, n_junc, replace=len(cand) < n_junc)
        centres.append(roads.xy[ji])
        radius.append(rng.uniform(100, 200, n_junc))
        kinds += [f"路口{int(j)}围栏" for j in ji]
    if not centres:
        return
    cxy = np.vstack(centres)
    rad = np.concatenate(radius)
    lon, lat = to_lonlat(city, cxy)
    roads.fence_bodies = [
        {
            "fence_id": f"WF{city.params.seed % 100:02d}{i + 1:06d}",
            "name": kinds[i],
            "lon": round(float(lon[i]), 7),
            "lat": round(float(lat[i]), 7),
            "radius_m": round(float(rad[i]), 1),
        }
        for i in range(len(cxy))
    ]
    roads.fence_radius = rad
    owners: list[int] = []
    nodes: list[int] = []
    dists: list[float] = []
    for i in range(len(cxy)):
        js = tree.query_ball_point(cxy[i], rad[i])
        owners += [i] * len(js)
        nodes += js
        dists += np.hypot(*(roads.xy[js] - cxy[i]).T).tolist() if js else []
    nd = np.array(nodes, np.int64)
    roads.fence_ptr, order = _csr(nd, roads.n)
    roads.fence_idx = np.array(owners, np.int64)[order]
    roads.fence_dist = np.array(dists, np.float64)[order]


_EV_DTYPES = (np.int32, np.int8, np.int32, np.float32, np.float32, np.float32)


@dataclass
class Templates:
    """Per (origin node, hub) pair: duration and the sensor events met on the way, offsets from departure."""

    origin: I64
    hub: I64
    hub_nodes: I64
    dur: F64
    ptr: I64
    kind: NDArray[np.int8]
    dev: I32
    off: F32
    aux: F32  # CP: travel bearing; FENCE: distance from the fence centre
    speed: F32
    n_cp: I64
    keys: I64  # origin · len(hub_nodes) + hub, sorted: the index of a pair

    def lookup(self, origin: I64, hub: I64) -> I64:
        key = np.asarray(origin, np.int64) * len(self.hub_nodes) + hub
        i = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        return np.where(self.keys[i] == key, i, -1)  # -1: a pair no trip of this population takes

    def first_cp(self, t: int) -> int:
        a, b = self.ptr[t], self.ptr[t + 1]
        sel = np.flatnonzero(self.kind[a:b] == EV_CP)
        return int(self.dev[a + sel[0]]) if len(sel) else -1


def build_templates(roads: Roads, hub_nodes: I64, origin: I64, hub: I64, chunk: int = 48) -> Templates:
    """Walk every pair's shortest path (shortest-path trees rooted at the hubs, a chunk of hubs at a
    time so memory stays bounded) and record the checkpoints, face cameras and fences met."""
    h = len(hub_nodes)
    key = np.unique(origin.astype(np.int64) * h + hub)
    origin, hub = key // h, key % h
    p = len(key)
    dur = np.zeros(p)
    parts: list[tuple[NDArray[Any], ...]] = []

    def keep(*cols: NDArray[Any]) -> None:
        # compact dtypes: at city scale the events of all templates are tens of millions of rows
        parts.append(tuple(c.astype(d) for c, d in zip(cols, _EV_DTYPES, strict=True)))

    def node_events(pair: I64, node: I64, t: F64) -> None:
        for kind, ptr, idx, aux in (
            (EV_FACE, roads.face_ptr, roads.face_idx, None),
            (EV_FENCE, roads.fence_ptr, roads.fence_idx, roads.fence_dist),
        ):
            a = ptr[node]
            cnt = ptr[node + 1] - a
            tot = int(cnt.sum())
            if not tot:
                continue
            rep = np.repeat(np.arange(len(node)), cnt)
            j = np.repeat(a - np.concatenate([[0], np.cumsum(cnt)[:-1]]), cnt) + np.arange(tot)
            keep(
                *(
                    pair[rep],
                    np.full(tot, kind, np.int8),
                    idx[j],
                    t[rep],
                    aux[j] if aux is not None else np.zeros(tot),
                    np.zeros(tot),
                )
            )

    for c0 in range(0, h, chunk):
        sel = np.flatnonzero((hub >= c0) & (hub < c0 + chunk))
        if not len(sel):
            continue
        pred = dijkstra(
            roads.csr, directed=False, indices=hub_nodes[c0 : c0 + chunk], return_predecessors=True
        )[1].astype(np.int32)
        row = hub[sel] - c0
        cur = origin[sel].copy()
        t = np.zeros(len(sel))
        node_events(sel, cur, t)
        act = np.arange(len(sel))
        while len(act):
            nxt = pred[row[act], cur[act]].astype(np.int64)
            go = nxt >= 0
            act, nxt = act[go], nxt[go]
            if not len(act):
                break
            a = cur[act]
            e = roads.edge_between(a, nxt)
            cp = roads.cp_of_edge[e]
            has = cp >= 0
            if has.any():
                fwd = roads.eu[e[has]] == a[has]
                f = roads.cp_frac[cp[has]]
                f = np.where(fwd, f, 1 - f)
                brg = np.where(fwd, roads.bearing[e[has]], (roads.bearing[e[has]] + 180) % 360)
                keep(
                    *(
                        sel[act[has]],
                        np.full(int(has.sum()), EV_CP, np.int8),
                        cp[has],
                        t[act[has]] + roads.tt[e[has]] * f,
                        brg,
                        roads.speed[e[has]],
                    )
                )
            t[act] += roads.tt[e]
            cur[act] = nxt
            node_events(sel[act], nxt, t[act])
        dur[sel] = t
        del pred
    if parts:
        # each walk appends a pair's events in time order, so a stable sort by pair keeps them so
        order = np.argsort(np.concatenate([q[0] for q in parts]), kind="stable")
        cols = []
        for i in range(6):
            cols.append(np.concatenate([q[i] for q in parts])[order])
        del parts[:], order
    else:
        cols = [np.zeros(0, d) for d in _EV_DTYPES]
    ptr = np.concatenate([[0], np.cumsum(np.bincount(cols[0].astype(np.int64), minlength=p))]).astype(
        np.int64
    )
    n_cp = np.bincount(cols[0][cols[1] == EV_CP].astype(np.int64), minlength=p)
    return Templates(
        origin=origin,
        hub=hub,
        hub_nodes=hub_nodes,
        dur=dur,
        ptr=ptr,
        kind=cols[1].astype(np.int8),
        dev=cols[2],
        off=cols[3].astype(np.float32),
        aux=cols[4].astype(np.float32),
        speed=cols[5].astype(np.float32),
        n_cp=n_cp.astype(np.int64),
        keys=key,
    )


def make_plates(rng: np.random.Generator, n: int, nev: B) -> list[str]:
    """Unique plate numbers in valid syntax: mostly 粤, new-energy plates (D/F + 5 digits) where `nev`."""
    letters = np.array(list(PLATE_LETTERS))
    prov = np.where(rng.random(n) < 0.85, PROVINCE_MAIN, rng.choice(np.array(list(PROVINCES)), n))
    city_letter = np.where(rng.random(n) < 0.7, "B", rng.choice(letters, n))
    digits = rng.integers(0, 10, (n, 5)).astype(str)
    body = np.where(rng.random((n, 5)) < 0.12, rng.choice(letters, (n, 5)), digits)
    df = rng.choice(np.array(["D", "F"]), n)
    out: list[str] = []
    seen: set[str] = set()
    for i in range(n):
        s = (
            f"{prov[i]}{city_letter[i]}{df[i]}{''.join(digits[i])}"
            if nev[i]
            else f"{prov[i]}{city_letter[i]}{''.join(body[i])}"
        )
        while s in seen:  # a clash: draw this one again (rare, so one at a time)
            tail = "".join(str(x) for x in rng.integers(0, 10, 5))
            s = s[:3] + tail if nev[i] else s[:2] + "".join(rng.choice(letters, 1).tolist()) + tail[:4]
        seen.add(s)
        out.append(s)
    return out


def make_imsi(rng: np.random.Generator, n: int) -> list[str]:
    mnc = rng.choice(np.array(MNC), n)
    msin = rng.choice(10**10, n, replace=False) if n else np.zeros(0, np.int64)
    return [f"460{a}{b:010d}" for a, b in zip(mnc, msin.tolist(), strict=True)]


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def make_imei(rng: np.random.Generator, n: int) -> list[str]:
    tac = rng.choice(np.array(TACS), n)
    serial = rng.choice(10**6, n, replace=n > 10**6)
    out = []
    for t, s in zip(tac, serial.tolist(), strict=True):
        body = f"{t}{s:06d}"
        out.append(body + luhn_digit(body))
    return out


@dataclass
class Population:
    """People, vehicles and phones. Ids are strings on the wire; arrays are indexed by position."""

    person_ids: list[str]
    home: I64
    work: I64  # hub index or -1
    errand: I64  # hub index
    night_hub: I64
    role: I64
    stay: I64  # hub index of a second place (落脚点) or -1
    entry_day: I64  # day the person's vehicle first enters the city (-1: always inside)
    entry_origin: I64  # outer node it enters from
    veh_ptr: I64
    veh_idx: I64
    phone_ptr: I64
    phone_idx: I64
    imsi: list[str]
    imei: list[str]
    mac: list[str]
    phone_owner: I64
    vehicle_ids: list[str]
    plate: list[str]
    plate_color: list[str]
    vtype: list[str]
    vcolor: list[str]
    vkind: I64
    driver: I64  # the person who drives it (the owner for private vehicles)
    fleet_route: list[list[int]] = field(default_factory=list)  # per fleet vehicle: hubs it plies between
    clones: list[tuple[int, int]] = field(default_factory=list)  # (genuine vehicle, clone vehicle)
    clone_count: int = 0
    groups: list[dict[str, Any]] = field(default_factory=list)  # companion groups
    stay_nights: B = field(default_factory=lambda: np.zeros((0, 0), bool))
    hub_nodes: I64 = field(default_factory=lambda: np.zeros(0, np.int64))
    n_work_hubs: int = 0
    site_hubs: I64 = field(default_factory=lambda: np.zeros(0, np.int64))

    @property
    def n_people(self) -> int:
        return len(self.person_ids)

    def vehicles_of(self, p: int) -> list[int]:
        return self.veh_idx[self.veh_ptr[p] : self.veh_ptr[p + 1]].tolist()

    def phones_of(self, p: int) -> list[int]:
        return self.phone_idx[self.phone_ptr[p] : self.phone_ptr[p + 1]].tolist()


def build_population(city: City, roads: Roads, mp: MovementParams, rng: np.random.Generator) -> Population:
    n_p, n_v = mp.people, mp.vehicles
    n_taxi, n_bus = mp.n_taxis, mp.n_buses
    n_fleet = n_taxi + n_bus
    if n_fleet >= n_p:
        raise ValueError(f"{n_fleet} taxis and buses need more than {n_p} people to drive them")
    if n_v - n_fleet > 20 * (n_p - n_fleet):
        raise ValueError("at most 20 private vehicles per person: raise people or lower vehicles")
    inside = np.flatnonzero(roads.main & city.node_inside)
    if len(inside) < 4:
        raise ValueError("the city's road graph is too small to move on")
    r = np.hypot(roads.xy[inside, 0], roads.xy[inside, 1])
    # workplaces crowd the centre; homes spread over the city
    n_w = int(np.clip(n_p // 60, 8, 1000))
    pw = np.exp(-r / (0.35 * max(r.max(), 1.0)))
    work_nodes = rng.choice(inside, min(n_w, len(inside)), replace=False, p=pw / pw.sum())
    sites = site_centres(city)
    site_nodes = np.unique(cKDTree(roads.xy[inside]).query(sites)[1]) if len(sites) else np.zeros(0, np.int64)
    site_nodes = inside[site_nodes] if len(site_nodes) else rng.choice(inside, 4)
    if len(site_nodes) > 400:
        site_nodes = np.sort(rng.choice(site_nodes, 400, replace=False))
    n_s = int(np.clip(n_p // 300, 4, 200))
    stay_nodes = rng.choice(inside, n_s)
    hub_nodes = np.concatenate([work_nodes, site_nodes, stay_nodes]).astype(np.int64)
    w0, s0, st0 = 0, len(work_nodes), len(work_nodes) + len(site_nodes)
    n_hubs = len(hub_nodes)
    site_hubs = np.arange(s0, st0)

    home = rng.choice(inside, n_p)
    work = np.where(rng.random(n_p) < 0.85, rng.integers(w0, s0, n_p), -1)
    errand = rng.choice(site_hubs, n_p)
    night_hub = rng.choice(site_hubs, n_p)
    role = np.zeros(n_p, np.int64)
    stay = np.full(n_p, -1, np.int64)
    entry_day = np.full(n_p, -1, np.int64)
    entry_origin = np.full(n_p, -1, np.int64)

    # fleet: drivers are the first n_fleet people, living where their route starts
    role[:n_fleet] = DRIVER
    work[:n_fleet] = -1
    fleet_route: list[list[int]] = []
    hubs_all = np.arange(n_hubs - n_s)  # workplaces and sites
    for i in range(n_fleet):
        k = 2 if i >= n_taxi else 8
        route = rng.choice(hubs_all, k, replace=len(hubs_all) < k).tolist()
        fleet_route.append(route)
        home[i] = hub_nodes[route[0]]
    # private vehicles to the other people: one each first, then some second ones
    others = np.arange(n_fleet, n_p)
    n_priv = n_v - n_fleet
    if n_priv <= len(others):
        n_two = min(int(0.05 * n_priv), n_priv // 2)
        owners1 = rng.choice(others, n_priv - n_two, replace=False)
        owners = np.concatenate([owners1, rng.choice(owners1, n_two, replace=False)]) if n_two else owners1
    else:
        owners = np.concatenate([others, rng.choice(others, n_priv - len(others))])
    driver = np.concatenate([np.arange(n_fleet), owners]).astype(np.int64)
    vkind = np.concatenate([np.full(n_taxi, TAXI), np.full(n_bus, BUS), np.full(n_priv, PRIVATE)])
    # vehicle order: fleet first (driver i drives vehicle i), then private
    veh_ptr, veh_idx = _csr(driver, n_p)

    nev = np.where(vkind == PRIVATE, rng.random(n_v) < 0.18, rng.random(n_v) < 0.5)
    plate = make_plates(rng, n_v, nev)
    plate_color = ["green" if nev[i] else ("yellow" if vkind[i] == BUS else "blue") for i in range(n_v)]
    vt_pool = np.array(["car", "car", "car", "suv", "suv", "mpv", "van", "truck"])
    vtype = np.where(vkind == BUS, "bus", np.where(vkind == TAXI, "car", rng.choice(vt_pool, n_v))).tolist()
    vcolor = rng.choice(np.array(VEHICLE_COLORS), n_v).tolist()

    n_phones_each = np.where(rng.random(n_p) < 0.15, 2, 1)
    phone_owner = np.repeat(np.arange(n_p), n_phones_each)
    n_ph = len(phone_owner)
    phone_ptr, phone_idx = _csr(phone_owner, n_p)
    macs = rng.integers(0, 256, (n_ph, 5))
    mac = [("02:" + ":".join(f"{b:02x}" for b in row)) for row in macs.tolist()]

    pop = Population(
        person_ids=[f"P{i + 1:08d}" for i in range(n_p)],
        home=home.astype(np.int64),
        work=work.astype(np.int64),
        errand=errand.astype(np.int64),
        night_hub=night_hub.astype(np.int64),
        role=role,
        stay=stay,
        entry_day=entry_day,
        entry_origin=entry_origin,
        veh_ptr=veh_ptr,
        veh_idx=veh_idx,
        phone_ptr=phone_ptr,
        phone_idx=phone_idx,
        imsi=make_imsi(rng, n_ph),
        imei=make_imei(rng, n_ph),
        mac=mac,
        phone_owner=phone_owner.astype(np.int64),
        vehicle_ids=[f"V{i + 1:07d}" for i in range(n_v)],
        plate=plate,
        plate_color=plate_color,
        vtype=vtype,
        vcolor=vcolor,
        vkind=vkind.astype(np.int64),
        driver=driver,
        fleet_route=fleet_route,
        hub_nodes=hub_nodes,
        n_work_hubs=len(work_nodes),
        site_hubs=site_hubs.astype(np.int64),
    )
    # special subjects come from single-vehicle commuting owners, each used once
    n_veh = np.diff(veh_ptr)
    pool = np.flatnonzero((role == COMMUTER) & (n_veh == 1) & (work >= 0))
    pool = rng.permutation(pool)
    taken = 0

    def take(k: int) -> I64:
        nonlocal taken
        k = max(0, min(k, len(pool) - taken))
        out = pool[taken : taken + k]
        taken += k
        return out

    night = take(round(n_priv * mp.night_share))
    pop.role[night] = NIGHT
    pop.work[night] = -1
    stayers = take(round(n_priv * mp.stay_share))
    pop.stay[stayers] = rng.integers(st0, n_hubs, len(stayers))
    pop.stay_nights = np.zeros((n_p, mp.days), bool)
    pop.stay_nights[stayers] = rng.random((len(stayers), mp.days)) < 0.4
    # cloned plates: genuine owner + cloner; pairs are completed once templates are known (far apart)
    n_clones = mp.clones if mp.clones is not None else max(1, n_v // 2000)
    clone_cands = take(2 * n_clones)
    pop.clone_count = n_clones
    for a, b in zip(clone_cands[::2], clone_cands[1::2], strict=False):
        # the cloner lives across the city from the genuine owner, so the two are seen far apart at once
        far = np.hypot(*(roads.xy[inside] - roads.xy[pop.home[a]]).T)
        pop.home[b] = inside[int(np.argmax(far))]
    n_groups = mp.companion_groups if mp.companion_groups is not None else max(1, n_v // 1000)
    groups: list[dict[str, Any]] = []
    for _ in range(n_groups):
        size = int(rng.integers(2, 5))
        members = take(size)
        if len(members) < 2:
            break
        pop.home[members] = pop.home[members[0]]  # they live together (a gang's 落脚点)
        groups.append(
            {
                "members": members.tolist(),
                "offsets": np.concatenate(
                    [[0.0], np.sort(rng.uniform(5, mp.companion_window_s * 0.75, len(members) - 1))]
                ).tolist(),
                "hub_cands": rng.choice(site_hubs, 4).tolist(),
            }
        )
    pop.groups = groups
    n_entries = mp.entries if mp.entries is not None else max(1, n_v // 500)
    visitors = take(n_entries)
    guarded = city.entry_edges[city.entry_guarded]
    if len(visitors) and len(guarded):
        pop.entry_day[visitors] = rng.integers(0, mp.days, len(visitors))
        outer = city.edge_v[rng.choice(guarded, (len(visitors),))]
        pop.entry_origin[visitors] = outer
    pop.clones = [(int(a), int(b)) for a, b in zip(clone_cands[::2], clone_cands[1::2], strict=False)]
    return pop


def template_pairs(pop: Population, roads: Roads) -> tuple[I64, I64]:
    """Every (origin node, hub) a trip of this population can take."""
    hn = pop.hub_nodes
    o: list[I64] = []
    h: list[I64] = []
    w = pop.work >= 0
    o += [pop.home[w], pop.home, pop.home]
    h += [pop.work[w], pop.errand, pop.night_hub]
    s = pop.stay >= 0
    o += [hn[pop.work[s]], hn[pop.stay[s]]]
    h += [pop.stay[s], pop.work[s]]
    for g in pop.groups:
        home = pop.home[g["members"][0]]
        o.append(np.full(len(g["hub_cands"]), home))
        h.append(np.array(g["hub_cands"], np.int64))
    v = pop.entry_day >= 0
    o.append(pop.entry_origin[v])
    h.append(np.where(pop.work[v] >= 0, pop.work[v], pop.errand[v]))
    for route in pop.fleet_route:
        r = np.array(route, np.int64)
        o.append(hn[r])
        h.append(np.roll(r, -1))
    return np.concatenate(o).astype(np.int64), np.concatenate(h).astype(np.int64)


def finish_population(pop: Population, roads: Roads, tm: Templates, rng: np.random.Generator) -> None:
    """Choices that need routes: companions ride the candidate route with most checkpoints; clone
    pairs are matched far apart; visitors enter only through a guarded entry."""
    for g in pop.groups:
        home = np.full(len(g["hub_cands"]), pop.home[g["members"][0]])
        t = tm.lookup(home, np.array(g["hub_cands"], np.int64))
        best = int(np.argmax(tm.n_cp[t]))
        g["hub"] = int(g["hub_cands"][best])
        g["template"] = int(t[best])
    # clones: the second of each pair drives a copy of the first one's plate
    pairs: list[tuple[int, int]] = []
    for a, b in pop.clones[: pop.clone_count]:
        va, vb = pop.vehicles_of(a)[0], pop.vehicles_of(b)[0]
        pop.plate[vb] = pop.plate[va]
        pop.plate_color[vb] = pop.plate_color[va]
        pop.vtype[vb] = pop.vtype[va]
        pop.vcolor[vb] = pop.vcolor[va]
        pairs.append((va, vb))
    pop.clones = pairs
