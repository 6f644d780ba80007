"""Pass search (过车查询) and its export: partial plates, look-alikes, vehicle and place filters.

Investigator (and admin) only, `case_no` required, every call audited with its parameters.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from tianwang import clock
from tianwang.api import sheets
from tianwang.api.audit import Audited, audited
from tianwang.api.defs.common import sheet_responses
from tianwang.api.defs.passes import PassOut, PassPage
from tianwang.api.deps import DB
from tianwang.errors import ValidationFailed
from tianwang.protocol.fields import Instant
from tianwang.records import search

router = APIRouter(prefix="/api/v1", tags=["passes"])
DEFAULT_WINDOW = dt.timedelta(days=1)


def _split(values: list[str] | None) -> list[str]:
    """A list parameter given repeated (`?lane=1&lane=2`) or comma-separated (`?lane=1,2`)."""
    return [v.strip() for raw in values or [] for v in raw.split(",") if v.strip()]


def _ints(values: list[str] | None, name: str) -> list[int]:
    out = []
    for v in _split(values):
        if not v.isdigit() or len(v) > 3:
            raise ValidationFailed(
                f"{name}: {v[:20]!r} is not a number", errors=[{"field": name, "message": "a number"}]
            )
        out.append(int(v))
    return out


ListQ = Annotated[list[str] | None, Query(max_length=500)]


def _filter(
    plate: Annotated[
        str | None, Query(description="plate pattern: ? one character, * any run (粤B1?3*)", max_length=64)
    ] = None,
    lookalike: Annotated[
        bool, Query(description="also match characters plate readers confuse (0/O/D/Q, 1/I, 8/B, 2/Z, 5/S)")
    ] = False,
    plate_kind: Annotated[
        list[str] | None,
        Query(description="ordinary, new_energy, …, none (无牌), unread (未识别)", max_length=20),
    ] = None,
    plate_color: ListQ = None,
    vehicle_color: ListQ = None,
    vehicle_class: ListQ = None,
    checkpoint_ids: Annotated[
        list[str] | None, Query(description="checkpoint ids, comma-separated", max_length=500)
    ] = None,
    area_code: Annotated[str | None, Query(description="division code or its prefix")] = None,
    lane: ListQ = None,
    direction: Annotated[
        list[str] | None, Query(description="GA/T 1400 行驶方向 codes 1–8", max_length=8)
    ] = None,
    frm: Annotated[
        Instant | None, Query(alias="from", description="window start (default: to − 1 day)")
    ] = None,
    to: Annotated[Instant | None, Query(description="window end (default: now)")] = None,
) -> search.PassFilter:
    t = to or clock.now()
    f = search.PassFilter(
        frm=frm or t - DEFAULT_WINDOW,
        to=t,
        plate=search.parse_pattern(plate, lookalike) if plate is not None else None,
        plate_kinds=_split(plate_kind),
        plate_colors=_split(plate_color),
        vehicle_colors=_split(vehicle_color),
        vehicle_types=_split(vehicle_class),
        checkpoint_ids=_split(checkpoint_ids),
        area_code=area_code,
        lanes=_ints(lane, "lane"),
        directions=_split(direction),
    )
    f.check()
    return f


Filter = Annotated[search.PassFilter, Depends(_filter)]


@router.get("/passes", response_model=PassPage)
def search_passes(
    db: DB,
    a: Annotated[Audited, Depends(audited("passes.search"))],
    f: Filter,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    order: Literal["desc", "asc"] = "desc",
) -> dict[str, Any]:
    """Passes matching every filter given, newest first (keyset pages), with the checkpoint's name
    and position; `total_estimate` is exact up to 10,000 (`total_exact` false past it)."""
    res = search.search(db, f, limit=limit, cursor=cursor, descending=order == "desc")
    a.record(db, res["params"] | {"cursor": cursor}, len(res["items"]))
    return res


EXPORT_FIELDS = list(PassOut.model_fields)
TEXT_FIELDS = {
    "plate_no",
    "checkpoint_name",
    "key",
    "image_key",
    "vehicle_type",
    "vehicle_color",
    "plate_color",
}


@router.get(
    "/passes/export",
    response_class=StreamingResponse,
    responses=sheet_responses("the passes as CSV (UTF-8 with a BOM) or XLSX, as an attachment"),
)
def export_passes(
    db: DB,
    a: Annotated[Audited, Depends(audited("passes.export"))],
    f: Filter,
    format: Literal["csv", "xlsx"] = "csv",
) -> StreamingResponse:
    """Every match in time order (at most 100,000 rows; the header row is the item's field names),
    CSV in UTF-8 with a BOM or XLSX, cells Excel would run as formulas escaped. Audited."""
    rows, truncated = search.export_rows(db, f)
    a.record(db, f.params() | {"format": format, "truncated": truncated}, len(rows))
    records = [EXPORT_FIELDS, *([r[k] for k in EXPORT_FIELDS] for r in rows)]
    name = f"passes-{clock.now():%Y%m%dT%H%M%SZ}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Truncated": str(truncated).lower()}
    if format == "csv":
        return sheets.csv_response(iter(records), headers, [k in TEXT_FIELDS for k in EXPORT_FIELDS])
    return sheets.xlsx_response(iter(records), headers, sheet="passes")
