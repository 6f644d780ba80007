"""The coverage model of one API process: built from the registry on first use, kept in memory, updated
incrementally when a camera's status changes, rebuilt when the registry's map or cameras change.

Status changes reach it two ways: the evidence code tells every listener in this process the device
ids whose status it changed (`tianwang.cameras.evidence.status_listeners`), and each query also
re-reads the cameras whose `status_since` is recent, which catches changes made by other processes
(API replicas, the CLI) and changes whose transaction had not committed when first told.
"""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import shape
from sqlalchemy import BigInteger, String, cast, func, select
from sqlalchemy.orm import Session

from tianwang.cameras import evidence
from tianwang.coverage.enclosure import RoadGraph
from tianwang.coverage.geometry import Cells, CoverageModel, KeySites, Roads, Sectors
from tianwang.errors import NotFound
from tianwang.storage.models import Area, Camera, KeySite, Road, utcnow

Bool = NDArray[np.bool_]
I64 = NDArray[np.int64]

# how far back each query re-reads status changes: longer than any ingest transaction lasts
POLL_MARGIN = dt.timedelta(minutes=10)
LEVELS = ("city", "district", "station", "grid")
# road ends closer than this are one junction of the enclosure graph
SNAP_M = 1.0


def fingerprint(session: Session) -> tuple[Any, ...]:
    """Cheap signature of what the model is built from: counts, max ids and integer sums of the
    geometric fields (integers, so the sum does not depend on scan order). Status columns are left
    out on purpose: a status change is an incremental update, not a rebuild."""

    def isum(expr: Any) -> Any:
        return func.coalesce(func.sum(cast(func.round(expr), BigInteger)), 0)

    cams = session.execute(
        select(
            func.count(),
            func.max(Camera.id),
            isum(
                Camera.lon * 1e6
                + Camera.lat * 3e6
                + Camera.heading_deg * 7e2
                + Camera.hfov_deg * 11e2
                + Camera.range_m * 13e2
            ),
        ).where(Camera.lifecycle == "in_use")
    ).one()
    roads = session.execute(select(func.count(), func.max(Road.id), isum(Road.length_m * 1000))).one()
    areas = session.execute(
        select(
            func.count(),
            func.max(Area.id),
            isum((Area.min_lon + Area.max_lon * 3 + Area.min_lat * 7 + Area.max_lat * 11) * 1e6),
            func.sum(func.length(Area.kind) * func.length(Area.code)),
        )
    ).one()
    sites = session.execute(
        select(func.count(), func.max(KeySite.id), func.sum(func.length(cast(KeySite.geometry, String))))
    ).one()
    return tuple(tuple(r) for r in (cams, roads, areas, sites))


@dataclass
class AreaInfo:
    code: str
    name: str
    kind: str
    parent: str | None
    geometry: Any  # shapely, lon/lat


@dataclass
class State:
    """Everything a coverage query reads, for one version of the registry."""

    fingerprint: tuple[Any, ...]
    built_at: dt.datetime
    device_ids: tuple[str, ...]
    index: dict[str, int]
    lon: NDArray[np.float64]
    lat: NDArray[np.float64]
    online: Bool  # answering with the registered credentials (status online, or fault by picture)
    intact: Bool  # status online: answering and its latest picture passed diagnosis
    model: CoverageModel | None
    areas: dict[str, AreaInfo]
    # per level: the area index (into level_codes) of each device, −1 outside every area
    level_codes: dict[str, list[str]]
    device_area: dict[str, I64]
    cell_area: dict[str, I64]  # per level: the area index of each grid cell of the model
    roads_fc: dict[str, Any]
    _graph: RoadGraph | None = None

    def area(self, code: str) -> AreaInfo:
        a = self.areas.get(code)
        if a is None:
            raise NotFound(f"area {code} is not registered")
        return a

    def devices_in(self, code: str | None) -> Bool:
        """Membership: the devices whose position lies inside the area polygon (boundary included;
        a device on a shared edge goes to the area with the lowest code of that level)."""
        if code is None:
            return np.ones(len(self.device_ids), bool)
        a = self.area(code)
        codes = self.level_codes[a.kind]
        return self.device_area[a.kind] == codes.index(code)

    def cell_scope(self, code: str | None) -> Bool | None:
        """Grid cells (areas of kind grid) whose representative point lies inside the area (same
        rule as devices)."""
        if code is None or self.model is None:
            return None
        a = self.area(code)
        return self.cell_area[a.kind] == self.level_codes[a.kind].index(code)

    def road_graph(self) -> RoadGraph:
        if self._graph is None:
            self._graph = snapped_graph(self.roads_fc, SNAP_M)
        return self._graph


