"""The city's map: roads as a GeoJSON page (areas, key sites and fences page through `Page[T]`)."""

from __future__ import annotations

from typing import Literal

from tianwang.api.defs.common import Geometry, Number, Out


class RoadProperties(Out):
    name: str | None
    road_class: str
    length_m: Number


class RoadFeature(Out):
    type: Literal["Feature"]
    id: str
    geometry: Geometry
    properties: RoadProperties


class RoadPage(Out):
    """A GeoJSON FeatureCollection page: `next_cursor` beside `features`."""

    type: Literal["FeatureCollection"]
    features: list[RoadFeature]
    next_cursor: str | None
