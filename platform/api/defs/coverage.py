"""Coverage (覆盖) for tech-defence staff: rates with numerator, denominator and window; blind spots;
history; checkpoint enclosure (卡口闭合)."""

from __future__ import annotations

from pydantic import Field

from tianwang.api.defs.common import FeatureCollection, Number, Out, Timestamp, Window


class Figure(Out):
    """A rate with what it is made of."""

    rate: Number
    numerator: Number
    denominator: Number
    unit: str


class TimedFigure(Figure):
    window: Window


class Figures(Out):
    online_rate: TimedFigure = Field(description="time-weighted over the window")
    online_now: Figure
    intact_rate: Figure
    road_coverage_rate: Figure
    key_site_coverage_rate: Figure
    grid_coverage_rate: Figure


class Designed(Out):
    """The same coverage if every registered camera were intact (the design's promise)."""

    cameras: int
    road_covered_m: Number
    road_coverage_rate: Number
    key_sites_covered: int
    key_site_coverage_rate: Number
    grid_cells_covered: int
    grid_coverage_rate: Number


class CoverageSummary(Out):
    """The city's (area_code null) or one area's figures."""

    area_code: str | None
    devices_total: int
    online: int
    online_rate: Number
    intact: int
    intact_rate: Number
    road_length_m: Number
    road_covered_m: Number
    road_coverage_rate: Number
    key_sites_total: int
    key_sites_covered: int
    key_site_coverage_rate: Number
    grid_cells_total: int
    grid_cells_covered: int
    grid_coverage_rate: Number
    grid_cells_roadless: int
    as_of: Timestamp
    window: Window
    figures: Figures
    designed: Designed
    intact_cameras_counted: int


class CoverageAreaRow(Out):
    """One area of a level, with the same figures as the summary."""

    area_code: str
    name: str
    kind: str
    parent: str | None
    devices_total: int
    online: int
    online_rate: Number
    intact: int
    intact_rate: Number
    road_length_m: Number
    road_covered_m: Number
    road_coverage_rate: Number
    key_sites_total: int
    key_sites_covered: int
    key_site_coverage_rate: Number
    grid_cells_total: int
    grid_cells_covered: int
    grid_coverage_rate: Number
    grid_cells_roadless: int
    as_of: Timestamp
    window: Window
    figures: Figures
    designed: Designed
    intact_cameras_counted: int


class CoverageAreas(Out):
    level: str
    items: list[CoverageAreaRow]
    next_cursor: str | None
    devices_outside: int = Field(description="devices in no area of the level")
    window: Window
    as_of: Timestamp


class RoadGap(Out):
    """`what=roads`: an uncovered stretch of a road, metres along it."""

    road_id: str
    from_m: Number
    to_m: Number
    length_m: Number


class BlindCell(Out):
    """`what=grid`: a grid cell with road, not covered under the cell rule."""

    code: str
    road_length_m: Number
    road_covered_m: Number
    covered_share: Number


class BlindKeySite(Out):
    """`what=key-sites`: a key site seen by fewer than k intact cameras."""

    id: str
    cameras: int
    k: int


BlindSpots = FeatureCollection[RoadGap | BlindCell | BlindKeySite]


class HistoryPoint(Out):
    from_: Timestamp = Field(alias="from")
    to: Timestamp
    online_rate: Number
    online_s: Number
    scheduled_s: Number
    intact_rate: Number
    intact: int
    devices: int


class CoverageHistory(Out):
    area_code: str | None
    step_s: Number
    window: Window
    points: list[HistoryPoint]


class LeakPath(Out):
    """A way into the area by an unguarded entry road, to the area's heart."""

    entry_road: str
    edges: list[str]
    length_m: Number


class Enclosure(Out):
    area_code: str
    tolerance_m: Number
    closed: bool
    entry_roads: list[str]
    guarded: dict[str, list[str]] = Field(description="entry road id → checkpoint ids on it")
    unguarded: list[str]
    leaks: FeatureCollection[LeakPath]
