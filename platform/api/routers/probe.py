"""Commands run on a camera by its agent: the installer's probe (`POST /api/v1/cameras/{device_id}/probe`)
and setting its clock (`POST /api/v1/cameras/{device_id}/clock`, staff and admin, audited)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from tianwang.api.deps import REGISTRY_WRITE, Ctx, require
from tianwang.auth.tokens import Principal
from tianwang.cameras import clockset
from tianwang.cameras import probe as probe_service
from tianwang.protocol import ProbeResult
from tianwang.storage.models import Role

router = APIRouter(prefix="/api/v1/cameras", tags=["registry"])
Installer = Annotated[Principal, Depends(require(*REGISTRY_WRITE))]
Staff = Annotated[Principal, Depends(require(Role.staff))]


@router.post(
    "/{device_id}/probe",
    response_model=ProbeResult,
    summary="Probe a camera: reachability, clock, auth, profiles, URIs, a test snapshot",
)
async def probe_camera(device_id: str, request: Request, ctx: Ctx, who: Installer) -> ProbeResult:
    """Run by the agent that owns the device; in-process when `TIANWANG_DIRECT_PROBE=true`."""
    if ctx.settings.direct_probe:
        # in a worker thread, where the probe gets its own event loop
        return await run_in_threadpool(probe_service.probe_camera, ctx, device_id, direct=True)
    return await probe_service.probe_via_agent(ctx, request.app.state.wakeups, device_id, who.name)


class ClockRequest(BaseModel):
    reason: str = Field(description="why (a work order number): recorded in the audit log", max_length=64)


@router.post(
    "/{device_id}/clock",
    response_model=clockset.ClockResult,
    summary="Set the camera's clock to its agent's (ONVIF SetSystemDateAndTime); audited",
)
async def set_clock(
    device_id: str, body: ClockRequest, request: Request, ctx: Ctx, who: Staff
) -> clockset.ClockResult:
    return await clockset.set_clock_via_agent(ctx, request.app.state.wakeups, device_id, who, body.reason)
