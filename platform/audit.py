"""The query audit (查询事由): who asked what, when, for which case. Append-only.

Every trajectory, analysis and hotlist call names a case number and leaves one row here, in the
same transaction as its answer. Nothing in the API updates or deletes a row, and on PostgreSQL a
trigger (migration 0004) refuses UPDATE and DELETE whoever is connected.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tianwang.errors import ValidationFailed
from tianwang.storage.models import AuditEntry, utcnow

MAX_CASE_NO = 64
NO_CASE = "-"  # a refused call that named no (printable) case number


def check_case_no(case_no: str | None) -> str:
    """The case number, trimmed; refused (422 naming `case_no`) when absent or unprintable."""
    c = (case_no or "").strip()
    if not c:
        raise ValidationFailed(
            "case_no is required: every trajectory, analysis and hotlist call is audited with its case"
            " number",
            errors=[{"field": "case_no", "message": "required (查询事由)"}],
        )
    if len(c) > MAX_CASE_NO or any(unicodedata.category(ch).startswith("C") for ch in c):
        raise ValidationFailed(
            "case_no is too long or holds control characters",
            errors=[{"field": "case_no", "message": f"1–{MAX_CASE_NO} printable characters"}],
        )
    return c


def _jsonable(v: Any) -> Any:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple | set):
        return [_jsonable(x) for x in v]
    return v


def record(
    session: Session,
    *,
    user: str,
    role: str,
    route: str,
    case_no: str,
    params: dict[str, Any],
    result_size: int,
    outcome: str = "ok",
    reason: str | None = None,
) -> AuditEntry:
    row = AuditEntry(
        outcome=outcome,
        reason=reason,
        at=utcnow(),
        user_name=user,
        role=role,
        route=route,
        case_no=case_no,
        params=_jsonable({k: v for k, v in params.items() if v is not None}),
        result_size=result_size,
    )
    session.add(row)
    session.flush()
    return row


def query(
    session: Session,
    *,
    user: str | None,
    frm: dt.datetime | None,
    to: dt.datetime | None,
    limit: int,
    after_id: int | None,
) -> list[AuditEntry]:
    stmt = select(AuditEntry)
    if user:
        stmt = stmt.where(AuditEntry.user_name == user)
    if frm:
        stmt = stmt.where(AuditEntry.at >= frm)
    if to:
        stmt = stmt.where(AuditEntry.at <= to)
    if after_id is not None:
        stmt = stmt.where(AuditEntry.id > after_id)
    return list(session.scalars(stmt.order_by(AuditEntry.id).limit(limit)))
