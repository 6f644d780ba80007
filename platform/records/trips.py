"""Trajectory shaping (pure): split time-ordered points into trips on gaps, and draw them as GeoJSON."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Protocol


class Located(Protocol):
    @property
    def ts(self) -> dt.datetime: ...
    @property
    def lon(self) -> float | None: ...
    @property
    def lat(self) -> float | None: ...


def split(points: Sequence[Located], gap_s: float) -> list[tuple[int, int]]:
    """Index ranges [start, end] (inclusive) of trips: a new trip starts after a gap longer than gap_s."""
    if not points:
        return []
    out: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(points)):
        if (points[i].ts - points[i - 1].ts).total_seconds() > gap_s:
            out.append((start, i - 1))
            start = i
    out.append((start, len(points) - 1))
    return out


def trip_summaries(points: Sequence[Located], ranges: list[tuple[int, int]]) -> list[dict[str, Any]]:
    return [
        {
            "start": points[a].ts.isoformat(),
            "end": points[b].ts.isoformat(),
            "first_index": a,
            "last_index": b,
            "points": b - a + 1,
            "duration_s": (points[b].ts - points[a].ts).total_seconds(),
        }
        for a, b in ranges
    ]


def geojson(points: Sequence[Located], ranges: list[tuple[int, int]]) -> dict[str, Any]:
    """A FeatureCollection with one Feature per trip: a LineString through its positions (repeats at
    one site collapsed), a Point when the trip never left one position, no geometry when none of
    its sensors has a position any more (deleted from the registry)."""
    features: list[dict[str, Any]] = []
    for n, (a, b) in enumerate(ranges):
        coords: list[list[float]] = []
        for p in points[a : b + 1]:
            if p.lon is None or p.lat is None:
                continue
            c = [p.lon, p.lat]
            if not coords or coords[-1] != c:
                coords.append(c)
        geom: dict[str, Any] | None = None
        if len(coords) >= 2:
            geom = {"type": "LineString", "coordinates": coords}
        elif coords:
            geom = {"type": "Point", "coordinates": coords[0]}
        features.append(
            {
                "type": "Feature",
                "geometry": geom,
                "properties": {
                    "trip": n,
                    "start": points[a].ts.isoformat(),
                    "end": points[b].ts.isoformat(),
                    "points": b - a + 1,
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}
