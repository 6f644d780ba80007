"""The installer's probe of a registered camera: `POST /api/v1/cameras/{device_id}/probe`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from tianwang.api.deps import REGISTRY_WRITE, Ctx, require
from tianwang.auth.tokens import Principal
from tianwang.cameras import probe as probe_service
from tianwang.protocol import ProbeResult

router = APIRouter(prefix="/api/v1/cameras", tags=["registry"])
Installer = Annotated[Principal, Depends(require(*REGISTRY_WRITE))]


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