def snapped_graph(roads_fc: dict[str, Any], snap_m: float) -> RoadGraph:
    """The road graph from registered lines: a MultiLineString's parts are edges `id#k`; line ends
    within `snap_m` metres of each other (transitively) become one node."""
    from tianwang.coverage.geometry import LocalProjection

    ids: list[str] = []
    coords: list[NDArray[np.float64]] = []
    for f in roads_fc["features"]:
        g = f["geometry"]
        parts = [g["coordinates"]] if g["type"] == "LineString" else g["coordinates"]
        for k, line in enumerate(parts):
            ids.append(f["id"] if len(parts) == 1 else f"{f['id']}#{k}")
            coords.append(np.asarray(line, float)[:, :2])
    if not coords:
        return RoadGraph(np.zeros(0), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), ())
    ends = np.vstack([np.array([c[0] for c in coords]), np.array([c[-1] for c in coords])])
    proj = LocalProjection.around(ends[:, 0], ends[:, 1])
    x, y = proj.forward(ends[:, 0], ends[:, 1])
    pts = shapely.points(x, y)
    a, b = shapely.STRtree(pts).query(pts, predicate="dwithin", distance=snap_m)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(pts)
    _, label = connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    # each node sits at the mean of the ends snapped into it; the edges keep their own shapes
    k = int(label.max()) + 1
    cnt = np.bincount(label, minlength=k)
    node_lon = np.bincount(label, ends[:, 0], minlength=k) / cnt
    node_lat = np.bincount(label, ends[:, 1], minlength=k) / cnt
    m = len(coords)
    return RoadGraph(
        node_lon, node_lat, label[:m].astype(np.int64), label[m:].astype(np.int64), tuple(ids), coords
    )


def _assign(pts: Any, polys: Any) -> I64:
    """The index of the polygon holding each point (boundary included), −1 for none; a point on a
    shared edge goes to the lowest index (the lowest code: polygons come sorted by code)."""
    which = np.full(len(pts), -1, np.int64)
    if len(pts) and len(polys):
        p, k = shapely.STRtree(polys).query(pts, predicate="intersects")
        order = np.lexsort((k, p))
        p, k = p[order], k[order]
        first = np.ones(len(p), bool)
        first[1:] = p[1:] != p[:-1]
        which[p[first]] = k[first]
    return which


def _status_flags(status: str, last_authenticated: bool | None) -> tuple[bool, bool]:
    online = status == "online" or (status == "fault" and last_authenticated is not False)
    return online, status == "online"


