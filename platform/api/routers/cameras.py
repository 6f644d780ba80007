"""Registry routes for cameras (一机一档)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from tianwang.api.defs.common import Page
from tianwang.api.deps import DB, HUMANS, REGISTRY_WRITE, Ctx, require
from tianwang.cameras import service
from tianwang.cameras.schemas import CameraOut, CameraPatch, CameraSpec, Kind, Status

router = APIRouter(prefix="/api/v1/cameras", tags=["registry"])


@router.post("", status_code=201, response_model=CameraOut, dependencies=[Depends(require(*REGISTRY_WRITE))])
def create_camera(body: CameraSpec, db: DB, ctx: Ctx) -> CameraOut:
    return service.to_out(service.create(db, body, ctx.box))


@router.get("", response_model=Page[CameraOut], dependencies=[Depends(require(*HUMANS))])
def list_cameras(
    db: DB,
    area_code: Annotated[str | None, Query(pattern=r"^\d{1,20}$")] = None,
    status: Status | None = None,
    kind: Kind | None = None,
    lifecycle: str | None = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> Page[CameraOut]:
    page = service.list_cameras(
        db,
        area_code=area_code,
        status=status.value if status else None,
        kind=kind.value if kind else None,
        lifecycle=lifecycle,
        q=q,
        limit=limit,
        cursor=cursor,
    )
    return Page[CameraOut](items=[service.to_out(r) for r in page.items], next_cursor=page.next_cursor)


@router.get("/{device_id}", response_model=CameraOut, dependencies=[Depends(require(*HUMANS))])
def get_camera(device_id: str, db: DB) -> CameraOut:
    return service.to_out(service.get_row(db, device_id))


@router.patch("/{device_id}", response_model=CameraOut, dependencies=[Depends(require(*REGISTRY_WRITE))])
def patch_camera(device_id: str, body: CameraPatch, db: DB, ctx: Ctx) -> CameraOut:
    return service.to_out(service.update(db, device_id, body, ctx.box))


@router.delete("/{device_id}", status_code=204, dependencies=[Depends(require(*REGISTRY_WRITE))])
def delete_camera(device_id: str, db: DB) -> Response:
    service.delete(db, device_id)
    return Response(status_code=204)
