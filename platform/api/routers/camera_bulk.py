"""Bulk registry routes: import a CSV/XLSX sheet of cameras, export the registry as one."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from tianwang.api import sheets
from tianwang.api.defs.common import sheet_responses
from tianwang.api.deps import HUMANS, REGISTRY_WRITE, Ctx, require
from tianwang.cameras import bulk
from tianwang.cameras.schemas import Kind, Status
from tianwang.errors import PayloadTooLarge, ValidationFailed

router = APIRouter(prefix="/api/v1/cameras", tags=["registry"])

_MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
# multipart framing around the file: headers, boundary lines
_FORM_OVERHEAD = 64 * 1024


@router.post(
    "/import",
    response_model=bulk.ImportReport,
    dependencies=[Depends(require(*REGISTRY_WRITE))],
    openapi_extra=_MULTIPART_BODY,
)
async def import_cameras(
    request: Request,
    ctx: Ctx,
    dry_run: bool = False,
    all_or_nothing: bool = False,
) -> bulk.ImportReport:
    """Import a CSV (UTF-8 or GB18030) or XLSX sheet: every row checked, valid rows written at once."""
    limit = ctx.settings.import_max_bytes
    # the form is parsed here rather than by a File() parameter, so an oversized upload is refused
    # from its Content-Length before it is spooled to disk
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit + _FORM_OVERHEAD:
        raise PayloadTooLarge(f"the upload is {length} bytes; the import limit is {limit}")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ValidationFailed(
            "send the sheet as multipart/form-data in the field `file`",
            errors=[{"field": "file", "message": "multipart upload expected"}],
        )
    form = await request.form(max_files=1, max_fields=10)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed(
                "no file in the field `file`", errors=[{"field": "file", "message": "field required"}]
            )
        return await run_in_threadpool(
            bulk.import_cameras,
            ctx.db.engine,
            upload.file,
            ctx.box,
            filename=upload.filename or "",
            max_bytes=limit,
            dry_run=dry_run,
            all_or_nothing=all_or_nothing,
        )
    finally:
        await form.close()


@router.get(
    "/export",
    dependencies=[Depends(require(*HUMANS))],
    response_class=StreamingResponse,
    responses=sheet_responses("the registry as CSV (UTF-8 with a BOM) or XLSX, as an attachment"),
)
def export_cameras(
    ctx: Ctx,
    format: Literal["csv", "xlsx"] = "csv",
    lang: Literal["zh", "en"] = "zh",
    area_code: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
    kind: Kind | None = None,
    status: Status | None = None,
) -> StreamingResponse:
    """The registry as a sheet (never passwords) that imports back unchanged."""
    records = bulk.export_records(
        ctx.db.engine,
        lang,
        area_code=area_code,
        kind=kind.value if kind else None,
        status=status.value if status else None,
    )
    name = f"cameras-{dt.date.today():%Y%m%d}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "csv":
        return sheets.csv_response(records, headers)
    return sheets.xlsx_response(records, headers, sheet="cameras")