def build(session: Session, fp: tuple[Any, ...]) -> State:
    cams = session.execute(
        select(
            Camera.device_id,
            Camera.lon,
            Camera.lat,
            Camera.heading_deg,
            Camera.hfov_deg,
            Camera.range_m,
            Camera.status,
            Camera.last_authenticated,
        )
        .where(Camera.lifecycle == "in_use")
        .order_by(Camera.device_id)
    ).all()
    ids = tuple(r[0] for r in cams)
    flags = np.array([_status_flags(r[6], r[7]) for r in cams], bool).reshape(-1, 2)
    sectors = Sectors(
        ids=ids,
        lon=np.array([r[1] for r in cams], float),
        lat=np.array([r[2] for r in cams], float),
        heading_deg=np.array([r[3] for r in cams], float),
        hfov_deg=np.array([r[4] for r in cams], float),
        range_m=np.array([r[5] for r in cams], float),
    )
    roads_fc = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "id": rid, "geometry": g, "properties": {"road_class": rc}}
            for rid, g, rc in session.execute(
                select(Road.road_id, Road.geometry, Road.road_class).order_by(Road.id)
            )
        ],
    }
    area_rows = session.execute(
        select(Area.code, Area.name, Area.kind, Area.parent, Area.geometry).order_by(Area.code)
    ).all()
    areas = {r[0]: AreaInfo(r[0], r[1], r[2], r[3], shape(r[4])) for r in area_rows}
    grid = [a for a in areas.values() if a.kind == "grid"]
    cells = Cells(
        tuple(a.code for a in grid), np.array([a.geometry for a in grid] + [None], dtype=object)[:-1]
    )
    sites = KeySites.from_records(
        {"id": sid, "geometry": g}
        for sid, g in session.execute(select(KeySite.site_id, KeySite.geometry).order_by(KeySite.id))
    )
    roads = Roads.from_geojson(roads_fc)
    model = None
    if len(sectors) or len(roads.ids):
        model = CoverageModel(sectors, roads, sites, cells, intact=flags[:, 1])
    level_codes: dict[str, list[str]] = {}
    device_area: dict[str, I64] = {}
    cell_area: dict[str, I64] = {}
    pts = shapely.points(sectors.lon, sectors.lat) if len(ids) else np.empty(0, dtype=object)
    cell_pts = shapely.point_on_surface(model.cells.geoms) if model is not None else np.empty(0, dtype=object)
    for level in LEVELS:
        of_level = sorted(c for c, a in areas.items() if a.kind == level)
        level_codes[level] = of_level
        polys = np.array([areas[c].geometry for c in of_level] + [None], dtype=object)[:-1]
        device_area[level] = _assign(pts, polys)
        cell_area[level] = _assign(cell_pts, polys)
    return State(
        fingerprint=fp,
        built_at=utcnow(),
        device_ids=ids,
        index={d: i for i, d in enumerate(ids)},
        lon=sectors.lon,
        lat=sectors.lat,
        online=flags[:, 0].copy(),
        intact=flags[:, 1].copy(),
        model=model,
        areas=areas,
        level_codes=level_codes,
        device_area=device_area,
        cell_area=cell_area,
        roads_fc=roads_fc,
    )


class LiveCoverage:
    """One per API process (kept on the app): `current(session)` answers the state to query."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: State | None = None
        self._pending: set[str] = set()
        self._last_poll: dt.datetime | None = None
        self.rebuilds = 0
        self.incremental_updates = 0
        ref = weakref.ref(self)

        def listen(device_id: str) -> None:
            me = ref()
            if me is None:
                evidence.status_listeners.remove(listen)
                return
            me._pending.add(device_id)

        evidence.status_listeners.append(listen)

    def current(self, session: Session) -> State:
        with self._lock:
            fp = fingerprint(session)
            now = utcnow()
            if self._state is None or self._state.fingerprint != fp:
                self._pending.clear()
                self._state = build(session, fp)
                self._last_poll = now
                self.rebuilds += 1
                return self._state
            self._sync(session, self._state, now)
            return self._state

    def _sync(self, session: Session, st: State, now: dt.datetime) -> None:
        ids, self._pending = self._pending, set()
        since = (self._last_poll or now) - POLL_MARGIN
        self._last_poll = now
        cols = (Camera.device_id, Camera.status, Camera.last_authenticated)
        rows = list(
            session.execute(select(*cols).where(Camera.lifecycle == "in_use", Camera.status_since >= since))
        )
        told = sorted(ids - {r[0] for r in rows})
        for k in range(0, len(told), 500):
            rows += session.execute(select(*cols).where(Camera.device_id.in_(told[k : k + 500]))).all()
        for device_id, status, authenticated in rows:
            i = st.index.get(device_id)
            if i is None:
                continue
            online, intact = _status_flags(status, authenticated)
            st.online[i] = online
            if bool(st.intact[i]) != intact:
                st.intact[i] = intact
                if st.model is not None:
                    st.model.set_intact(i, intact)
                self.incremental_updates += 1
