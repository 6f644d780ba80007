"""Geometric coverage (覆盖率): how much road, how many key sites (重点部位) and grid cells lie in intact
cameras' sectors, and the uncovered pieces — blind spots (盲区) — as lon/lat GeoJSON.

All geometry runs in a local transverse Mercator centred on the data (metres, never degrees);
sectors are built for all cameras at once with numpy + shapely 2, candidate pairs come from an
STRtree, and covered length is the measure of a union of 1-D intervals along each road piece, so
one camera's status change re-measures only the few pieces its sector touches. Definitions:
docs/coverage.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from pyproj import Transformer
from shapely.geometry import mapping, shape

from tianwang.errors import ValidationFailed

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Bool = NDArray[np.bool_]
Geoms = NDArray[np.object_]
# an area code (cells whose code starts with it), a bool mask over the cells, or None for everything
Scope = str | NDArray[np.bool_] | None

# sag between an arc chord and the true circle is kept below this, so polygon sectors are
# short of the exact sector by at most a few centimetres at any range
ARC_TOLERANCE_M = 0.05
MAX_SPAN_DEG = 5.0  # one city at a time: a single transverse Mercator stays exact to ~1e-4 there


class CoverageInputError(ValidationFailed):
    title = "Invalid coverage input"
    type_ = "urn:tianwang:problem:coverage-input"


class LocalProjection:
    """A transverse Mercator (scale 1) centred on the data: metric x east / y north, in metres.

    Over a city (±30 km from the centre) scale error stays below 1.2e-5 and grid north departs
    from true north by under 0.1°, far below what a camera's heading is known to.
    """

    def __init__(self, lon0: float, lat0: float) -> None:
        if not (math.isfinite(lon0) and math.isfinite(lat0) and -180 <= lon0 <= 180 and -85 <= lat0 <= 85):
            raise CoverageInputError(f"projection centre {lon0}, {lat0} is not a lon/lat")
        self.lon0, self.lat0 = float(lon0), float(lat0)
        crs = f"+proj=tmerc +lat_0={lat0} +lon_0={lon0} +k=1 +x_0=0 +y_0=0 +ellps=WGS84 +units=m +no_defs"
        self._fwd = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
        self._inv = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)

    @classmethod
    def around(cls, lon: F64, lat: F64) -> LocalProjection:
        lon, lat = np.asarray(lon, float), np.asarray(lat, float)
        if lon.size == 0:
            raise CoverageInputError("no coordinates to centre a projection on")
        if not (np.isfinite(lon).all() and np.isfinite(lat).all()):
            raise CoverageInputError("coordinates must be finite")
        if lon.min() < -180 or lon.max() > 180 or lat.min() < -85 or lat.max() > 85:
            raise CoverageInputError("coordinates outside lon/lat ranges (EPSG:4326, lon first)")
        if lon.max() - lon.min() > MAX_SPAN_DEG or lat.max() - lat.min() > MAX_SPAN_DEG:
            raise CoverageInputError(f"data spans more than {MAX_SPAN_DEG}°: compute one city at a time")
        return cls((lon.min() + lon.max()) / 2, (lat.min() + lat.max()) / 2)

    def forward(self, lon: Any, lat: Any) -> tuple[F64, F64]:
        x, y = self._fwd.transform(np.asarray(lon, float), np.asarray(lat, float))
        return np.asarray(x, float), np.asarray(y, float)

    def inverse(self, x: Any, y: Any) -> tuple[F64, F64]:
        lon, lat = self._inv.transform(np.asarray(x, float), np.asarray(y, float))
        return np.asarray(lon, float), np.asarray(lat, float)

    def to_metric(self, geoms: Geoms) -> Geoms:
        return shapely.transform(geoms, lambda c: np.column_stack(self.forward(c[:, 0], c[:, 1])))

    def to_lonlat(self, geoms: Geoms) -> Geoms:
        return shapely.transform(geoms, lambda c: np.column_stack(self.inverse(c[:, 0], c[:, 1])))


# ---------------------------------------------------------------- inputs


def _f64(name: str, v: Any, n: int | None = None) -> F64:
    a = np.asarray(v, dtype=float).ravel()
    if n is not None and len(a) != n:
        raise CoverageInputError(f"{name} has {len(a)} values, expected {n}")
    if not np.isfinite(a).all():
        raise CoverageInputError(f"{name} must be finite numbers")
    return a


@dataclass(frozen=True)
class Sectors:
    """Cameras' views: position (WGS-84), heading (° clockwise from north), HFOV (°), range (m)."""

    ids: tuple[str, ...]
    lon: F64
    lat: F64
    heading_deg: F64
    hfov_deg: F64
    range_m: F64

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("lon", "lat", "heading_deg", "hfov_deg", "range_m"):
            object.__setattr__(self, name, _f64(name, getattr(self, name), n))
        if n and (self.hfov_deg.min() <= 0 or self.hfov_deg.max() > 360):
            raise CoverageInputError("hfov_deg must be in (0, 360]")
        if n and (self.range_m.min() <= 0 or self.range_m.max() > 5000):
            raise CoverageInputError("range_m must be in (0, 5000]")
        if len(set(self.ids)) != n:
            raise CoverageInputError("sector ids (device_id) must be unique")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> Sectors:
        """From camera bodies / rows with device_id, lon, lat, heading_deg, hfov_deg, range_m."""
        rows = list(records)
        try:
            cols = {
                k: [r[k] for r in rows]
                for k in ("device_id", "lon", "lat", "heading_deg", "hfov_deg", "range_m")
            }
        except KeyError as e:
            raise CoverageInputError(f"camera record lacks {e.args[0]}") from None
        return cls(
            ids=tuple(str(i) for i in cols["device_id"]),
            lon=np.array(cols["lon"], float),
            lat=np.array(cols["lat"], float),
            heading_deg=np.array(cols["heading_deg"], float),
            hfov_deg=np.array(cols["hfov_deg"], float),
            range_m=np.array(cols["range_m"], float),
        )


