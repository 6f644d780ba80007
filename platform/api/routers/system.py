"""Liveness and who-am-I."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy import text

from tianwang.api.defs.system import Health, Me
from tianwang.api.deps import Ctx, get_principal
from tianwang.auth.tokens import Principal

router = APIRouter(tags=["system"])


@router.get("/healthz", response_model=Health)
def healthz(ctx: Ctx) -> dict[str, str]:
    """Unauthenticated: for load balancers. Says whether the database answers."""
    with ctx.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get("/api/v1/me", response_model=Me)
def me(principal: Annotated[Principal, Depends(get_principal)]) -> dict[str, str]:
    return {"name": principal.name, "role": principal.role.value}
