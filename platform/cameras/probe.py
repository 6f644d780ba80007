"""The installer's probe of one registered camera, and what its answer changes on the camera's record.

Normally the probe is a command for the agent that owns the device (only agents talk to devices);
with `TIANWANG_DIRECT_PROBE=true` a single-machine deployment runs the agent's device library
in-process — the one place the platform imports `edge_agent`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from pydantic import ValidationError

from tianwang import clock
from tianwang.cameras.service import get_row, join_userinfo, url_credentials
from tianwang.context import AppContext
from tianwang.errors import ServiceUnavailable, ValidationFailed
from tianwang.protocol import OnvifEndpoint, ProbeRequest, ProbeResult
from tianwang.storage.models import Camera
from tianwang.storage.objectstore import snapshot_key
from tianwang.wakeups import WakeHub

log = logging.getLogger("tianwang.cameras.probe")


def build_request(ctx: AppContext, row: Camera) -> ProbeRequest:
    """The probe request for a stored camera, its ONVIF password decrypted (kept as a SecretStr)."""
    onvif = None
    if row.onvif_host:
        password = ""
        if row.onvif_password_enc is not None:
            try:
                password = ctx.box.decrypt(row.onvif_password_enc)
            except ValueError:
                raise ServiceUnavailable(
                    f"the ONVIF password of {row.device_id} cannot be decrypted with the configured key"
                ) from None
        onvif = OnvifEndpoint(
            host=row.onvif_host,
            port=row.onvif_port or 80,
            username=row.onvif_username or "",
            password=password,
            trust_device_addresses=bool(row.onvif_trust_device_addresses),
        )
    if onvif is None and not row.snapshot_url:
        raise ValidationFailed(
            f"camera {row.device_id} has neither an ONVIF endpoint nor a snapshot URL to probe",
            errors=[{"field": "onvif", "message": "required for a probe"}],
        )
    return ProbeRequest(
        device_id=row.device_id,
        onvif=onvif,
        snapshot_url=join_userinfo(row.snapshot_url, url_credentials(row, ctx.box).get("snapshot_url")),
        deadline_s=ctx.settings.probe_deadline_s,
    )


def _run_direct(request: ProbeRequest) -> tuple[ProbeResult, bytes | None]:
    """Run the installer probe in this process (direct-probe mode), bounded by the request's deadline."""
    from edge_agent.devices.onvif_client import warm_wsdl
    from edge_agent.probes import installer

    async def go() -> tuple[ProbeResult, bytes | None]:
        await warm_wsdl()  # local CPU work, kept outside the device's deadline
        outcome = await installer.run(request)
        return outcome.result, outcome.jpeg

    # a fresh loop per probe: the route runs in a worker thread, the CLI in the main thread
    return asyncio.run(go())


# the agent runs the probe within the probe deadline; the API waits a little longer for the
# heartbeat that picks the command up and the result's way back
AGENT_MARGIN_S = 10.0


async def probe_via_agent(
    ctx: AppContext, wakeups: WakeHub, device_id: str, requested_by: str
) -> ProbeResult:
    """Queue the probe for the agent that owns the device and answer when its result arrives.

    503 (ServiceUnavailable) names why when it cannot: no agent online for the device, the agent
    did not answer within the deadline, or it could not run the probe.
    """
    from starlette.concurrency import run_in_threadpool

    from tianwang.agents.commands import run_on_agent

    def prepare() -> tuple[str, str]:
        with ctx.db.session() as s:
            build_request(ctx, get_row(s, device_id))  # refuses a camera with nothing to probe
        key = snapshot_key(device_id, clock.now())
        return key, ctx.store.presigned_put(key, int(ctx.settings.probe_deadline_s + AGENT_MARGIN_S) + 60)

    key, put_url = await run_in_threadpool(prepare)
    row = await run_on_agent(
        ctx.db,
        wakeups,
        kind="probe",
        device_id=device_id,
        requested_by=requested_by,
        deadline_s=ctx.settings.probe_deadline_s + AGENT_MARGIN_S,
        payload=lambda _agent: {"snapshot_key": key, "snapshot_put_url": put_url},
    )
    if row.state != "done":
        raise ServiceUnavailable(
            f"agent {row.agent_id} could not run the probe: {row.error or 'no reason given'}"
        )
    try:
        result = ProbeResult.model_validate(row.result or {})
    except ValidationError:
        raise ServiceUnavailable(f"agent {row.agent_id} answered the probe with a malformed result") from None

    def finish() -> ProbeResult:
        # the agent uploaded the test picture straight to the object store; keep the key only if it is there
        if result.snapshot is not None:
            result.snapshot.key = key if ctx.store.exists(key) else None
        return apply_result(ctx, device_id, result, None, clock.now())

    return await run_in_threadpool(finish)


def apply_result(
    ctx: AppContext, device_id: str, result: ProbeResult, jpeg: bytes | None, now: dt.datetime
) -> ProbeResult:
    """Store the snapshot and write what the probe learned onto the camera's record."""
    if jpeg is not None and result.snapshot is not None:
        key = snapshot_key(device_id, now)
        ctx.store.put(key, jpeg, "image/jpeg")
        result.snapshot.key = key
    with ctx.db.session() as s:
        row = get_row(s, device_id)
        info = result.device_info
        if info is not None:
            # keep what is known when the device leaves a field out
            row.manufacturer = info.manufacturer or row.manufacturer
            row.model = info.model or row.model
            row.firmware = info.firmware or row.firmware
            row.serial = info.serial or row.serial
        row.stream_uri = result.stream_uri or row.stream_uri
        row.snapshot_uri = result.snapshot_uri or row.snapshot_uri
        if result.reachable:
            row.last_seen = now
        row.last_probe = result.model_dump(mode="json", exclude={"snapshot": {"url"}})
        row.last_probe_at = now
    if result.snapshot is not None:
        # the picture for the installer's browser: a short-lived link, never stored (an agent's is ignored)
        key = result.snapshot.key
        ttl = min(ctx.settings.presign_expiry_s, 900)
        result.snapshot.url = ctx.store.presigned_get(key, ttl) if key else None
    return result


def probe_camera(ctx: AppContext, device_id: str, *, direct: bool | None = None) -> ProbeResult:
    """Probe a registered camera. Device trouble is in the answer (reachable, error), never raised.

    `direct` overrides the setting (the CLI on the server always probes in-process).
    """
    with ctx.db.session() as s:
        request = build_request(ctx, get_row(s, device_id))
    if not (ctx.settings.direct_probe if direct is None else direct):
        raise ServiceUnavailable("probes go through the agent that owns the device: use probe_via_agent")
    result, jpeg = _run_direct(request)
    now = clock.now()
    log.info(
        "probe %s: reachable=%s authenticated=%s error=%s in %.0f ms",
        device_id,
        result.reachable,
        result.authenticated,
        result.error.code if result.error else None,
        result.duration_ms,
    )
    return apply_result(ctx, device_id, result, jpeg, now)