def _lines_from_features(features: Iterable[Any]) -> tuple[list[str], list[str], Geoms]:
    """GeoJSON line features → LineStrings, built in one vectorised call (no shape() per feature)."""
    ids: list[str] = []
    classes: list[str] = []
    flat: list[Any] = []
    counts: list[int] = []
    for i, f in enumerate(features):
        if not isinstance(f, Mapping):
            raise CoverageInputError(f"road #{i} is not a GeoJSON Feature")
        props = f.get("properties") or {}
        rid = str(f.get("id", props.get("id", i)))
        geom = f.get("geometry") or {}
        kind = geom.get("type") if isinstance(geom, Mapping) else None
        coords = geom.get("coordinates") if isinstance(geom, Mapping) else None
        if kind == "LineString":
            lines = [coords]
        elif kind == "MultiLineString" and isinstance(coords, list):
            lines = coords
        else:
            raise CoverageInputError(f"road {rid}: a road is a GeoJSON LineString, not {kind}")
        for line in lines:
            if not isinstance(line, list) or len(line) < 2:
                raise CoverageInputError(f"road {rid}: a line needs at least two positions")
            ids.append(rid)
            classes.append(str(props.get("road_class", "")))
            flat.extend(line)
            counts.append(len(line))
    if not counts:
        return ids, classes, np.empty(0, dtype=object)
    try:
        xy = np.array([c[:2] for c in flat], dtype=float)
    except (TypeError, ValueError, IndexError):
        raise CoverageInputError("road coordinates must be [lon, lat] number pairs") from None
    if xy.ndim != 2 or xy.shape[1] != 2 or not np.isfinite(xy).all():
        raise CoverageInputError("road coordinates must be finite [lon, lat] pairs")
    owner = np.repeat(np.arange(len(counts)), counts)
    return ids, classes, shapely.linestrings(xy, indices=owner)


@dataclass(frozen=True)
class Roads:
    """Road pieces as lon/lat LineStrings (a MultiLineString road becomes several, same id)."""

    ids: tuple[str, ...]
    geoms: Geoms
    classes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        g = np.asarray(self.geoms, dtype=object)
        object.__setattr__(self, "geoms", g)
        if len(g) != len(self.ids):
            raise CoverageInputError("roads: one id per geometry")
        if len(g) and not (shapely.get_type_id(g) == 1).all():
            raise CoverageInputError("roads must be LineStrings")

    @classmethod
    def from_geojson(cls, collection: Mapping[str, Any]) -> Roads:
        if collection.get("type") != "FeatureCollection":
            raise CoverageInputError("roads must be a GeoJSON FeatureCollection")
        ids, classes, geoms = _lines_from_features(collection.get("features") or [])
        return cls(tuple(ids), geoms, tuple(classes))


