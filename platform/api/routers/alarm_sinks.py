"""Alarm sinks (告警推送): where alarms go beyond the console. An admin adds and removes them; staff
may list them too (they run the system and watch its outbox). Secrets are never shown."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response

from tianwang import audit
from tianwang.alarms import sinks as alarm_sinks
from tianwang.alarms.hotlists import NO_CASE
from tianwang.api.defs import alarms as defs
from tianwang.api.deps import DB, Ctx, require
from tianwang.auth.tokens import Principal
from tianwang.storage.models import Role

router = APIRouter(prefix="/api/v1/alarm-sinks", tags=["hotlists"])
Admin = Annotated[Principal, Depends(require())]
Staff = Annotated[Principal, Depends(require(Role.staff))]
SinkId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.post("", status_code=201, response_model=defs.Sink)
def create_sink(body: alarm_sinks.SinkIn, db: DB, ctx: Ctx, who: Admin) -> dict[str, Any]:
    """Add a webhook (`url`, `secret` for the HMAC signature) or an MQTT sink (`topic` prefix, `url`
    of the broker, default mqtt://127.0.0.1:1883; `secret` is the broker password of the URL's user),
    for every hotlist or only `hotlist_ids`. Alarms raised from now on are delivered to it."""
    sink = alarm_sinks.create_sink(db, body, ctx.box, who.name)
    audit.record(
        db,
        user=who.name,
        role=who.role.value,
        route="alarm_sinks.create",
        case_no=NO_CASE,
        params={"sink_id": sink.id, "kind": sink.kind, "hotlist_ids": sink.hotlist_ids},
        result_size=1,
    )
    return alarm_sinks.sink_dict(sink)


@router.get("", response_model=defs.SinkList)
def list_sinks(db: DB, _who: Staff) -> dict[str, Any]:
    """Every sink with `pending`, its undelivered alarms (the outbox depth), and `last_error`, why the
    latest try of one of them failed."""
    sinks = alarm_sinks.list_sinks(db)
    pending = alarm_sinks.pending_by_sink(db)
    errors = alarm_sinks.last_errors(db, [s.id for s in sinks if pending.get(s.id)])
    return {"items": [alarm_sinks.sink_dict(s, pending.get(s.id, 0), errors.get(s.id)) for s in sinks]}


@router.delete("/{sink_id}", status_code=204)
def delete_sink(sink_id: SinkId, db: DB, who: Admin) -> Response:
    """Remove a sink; its undelivered alarms are dropped with it (they stay in the alarm list)."""
    alarm_sinks.delete_sink(db, sink_id)
    audit.record(
        db,
        user=who.name,
        role=who.role.value,
        route="alarm_sinks.delete",
        case_no=NO_CASE,
        params={"sink_id": sink_id},
        result_size=1,
    )
    return Response(status_code=204)
