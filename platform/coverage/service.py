"""Coverage answers for the API: summary, per-area rows, blind spots, history, enclosure and the
assessment report (考核报表), from the live model (geometry) and the stored evidence (rates)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.orm import Session

from tianwang.coverage import rates
from tianwang.coverage.enclosure import CheckpointPos, enclosure
from tianwang.coverage.geometry import CoverageSummary
from tianwang.coverage.live import State
from tianwang.coverage.rates import Rate, Window
from tianwang.errors import ValidationFailed
from tianwang.storage.models import Camera, Checkpoint, utcnow

F64 = NDArray[np.float64]
LEVELS = ("city", "district", "station", "grid")


def aligned_seconds(session: Session, st: State, window: Window, misses: int) -> tuple[F64, F64]:
    """Scheduled and online seconds per device of the state (its order), from one SQL statement."""
    ds = rates.device_seconds(session, window, misses)
    sched, online = np.zeros(len(st.device_ids)), np.zeros(len(st.device_ids))
    pos = np.array([st.index.get(d, -1) for d in ds.device_ids], np.int64)
    ok = pos >= 0
    sched[pos[ok]], online[pos[ok]] = ds.scheduled_s[ok], ds.online_s[ok]
    return sched, online


def _cov_fields(cov: CoverageSummary | None) -> dict[str, Any]:
    if cov is None:
        return {
            "road_length_m": 0.0, "road_covered_m": 0.0, "road_coverage_rate": 0.0,
            "key_sites_total": 0, "key_sites_covered": 0, "key_site_coverage_rate": 0.0,
            "grid_cells_total": 0, "grid_cells_covered": 0, "grid_coverage_rate": 0.0,
            "grid_cells_roadless": 0, "cameras_counted": 0,
        }  # fmt: skip
    d = cov.as_dict()
    d.pop("k_sites")
    d.pop("cell_min_share")
    for k in ("road_length_m", "road_covered_m"):
        d[k] = round(d[k], 2)
    for k in ("road_coverage_rate", "key_site_coverage_rate", "grid_coverage_rate"):
        d[k] = round(d[k], 6)
    return d


def _row(
    st: State,
    member: NDArray[np.bool_],
    sched: F64,
    online_s: F64,
    cov: CoverageSummary | None,
    designed: CoverageSummary | None,
    window: Window,
    as_of: dt.datetime,
) -> dict[str, Any]:
    total = int(member.sum())
    online = int((st.online & member).sum())
    intact = int((st.intact & member).sum())
    tw = Rate(float(online_s[member].sum()), float(sched[member].sum()), window, "s")
    c, d = _cov_fields(cov), _cov_fields(designed)
    figures = {
        "online_rate": tw.as_dict(),
        "online_now": Rate(online, total).as_dict(),
        "intact_rate": Rate(intact, total).as_dict(),
        "road_coverage_rate": Rate(c["road_covered_m"], c["road_length_m"], unit="m").as_dict(),
        "key_site_coverage_rate": Rate(
            c["key_sites_covered"], c["key_sites_total"], unit="key sites"
        ).as_dict(),
        "grid_coverage_rate": Rate(
            c["grid_cells_covered"], c["grid_cells_total"], unit="grid cells"
        ).as_dict(),
    }
    return {
        "devices_total": total,
        "online": online,
        "online_rate": round(tw.rate, 6),
        "intact": intact,
        "intact_rate": round(Rate(intact, total).rate, 6),
        **{k: v for k, v in c.items() if k not in ("cameras_counted",)},
        "as_of": as_of.isoformat(),
        "window": window.as_dict(),
        "figures": figures,
        "designed": {
            "cameras": d["cameras_counted"],
            "road_covered_m": d["road_covered_m"],
            "road_coverage_rate": d["road_coverage_rate"],
            "key_sites_covered": d["key_sites_covered"],
            "key_site_coverage_rate": d["key_site_coverage_rate"],
            "grid_cells_covered": d["grid_cells_covered"],
            "grid_coverage_rate": d["grid_coverage_rate"],
        },
        "intact_cameras_counted": c["cameras_counted"],
    }


def summary(
    session: Session, st: State, area_code: str | None, window: Window, misses: int
) -> dict[str, Any]:
    if area_code is not None:
        st.area(area_code)  # 404 before any work
    sched, online_s = aligned_seconds(session, st, window, misses)
    scope = st.cell_scope(area_code)
    cov = st.model.summary(scope) if st.model is not None else None
    designed = st.model.summary(scope, designed=True) if st.model is not None else None
    out = {
        "area_code": area_code,
        **_row(st, st.devices_in(area_code), sched, online_s, cov, designed, window, utcnow()),
    }
    return out


def area_rows(session: Session, st: State, level: str, window: Window, misses: int) -> dict[str, Any]:
    """One summary row per area of `level`; each device and grid cell counts in one area of a level."""
    if level not in LEVELS:
        raise ValidationFailed(
            f"level must be one of {', '.join(LEVELS)}", errors=[{"field": "level", "message": "unknown"}]
        )
    sched, online_s = aligned_seconds(session, st, window, misses)
    as_of = utcnow()
    items = []
    which = st.device_area[level]
    for k, code in enumerate(st.level_codes[level]):
        scope = st.cell_scope(code)
        cov = st.model.summary(scope) if st.model is not None else None
        designed = st.model.summary(scope, designed=True) if st.model is not None else None
        a = st.areas[code]
        items.append(
            {
                "area_code": code,
                "name": a.name,
                "kind": a.kind,
                "parent": a.parent,
                **_row(st, which == k, sched, online_s, cov, designed, window, as_of),
            }
        )
    return {
        "level": level,
        "items": items,
        "next_cursor": None,
        "devices_outside": int((which < 0).sum()),
        "window": window.as_dict(),
        "as_of": as_of.isoformat(),
    }


def blind_spots(st: State, area_code: str | None, what: str, min_length_m: float) -> dict[str, Any]:
    if area_code is not None:
        st.area(area_code)
    empty: dict[str, Any] = {"type": "FeatureCollection", "features": []}
    if st.model is None:
        return empty
    scope = st.cell_scope(area_code)
    if what == "roads":
        return st.model.blind_roads(min_length_m, scope)
    if what == "grid":
        return st.model.blind_cells(scope)
    if what == "key-sites":
        return st.model.blind_key_sites(scope)
    raise ValidationFailed(
        "what must be roads, grid or key-sites", errors=[{"field": "what", "message": "unknown"}]
    )


def history(
    session: Session, st: State, area_code: str | None, window: Window, step: dt.timedelta, misses: int
) -> dict[str, Any]:
    """Per step: the time-weighted online rate over the step, and the intact rate at the step's end
    rebuilt from the evidence (latest health observation and latest judged snapshot by then)."""
    member = st.devices_in(area_code)
    points = []
    for w in rates.steps(window, step):
        sched, online_s = aligned_seconds(session, st, w, misses)
        ids, present, intact = rates.intact_at(session, w.end, misses)
        pos = np.array([st.index.get(d, -1) for d in ids], np.int64)
        ok = pos >= 0
        m = np.zeros(len(ids), bool)
        m[ok] = member[pos[ok]]
        tw = Rate(float(online_s[member].sum()), float(sched[member].sum()), w, "s")
        it = Rate(int((intact & m).sum()), int((present & m).sum()), unit="devices")
        points.append(
            {
                "from": w.start.isoformat(),
                "to": w.end.isoformat(),
                "online_rate": round(tw.rate, 6),
                "online_s": round(tw.numerator, 3),
                "scheduled_s": round(tw.denominator, 3),
                "intact_rate": round(it.rate, 6),
                "intact": int(it.numerator),
                "devices": int(it.denominator),
            }
        )
    return {
        "area_code": area_code,
        "step_s": step.total_seconds(),
        "window": window.as_dict(),
        "points": points,
    }


def enclosure_of(session: Session, st: State, area_code: str, tolerance_m: float) -> dict[str, Any]:
    a = st.area(area_code)
    cps = CheckpointPos.from_records(
        {"checkpoint_id": r[0], "lon": r[1], "lat": r[2], "road": r[3]}
        for r in session.execute(
            select(Checkpoint.checkpoint_id, Checkpoint.lon, Checkpoint.lat, Checkpoint.road)
        )
    )
    res = enclosure(a.geometry, st.road_graph(), cps, tolerance_m=tolerance_m)
    return {"area_code": area_code, "tolerance_m": tolerance_m, **res.as_dict()}


# ---------------------------------------------------------------- report (考核报表)

AREA_COLUMNS = [
    "area_code", "name", "kind", "window_from", "window_to", "devices_total",
    "online_s", "scheduled_s", "online_rate", "online_now", "intact", "intact_rate",
    "road_covered_m", "road_length_m", "road_coverage_rate",
    "key_sites_covered", "key_sites_total", "key_site_coverage_rate",
    "grid_cells_covered", "grid_cells_total", "grid_coverage_rate",
    "designed_road_coverage_rate", "designed_key_site_coverage_rate", "designed_grid_coverage_rate",
]  # fmt: skip
DEVICE_COLUMNS = [
    "device_id", "name", "area_code", "status", "status_reason", "offline_s", "online_s", "scheduled_s",
    "online_rate", "window_from", "window_to",
]  # fmt: skip


def report(
    session: Session, st: State, area_code: str | None, level: str, window: Window, misses: int, worst: int
) -> tuple[list[list[Any]], list[list[Any]]]:
    """(area rows, worst-device rows): per area each rate as numerator, denominator and window; the
    devices with the most offline seconds in the window."""
    rows = area_rows(session, st, level, window, misses)["items"]
    if area_code is not None:
        # the areas of `level` that lie in the asked area (their representative point inside it)
        scope = st.area(area_code).geometry
        rows = [r for r in rows if scope.covers(st.areas[r["area_code"]].geometry.representative_point())]
    w = window.as_dict()
    table: list[list[Any]] = [list(AREA_COLUMNS)]
    for r in rows:
        f = r["figures"]
        table.append(
            [
                r["area_code"], r["name"], r["kind"], w["from"], w["to"], r["devices_total"],
                f["online_rate"]["numerator"], f["online_rate"]["denominator"], r["online_rate"],
                r["online"], r["intact"], r["intact_rate"],
                r["road_covered_m"], r["road_length_m"], r["road_coverage_rate"],
                r["key_sites_covered"], r["key_sites_total"], r["key_site_coverage_rate"],
                r["grid_cells_covered"], r["grid_cells_total"], r["grid_coverage_rate"],
                r["designed"]["road_coverage_rate"], r["designed"]["key_site_coverage_rate"],
                r["designed"]["grid_coverage_rate"],
            ]
        )  # fmt: skip
    sched, online_s = aligned_seconds(session, st, window, misses)
    member = st.devices_in(area_code)
    offline = np.where(member, sched - online_s, -1.0)
    order = [int(i) for i in np.argsort(-offline, kind="stable")[:worst] if member[i] and offline[i] > 0]
    ids = [st.device_ids[i] for i in order]
    info = {
        r[0]: r[1:]
        for r in session.execute(
            select(
                Camera.device_id, Camera.name, Camera.area_code, Camera.status, Camera.status_reason
            ).where(Camera.device_id.in_(ids))
        )
    }
    devices: list[list[Any]] = [list(DEVICE_COLUMNS)]
    for i, d in zip(order, ids, strict=True):
        name, ac, status, reason = info.get(d, ("", "", "", ""))
        devices.append(
            [
                d, name, ac, status, reason or "", round(float(offline[i]), 3), round(float(online_s[i]), 3),
                round(float(sched[i]), 3), round(float(online_s[i] / sched[i]) if sched[i] > 0 else 0.0, 6),
                w["from"], w["to"],
            ]
        )  # fmt: skip
    return table, devices


def report_csv(areas: list[list[Any]], devices: list[list[Any]]) -> bytes:
    """UTF-8 with BOM (so spreadsheet programs read the Chinese names); the area table, a blank
    line, then the worst-device table, each with its header row."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerows(areas)
    w.writerow([])
    w.writerows(devices)
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def report_xlsx(areas: list[list[Any]], devices: list[list[Any]]) -> bytes:
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for title, rows in (("areas", areas), ("worst_devices", devices)):
        ws = wb.create_sheet(title)
        for r in rows:
            ws.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