def _polygonal(
    records: Iterable[Mapping[str, Any]], key: str, allowed: tuple[str, ...]
) -> tuple[list[str], Geoms]:
    ids: list[str] = []
    geoms: list[Any] = []
    for r in records:
        try:
            g = shape(r["geometry"])
            rid = str(r[key])
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            raise CoverageInputError(f"record lacks {key} or a GeoJSON geometry ({e})") from None
        if g.geom_type not in allowed:
            raise CoverageInputError(
                f"{rid}: geometry must be one of {', '.join(allowed)}, not {g.geom_type}"
            )
        ids.append(rid)
        geoms.append(g)
    arr = np.empty(len(geoms), dtype=object)
    arr[:] = geoms
    return ids, arr


@dataclass(frozen=True)
class KeySites:
    """Key sites (重点部位): points or polygons, lon/lat."""

    ids: tuple[str, ...]
    geoms: Geoms

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> KeySites:
        ids, geoms = _polygonal(records, "id", ("Point", "Polygon", "MultiPolygon"))
        return cls(tuple(ids), geoms)


@dataclass(frozen=True)
class Cells:
    """Grid cells (网格) with their 12-digit codes, lon/lat polygons; they should not overlap."""

    codes: tuple[str, ...]
    geoms: Geoms

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> Cells:
        ids, geoms = _polygonal(records, "code", ("Polygon", "MultiPolygon"))
        return cls(tuple(ids), geoms)


# ---------------------------------------------------------------- sectors


def sector_polygons(x: F64, y: F64, heading_deg: F64, hfov_deg: F64, range_m: F64) -> Geoms:
    """Metric sector polygons for all cameras at once: apex + arc, or a full disc for 360°.

    A view wider than 180° is the same apex-plus-arc ring (a non-convex "pac-man"), still simple.
    """
    x, y, h, f, r = (np.asarray(a, float) for a in (x, y, heading_deg, hfov_deg, range_m))
    n = len(x)
    if n == 0:
        return np.empty(0, dtype=object)
    full = f >= 360.0 - 1e-9
    step = np.clip(np.degrees(2 * np.arccos(np.clip(1 - ARC_TOLERANCE_M / r, -1, 1))), 0.25, 5.0)
    n_arc = np.where(full, np.ceil(360.0 / step), np.ceil(f / step) + 1).astype(np.int64)
    n_arc = np.maximum(n_arc, np.where(full, 16, 2))
    count = n_arc + (~full)  # partial sectors add the apex
    owner = np.repeat(np.arange(n), count)
    starts = np.concatenate([[0], np.cumsum(count)[:-1]])
    k = np.arange(int(count.sum())) - starts[owner]
    fo, ho, no, fullo = f[owner], h[owner], n_arc[owner], full[owner]
    a = np.where(fullo, k, k - 1)  # arc index (−1 marks the apex)
    ang = np.where(fullo, a * 360.0 / no, ho - fo / 2 + a * fo / np.maximum(no - 1, 1))
    rad = np.radians(ang)
    apex = (~fullo) & (k == 0)
    px = np.where(apex, x[owner], x[owner] + r[owner] * np.sin(rad))
    py = np.where(apex, y[owner], y[owner] + r[owner] * np.cos(rad))
    rings = shapely.linearrings(np.column_stack([px, py]), indices=owner)
    return shapely.polygons(rings)


# ---------------------------------------------------------------- results


@dataclass(frozen=True)
class CoverageSummary:
    """Every figure with its numerator and denominator (design rule: publish both)."""

    cameras_counted: int
    road_length_m: float
    road_covered_m: float
    road_coverage_rate: float
    key_sites_total: int
    key_sites_covered: int
    key_site_coverage_rate: float
    grid_cells_total: int
    grid_cells_covered: int
    grid_coverage_rate: float
    grid_cells_roadless: int
    k_sites: int
    cell_min_share: float

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _rate(num: float, den: float) -> float:
    return float(num / den) if den > 0 else 0.0


def union_length(group: I64, a: F64, b: F64, n_groups: int) -> F64:
    """Per group, the measure of the union of intervals [a, b]; input sorted by (group, a)."""
    out = np.zeros(n_groups)
    if len(a) == 0:
        return out
    big = float(max(b.max() - min(a.min(), 0.0), 1.0)) * 2 + 1.0
    off = group.astype(float) * big
    s, e = a + off, b + off  # groups pushed apart so one running maximum serves them all
    run = np.maximum.accumulate(e)
    prev = np.concatenate([[-np.inf], run[:-1]])
    contrib = np.clip(e - np.maximum(s, prev), 0.0, None)
    out += np.bincount(group, contrib, minlength=n_groups)
    return out


