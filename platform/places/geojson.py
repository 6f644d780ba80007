"""GeoJSON (EPSG:4326) checked on the way in: shape, vertex count, coordinate ranges, validity.

The structure is walked before shapely sees it, so a malformed, degenerate or oversized geometry is
refused with a reason in microseconds; GEOS validity checks cost far more than linear time on a
self-intersecting polygon (200,000 vertices: about 19 s), hence the vertex cap.
"""

from __future__ import annotations

import math
from typing import Any

import shapely
from pyproj import Geod
from shapely.errors import ShapelyError
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

_GEOD = Geod(ellps="WGS84")

# per geometry; the API sets it from `Settings.max_geometry_vertices` at start
MAX_VERTICES = 10_000
# nesting depth of `coordinates` (0: one position) and the fewest positions of each innermost array
_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}
_MIN_POSITIONS = {"LineString": 2, "MultiLineString": 2, "Polygon": 4, "MultiPolygon": 4, "MultiPoint": 1}


def set_max_vertices(n: int) -> None:
    global MAX_VERTICES
    MAX_VERTICES = int(n)


def _position(p: Any, where: str) -> tuple[float, float]:
    if not isinstance(p, list | tuple) or len(p) not in (2, 3):
        raise ValueError(f"{where} must be a position [lon, lat]")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in p):
        raise ValueError(f"{where} must hold numbers")
    lon, lat = float(p[0]), float(p[1])
    if not all(math.isfinite(float(v)) for v in p):
        raise ValueError(f"{where} has non-finite coordinates")
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"{where} is outside lon/lat ranges (EPSG:4326 expected, lon first)")
    return lon, lat


def _walk(coords: Any, depth: int, kind: str, where: str, budget: int) -> int:
    """The number of positions under `coords`, checking each; ValueError past `budget`."""
    if depth == 0:
        _position(coords, where)
        return 1
    if not isinstance(coords, list):
        raise ValueError(f"{where} must be an array")
    if depth == 1:
        if len(coords) > budget:
            raise ValueError(f"has more than {MAX_VERTICES} vertices (the limit per geometry)")
        least = _MIN_POSITIONS.get(kind, 1)
        if len(coords) < least:
            what = "a ring" if kind in ("Polygon", "MultiPolygon") else "a line"
            raise ValueError(f"{where} has {len(coords)} positions; {what} needs at least {least}")
        pts = [_position(p, f"{where}[{i}]") for i, p in enumerate(coords)]
        if kind in ("Polygon", "MultiPolygon") and pts[0] != pts[-1]:
            raise ValueError(f"{where} is not closed (a ring ends at its first position)")
        if kind != "MultiPoint" and len(set(pts)) < (3 if kind in ("Polygon", "MultiPolygon") else 2):
            raise ValueError(f"{where} is degenerate (too few distinct positions)")
        return len(coords)
    if depth == 2 and kind in ("Polygon", "MultiPolygon") and not coords:
        raise ValueError(f"{where} has no rings")
    n = 0
    for i, c in enumerate(coords):
        n += _walk(c, depth - 1, kind, f"{where}[{i}]", budget - n)
        if n > budget:
            raise ValueError(f"has more than {MAX_VERTICES} vertices (the limit per geometry)")
    return n


def parse_geometry(obj: Any, allowed: tuple[str, ...], field: str = "geometry") -> BaseGeometry:
    """A GeoJSON geometry dict → a valid, non-empty shapely geometry, or ValueError with the reason."""
    if not isinstance(obj, dict) or "type" not in obj:
        raise ValueError(f"{field} must be a GeoJSON geometry object")
    kind = obj["type"]
    if kind not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}, not {str(kind)[:40]}")
    if kind not in _DEPTH:
        raise ValueError(f"{field}: {kind} is not supported here")
    coords = obj.get("coordinates")
    if coords is None:
        raise ValueError(f"{field} has no coordinates")
    if isinstance(coords, list) and not coords and _DEPTH[kind] > 0:
        raise ValueError(f"{field} is empty")
    try:
        _walk(coords, _DEPTH[kind], kind, f"{field}.coordinates", MAX_VERTICES)
    except ValueError as e:
        msg = str(e)
        raise ValueError(msg if msg.startswith(field) else f"{field} {msg}") from None
    try:
        geom = shape(obj)
        if geom.is_empty:
            raise ValueError(f"{field} is empty")
        if not geom.is_valid:
            raise ValueError(f"{field} is not a valid geometry: {shapely.is_valid_reason(geom)}")
    except (ShapelyError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise ValueError(f"{field} is not valid GeoJSON: {e}") from None
    return geom


def geodesic_length_m(geom: BaseGeometry) -> float:
    return float(_GEOD.geometry_length(geom))
