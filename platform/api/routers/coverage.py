"""Coverage routes for tech-defence staff: rates, coverage, blind spots, history, enclosure, the report."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from tianwang.api.defs.common import sheet_responses, unvalidated
from tianwang.api.defs.coverage import BlindSpots, CoverageAreas, CoverageHistory, CoverageSummary, Enclosure
from tianwang.api.deps import DB, Ctx, require
from tianwang.coverage import service
from tianwang.coverage.live import LiveCoverage, State
from tianwang.coverage.rates import Window, parse_step
from tianwang.protocol.fields import Instant
from tianwang.storage.models import Role
from tianwang.storage.models import utcnow as _now

router = APIRouter(prefix="/api/v1/coverage", tags=["coverage"], dependencies=[Depends(require(Role.staff))])
AreaCode = Annotated[str | None, Query(pattern=r"^[0-9A-Za-z_\-]{2,32}$")]
From = Annotated[Instant | None, Query(alias="from")]
Level = Annotated[str, Query(pattern="^(city|district|station|grid)$")]


def _state(request: Request, db: DB) -> State:
    """The process's live coverage model (made on first use), brought up to date for this query."""
    live: LiveCoverage | None = getattr(request.app.state, "coverage", None)
    if live is None:
        live = request.app.state.coverage = LiveCoverage()
    return live.current(db)


LiveState = Annotated[State, Depends(_state)]


def _window(frm: dt.datetime | None, to: dt.datetime | None) -> Window:
    to = to or _now()
    return Window(frm or to - dt.timedelta(days=1), to)


@router.get("/summary", response_model=CoverageSummary)
def summary(
    db: DB,
    ctx: Ctx,
    st: LiveState,
    area_code: AreaCode = None,
    frm: From = None,
    to: Instant | None = None,
) -> dict[str, Any]:
    """Rates and coverage of the city or one area; every figure with numerator, denominator, window."""
    return service.summary(db, st, area_code, _window(frm, to), ctx.settings.allowed_misses)


@router.get("/areas", response_model=CoverageAreas)
def areas(
    db: DB,
    ctx: Ctx,
    st: LiveState,
    level: Level = "district",
    frm: From = None,
    to: Instant | None = None,
) -> Response:
    """One row per area of the level, each with the summary's figures. Thousands of grid cells make
    a big answer: it is sent as built (its model documents it; tests/test_api_defs.py holds them to it)."""
    return unvalidated(service.area_rows(db, st, level, _window(frm, to), ctx.settings.allowed_misses))


@router.get("/blind-spots", response_model=BlindSpots)
def blind_spots(
    st: LiveState,
    area_code: AreaCode = None,
    what: Annotated[str, Query(pattern="^(roads|grid|key-sites)$")] = "roads",
    min_length_m: Annotated[float, Query(ge=0, le=10000)] = 20.0,
) -> dict[str, Any]:
    """Uncovered road stretches, grid cells or key sites as a GeoJSON FeatureCollection (lon/lat)."""
    return service.blind_spots(st, area_code, what, min_length_m)


@router.get("/history", response_model=CoverageHistory)
def history(
    db: DB,
    ctx: Ctx,
    st: LiveState,
    area_code: AreaCode = None,
    frm: From = None,
    to: Instant | None = None,
    step: Annotated[str, Query(max_length=10)] = "1h",
) -> dict[str, Any]:
    return service.history(db, st, area_code, _window(frm, to), parse_step(step), ctx.settings.allowed_misses)


@router.get("/enclosure", response_model=Enclosure)
def enclosure(
    db: DB,
    st: LiveState,
    area_code: Annotated[str, Query(pattern=r"^[0-9A-Za-z_\-]{2,32}$")],
    tolerance_m: Annotated[float, Query(ge=0, le=500)] = 30.0,
) -> dict[str, Any]:
    """Checkpoint enclosure (卡口闭合) of an area over the registered roads and checkpoints."""
    return service.enclosure_of(db, st, area_code, tolerance_m)


@router.get(
    "/report",
    response_class=Response,
    responses=sheet_responses("the report as CSV (UTF-8) or XLSX, as an attachment"),
)
def report(
    db: DB,
    ctx: Ctx,
    st: LiveState,
    area_code: AreaCode = None,
    level: Level = "district",
    fmt: Annotated[str, Query(alias="format", pattern="^(csv|xlsx)$")] = "csv",
    frm: From = None,
    to: Instant | None = None,
    worst: Annotated[int, Query(ge=0, le=1000)] = 20,
) -> Response:
    """The assessment report (考核报表): per area every rate with numerator, denominator and window,
    then the devices with the most offline seconds."""
    areas, devices = service.report(
        db, st, area_code, level, _window(frm, to), ctx.settings.allowed_misses, worst
    )
    stamp = _now().strftime("%Y%m%dT%H%M%SZ")
    name = f"coverage-report-{area_code or 'all'}-{level}-{stamp}.{fmt}"
    if fmt == "csv":
        body, media = service.report_csv(areas, devices), "text/csv; charset=utf-8"
    else:
        body = service.report_xlsx(areas, devices)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})