def _merged(group: I64, a: F64, b: F64) -> tuple[I64, F64, F64]:
    """Merge overlapping intervals per group (input sorted by (group, a))."""
    if len(a) == 0:
        return group[:0], a[:0], b[:0]
    big = float(max(b.max() - min(a.min(), 0.0), 1.0)) * 2 + 1.0
    off = group.astype(float) * big
    s, e = a + off, b + off
    run = np.maximum.accumulate(e)
    new = np.ones(len(s), bool)
    new[1:] = s[1:] > run[:-1]
    first = np.flatnonzero(new)
    ends = np.maximum.reduceat(e, first)
    return group[first], a[first], ends - off[first]


class CoverageModel:
    """Coverage of roads, key sites and grid cells, kept current under camera status changes.

    Built once from sectors (all cameras "as designed"), roads, key sites and cells; `intact`
    says which cameras count now. `set_intact` re-measures only the road pieces and key sites
    the changed camera's sector touches.
    """

    def __init__(
        self,
        sectors: Sectors,
        roads: Roads,
        key_sites: KeySites | None = None,
        cells: Cells | None = None,
        *,
        intact: Bool | None = None,
        k_sites: int = 1,
        cell_min_share: float = 0.2,
        projection: LocalProjection | None = None,
    ) -> None:
        if k_sites < 1:
            raise CoverageInputError("k_sites must be ≥ 1")
        if not 0 < cell_min_share <= 1:
            raise CoverageInputError("cell_min_share must be in (0, 1]")
        self.sectors, self.roads = sectors, roads
        self.key_sites = key_sites or KeySites((), np.empty(0, dtype=object))
        self.cells = cells or Cells((), np.empty(0, dtype=object))
        self.k_sites, self.cell_min_share = k_sites, cell_min_share
        n = len(sectors)
        self._index = {d: i for i, d in enumerate(sectors.ids)}
        if projection is None:
            b = shapely.bounds(roads.geoms) if len(roads.geoms) else np.zeros((0, 4))
            lon = np.concatenate([sectors.lon, b[:, 0], b[:, 2]])
            lat = np.concatenate([sectors.lat, b[:, 1], b[:, 3]])
            projection = LocalProjection.around(lon, lat)
        self.projection = proj = projection

        sx, sy = proj.forward(sectors.lon, sectors.lat)
        self.sector_geoms = sector_polygons(sx, sy, sectors.heading_deg, sectors.hfov_deg, sectors.range_m)
        self._tree = shapely.STRtree(self.sector_geoms)
        self.road_geoms = proj.to_metric(roads.geoms)
        self.road_length = shapely.length(self.road_geoms)
        self.cell_geoms = proj.to_metric(self.cells.geoms)
        self.site_geoms = proj.to_metric(self.key_sites.geoms)
        self._build_pieces()
        self._build_intervals()
        self._build_sites()
        self.intact = np.ones(n, bool) if intact is None else self._mask(intact)
        self.piece_designed = self._piece_cover(np.ones(n, bool))
        self.recompute()

    # ---------------- build

    def _build_pieces(self) -> None:
        """Cut roads into straight segments, and those at cell boundaries, so each piece is straight
        (a sub-line's place along it is unambiguous, even on roads that loop or retrace) and lies in
        one cell (or −1, outside every cell)."""
        coords, owner = shapely.get_coordinates(self.road_geoms, return_index=True)
        same = owner[1:] == owner[:-1]
        seg_start = np.flatnonzero(same)
        seg_road = owner[seg_start].astype(np.int64)
        seg_xy = np.stack([coords[seg_start], coords[seg_start + 1]], 1)
        seg_len = np.hypot(*(seg_xy[:, 1] - seg_xy[:, 0]).T)
        keep = seg_len > 1e-9
        seg_start, seg_road, seg_xy, seg_len = seg_start[keep], seg_road[keep], seg_xy[keep], seg_len[keep]
        # offset of each segment along its road: running length, restarted at every road
        cum = np.cumsum(seg_len)
        first = np.searchsorted(seg_road, seg_road, side="left")
        seg_off = cum - seg_len - (cum[first] - seg_len[first])
        segs = shapely.linestrings(seg_xy) if len(seg_xy) else np.empty(0, dtype=object)
        ns = len(segs)
        p_seg: list[I64] = []
        p_cell: list[I64] = []
        p_geom: list[Geoms] = []
        if len(self.cell_geoms) and ns:
            ctree = shapely.STRtree(self.cell_geoms)
            si, ci = ctree.query(segs, predicate="intersects")
            inter = shapely.intersection(segs[si], self.cell_geoms[ci])
            parts, pi = shapely.get_parts(inter, return_index=True)
            ok = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 1e-6)
            p_seg.append(si[pi[ok]])
            p_cell.append(ci[pi[ok]])
            p_geom.append(parts[ok])
            inside_len = np.bincount(si[pi[ok]], shapely.length(parts[ok]), minlength=ns)
            rest = np.flatnonzero(seg_len - inside_len > 1e-3)
            if len(rest):
                cover = shapely.coverage_union_all(self.cell_geoms)
                diff = shapely.difference(segs[rest], cover)
                dparts, di = shapely.get_parts(diff, return_index=True)
                ok = (shapely.get_type_id(dparts) == 1) & (shapely.length(dparts) > 1e-6)
                p_seg.append(rest[di[ok]])
                p_cell.append(np.full(int(ok.sum()), -1, np.int64))
                p_geom.append(dparts[ok])
        else:
            p_seg.append(np.arange(ns))
            p_cell.append(np.full(ns, -1, np.int64))
            p_geom.append(segs)
        seg_i = np.concatenate(p_seg).astype(np.int64)
        cell_i = np.concatenate(p_cell).astype(np.int64)
        geoms = np.concatenate(p_geom)
        # orient every piece as its segment runs, and note where along the road it starts
        host = segs[seg_i]
        l0 = shapely.line_locate_point(host, shapely.get_point(geoms, 0))
        l1 = shapely.line_locate_point(host, shapely.get_point(geoms, -1))
        geoms = np.where(l1 < l0, shapely.reverse(geoms), geoms)
        offset = seg_off[seg_i] + np.minimum(l0, l1)
        road_i = seg_road[seg_i]
        order = np.lexsort((offset, road_i))
        self.piece_road = road_i[order]
        self.piece_cell = cell_i[order]
        self.piece_geoms = geoms[order]
        self.piece_offset = offset[order]
        self.piece_length = shapely.length(self.piece_geoms)

    def _build_intervals(self) -> None:
        """For each (piece, sector) pair the stretches of the piece inside the sector, as [a, b] metres."""
        pi, si = self._tree.query(self.piece_geoms, predicate="intersects")
        inter = shapely.intersection(self.piece_geoms[pi], self.sector_geoms[si])
        parts, k = shapely.get_parts(inter, return_index=True)
        ok = (shapely.get_type_id(parts) == 1) & (shapely.length(parts) > 1e-9)
        parts, k = parts[ok], k[ok]
        host = self.piece_geoms[pi[k]]
        a = shapely.line_locate_point(host, shapely.get_point(parts, 0))
        b = shapely.line_locate_point(host, shapely.get_point(parts, -1))
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        piece, sector = pi[k].astype(np.int64), si[k].astype(np.int64)
        order = np.lexsort((lo, piece))
        self.iv_piece, self.iv_sector = piece[order], sector[order]
        self.iv_a, self.iv_b = lo[order], hi[order]
        npieces = len(self.piece_geoms)
        self._piece_ptr = np.searchsorted(self.iv_piece, np.arange(npieces + 1))
        # per sector, the pieces it touches (CSR) — what an incremental update revisits
        by_sector = np.lexsort((self.iv_piece, self.iv_sector))
        sp = np.stack([self.iv_sector[by_sector], self.iv_piece[by_sector]], 1)
        sp = np.unique(sp, axis=0) if len(sp) else sp.reshape(0, 2)
        self._sector_pieces = sp[:, 1].astype(np.int64)
        self._sector_ptr = np.searchsorted(sp[:, 0], np.arange(len(self.sectors) + 1))

    def _build_sites(self) -> None:
        ns = len(self.site_geoms)
        if ns and len(self.sector_geoms):
            ki, si = self._tree.query(self.site_geoms, predicate="intersects")
        else:
            ki = si = np.zeros(0, np.int64)
        self.site_pair_site, self.site_pair_sector = ki.astype(np.int64), si.astype(np.int64)
        order = np.lexsort((self.site_pair_site, self.site_pair_sector))
        self._sector_sites = self.site_pair_site[order]
        self._sector_site_ptr = np.searchsorted(
            self.site_pair_sector[order], np.arange(len(self.sectors) + 1)
        )
        # the cell of each site, for area roll-ups
        self.site_cell = np.full(ns, -1, np.int64)
        if ns and len(self.cell_geoms):
            pts = shapely.point_on_surface(self.site_geoms)
            si2, ci2 = shapely.STRtree(self.cell_geoms).query(pts, predicate="within")
            self.site_cell[si2] = ci2

    # ---------------- computation

    def _mask(self, mask: Any) -> Bool:
        m = np.asarray(mask, dtype=bool).ravel()
        if len(m) != len(self.sectors):
            raise CoverageInputError(f"mask has {len(m)} values for {len(self.sectors)} cameras")
        return m.copy()

    def _piece_cover(self, mask: Bool) -> F64:
        sel = mask[self.iv_sector]
        return union_length(self.iv_piece[sel], self.iv_a[sel], self.iv_b[sel], len(self.piece_geoms))

    def _site_counts(self, mask: Bool) -> I64:
        sel = mask[self.site_pair_sector]
        return np.bincount(self.site_pair_site[sel], minlength=len(self.site_geoms)).astype(np.int64)

    def recompute(self) -> None:
        """Full recompute of the current (intact) state from the interval table."""
        self.piece_covered = self._piece_cover(self.intact)
        self.site_count = self._site_counts(self.intact)

    def set_intact(self, device: str | int, intact: bool) -> int:
        """Flag one camera intact or not and update coverage; returns how many road pieces changed."""
        i = self._index.get(device) if isinstance(device, str) else int(device)
        if i is None or not 0 <= i < len(self.sectors):
            raise CoverageInputError(f"camera {device} is not in the coverage model")
        if bool(self.intact[i]) == bool(intact):
            return 0
        self.intact[i] = bool(intact)
        pieces = self._sector_pieces[self._sector_ptr[i] : self._sector_ptr[i + 1]]
        if len(pieces):
            lo, hi = self._piece_ptr[pieces], self._piece_ptr[pieces + 1]
            counts = hi - lo
            idx = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
            sel = idx[self.intact[self.iv_sector[idx]]]
            local = np.searchsorted(pieces, self.iv_piece[sel])
            self.piece_covered[pieces] = union_length(local, self.iv_a[sel], self.iv_b[sel], len(pieces))
        sites = self._sector_sites[self._sector_site_ptr[i] : self._sector_site_ptr[i + 1]]
        self.site_count[sites] += 1 if intact else -1
        return len(pieces)

    def set_mask(self, intact: Any) -> None:
        self.intact = self._mask(intact)
        self.recompute()

    # ---------------- figures

    def _scope_cells(self, scope: Scope) -> Bool:
        if scope is None:
            return np.ones(len(self.cell_geoms), bool)
        if not isinstance(scope, str):  # a mask over the cells, for areas not named by code prefix
            m = np.asarray(scope, dtype=bool).ravel()
            if len(m) != len(self.cell_geoms):
                raise CoverageInputError(f"cell scope has {len(m)} values for {len(self.cell_geoms)} cells")
            return m
        return np.array([c.startswith(scope) for c in self.cells.codes], bool)

    def _scope_pieces(self, scope: Scope) -> Bool:
        if scope is None:
            return np.ones(len(self.piece_geoms), bool)
        return _in_cells(self.piece_cell, self._scope_cells(scope))

    def _scope_sites(self, scope: Scope) -> Bool:
        if scope is None:
            return np.ones(len(self.site_geoms), bool)
        return _in_cells(self.site_cell, self._scope_cells(scope))

    def summary(self, scope: Scope = None, *, designed: bool = False, mask: Any = None) -> CoverageSummary:
        """Figures for all data or for the cells whose code starts with `scope` (an area code).

        `designed=True` counts every camera (as designed); `mask` counts the given cameras
        (a full recompute); otherwise the current intact state.
        """
        if mask is not None:
            m = self._mask(mask)
            covered, counts = self._piece_cover(m), self._site_counts(m)
            counted = int(m.sum())
        elif designed:
            covered = self.piece_designed
            counts = self._site_counts(np.ones(len(self.sectors), bool))
            counted = len(self.sectors)
        else:
            covered, counts, counted = self.piece_covered, self.site_count, int(self.intact.sum())
        pm = self._scope_pieces(scope)
        road_len = float(self.piece_length[pm].sum())
        road_cov = float(covered[pm].sum())
        sm = self._scope_sites(scope)
        sites_total = int(sm.sum())
        sites_cov = int(((counts >= self.k_sites) & sm).sum())
        cell_len, cell_cov = self._cell_lengths(covered)
        cm = self._scope_cells(scope)
        has_road = (cell_len > 0) & cm
        cells_cov = int((has_road & (cell_cov >= self.cell_min_share * cell_len)).sum())
        return CoverageSummary(
            cameras_counted=counted,
            road_length_m=road_len,
            road_covered_m=road_cov,
            road_coverage_rate=_rate(road_cov, road_len),
            key_sites_total=sites_total,
            key_sites_covered=sites_cov,
            key_site_coverage_rate=_rate(sites_cov, sites_total),
            grid_cells_total=int(has_road.sum()),
            grid_cells_covered=cells_cov,
            grid_coverage_rate=_rate(cells_cov, int(has_road.sum())),
            grid_cells_roadless=int((cm & (cell_len <= 0)).sum()),
            k_sites=self.k_sites,
            cell_min_share=self.cell_min_share,
        )

    def _cell_lengths(self, covered: F64) -> tuple[F64, F64]:
        nc = len(self.cell_geoms)
        inside = self.piece_cell >= 0
        cell_len = np.bincount(self.piece_cell[inside], self.piece_length[inside], minlength=nc)
        cell_cov = np.bincount(self.piece_cell[inside], covered[inside], minlength=nc)
        return cell_len.astype(float), cell_cov.astype(float)

    def road_covered_by_road(self) -> F64:
        """Covered metres per input road line (same order as `roads.geoms`), current state."""
        return np.bincount(self.piece_road, self.piece_covered, minlength=len(self.road_geoms)).astype(float)

    # ---------------- blind spots

    def blind_roads(self, min_length_m: float = 20.0, scope: Scope = None) -> dict[str, Any]:
        """Uncovered road stretches at least `min_length_m` long, as lon/lat LineStrings."""
        if min_length_m < 0:
            raise CoverageInputError("min_length_m must be ≥ 0")
        sel = self.intact[self.iv_sector]
        piece = self.iv_piece[sel]
        road = self.piece_road[piece]
        a = self.iv_a[sel] + self.piece_offset[piece]
        b = self.iv_b[sel] + self.piece_offset[piece]
        order = np.lexsort((a, road))
        g, s, e = _merged(road[order], a[order], b[order])
        nr = len(self.road_geoms)
        gaps_r: list[I64] = []
        gaps_s: list[F64] = []
        gaps_e: list[F64] = []
        if len(g):
            first = np.ones(len(g), bool)
            first[1:] = g[1:] != g[:-1]
            last = np.ones(len(g), bool)
            last[:-1] = g[1:] != g[:-1]
            gaps_r += [g[first], g[~first]]
            gaps_s += [np.zeros(int(first.sum())), e[np.flatnonzero(~first) - 1]]
            gaps_e += [s[first], s[~first]]
            gaps_r.append(g[last])
            gaps_s.append(e[last])
            gaps_e.append(self.road_length[g[last]])
        bare = np.setdiff1d(np.arange(nr), g)
        gaps_r.append(bare)
        gaps_s.append(np.zeros(len(bare)))
        gaps_e.append(self.road_length[bare])
        gr, gs, ge = np.concatenate(gaps_r), np.concatenate(gaps_s), np.concatenate(gaps_e)
        keep = (ge - gs >= max(min_length_m, 1e-6)) & (ge - gs > 1e-6)
        gr, gs, ge = gr[keep], gs[keep], ge[keep]
        if scope is not None and len(gr):
            pm = self._scope_pieces(scope)
            mid = (gs + ge) / 2
            # the piece holding each stretch's midpoint decides whether it is in scope
            starts = np.searchsorted(self.piece_road, gr, side="left")
            ends = np.searchsorted(self.piece_road, gr, side="right")
            inscope = np.zeros(len(gr), bool)
            for t in range(len(gr)):
                rng_ = np.arange(starts[t], ends[t])
                off = self.piece_offset[rng_]
                hit = rng_[(off <= mid[t]) & (mid[t] <= off + self.piece_length[rng_])]
                inscope[t] = bool(pm[hit].any()) if len(hit) else False
            gr, gs, ge = gr[inscope], gs[inscope], ge[inscope]
        geoms = _substrings(self.road_geoms, gr, gs, ge)
        geoms = self.projection.to_lonlat(geoms) if len(geoms) else geoms
        feats = [
            {
                "type": "Feature",
                "geometry": mapping(geoms[t]),
                "properties": {
                    "road_id": self.roads.ids[int(gr[t])],
                    "from_m": round(float(gs[t]), 2),
                    "to_m": round(float(ge[t]), 2),
                    "length_m": round(float(ge[t] - gs[t]), 2),
                },
            }
            for t in range(len(gr))
        ]
        return {"type": "FeatureCollection", "features": feats}

    def blind_cells(self, scope: Scope = None) -> dict[str, Any]:
        """Grid cells with road that are not covered under the cell rule, as their polygons."""
        cell_len, cell_cov = self._cell_lengths(self.piece_covered)
        cm = self._scope_cells(scope)
        bad = np.flatnonzero(cm & (cell_len > 0) & (cell_cov < self.cell_min_share * cell_len))
        feats = [
            {
                "type": "Feature",
                "geometry": mapping(self.cells.geoms[c]),
                "properties": {
                    "code": self.cells.codes[c],
                    "road_length_m": round(float(cell_len[c]), 2),
                    "road_covered_m": round(float(cell_cov[c]), 2),
                    "covered_share": round(_rate(cell_cov[c], cell_len[c]), 4),
                },
            }
            for c in bad
        ]
        return {"type": "FeatureCollection", "features": feats}

    def blind_key_sites(self, scope: Scope = None) -> dict[str, Any]:
        """Key sites seen by fewer than k intact cameras."""
        sm = self._scope_sites(scope)
        bad = np.flatnonzero(sm & (self.site_count < self.k_sites))
        feats = [
            {
                "type": "Feature",
                "geometry": mapping(self.key_sites.geoms[s]),
                "properties": {
                    "id": self.key_sites.ids[s],
                    "cameras": int(self.site_count[s]),
                    "k": self.k_sites,
                },
            }
            for s in bad
        ]
        return {"type": "FeatureCollection", "features": feats}


