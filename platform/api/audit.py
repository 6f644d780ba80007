"""The audit dependency for routes that must name a case (查询事由): checks `case_no`, records the call."""
# no `from __future__ import annotations`: FastAPI must see the closure-local dependency, not a string

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlalchemy.orm import Session

from tianwang.api.deps import require
from tianwang.auth.tokens import Principal
from tianwang.storage.models import Role
from tianwang.trajectories import audit


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

    The role check runs first, so a caller without the role gets 403, not a hint about case_no.
    """
    check = require(*(roles or (Role.investigator,)))

    def dep(
        principal: Annotated[Principal, Depends(check)],
        case_no: Annotated[str | None, Query(description="case number (查询事由); required")] = None,
    ) -> Audited:
        return Audited(principal, route, audit.check_case_no(case_no))

    dep.allowed_roles = check.allowed_roles  # type: ignore[attr-defined]
    return dep
