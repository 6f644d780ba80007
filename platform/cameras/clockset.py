"""Setting a camera's clock to the agent's (校时): ONVIF SetSystemDateAndTime through the owning agent.

Staff or admin ask for it with a reason (a work order); every request leaves a row in the audit
log, whether the device took the time or not. The clock read back after setting is stored as the
camera's skew, so the `clock` fault clears at once when it worked.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tianwang import audit, clock
from tianwang.auth.tokens import Principal
from tianwang.cameras.evidence import clock_fault
from tianwang.cameras.service import get_row
from tianwang.context import AppContext
from tianwang.errors import ServiceUnavailable, ValidationFailed
from tianwang.wakeups import WakeHub

AGENT_MARGIN_S = 10.0
ROUTE = "cameras.set_clock"


class ClockResult(BaseModel):
    device_id: str
    ok: bool
    clock_skew_s_before: float | None = None
    clock_skew_s_after: float | None = None
    error: str | None = None
    agent_id: str | None = None


def _record(ctx: AppContext, who: Principal, reason: str, out: ClockResult) -> None:
    with ctx.db.session() as s:
        audit.record(
            s,
            user=who.name,
            role=who.role.value,
            route=ROUTE,
            case_no=reason,
            params=out.model_dump(),
            result_size=1 if out.ok else 0,
        )


def _store(ctx: AppContext, out: ClockResult) -> None:
    if not out.ok or out.clock_skew_s_after is None:
        return
    with ctx.db.session() as s:
        row = get_row(s, out.device_id)
        row.clock_skew_s = out.clock_skew_s_after
        off = clock_fault(out.clock_skew_s_after, ctx.settings.max_clock_skew_s) is not None
        row.clock_fault_since = (row.clock_fault_since or clock.now()) if off else None


async def set_clock_via_agent(
    ctx: AppContext, wakeups: WakeHub, device_id: str, who: Principal, reason: str
) -> ClockResult:
    """Queue `set_clock` for the owning agent and answer with the skew before and after.

    Device trouble (refused, unsupported) is in the answer (`ok: false`, `error`); 503 when no agent
    is online for the device or it did not answer in time. Audited in every case but the 404.
    """
    from tianwang.agents.commands import run_on_agent

    reason = audit.check_case_no(reason)

    def check() -> None:
        with ctx.db.session() as s:
            if not get_row(s, device_id).onvif_host:
                raise ValidationFailed(
                    f"camera {device_id} has no ONVIF endpoint: its clock cannot be set remotely",
                    errors=[{"field": "onvif", "message": "required to set the clock"}],
                )

    await run_in_threadpool(check)
    try:
        row = await run_on_agent(
            ctx.db,
            wakeups,
            kind="set_clock",
            device_id=device_id,
            requested_by=who.name,
            deadline_s=ctx.settings.probe_deadline_s + AGENT_MARGIN_S,
            payload=lambda _agent: {},
        )
    except ServiceUnavailable as e:
        failed = ClockResult(device_id=device_id, ok=False, error=e.detail)
        await run_in_threadpool(_record, ctx, who, reason, failed)
        raise
    result: dict[str, Any] = dict(row.result or {})
    out = ClockResult(
        device_id=device_id,
        ok=row.state == "done" and bool(result.get("ok")),
        clock_skew_s_before=result.get("clock_skew_s_before"),
        clock_skew_s_after=result.get("clock_skew_s_after"),
        error=result.get("error") or row.error,
        agent_id=row.agent_id,
    )
    await run_in_threadpool(_store, ctx, out)
    await run_in_threadpool(_record, ctx, who, reason, out)
    return out
