"""GeoJSON (EPSG:4326) checked on the way in: shape, coordinate ranges, validity."""

from __future__ import annotations

import math
from typing import Any

import shapely
from pyproj import Geod
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry

_GEOD = Geod(ellps="WGS84")


def parse_geometry(obj: Any, allowed: tuple[str, ...], field: str = "geometry") -> BaseGeometry:
    """A GeoJSON geometry dict → shapely geometry, or ValueError with a readable reason."""
    if not isinstance(obj, dict) or "type" not in obj:
        raise ValueError(f"{field} must be a GeoJSON geometry object")
    if obj["type"] not in allowed:
        raise ValueError(f"{field} must be one of {', '.join(allowed)}, not {obj['type']}")
    try:
        geom = shape(obj)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise ValueError(f"{field} is not valid GeoJSON: {e}") from None
    if geom.is_empty:
        raise ValueError(f"{field} is empty")
    minx, miny, maxx, maxy = geom.bounds
    if not all(math.isfinite(v) for v in geom.bounds):
        raise ValueError(f"{field} has non-finite coordinates")
    if minx < -180 or maxx > 180 or miny < -90 or maxy > 90:
        raise ValueError(f"{field} coordinates are outside lon/lat ranges (EPSG:4326 expected, lon first)")
    if not geom.is_valid:
        raise ValueError(f"{field} is not a valid geometry: {shapely.is_valid_reason(geom)}")
    return geom


def geodesic_length_m(geom: BaseGeometry) -> float:
    return float(_GEOD.geometry_length(geom))
