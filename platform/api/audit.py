"""The audit dependency for routes that must name a case (查询事由): checks `case_no`, records the call."""
# no `from __future__ import annotations`: FastAPI must see the closure-local dependency, not a string

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from sqlalchemy.orm import Session

from tianwang import audit
from tianwang.api.deps import get_ctx, get_principal, require
from tianwang.auth.tokens import Principal
from tianwang.context import AppContext
from tianwang.errors import Forbidden, TianwangError, ValidationFailed
from tianwang.storage.models import Role


@dataclass
class Audited:
    """The caller and the case of one audited call; `record` writes the audit row."""

    principal: Principal
    route: str
    case_no: str

    def record(self, session: Session, params: dict[str, Any], result_size: int) -> None:
        audit.record(
            session,
            user=self.principal.name,
            role=self.principal.role.value,
            route=self.route,
            case_no=self.case_no,
            params=params,
            result_size=result_size,
        )


def audited(route: str, *roles: Role) -> Callable[..., Audited]:
    """A dependency admitting `roles` (investigator by default, and admin) that needs `case_no`.

    The role check runs first, so a caller without the role gets 403, not a hint about case_no. A
    refused call is audited too, with its reason: a 403 for the role, a 422 for the case number
    (who tried to follow someone, and why they could not, is as much the audit's as who did).
    """
    check = require(*(roles or (Role.investigator,)))
    allowed = check.allowed_roles

    def dep(
        request: Request,
        ctx: Annotated[AppContext, Depends(get_ctx)],
        principal: Annotated[Principal, Depends(get_principal)],
        case_no: Annotated[str | None, Query(description="case number (查询事由); required")] = None,
    ) -> Audited:
        try:
            if principal.role not in allowed:
                raise Forbidden(f"role {principal.role.value} may not do this")
            return Audited(principal, route, audit.check_case_no(case_no))
        except (Forbidden, ValidationFailed) as e:
            _record_refusal(ctx, principal, route, case_no, request, e)
            raise

    dep.allowed_roles = allowed  # type: ignore[attr-defined,unused-ignore]
    return dep


def _record_refusal(
    ctx: AppContext,
    principal: Principal,
    route: str,
    case_no: str | None,
    request: Request,
    e: TianwangError,
) -> None:
    """One audit row for a refused call, in its own transaction (the call's own is never committed)."""
    shown = (case_no or "").strip()[: audit.MAX_CASE_NO]
    if not shown or any(unicodedata.category(ch).startswith("C") for ch in shown):
        shown = audit.NO_CASE
    params = {k: v[:200] for k, v in request.query_params.items() if k != "case_no"}
    params["path"] = request.url.path[:300]
    with ctx.db.session() as s:
        audit.record(
            s,
            user=principal.name,
            role=principal.role.value,
            route=route,
            case_no=shown,
            params=params,
            result_size=0,
            outcome="refused",
            reason=f"{e.status}: {e}"[:300],
        )
        s.commit()