def _in_cells(cell_of: I64, cells: Bool) -> Bool:
    """Which items (road pieces, key sites) lie in a selected cell; −1 (outside every cell) never
    does, and with no cells at all nothing does (an area without grid cells has zero figures)."""
    out = np.zeros(len(cell_of), bool)
    inside = cell_of >= 0
    out[inside] = cells[cell_of[inside]]
    return out


def _substrings(lines: Geoms, which: I64, start: F64, end: F64) -> Geoms:
    """Sub-lines [start, end] metres along lines[which], all at once (vectorised shapely.ops.substring)."""
    if len(which) == 0:
        return np.empty(0, dtype=object)
    coords, owner = shapely.get_coordinates(lines, return_index=True)
    seg = np.hypot(np.diff(coords[:, 0]), np.diff(coords[:, 1]))
    seg[owner[1:] != owner[:-1]] = 0.0
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    first = np.searchsorted(owner, np.arange(len(lines)))
    along = cum - cum[first[owner]]  # distance of each vertex along its own line
    big = float(along.max()) * 2 + 10.0
    key = owner * big + along  # increasing over the whole array
    lo = np.searchsorted(key, which * big + start, side="right")
    hi = np.searchsorted(key, which * big + end, side="left")
    inner = np.maximum(hi - lo, 0)
    p0 = shapely.get_coordinates(shapely.line_interpolate_point(lines[which], start))
    p1 = shapely.get_coordinates(shapely.line_interpolate_point(lines[which], end))
    count = inner + 2
    out_owner = np.repeat(np.arange(len(which)), count)
    pos = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    src = np.repeat(lo, count) + pos - 1  # vertex index for the inner positions
    is_first, is_last = pos == 0, pos == np.repeat(count - 1, count)
    xy = coords[np.clip(src, 0, len(coords) - 1)]
    xy = np.where(is_first[:, None], p0[out_owner], xy)
    xy = np.where(is_last[:, None], p1[out_owner], xy)
    return shapely.linestrings(xy, indices=out_owner)


# ---------------------------------------------------------------- pure entry points


def road_coverage(sectors: Sectors, roads: Roads, intact: Any = None) -> CoverageSummary:
    """Road length and covered length (road ∩ union of the counted sectors)."""
    return CoverageModel(sectors, roads, intact=intact).summary()


def key_site_coverage(sectors: Sectors, sites: KeySites, intact: Any = None, k: int = 1) -> I64:
    """Per key site, how many counted cameras see it (a site is covered when the count ≥ k)."""
    model = CoverageModel(
        sectors,
        Roads((), np.empty(0, dtype=object)),
        sites,
        intact=intact,
        k_sites=k,
        projection=_projection_for(sectors, sites.geoms),
    )
    return model.site_count.copy()


def _projection_for(sectors: Sectors, geoms: Geoms) -> LocalProjection:
    b = shapely.bounds(geoms) if len(geoms) else np.zeros((0, 4))
    return LocalProjection.around(
        np.concatenate([sectors.lon, b[:, 0], b[:, 2]]), np.concatenate([sectors.lat, b[:, 1], b[:, 3]])
    )
