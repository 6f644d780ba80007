"""Registry routes for vehicle checkpoints (卡口)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from tianwang.api.defs.common import Page
from tianwang.api.deps import DB, HUMANS, REGISTRY_WRITE, Ctx, require
from tianwang.checkpoints import service
from tianwang.checkpoints.schemas import CheckpointOut, CheckpointPatch, CheckpointSpec

router = APIRouter(prefix="/api/v1/checkpoints", tags=["registry"])


@router.post(
    "", status_code=201, response_model=CheckpointOut, dependencies=[Depends(require(*REGISTRY_WRITE))]
)
def create_checkpoint(body: CheckpointSpec, db: DB, ctx: Ctx) -> CheckpointOut:
    return service.to_out(db, service.create(db, body, ctx.box))


@router.get("", response_model=Page[CheckpointOut], dependencies=[Depends(require(*HUMANS))])
def list_checkpoints(
    db: DB,
    area_code: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[CheckpointOut]:
    page = service.list_checkpoints(db, area_code=area_code, limit=limit, cursor=cursor)
    return Page[CheckpointOut](
        items=[service.to_out(db, r) for r in page.items], next_cursor=page.next_cursor
    )


@router.get("/{checkpoint_id}", response_model=CheckpointOut, dependencies=[Depends(require(*HUMANS))])
def get_checkpoint(checkpoint_id: str, db: DB) -> CheckpointOut:
    return service.to_out(db, service.get_row(db, checkpoint_id))


@router.patch(
    "/{checkpoint_id}", response_model=CheckpointOut, dependencies=[Depends(require(*REGISTRY_WRITE))]
)
def patch_checkpoint(checkpoint_id: str, body: CheckpointPatch, db: DB, ctx: Ctx) -> CheckpointOut:
    return service.to_out(db, service.update_checkpoint(db, checkpoint_id, body, ctx.box))


@router.delete("/{checkpoint_id}", status_code=204, dependencies=[Depends(require(*REGISTRY_WRITE))])
def delete_checkpoint(checkpoint_id: str, db: DB) -> Response:
    service.delete(db, checkpoint_id)
    return Response(status_code=204)
