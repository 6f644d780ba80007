"""Record ingest: vehicle passes (native and GA/T 1400 MotorVehicles), face and phone sightings.

Alarms raised by a batch are committed with it; listeners are woken only after the commit.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from tianwang import wakeups
from tianwang.api.defs.system import ViidResponse
from tianwang.api.deps import DB, Ctx, require
from tianwang.auth.tokens import Principal
from tianwang.checkpoints import viid
from tianwang.protocol.ingest import Batch
from tianwang.protocol.sightings import RecordReply
from tianwang.records import ingest as records
from tianwang.storage.models import Role

router = APIRouter(tags=["ingest"])
AgentOnly = Annotated[Principal, Depends(require(Role.agent, admin=False))]
MAX_VIID_BODY = 64 * 1024 * 1024


def _wake(request: Request, out: records.Outcome) -> None:
    if out.alarms:
        request.app.state.wakeups.publish(wakeups.ALARMS)


@router.post("/api/v1/ingest/passes", response_model=RecordReply)
def ingest_passes(body: Batch, db: DB, ctx: Ctx, request: Request, _who: AgentOnly) -> RecordReply:
    out = records.ingest_passes(
        db,
        body.items,
        copy_threshold=ctx.settings.ingest_copy_threshold,
        retention_days=ctx.settings.pass_retention_days,
    )
    db.commit()
    _wake(request, out)
    return out.reply


@router.post("/api/v1/ingest/faces", response_model=RecordReply)
def ingest_faces(body: Batch, db: DB, ctx: Ctx, request: Request, _who: AgentOnly) -> RecordReply:
    out = records.ingest_faces(
        db,
        body.items,
        copy_threshold=ctx.settings.ingest_copy_threshold,
        retention_days=ctx.settings.pass_retention_days,
    )
    db.commit()
    _wake(request, out)
    return out.reply


@router.post("/api/v1/ingest/phones", response_model=RecordReply)
def ingest_phones(body: Batch, db: DB, ctx: Ctx, request: Request, _who: AgentOnly) -> RecordReply:
    out = records.ingest_phones(
        db,
        body.items,
        copy_threshold=ctx.settings.ingest_copy_threshold,
        retention_days=ctx.settings.pass_retention_days,
    )
    db.commit()
    _wake(request, out)
    return out.reply


@router.post(
    "/VIID/MotorVehicles",
    summary="GA/T 1400 motor-vehicle push (MotorVehicleListObject → ResponseStatusListObject)",
    response_model=ViidResponse,
    responses={
        400: {"model": ViidResponse, "description": "the body is not JSON or not a MotorVehicleListObject"},
        413: {"model": ViidResponse, "description": "the body is too large"},
    },
)
async def viid_motor_vehicles(request: Request, ctx: Ctx, _who: AgentOnly) -> JSONResponse:
    raw = await request.body()
    if len(raw) > MAX_VIID_BODY:
        return JSONResponse(viid.response([viid.status("", viid.OTHER_ERROR, "body too large")]), 413)
    try:
        objs = viid.objects(json.loads(raw or b"null"))
    except (ValueError, UnicodeDecodeError) as e:
        code = viid.INVALID_JSON_CONTENT if isinstance(e, viid.BadBody) else viid.INVALID_JSON_FORMAT
        return JSONResponse(viid.response([viid.status("", code, str(e))]), 400)
    except RecursionError:
        # arrays in arrays, thousands deep: the parser gives up before any object is read
        why = "JSON nested too deeply"
        return JSONResponse(viid.response([viid.status("", viid.INVALID_JSON_FORMAT, why)]), 400)

    def work() -> list[dict[str, Any]]:
        statuses: list[dict[str, Any] | None] = [None] * len(objs)
        items: list[dict[str, Any]] = []
        extra: list[dict[str, Any]] = []
        where: list[int] = []
        for i, o in enumerate(objs):
            oid = viid.object_id(o)
            try:
                item, more = viid.to_pass(o)
            except ValueError as e:
                statuses[i] = viid.status(oid, viid.INVALID_JSON_CONTENT, str(e))
                continue
            items.append(item)
            extra.append(more)
            where.append(i)
        with ctx.db.session() as s:
            out = records.ingest_passes(
                s,
                items,
                copy_threshold=ctx.settings.ingest_copy_threshold,
                extra=extra,
                retention_days=ctx.settings.pass_retention_days,
            )
        if out.alarms:
            request.app.state.wakeups.publish(wakeups.ALARMS)
        bad = {r.index: r for r in out.reply.rejected}
        warned = {w.index: "; ".join(w.warnings) for w in out.reply.warnings}
        for n, i in enumerate(where):
            key = items[n]["key"]
            if n in bad:
                statuses[i] = viid.status(key, viid.INVALID_JSON_CONTENT, "; ".join(bad[n].errors))
            elif key in out.inserted_keys:
                note = f"OK (stored without: {warned[n]})" if n in warned else "OK"
                statuses[i] = viid.status(key, viid.OK, note)
            else:
                statuses[i] = viid.status(key, viid.OK, "OK (already stored)")
        return [s for s in statuses if s is not None]

    return JSONResponse(viid.response(await run_in_threadpool(work)))
