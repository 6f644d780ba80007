"""Checkpoint enclosure (卡口闭合): does every road path from outside into a protected area pass a checkpoint?

Pure: a road graph, an area polygon and checkpoints in; entry roads, which are guarded, and the
leak paths (unguarded ways in, as lon/lat GeoJSON) out. Distances in the local metric projection.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

from tianwang.coverage.geometry import CoverageInputError, LocalProjection

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


@dataclass(frozen=True)
class RoadGraph:
    """Nodes (lon/lat) and edges (u, v, id; optional polyline per edge, else straight)."""

    node_lon: F64
    node_lat: F64
    edge_u: I64
    edge_v: I64
    edge_ids: tuple[str, ...]
    edge_coords: Sequence[Any] | None = None  # per edge an (k, 2) lon/lat polyline from u to v

    def __post_init__(self) -> None:
        n, m = len(self.node_lon), len(self.edge_u)
        if len(self.node_lat) != n or len(self.edge_v) != m or len(self.edge_ids) != m:
            raise CoverageInputError("road graph arrays differ in length")
        if m and (
            min(self.edge_u.min(), self.edge_v.min()) < 0 or max(self.edge_u.max(), self.edge_v.max()) >= n
        ):
            raise CoverageInputError("road graph edge refers to a node that does not exist")
        if self.edge_coords is not None and len(self.edge_coords) != m:
            raise CoverageInputError("road graph: one polyline per edge")

    @classmethod
    def from_arrays(cls, graph: Mapping[str, Any], roads: Mapping[str, Any] | None = None) -> RoadGraph:
        """From {nodes: {lon, lat}, edges: {id, u, v}} (the simulator's graph export), with the
        road FeatureCollection for edge shapes when given (matched by id)."""
        try:
            nodes, edges = graph["nodes"], graph["edges"]
            ids = tuple(str(i) for i in edges["id"])
            coords = None
            if roads is not None:
                by_id = {
                    str(f.get("id", (f.get("properties") or {}).get("id"))): f for f in roads["features"]
                }
                coords = [np.asarray(by_id[i]["geometry"]["coordinates"], float) for i in ids]
            return cls(
                np.asarray(nodes["lon"], float),
                np.asarray(nodes["lat"], float),
                np.asarray(edges["u"], np.int64),
                np.asarray(edges["v"], np.int64),
                ids,
                coords,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CoverageInputError(f"road graph is not in the node/edge array shape: {e}") from None

    @classmethod
    def from_roads(cls, roads: Mapping[str, Any], snap_deg: float = 1e-7) -> RoadGraph:
        """From a road FeatureCollection alone: lines ending at one point (within snap_deg) share a node."""
        ids: list[str] = []
        coords: list[F64] = []
        for i, f in enumerate(roads.get("features") or []):
            g = f.get("geometry") or {}
            if g.get("type") != "LineString":
                raise CoverageInputError(f"road #{i}: the enclosure graph needs LineStrings")
            c = np.asarray(g["coordinates"], float)[:, :2]
            if len(c) < 2:
                raise CoverageInputError(f"road #{i}: a line needs two positions")
            ids.append(str(f.get("id", (f.get("properties") or {}).get("id", i))))
            coords.append(c)
        if not coords:
            return cls(np.zeros(0), np.zeros(0), np.zeros(0, np.int64), np.zeros(0, np.int64), ())
        ends = np.vstack([np.array([c[0] for c in coords]), np.array([c[-1] for c in coords])])
        keys = np.round(ends / snap_deg).astype(np.int64)
        uniq, inv = np.unique(keys, axis=0, return_inverse=True)
        inv = inv.ravel()
        node_xy = np.zeros((len(uniq), 2))
        node_xy[inv] = ends
        m = len(coords)
        return cls(
            node_xy[:, 0],
            node_xy[:, 1],
            inv[:m].astype(np.int64),
            inv[m:].astype(np.int64),
            tuple(ids),
            coords,
        )

    def edge_lines(self) -> NDArray[np.object_]:
        if self.edge_coords is None:
            xy = np.stack(
                [
                    np.column_stack([self.node_lon[self.edge_u], self.node_lat[self.edge_u]]),
                    np.column_stack([self.node_lon[self.edge_v], self.node_lat[self.edge_v]]),
                ],
                1,
            )
            return shapely.linestrings(xy)
        counts = np.array([len(c) for c in self.edge_coords])
        flat = np.vstack([np.asarray(c, float)[:, :2] for c in self.edge_coords])
        return shapely.linestrings(flat, indices=np.repeat(np.arange(len(counts)), counts))


@dataclass(frozen=True)
class CheckpointPos:
    checkpoint_id: str
    lon: float
    lat: float
    road: str | None = None  # an edge id the checkpoint is known to sit on

    @classmethod
    def from_records(cls, records: Iterable[Mapping[str, Any]]) -> list[CheckpointPos]:
        try:
            return [
                cls(str(r["checkpoint_id"]), float(r["lon"]), float(r["lat"]), r.get("road")) for r in records
            ]
        except (KeyError, TypeError, ValueError) as e:
            raise CoverageInputError(f"checkpoint record lacks checkpoint_id/lon/lat: {e}") from None


@dataclass
class EnclosureResult:
    closed: bool
    entry_roads: list[str]
    guarded: dict[str, list[str]]  # entry road id → checkpoint ids on it
    unguarded: list[str]
    leaks: dict[str, Any] = field(default_factory=dict)  # GeoJSON FeatureCollection of paths

    def as_dict(self) -> dict[str, Any]:
        return {
            "closed": self.closed,
            "entry_roads": self.entry_roads,
            "guarded": self.guarded,
            "unguarded": self.unguarded,
            "leaks": self.leaks,
        }


def enclosure(
    area: Mapping[str, Any] | BaseGeometry,
    graph: RoadGraph,
    checkpoints: Sequence[CheckpointPos],
    *,
    tolerance_m: float = 30.0,
) -> EnclosureResult:
    """Entry roads of `area`, the checkpoints guarding them, and the leak paths.

    An entry road is an edge with one end inside the area and the other outside. A checkpoint
    guards the entry road it names (`road`) or, failing that, the nearest entry road within
    `tolerance_m`. A leak is a way in by an unguarded entry: the path from its outside node, over
    it, then inside the area (guarded entries removed) to the inside node nearest the area's
    centre — the route a vehicle could take to the heart of the area unseen by any checkpoint.
    """
    if tolerance_m < 0:
        raise CoverageInputError("tolerance_m must be ≥ 0")
    poly = area if isinstance(area, BaseGeometry) else _polygon(area)
    if poly.geom_type not in ("Polygon", "MultiPolygon") or poly.is_empty or not poly.is_valid:
        raise CoverageInputError("the protected area must be a valid Polygon or MultiPolygon")
    n = len(graph.node_lon)
    if n == 0:
        return EnclosureResult(True, [], {}, [], {"type": "FeatureCollection", "features": []})
    minx, miny, maxx, maxy = poly.bounds
    proj = LocalProjection.around(
        np.concatenate([graph.node_lon, [minx, maxx]]), np.concatenate([graph.node_lat, [miny, maxy]])
    )
    poly_m = proj.to_metric(np.array([poly], dtype=object))[0]
    nx_, ny_ = proj.forward(graph.node_lon, graph.node_lat)
    shapely.prepare(poly_m)
    inside = shapely.contains_xy(poly_m, nx_, ny_)
    u, v = graph.edge_u, graph.edge_v
    entry = np.flatnonzero(inside[u] != inside[v])
    lines_m = proj.to_metric(graph.edge_lines())
    entry_ids = [graph.edge_ids[e] for e in entry]

    # which checkpoint guards which entry
    guarded: dict[str, list[str]] = {}
    pos_of = {eid: k for k, eid in enumerate(entry_ids)}
    if checkpoints and len(entry):
        cx, cy = proj.forward([c.lon for c in checkpoints], [c.lat for c in checkpoints])
        pts = shapely.points(cx, cy)
        tree = shapely.STRtree(lines_m[entry])
        near_pt, near_edge = tree.query_nearest(pts, max_distance=tolerance_m, all_matches=False)
        nearest = dict(zip(near_pt.tolist(), near_edge.tolist(), strict=True))
        for k, cp in enumerate(checkpoints):
            if cp.road is not None and str(cp.road) in pos_of:
                eid = str(cp.road)
            elif k in nearest:
                eid = entry_ids[nearest[k]]
            else:
                continue
            guarded.setdefault(eid, []).append(cp.checkpoint_id)
    unguarded = [e for e in entry_ids if e not in guarded]

    # leak paths in the graph without the guarded entries
    lengths = shapely.length(lines_m)
    g = nx.Graph()
    g.add_nodes_from(np.flatnonzero(inside).tolist())
    inner = np.flatnonzero(inside[u] & inside[v])
    g.add_weighted_edges_from(zip(u[inner].tolist(), v[inner].tolist(), lengths[inner].tolist(), strict=True))
    feats: list[dict[str, Any]] = []
    if unguarded:
        c = poly_m.representative_point() if not poly_m.centroid.within(poly_m) else poly_m.centroid
        ins = np.flatnonzero(inside)
        core = int(ins[np.argmin(np.hypot(nx_[ins] - c.x, ny_[ins] - c.y))])
        _, paths = nx.single_source_dijkstra(g, core, weight="weight")
        edge_index = {
            (int(a), int(b)): int(i) for i, (a, b) in enumerate(zip(u.tolist(), v.tolist(), strict=True))
        }
        for eid in unguarded:
            e = int(entry[pos_of[eid]])
            out_node, in_node = (int(u[e]), int(v[e])) if not inside[u[e]] else (int(v[e]), int(u[e]))
            route = [out_node, *reversed(paths.get(in_node, [in_node]))]
            feats.append(_path_feature(graph, edge_index, route, eid, proj, lines_m))
    return EnclosureResult(
        closed=not unguarded,
        entry_roads=entry_ids,
        guarded=guarded,
        unguarded=unguarded,
        leaks={"type": "FeatureCollection", "features": feats},
    )


def _polygon(obj: Mapping[str, Any]) -> BaseGeometry:
    try:
        return shape(obj)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
        raise CoverageInputError(f"the protected area is not GeoJSON: {e}") from None


def _path_feature(
    graph: RoadGraph,
    edge_index: dict[tuple[int, int], int],
    route: list[int],
    entry_id: str,
    proj: LocalProjection,
    lines_m: NDArray[np.object_],
) -> dict[str, Any]:
    """The route's edges chained into one lon/lat LineString, each edge drawn in its own shape."""
    xy: list[F64] = []
    edges: list[str] = []
    length = 0.0
    for a, b in itertools.pairwise(route):
        i = edge_index.get((a, b))
        flip = False
        if i is None:
            i, flip = edge_index[(b, a)], True
        c = shapely.get_coordinates(lines_m[i])
        c = c[::-1] if flip else c
        xy.append(c if not xy else c[1:])
        edges.append(graph.edge_ids[i])
        length += float(shapely.length(lines_m[i]))
    pts = np.vstack(xy)
    lon, lat = proj.inverse(pts[:, 0], pts[:, 1])
    return {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": np.round(np.column_stack([lon, lat]), 7).tolist()},
        "properties": {"entry_road": entry_id, "edges": edges, "length_m": round(length, 1)},
    }
