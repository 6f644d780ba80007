"""Sheets as downloads: a CSV streamed row by row, an XLSX built in a spooled file then streamed."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from typing import Any

from fastapi.responses import StreamingResponse

from tianwang.cameras import bulk

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def csv_response(
    records: Iterator[list[Any]], headers: dict[str, str], text_cols: list[bool] | None = None
) -> StreamingResponse:
    return StreamingResponse(
        bulk.iter_csv(records, text_cols), media_type="text/csv; charset=utf-8", headers=headers
    )


def xlsx_response(records: Iterator[list[Any]], headers: dict[str, str], sheet: str) -> StreamingResponse:
    """A zip needs its directory written last: the workbook is built in a spooled file (memory up to
    8 MiB, then disk), then streamed."""
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115 closed by _chunks
    try:
        bulk.write_xlsx(records, spool, sheet=sheet)
    except BaseException:
        spool.close()
        raise
    spool.seek(0)

    def _chunks() -> Iterator[bytes]:
        try:
            while chunk := spool.read(256 * 1024):
                yield chunk
        finally:
            spool.close()

    return StreamingResponse(_chunks(), media_type=XLSX, headers=headers)
