"""Generate a synthetic city: perturbed street grid, arterials, ring road, exit roads, areas, sites, devices.

Everything is laid out in a local metric plane (x east, y north, metres, origin at the centre) with
numpy, then turned into WGS-84 lon/lat through a transverse Mercator centred on the city, so a
100,000-camera city on 15,000 km of road takes seconds. The same `CityParams` (seed included)
always gives the same city, byte for byte.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pyproj import Transformer

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

CITY_CODE = "440300"
# GB/T 2260 district codes of the synthetic city (Shenzhen's series, 440303 罗湖 … 440310 坪山)
DISTRICT_BASE = 440303
DISTRICT_NAMES = ("罗湖区", "福田区", "南山区", "宝安区", "龙岗区", "盐田区", "龙华区", "坪山区")
SITE_CATEGORIES = ("school", "hospital", "station", "market")
SITE_WEIGHTS = (0.35, 0.15, 0.2, 0.3)
SITE_NAMES = {
    "school": "第{n}小学",
    "hospital": "第{n}人民医院",
    "station": "{n}号地铁站",
    "market": "{n}号农贸市场",
}
KINDS = ("bullet", "dome", "ptz", "fisheye", "turret", "face")
KIND_WEIGHTS = (0.52, 0.25, 0.08, 0.05, 0.07, 0.03)
# (hfov low, hfov high, range low, range high) per kind: HFOV mostly 40–100°, range 30–150 m
KIND_OPTICS = {
    "bullet": (40, 90, 50, 150),
    "dome": (70, 100, 30, 60),
    "ptz": (50, 65, 100, 150),
    "fisheye": (360, 360, 30, 50),
    "turret": (50, 100, 40, 100),
    "face": (30, 50, 30, 40),
}
PTZ_TYPE = {"ptz": 1, "dome": 2, "fisheye": 2, "turret": 2, "bullet": 3, "face": 3, "checkpoint": 3}
POSITION_TYPE = {"school": 8, "hospital": 9, "station": 3, "market": 6}


@dataclass(frozen=True)
class CityParams:
    """What to build. `cameras` counts every camera body, checkpoint cameras included."""

    cameras: int = 50
    seed: int = 1
    road_km: float | None = None  # default: 0.15 km of road per camera (15,000 km for 100k), at least 5 km
    block_m: float = 150.0
    centre_lon: float = 114.05
    centre_lat: float = 22.55
    districts: int | None = None  # default from the city's size, 2 … 8
    entry_every: int = 4  # every n-th grid line leaves the city at both ends
    unguarded: int | None = None  # entries left without a checkpoint; default max(1, entries // 20)
    key_sites: int | None = None  # default max(4, cameras // 50)
    # optional extras for the movement simulator; at 0 (the default) the city is byte-for-byte the same
    inner_checkpoints: int = 0  # checkpoints on inner roads (major roads first), without cameras
    face_cameras: int = 0  # face cameras on top of `cameras`: at key sites and at major junctions

    def __post_init__(self) -> None:
        problems = []
        if not 1 <= self.cameras <= 2_000_000:
            problems.append("cameras must be between 1 and 2,000,000")
        if self.road_km is not None and not 0.5 <= self.road_km <= 200_000:
            problems.append("road_km must be between 0.5 and 200,000")
        if not 40 <= self.block_m <= 1000:
            problems.append("block_m must be between 40 and 1000")
        if not (-179 <= self.centre_lon <= 179 and -80 <= self.centre_lat <= 80):
            problems.append("centre must be a lon/lat inside (-179..179, -80..80)")
        if self.districts is not None and not 1 <= self.districts <= 97:
            problems.append("districts must be between 1 and 97 (6-digit codes 440303 … 440399)")
        if self.entry_every < 1:
            problems.append("entry_every must be ≥ 1")
        if self.unguarded is not None and self.unguarded < 0:
            problems.append("unguarded must be ≥ 0")
        if self.key_sites is not None and self.key_sites < 0:
            problems.append("key_sites must be ≥ 0")
        if not 0 <= self.inner_checkpoints <= 100_000:
            problems.append("inner_checkpoints must be between 0 and 100,000")
        if not 0 <= self.face_cameras <= 100_000:
            problems.append("face_cameras must be between 0 and 100,000")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def target_road_km(self) -> float:
        return self.road_km if self.road_km is not None else max(5.0, self.cameras * 0.15)


@dataclass
class City:
    """The generated city. Arrays are the truth; the export methods give the public wire shapes."""

    params: CityParams
    node_lon: F64
    node_lat: F64
    node_inside: NDArray[np.bool_]
    edge_u: I64
    edge_v: I64
    edge_class: list[str]
    edge_coords: list[F64]  # per edge an (k, 2) lon/lat polyline from node u to node v
    edge_length_m: F64
    entry_edges: I64  # edges crossing the city boundary (inside node u, outside node v)
    entry_guarded: NDArray[np.bool_]
    boundary: tuple[float, float, float, float]  # the city polygon: lon/lat box
    areas: list[dict[str, Any]] = field(default_factory=list)
    key_sites: list[dict[str, Any]] = field(default_factory=list)
    cameras: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)

    @property
    def road_length_km(self) -> float:
        return float(self.edge_length_m.sum() / 1000)

    def edge_id(self, i: int) -> str:
        return f"R{i:07d}"

    def roads_geojson(self) -> dict[str, Any]:
        """Roads as the POST /api/v1/roads body: one LineString feature per graph edge."""
        feats = []
        for i, coords in enumerate(self.edge_coords):
            rid = self.edge_id(i)
            feats.append(
                {
                    "type": "Feature",
                    "id": rid,
                    "geometry": {"type": "LineString", "coordinates": np.round(coords, 7).tolist()},
                    "properties": {
                        "id": rid,
                        "road_class": self.edge_class[i],
                        "from_node": int(self.edge_u[i]),
                        "to_node": int(self.edge_v[i]),
                        "length_m": round(float(self.edge_length_m[i]), 2),
                    },
                }
            )
        return {"type": "FeatureCollection", "features": feats}

    def graph(self) -> dict[str, Any]:
        """The road graph as columnar node / edge arrays (edge i is road `R{i:07d}`)."""
        return {
            "nodes": {
                "id": list(range(len(self.node_lon))),
                "lon": np.round(self.node_lon, 7).tolist(),
                "lat": np.round(self.node_lat, 7).tolist(),
            },
            "edges": {
                "id": [self.edge_id(i) for i in range(len(self.edge_u))],
                "u": self.edge_u.tolist(),
                "v": self.edge_v.tolist(),
                "length_m": np.round(self.edge_length_m, 2).tolist(),
            },
        }

    def areas_geojson(self) -> dict[str, Any]:
        return _collection(self.areas, "code")

    def key_sites_geojson(self) -> dict[str, Any]:
        return _collection(self.key_sites, "id")

    def city_polygon(self) -> dict[str, Any]:
        return _box(*self.boundary)

    def write(self, directory: Path) -> list[Path]:
        """Write every export as JSON files in `directory`; returns the paths written."""
        directory.mkdir(parents=True, exist_ok=True)
        out = {
            "roads.geojson": self.roads_geojson(),
            "areas.json": self.areas,
            "areas.geojson": self.areas_geojson(),
            "key_sites.json": self.key_sites,
            "key_sites.geojson": self.key_sites_geojson(),
            "cameras.json": self.cameras,
            "checkpoints.json": self.checkpoints,
            "graph.json": self.graph(),
        }
        paths = []
        for name, obj in out.items():
            p = directory / name
            p.write_text(json.dumps(obj, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
            paths.append(p)
        return paths


def _collection(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
    feats = [
        {
            "type": "Feature",
            "id": it[key],
            "geometry": it["geometry"],
            "properties": {k: v for k, v in it.items() if k != "geometry"},
        }
        for it in items
    ]
    return {"type": "FeatureCollection", "features": feats}


def _box(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [[[round(a, 9), round(b, 9)] for a, b in ring]]}


def _bearing(dx: F64, dy: F64) -> F64:
    """Compass bearing (degrees clockwise from north) of a vector in the east/north plane."""
    return np.degrees(np.arctan2(dx, dy)) % 360.0


class _Builder:
    """Accumulates edges as metric polylines."""

    def __init__(self) -> None:
        self.u: list[int] = []
        self.v: list[int] = []
        self.cls: list[str] = []
        self.coords: list[F64] = []

    def add(self, u: int, v: int, cls: str, coords: F64) -> None:
        self.u.append(u)
        self.v.append(v)
        self.cls.append(cls)
        self.coords.append(coords)


def _line_class(k: int, n: int) -> str:
    if k % 8 == 0:
        return "primary" if abs(k - n // 2) < 4 else "arterial"
    if k % 4 == 0:
        return "secondary"
    if k % 2 == 0:
        return "tertiary"
    return "residential"


def generate_city(params: CityParams | None = None) -> City:
    """Build the city described by `params` (deterministic: same params → same city)."""
    p = params or CityParams()
    rng = np.random.default_rng(p.seed)
    block = p.block_m
    road_m = p.target_road_km * 1000.0
    # a grid of n×n lines has 2·n·(n−1)·block metres of street
    n = max(5, round(0.5 + math.sqrt(0.25 + road_m / (2 * block))))
    side = (n - 1) * block
    half = side / 2
    margin = 0.4 * block

    # --- grid nodes, perturbed; arterial lines stay nearly straight
    idx = np.arange(n)
    art = idx % 8 == 0
    jj, ii = np.meshgrid(idx, idx)  # ii: row (y), jj: column (x)
    amp_x = np.where(art[jj], 0.02, 0.15) * block
    amp_y = np.where(art[ii], 0.02, 0.15) * block
    gx = -half + jj * block + rng.uniform(-1, 1, (n, n)) * amp_x
    gy = -half + ii * block + rng.uniform(-1, 1, (n, n)) * amp_y
    node_x: list[F64] = [gx.ravel()]
    node_y: list[F64] = [gy.ravel()]
    n_nodes = n * n
    gid = (ii * n + jj).astype(np.int64)

    b = _Builder()
    xy = np.column_stack([gx.ravel(), gy.ravel()])

    def grid_edges(a: I64, c: I64, line: I64, diag: bool = False) -> None:
        classes = np.array(["service" if diag else _line_class(int(k), n) for k in line], dtype=object)
        drop = rng.random(len(a))
        bend = rng.random(len(a))
        offs = np.clip(rng.normal(0, 0.05, len(a)), -0.1, 0.1) * block
        keep = ~((classes == "residential") & (drop < 0.06))  # irregular: some side streets missing
        minor = np.isin(classes, ["residential", "tertiary", "service"])
        pa, pc = xy[a], xy[c]
        d = pc - pa
        nrm = np.stack([-d[:, 1], d[:, 0]], 1) / np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-9)[:, None]
        mid = (pa + pc) / 2 + nrm * offs[:, None]
        bent = keep & minor & (bend < 0.25)
        straight = keep & ~bent
        for m, coords in ((straight, np.stack([pa, pc], 1)), (bent, np.stack([pa, mid, pc], 1))):
            sel = np.flatnonzero(m)
            b.u.extend(a[sel].tolist())
            b.v.extend(c[sel].tolist())
            b.cls.extend(classes[sel].tolist())
            b.coords.extend(list(coords[sel]))

    grid_edges(gid[:, :-1].ravel(), gid[:, 1:].ravel(), ii[:, :-1].ravel())  # east-west streets
    grid_edges(gid[:-1, :].ravel(), gid[1:, :].ravel(), jj[:-1, :].ravel())  # north-south streets
    dmask = rng.random((n - 1, n - 1)) < 0.03
    grid_edges(gid[:-1, :-1][dmask], gid[1:, 1:][dmask], np.zeros(int(dmask.sum()), np.int64), diag=True)

    # --- ring road, joined to the nearest grid node at each interchange
    radius = 0.35 * side
    k_ring = max(8, int(2 * math.pi * radius / 400))
    theta = 2 * math.pi * np.arange(k_ring) / k_ring + rng.uniform(-0.1, 0.1, k_ring) * (2 * math.pi / k_ring)
    rr = radius * (1 + rng.uniform(-0.03, 0.03, k_ring))
    rx, ry = rr * np.sin(theta), rr * np.cos(theta)
    ring_ids = n_nodes + np.arange(k_ring)
    node_x.append(rx)
    node_y.append(ry)
    n_nodes += k_ring
    for k in range(k_ring):
        k2 = (k + 1) % k_ring
        t1 = theta[k2] if k2 else theta[k2] + 2 * math.pi
        steps = max(2, int(abs(t1 - theta[k]) * radius / 40) + 1)
        tt = np.linspace(theta[k], t1, steps)
        r = np.linspace(rr[k], rr[k2], steps)
        b.add(int(ring_ids[k]), int(ring_ids[k2]), "ring", np.column_stack([r * np.sin(tt), r * np.cos(tt)]))
        ci = int(np.clip(round((ry[k] + half) / block), 0, n - 1))
        cj = int(np.clip(round((rx[k] + half) / block), 0, n - 1))
        g = int(gid[ci, cj])
        b.add(int(ring_ids[k]), g, "primary", np.vstack([[rx[k], ry[k]], xy[g]]))

    # --- roads leaving the city, and an outer road joining their far ends
    lines = [k for k in range(1, n - 1) if k % p.entry_every == 0] or [n // 2]
    out = half + margin + 500
    sides: dict[str, list[tuple[float, int, float, float]]] = {"S": [], "E": [], "N": [], "W": []}
    entry_list: list[int] = []
    for side_name in ("S", "E", "N", "W"):
        for k in lines:
            if side_name == "S":
                g = int(gid[0, k])
            elif side_name == "N":
                g = int(gid[n - 1, k])
            elif side_name == "W":
                g = int(gid[k, 0])
            else:
                g = int(gid[k, n - 1])
            depth = out + rng.uniform(0, 400)
            along = rng.normal(0, 0.1 * block)
            gxk, gyk = xy[g]
            ox, oy = {
                "S": (gxk + along, -depth),
                "N": (gxk + along, depth),
                "W": (-depth, gyk + along),
                "E": (depth, gyk + along),
            }[side_name]
            o = n_nodes
            n_nodes += 1
            node_x.append(np.array([ox]))
            node_y.append(np.array([oy]))
            entry_list.append(len(b.u))
            b.add(g, o, "motorway" if k % 8 == 0 else "trunk", np.array([[gxk, gyk], [ox, oy]]))
            key = ox if side_name in ("S", "N") else oy
            sides[side_name].append((key, o, ox, oy))
    corner = out + 50
    loop: list[tuple[int, float, float]] = []
    for side_name, rev, cx, cy in (
        ("S", False, corner, -corner),
        ("E", False, corner, corner),
        ("N", True, -corner, corner),
        ("W", True, -corner, -corner),
    ):
        loop.extend((o, ox, oy) for _, o, ox, oy in sorted(sides[side_name], reverse=rev))
        node_x.append(np.array([cx]))
        node_y.append(np.array([cy]))
        loop.append((n_nodes, cx, cy))
        n_nodes += 1
    for t in range(len(loop)):
        (o1, x1, y1), (o2, x2, y2) = loop[t], loop[(t + 1) % len(loop)]
        b.add(o1, o2, "secondary", np.array([[x1, y1], [x2, y2]]))

    all_x, all_y = np.concatenate(node_x), np.concatenate(node_y)
    inside_nodes = np.zeros(n_nodes, bool)
    inside_nodes[: n * n + k_ring] = True

    # --- to lon/lat
    tm = f"+proj=tmerc +lat_0={p.centre_lat} +lon_0={p.centre_lon} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m"
    to_ll = Transformer.from_crs(tm, "EPSG:4326", always_xy=True)

    def ll(x: F64, y: F64) -> tuple[F64, F64]:
        lon, lat = to_ll.transform(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(lon, float), np.asarray(lat, float)

    node_lon, node_lat = ll(all_x, all_y)
    sizes = np.array([len(c) for c in b.coords])
    flat = np.vstack(b.coords)
    flon, flat_ = ll(flat[:, 0], flat[:, 1])
    seg = np.hypot(np.diff(flat[:, 0]), np.diff(flat[:, 1]))
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    lengths = cum[starts + sizes - 1] - cum[starts]
    ll_flat = np.column_stack([flon, flat_])
    edge_coords = np.split(ll_flat, np.cumsum(sizes)[:-1])
    # snap polyline ends to the exact node coordinates so lines meet at shared endpoints
    eu, ev = np.array(b.u, np.int64), np.array(b.v, np.int64)
    for i, c in enumerate(edge_coords):
        c[0] = (node_lon[eu[i]], node_lat[eu[i]])
        c[-1] = (node_lon[ev[i]], node_lat[ev[i]])

    # the city polygon: a lon/lat box around the metric square plus margin
    edge_pts = np.linspace(-half - margin, half + margin, 33)
    bx = np.concatenate([edge_pts, np.full(33, half + margin), edge_pts, np.full(33, -half - margin)])
    by = np.concatenate([np.full(33, -half - margin), edge_pts, np.full(33, half + margin), edge_pts])
    blon, blat = ll(bx, by)
    boundary = (float(blon.min()), float(blat.min()), float(blon.max()), float(blat.max()))

    entries = np.array(entry_list, np.int64)
    n_unguarded = p.unguarded if p.unguarded is not None else max(1, len(entries) // 20)
    n_unguarded = min(n_unguarded, len(entries))
    guarded = np.ones(len(entries), bool)
    guarded[rng.choice(len(entries), n_unguarded, replace=False)] = False

    city = City(
        params=p,
        node_lon=node_lon,
        node_lat=node_lat,
        node_inside=inside_nodes,
        edge_u=eu,
        edge_v=ev,
        edge_class=b.cls,
        edge_coords=edge_coords,
        edge_length_m=lengths,
        entry_edges=entries,
        entry_guarded=guarded,
        boundary=boundary,
    )
    tree = _AreaTree.build(boundary, side, p, rng)
    city.areas = tree.bodies()
    sites_xy, site_cat = _key_sites(city, rng, gx, gy, n, block, ll)
    _devices(
        city,
        rng,
        tree,
        xy=np.column_stack([all_x, all_y]),
        n_grid=n,
        gxy=(gx, gy),
        sites=(sites_xy, site_cat),
        ll=ll,
    )
    if p.inner_checkpoints or p.face_cameras:
        _extras(city, tree, np.column_stack([all_x, all_y]), sites_xy, site_cat, ll)
    return city


class _AreaTree:
    """Districts → police stations → grid cells as lon/lat boxes; each child tiles its parent exactly."""

    def __init__(self) -> None:
        self.city: tuple[float, float, float, float] = (0, 0, 0, 0)
        self.districts: list[tuple[str, str, tuple[float, float, float, float], int, int, int, int]] = []

    @classmethod
    def build(
        cls, box: tuple[float, float, float, float], side: float, p: CityParams, rng: np.random.Generator
    ) -> _AreaTree:
        t = cls()
        t.city = box
        area_km2 = (side / 1000) ** 2
        d = p.districts or int(min(8, max(2, round(math.sqrt(area_km2) / 4))))
        cell_m = min(800.0, max(side / 4, 100.0))
        station_m = max(2.5 * cell_m, min(3000.0, side / 2))
        x0, y0, x1, y1 = box
        m_per_lon = 111_320 * math.cos(math.radians((y0 + y1) / 2))
        cols = math.ceil(math.sqrt(d))
        xs = np.linspace(x0, x1, cols + 1)
        k = 0
        for c in range(cols):
            count = d // cols + (1 if c < d % cols else 0)
            ys = np.linspace(y0, y1, count + 1)
            for r in range(count):
                dbox = (float(xs[c]), float(ys[r]), float(xs[c + 1]), float(ys[r + 1]))
                code = str(DISTRICT_BASE + k)
                name = DISTRICT_NAMES[k] if k < len(DISTRICT_NAMES) else f"第{k + 1}区"
                w_m, h_m = (dbox[2] - dbox[0]) * m_per_lon, (dbox[3] - dbox[1]) * 110_574
                sc, sr = max(1, round(w_m / station_m)), max(1, round(h_m / station_m))
                gc, gr = max(1, round(w_m / sc / cell_m)), max(1, round(h_m / sr / cell_m))
                t.districts.append((code, name, dbox, sc, sr, gc, gr))
                k += 1
        return t

    def bodies(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = [
            {
                "code": CITY_CODE,
                "name": "深圳市(模拟)",
                "kind": "city",
                "parent": None,
                "geometry": _box(*self.city),
            }
        ]
        for code, name, (x0, y0, x1, y1), sc, sr, gc, gr in self.districts:
            out.append(
                {
                    "code": code,
                    "name": name,
                    "kind": "district",
                    "parent": CITY_CODE,
                    "geometry": _box(x0, y0, x1, y1),
                }
            )
            sxs, sys_ = np.linspace(x0, x1, sc + 1), np.linspace(y0, y1, sr + 1)
            for a in range(sc):
                for bb in range(sr):
                    scode = f"{code}{a * sr + bb + 1:03d}"
                    out.append(
                        {
                            "code": scode,
                            "name": f"{name}第{a * sr + bb + 1}派出所",
                            "kind": "station",
                            "parent": code,
                            "geometry": _box(sxs[a], sys_[bb], sxs[a + 1], sys_[bb + 1]),
                        }
                    )
                    gxs = np.linspace(sxs[a], sxs[a + 1], gc + 1)
                    gys = np.linspace(sys_[bb], sys_[bb + 1], gr + 1)
                    for e in range(gc):
                        for f in range(gr):
                            out.append(
                                {
                                    "code": f"{scode}{e * gr + f + 1:03d}",
                                    "name": f"{name}{a * sr + bb + 1}所网格{e * gr + f + 1}",
                                    "kind": "grid",
                                    "parent": scode,
                                    "geometry": _box(gxs[e], gys[f], gxs[e + 1], gys[f + 1]),
                                }
                            )
        return out

    def locate(self, lon: F64, lat: F64) -> tuple[NDArray[np.str_], NDArray[np.str_], list[str]]:
        """(district code, grid-cell code, station name) of each point; points outside clamp inward."""
        x0c, y0c, x1c, y1c = self.city
        lon = np.clip(lon, x0c, x1c)
        lat = np.clip(lat, y0c, y1c)
        dist = np.empty(len(lon), dtype="<U6")
        cell = np.empty(len(lon), dtype="<U12")
        station_name: list[str] = [""] * len(lon)
        done = np.zeros(len(lon), bool)
        for code, name, (x0, y0, x1, y1), sc, sr, gc, gr in self.districts:
            m = ~done & (lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1)
            if not m.any():
                continue
            fx = np.clip((lon[m] - x0) / (x1 - x0), 0, 1 - 1e-12)
            fy = np.clip((lat[m] - y0) / (y1 - y0), 0, 1 - 1e-12)
            a, bb = (fx * sc).astype(int), (fy * sr).astype(int)
            e = ((fx * sc - a) * gc).astype(int)
            f = ((fy * sr - bb) * gr).astype(int)
            s_no = a * sr + bb + 1
            g_no = e * gr + f + 1
            dist[m] = code
            cell[m] = [f"{code}{s:03d}{g:03d}" for s, g in zip(s_no, g_no, strict=True)]
            for i, s in zip(np.flatnonzero(m), s_no, strict=True):
                station_name[i] = f"{name}第{s}派出所"
            done |= m
        return dist, cell, station_name


def _key_sites(
    city: City, rng: np.random.Generator, gx: F64, gy: F64, n: int, block: float, ll: Any
) -> tuple[F64, list[str]]:
    p = city.params
    count = p.key_sites if p.key_sites is not None else max(4, p.cameras // 50)
    if count == 0:
        return np.zeros((0, 2)), []
    cats = [SITE_CATEGORIES[i] for i in rng.choice(4, count, p=SITE_WEIGHTS)]
    cats[: min(4, count)] = SITE_CATEGORIES[: min(4, count)]  # at least one of each kind
    bi = rng.integers(1, max(2, n - 2), count)
    bj = rng.integers(1, max(2, n - 2), count)
    cx = (gx[bi, bj] + gx[bi + 1, bj] + gx[bi, bj + 1] + gx[bi + 1, bj + 1]) / 4
    cy = (gy[bi, bj] + gy[bi + 1, bj] + gy[bi, bj + 1] + gy[bi + 1, bj + 1]) / 4
    is_poly = rng.random(count) < 0.45
    hw = rng.uniform(20, 0.3 * block, count)
    hh = rng.uniform(20, 0.3 * block, count)
    clon, clat = ll(cx, cy)
    # polygon corners (metric rectangle → lon/lat)
    kx = np.stack([cx - hw, cx + hw, cx + hw, cx - hw], 1)
    ky = np.stack([cy - hh, cy - hh, cy + hh, cy + hh], 1)
    plon, plat = ll(kx.ravel(), ky.ravel())
    plon, plat = plon.reshape(-1, 4), plat.reshape(-1, 4)
    counters = dict.fromkeys(SITE_CATEGORIES, 0)
    for i in range(count):
        counters[cats[i]] += 1
        if is_poly[i]:
            ring = [[round(float(plon[i, q]), 7), round(float(plat[i, q]), 7)] for q in (0, 1, 2, 3, 0)]
            geom: dict[str, Any] = {"type": "Polygon", "coordinates": [ring]}
        else:
            geom = {"type": "Point", "coordinates": [round(float(clon[i]), 7), round(float(clat[i]), 7)]}
        city.key_sites.append(
            {
                "id": f"KS{i + 1:06d}",
                "name": SITE_NAMES[cats[i]].format(n=counters[cats[i]]),
                "category": cats[i],
                "geometry": geom,
            }
        )
    return np.column_stack([cx, cy]), cats


def _devices(
    city: City,
    rng: np.random.Generator,
    tree: _AreaTree,
    *,
    xy: F64,
    n_grid: int,
    gxy: tuple[F64, F64],
    sites: tuple[F64, list[str]],
    ll: Any,
) -> None:
    """Checkpoints on the guarded entries, then cameras: at junctions, along roads, at sites, and astray."""
    p = city.params
    eu, ev = city.edge_u, city.edge_v
    # ---- checkpoints: on the entry road, 15 m inside from the boundary grid node, facing inbound traffic
    guarded_edges = city.entry_edges[city.entry_guarded]
    a, c = xy[eu[guarded_edges]], xy[ev[guarded_edges]]
    d = c - a
    dn = d / np.hypot(d[:, 0], d[:, 1])[:, None]
    cp_xy = a + dn * 15.0
    inbound = _bearing(-dn[:, 0], -dn[:, 1])
    n_cp = len(guarded_edges)
    with_cams = p.cameras >= 2 * n_cp
    n_cp_cams = n_cp if with_cams else 0
    n_reg = p.cameras - n_cp_cams

    # ---- regular cameras
    inner = np.flatnonzero(city.node_inside[eu] & city.node_inside[ev])
    shares = rng.multinomial(
        n_reg,
        [0.35, 0.42, 0.15 if len(sites[1]) else 0.0, 0.08] if len(sites[1]) else [0.38, 0.52, 0.0, 0.10],
    )
    n_junc, n_road, n_site, n_away = (int(s) for s in shares)
    pos: list[F64] = []
    head: list[F64] = []
    role: list[NDArray[np.str_]] = []
    ref: list[I64] = []
    # junction cameras: at a node, looking down one of its streets (directed half-edges, so by degree)
    he = rng.choice(inner, n_junc)
    flip = rng.random(n_junc) < 0.5
    src = np.where(flip, ev[he], eu[he])
    dst = np.where(flip, eu[he], ev[he])
    v = xy[dst] - xy[src]
    vn = v / np.maximum(np.hypot(v[:, 0], v[:, 1]), 1e-9)[:, None]
    side = np.stack([vn[:, 1], -vn[:, 0]], 1) * rng.choice([-1, 1], n_junc)[:, None]
    pos.append(xy[src] + side * rng.uniform(3, 8, n_junc)[:, None])
    head.append(_bearing(vn[:, 0], vn[:, 1]) + rng.normal(0, 8, n_junc))
    role.append(np.full(n_junc, "junction"))
    ref.append(he)
    # road cameras: anywhere along a street (by length), looking along it or across it
    w = city.edge_length_m[inner] / city.edge_length_m[inner].sum()
    re = rng.choice(inner, n_road, p=w)
    t = rng.uniform(0.1, 0.9, n_road)[:, None]
    v = xy[ev[re]] - xy[eu[re]]
    vn = v / np.maximum(np.hypot(v[:, 0], v[:, 1]), 1e-9)[:, None]
    sgn = rng.choice([-1.0, 1.0], n_road)
    nrm = np.stack([vn[:, 1], -vn[:, 0]], 1) * sgn[:, None]
    pos.append(xy[eu[re]] + v * t + nrm * rng.uniform(2, 6, n_road)[:, None])
    across = rng.random(n_road) < 0.3
    along_dir = np.where((rng.random(n_road) < 0.5)[:, None], vn, -vn)
    look = np.where(across[:, None], -nrm, along_dir)
    head.append(_bearing(look[:, 0], look[:, 1]) + rng.normal(0, 8, n_road))
    role.append(np.where(across, "across", "along"))
    ref.append(re)
    # key-site cameras: around a site, looking at it
    if n_site:
        si = rng.integers(0, len(sites[1]), n_site)
        ang = rng.uniform(0, 2 * np.pi, n_site)
        dist = rng.uniform(20, 60, n_site)
        sp = sites[0][si] + np.stack([np.sin(ang), np.cos(ang)], 1) * dist[:, None]
        pos.append(sp)
        head.append(_bearing(-np.sin(ang), -np.cos(ang)) + rng.normal(0, 10, n_site))
        role.append(np.full(n_site, "site"))
        ref.append(si)
    # astray: inside a block, short range, pointing at no road (a real share of any network)
    gx, gy = gxy
    bi, bj = rng.integers(0, n_grid - 1, n_away), rng.integers(0, n_grid - 1, n_away)
    bx = (gx[bi, bj] + gx[bi + 1, bj] + gx[bi, bj + 1] + gx[bi + 1, bj + 1]) / 4
    by = (gy[bi, bj] + gy[bi + 1, bj] + gy[bi, bj + 1] + gy[bi + 1, bj + 1]) / 4
    pos.append(np.column_stack([bx, by]) + rng.uniform(-5, 5, (n_away, 2)))
    head.append(rng.uniform(0, 360, n_away))
    role.append(np.full(n_away, "astray"))
    ref.append(np.zeros(n_away, np.int64))

    cam_xy = np.vstack(pos) if pos else np.zeros((0, 2))
    cam_head = np.concatenate(head) % 360.0
    cam_role = np.concatenate(role)
    cam_ref = np.concatenate(ref)
    ki = rng.choice(len(KINDS), n_reg, p=KIND_WEIGHTS)
    ki = np.where((ki == KINDS.index("face")) & (cam_role != "site"), KINDS.index("bullet"), ki)
    kinds = np.array(KINDS)[ki]
    lo_f, hi_f, lo_r, hi_r = (np.array([KIND_OPTICS[k][q] for k in KINDS], float) for q in range(4))
    u1, u2 = rng.random(n_reg), rng.random(n_reg)
    hfov = lo_f[ki] + (hi_f[ki] - lo_f[ki]) * u1
    rng_m = lo_r[ki] + (hi_r[ki] - lo_r[ki]) * u2
    astray = cam_role == "astray"
    rng_m = np.where(astray, 30 + 10 * u2, rng_m)
    hfov = np.where(astray & (hfov > 180), 90.0, hfov)
    pclass = rng.choice([1, 2, 3], n_reg, p=[0.2, 0.5, 0.3])

    # ---- lon/lat, areas, ids, bodies
    all_xy = np.vstack([cp_xy, cp_xy + np.stack([dn[:, 1], -dn[:, 0]], 1) * 3.0, cam_xy])
    lon, lat = ll(all_xy[:, 0], all_xy[:, 1])
    x0, y0, x1, y1 = city.boundary
    eps = 1e-7
    lon, lat = np.clip(lon, x0 + eps, x1 - eps), np.clip(lat, y0 + eps, y1 - eps)
    dist_code, cell_code, station = tree.locate(lon, lat)
    serial: dict[tuple[str, str], int] = {}

    def next_id(district: str, type_code: str, base: int) -> str:
        k = (district, type_code + str(base))
        serial[k] = serial.get(k, base) + 1
        return f"{district}00" + "00" + type_code + "0" + f"{serial[k]:06d}"

    cp_ids = [next_id(str(dist_code[i]), "121", 900000) for i in range(n_cp)]
    for i in range(n_cp_cams):
        j = n_cp + i
        cam_id = next_id(str(dist_code[j]), "121", 800000)
        e = int(guarded_edges[i])
        city.cameras.append(
            {
                "device_id": cam_id,
                "name": f"卡口{i + 1}抓拍机",
                "kind": "checkpoint",
                "lon": round(float(lon[j]), 7),
                "lat": round(float(lat[j]), 7),
                "heading_deg": round(float((inbound[i] + 180) % 360), 1),  # faces incoming vehicles
                "hfov_deg": round(float(rng.uniform(30, 40)), 1),
                "range_m": round(float(rng.uniform(30, 50)), 1),
                "point_class": 1,
                "area_code": str(cell_code[j]),
                "address": f"{city.edge_id(e)} 出入城卡口",
                "ptz_type": 3,
                "position_type": 1,
                "room_type": 1,
                "supply_light_type": 3,
                "police_station": station[j],
                "checkpoint_id": cp_ids[i],
            }
        )
    for i in range(n_cp):
        e = int(guarded_edges[i])
        body: dict[str, Any] = {
            "checkpoint_id": cp_ids[i],
            "name": f"出入城卡口{i + 1}",
            "lon": round(float(lon[i]), 7),
            "lat": round(float(lat[i]), 7),
            "direction_deg": round(float(inbound[i]), 1),
            "lanes": 4 if city.edge_class[e] == "motorway" else 2,
            "road": city.edge_id(e),
            "area_code": str(cell_code[i]),
        }
        if with_cams:
            body["camera_ids"] = [city.cameras[i]["device_id"]]
        city.checkpoints.append(body)
    off = 2 * n_cp
    site_cats = sites[1]
    for i in range(n_reg):
        j = off + i
        kind = str(kinds[i])
        r = str(cam_role[i])
        body = {
            "device_id": next_id(str(dist_code[j]), "132", 0),
            "name": _cam_name(r, int(cam_ref[i]), city, site_cats),
            "kind": kind,
            "lon": round(float(lon[j]), 7),
            "lat": round(float(lat[j]), 7),
            "heading_deg": round(float(cam_head[i]), 1) % 360.0,
            "hfov_deg": round(float(hfov[i]), 1),
            "range_m": round(float(rng_m[i]), 1),
            "point_class": int(pclass[i]),
            "area_code": str(cell_code[j]),
            "ptz_type": PTZ_TYPE[kind],
            "room_type": 1,
            "supply_light_type": 2,
            "police_station": station[j],
        }
        if r == "site":
            body["position_type"] = POSITION_TYPE[site_cats[int(cam_ref[i])]]
        elif r in ("along", "across", "junction") and city.edge_class[int(cam_ref[i])] in (
            "arterial",
            "primary",
            "ring",
            "motorway",
            "trunk",
        ):
            body["position_type"] = 10
        city.cameras.append(body)


def _cam_name(role: str, ref: int, city: City, site_cats: list[str]) -> str:
    if role == "site":
        return f"{city.key_sites[ref]['name']}周边"
    if role == "junction":
        return f"{city.edge_id(ref)}路口"
    if role in ("along", "across"):
        return f"{city.edge_id(ref)}路段"
    return "小区内部"


# inner checkpoints by road class: the major roads carry most of them, as in a real city
_INNER_WEIGHT = {"primary": 8.0, "arterial": 8.0, "ring": 6.0, "secondary": 4.0, "tertiary": 1.5}


def _extras(city: City, tree: _AreaTree, xy: F64, sites_xy: F64, site_cats: list[str], ll: Any) -> None:
    """Inner checkpoints and extra face cameras, drawn from a stream of their own so that the rest
    of the city does not change when they are asked for."""
    p = city.params
    rng = np.random.default_rng([p.seed, 0x6D76])
    eu, ev = city.edge_u, city.edge_v
    inner = np.flatnonzero(city.node_inside[eu] & city.node_inside[ev])
    w = np.array([_INNER_WEIGHT.get(city.edge_class[int(e)], 0.3) for e in inner]) * city.edge_length_m[inner]
    k = min(p.inner_checkpoints, len(inner))
    chosen = np.sort(rng.choice(inner, k, replace=False, p=w / w.sum())) if k else np.zeros(0, np.int64)
    d = xy[ev[chosen]] - xy[eu[chosen]]
    cp_xy = xy[eu[chosen]] + d * 0.5
    heading = _bearing(d[:, 0], d[:, 1])
    n_face = p.face_cameras
    at_site = n_face // 2 if len(site_cats) else 0
    si = rng.integers(0, max(1, len(site_cats)), at_site)
    ang = rng.uniform(0, 2 * np.pi, at_site)
    dist = rng.uniform(15, 30, at_site)
    f_xy = [
        sites_xy[si] + np.stack([np.sin(ang), np.cos(ang)], 1) * dist[:, None]
        if at_site
        else np.zeros((0, 2))
    ]
    f_head = [_bearing(-np.sin(ang), -np.cos(ang))]
    # junction face cameras: at a major road's node, looking down it (pedestrians and drivers' faces)
    n_j = n_face - at_site
    major = inner[np.isin(np.array([city.edge_class[int(e)] for e in inner]), list(_INNER_WEIGHT))]
    je = rng.choice(major if len(major) else inner, n_j)
    jd = xy[ev[je]] - xy[eu[je]]
    jn = jd / np.maximum(np.hypot(jd[:, 0], jd[:, 1]), 1e-9)[:, None]
    f_xy.append(xy[eu[je]] + np.stack([jn[:, 1], -jn[:, 0]], 1) * 4.0)
    f_head.append(_bearing(jn[:, 0], jn[:, 1]))
    all_xy = np.vstack([cp_xy, *f_xy])
    lon, lat = ll(all_xy[:, 0], all_xy[:, 1])
    x0, y0, x1, y1 = city.boundary
    lon, lat = np.clip(lon, x0 + 1e-7, x1 - 1e-7), np.clip(lat, y0 + 1e-7, y1 - 1e-7)
    dist_code, cell_code, station = tree.locate(lon, lat)
    serial: dict[str, int] = {}

    def next_id(district: str, type_code: str, base: int) -> str:
        # serial series of their own (121: 6xxxxx, 132: 5xxxxx) so ids never meet the base city's
        k = f"{district}{type_code}"
        serial[k] = serial.get(k, base) + 1
        return f"{district}0000{type_code}0{serial[k]:06d}"

    for i, e in enumerate(chosen.tolist()):
        cls = city.edge_class[e]
        city.checkpoints.append(
            {
                "checkpoint_id": next_id(str(dist_code[i]), "121", 600000),
                "name": f"{city.edge_id(e)}治安卡口",
                "lon": round(float(lon[i]), 7),
                "lat": round(float(lat[i]), 7),
                "direction_deg": round(float(heading[i]), 1),
                "lanes": 4 if cls in ("primary", "arterial", "ring") else 2,
                "road": city.edge_id(e),
                "area_code": str(cell_code[i]),
            }
        )
    heads = np.concatenate(f_head) % 360.0 if n_face else np.zeros(0)
    for q in range(n_face):
        j = k + q
        site = q < at_site
        body: dict[str, Any] = {
            "device_id": next_id(str(dist_code[j]), "132", 500000),
            "name": f"{city.key_sites[int(si[q])]['name']}人脸"
            if site
            else f"{city.edge_id(int(je[q - at_site]))}路口人脸",
            "kind": "face",
            "lon": round(float(lon[j]), 7),
            "lat": round(float(lat[j]), 7),
            "heading_deg": round(float(heads[q] + rng.normal(0, 5)) % 360.0, 1),
            "hfov_deg": round(float(rng.uniform(30, 50)), 1),
            "range_m": round(float(rng.uniform(30, 40)), 1),
            "point_class": 1,
            "area_code": str(cell_code[j]),
            "ptz_type": PTZ_TYPE["face"],
            "room_type": 1,
            "supply_light_type": 2,
            "police_station": station[j],
        }
        if site:
            body["position_type"] = POSITION_TYPE[site_cats[int(si[q])]]
        city.cameras.append(body)
