"""Hotlists (布控) and their alarms: create / read / withdraw, the alarm list and the live stream (SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select
from starlette.concurrency import run_in_threadpool

from tianwang import audit
from tianwang.alarms import hotlists
from tianwang.api.audit import Audited, audited
from tianwang.api.defs import alarms as defs
from tianwang.api.defs.common import EVENT_STREAM
from tianwang.api.deps import DB, Ctx, require
from tianwang.auth.tokens import Principal
from tianwang.errors import TianwangError, ValidationFailed
from tianwang.pagination import decode_cursor, encode_cursor
from tianwang.protocol.fields import Instant
from tianwang.storage.models import Hotlist, HotlistEntry, Role, utcnow
from tianwang.wakeups import ALARMS, WakeHub

router = APIRouter(prefix="/api/v1", tags=["hotlists"])
Investigator = Annotated[Principal, Depends(require(Role.investigator))]
Limit = Annotated[int, Query(ge=1, le=1000)]
HotlistId = Annotated[int, Path(ge=1, le=2**31 - 1)]
AlarmId = Annotated[int, Path(ge=1, le=2**63 - 1)]
# alarms read per database round trip of one stream: what a slow client can make the server hold
STREAM_BATCH = 200
# entries shown with each hotlist of a list (the whole list is GET /hotlists/{id})
LIST_ENTRIES = 10
CaseNo = Annotated[
    str | None,
    Query(description="case number (查询事由): when given, the read is audited under it (else '-')"),
]


class NotAcceptable(TianwangError):
    status = 406
    title = "Not acceptable"
    type_ = "urn:tianwang:problem:not-acceptable"


@router.post("/hotlists", status_code=201, response_model=defs.CreatedHotlist)
def create_hotlist(
    body: hotlists.HotlistIn, db: DB, ctx: Ctx, request: Request, who: Investigator
) -> dict[str, Any]:
    """Create a hotlist and match it against the passes of the last `retro_days` days (default
    TIANWANG_HOTLIST_RETRO_DAYS): those alarms are marked `retro`, their count is `retro_alarms`."""
    case_no = audit.check_case_no(body.case_no)
    days = body.retro_days if body.retro_days is not None else ctx.settings.hotlist_retro_days
    h = hotlists.create(db, body.model_copy(update={"case_no": case_no, "retro_days": days}), who.name)
    past = hotlists.match_past(db, h, days, utcnow())
    h, entries = hotlists.get(db, h.id)
    audit.record(
        db,
        user=who.name,
        role=who.role.value,
        route="hotlists.create",
        case_no=case_no,
        params={
            "hotlist_id": h.id,
            "name": h.name,
            "entries": len(entries),
            "fuzzy": h.fuzzy,
            "retro_days": days,
            "retro_alarms": len(past),
        },
        result_size=len(entries),
    )
    if past:
        request.app.state.wakeups.publish(ALARMS)
    return {**hotlists.hotlist_dict(h, entries), "retro_alarms": len(past)}


@router.get("/hotlists", response_model=defs.HotlistPage)
def list_hotlists(
    db: DB,
    a: Annotated[Audited, Depends(audited("hotlists.list"))],
    active: Annotated[
        bool | None, Query(description="true: in force now; false: withdrawn or expired")
    ] = None,
    only_case: Annotated[bool, Query(description="only the hotlists made for case_no")] = False,
    mine: Annotated[bool, Query(description="only the caller's own hotlists")] = False,
    limit: Limit = 100,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Hotlists, newest first, with their first entries and `entries_total` (any investigator may read
    any hotlist, as with GET /hotlists/{id}); audited under `case_no`."""
    now = utcnow()
    in_force = (Hotlist.revoked_at.is_(None)) & (Hotlist.valid_from <= now) & (Hotlist.valid_to >= now)
    stmt = select(Hotlist)
    if active is True:
        stmt = stmt.where(in_force)
    elif active is False:
        stmt = stmt.where(~in_force)
    if only_case:
        stmt = stmt.where(Hotlist.case_no == a.case_no)
    if mine:
        stmt = stmt.where(Hotlist.created_by == a.principal.name)
    after = decode_cursor(cursor)
    if after is not None:
        stmt = stmt.where(Hotlist.id < after)
    rows = list(db.scalars(stmt.order_by(Hotlist.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    ids = [h.id for h in rows]
    totals: dict[int, int] = {}
    heads: dict[int, list[HotlistEntry]] = {i: [] for i in ids}
    if ids:
        totals = dict(
            db.execute(
                select(HotlistEntry.hotlist_id, func.count())
                .where(HotlistEntry.hotlist_id.in_(ids))
                .group_by(HotlistEntry.hotlist_id)
            ).all()
        )
        rank = (
            func.row_number().over(partition_by=HotlistEntry.hotlist_id, order_by=HotlistEntry.id).label("n")
        )
        ranked = select(HotlistEntry.id, rank).where(HotlistEntry.hotlist_id.in_(ids)).subquery()
        first = (
            select(HotlistEntry)
            .join(ranked, ranked.c.id == HotlistEntry.id)
            .where(ranked.c.n <= LIST_ENTRIES)
        )
        for e in db.scalars(first.order_by(HotlistEntry.hotlist_id, HotlistEntry.id)):
            heads[e.hotlist_id].append(e)
    items = [{**hotlists.hotlist_dict(h, heads[h.id]), "entries_total": totals.get(h.id, 0)} for h in rows]
    a.record(
        db,
        {
            "active": active,
            "only_case": only_case or None,
            "mine": mine or None,
            "limit": limit,
            "cursor": cursor,
        },
        len(items),
    )
    return {"items": items, "next_cursor": encode_cursor(rows[-1].id) if more and rows else None}


@router.get("/hotlists/{hotlist_id}", response_model=defs.Hotlist)
def get_hotlist(
    hotlist_id: HotlistId, db: DB, a: Annotated[Audited, Depends(audited("hotlists.get"))]
) -> dict[str, Any]:
    h, entries = hotlists.get(db, hotlist_id)
    a.record(db, {"hotlist_id": hotlist_id}, len(entries))
    return hotlists.hotlist_dict(h, entries)


@router.delete("/hotlists/{hotlist_id}", response_model=defs.Hotlist)
def withdraw_hotlist(
    hotlist_id: HotlistId,
    db: DB,
    a: Annotated[Audited, Depends(audited("hotlists.withdraw"))],
    reason: Annotated[str | None, Query(max_length=500, description="why it is withdrawn (撤控原因)")] = None,
) -> dict[str, Any]:
    """Withdraw (撤控): no more alarms; the hotlist and its alarms stay on record."""
    reason = reason.strip() or None if reason else None
    h = hotlists.revoke(db, hotlist_id, a.principal, reason)  # the creator or an admin, else 403
    _, entries = hotlists.get(db, h.id)
    a.record(db, {"hotlist_id": hotlist_id, "reason": reason}, 1)
    return hotlists.hotlist_dict(h, entries)


@router.get("/alarms", response_model=defs.AlarmPage)
def list_alarms(
    db: DB,
    who: Investigator,
    since: Instant | None = None,
    limit: Limit = 1000,
    cursor: str | None = None,
    case_no: CaseNo = None,
) -> dict[str, Any]:
    """Stored alarms the caller may see (an investigator: those of the hotlists they made; an
    admin: all), oldest first; `since` filters on when they were raised."""
    if since is not None and since.tzinfo is None:
        raise ValidationFailed(
            "since needs a UTC offset", errors=[{"field": "since", "message": "naive time"}]
        )
    rows = hotlists.list_alarms(
        db, since=since, after_id=decode_cursor(cursor), limit=limit + 1, reader=who, case_no=case_no
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [hotlists.alarm_dict(a) for a in rows],
        "next_cursor": encode_cursor(rows[-1].id) if more and rows else None,
    }


@router.post("/alarms/{alarm_id}/ack", response_model=defs.Alarm)
def ack_alarm(alarm_id: AlarmId, body: hotlists.AckIn, db: DB, who: Investigator) -> dict[str, Any]:
    """Acknowledge (签收) an alarm: `confirmed` or `false_positive`, with a note; audited under the
    case of its hotlist. A later acknowledgement replaces it (the audit log keeps each one)."""
    a, h = hotlists.acknowledge(db, alarm_id, body, who)
    audit.record(
        db,
        user=who.name,
        role=who.role.value,
        route="alarms.ack",
        case_no=h.case_no,
        params={"alarm_id": a.id, "hotlist_id": h.id, "verdict": body.verdict, "note": body.note},
        result_size=1,
    )
    return hotlists.alarm_dict(a)


@router.get(
    "/alarms/stream",
    summary="Live alarms as server-sent events (send Accept: text/event-stream; resumes from Last-Event-ID)",
    response_class=StreamingResponse,
    responses=EVENT_STREAM,
)
async def alarm_stream(
    request: Request,
    ctx: Ctx,
    who: Investigator,
    after: Annotated[int | None, Query(ge=0, description="resume after this alarm id")] = None,
    last_event_id: Annotated[str | None, Header()] = None,
    case_no: CaseNo = None,
) -> StreamingResponse:
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise NotAcceptable("this route streams server-sent events: send Accept: text/event-stream")
    start = after
    if last_event_id:
        if not last_event_id.strip().isdigit():
            raise ValidationFailed(
                "Last-Event-ID must be an alarm id",
                errors=[{"field": "Last-Event-ID", "message": "not an id"}],
            )
        start = int(last_event_id)

    def open_(after_id: int | None) -> int:
        with ctx.db.session() as s:
            first = hotlists.last_alarm_id(s) if after_id is None else after_id
            # audited once, at open: who listens and from which alarm on
            hotlists.audit_alarm_read(
                s, who, route="alarms.stream", since=None, after_id=first, count=0, case_no=case_no
            )
            return first

    # in a worker thread like every other database call: on SQLite a write waiting for the lock on
    # the event loop would stall the request holding it (its commit needs the loop) until the timeout
    start = await run_in_threadpool(open_, start)
    hub: WakeHub = request.app.state.wakeups
    poll_s, beat_s = ctx.settings.alarm_poll_s, ctx.settings.sse_heartbeat_s
    owner = hotlists.visible_to(who)  # an investigator hears only the alarms of their hotlists

    # nothing at or below the opening point is sent again: a client resuming with Last-Event-ID has
    # everything up to it, except an alarm committed late while it was away (GET /alarms?since finds it)
    floor = start

    def fetch(last: int, sent: dict[int, float]) -> list[dict[str, Any]]:
        with ctx.db.session() as s:
            rows = hotlists.stream_batch(
                s, last=last, floor=floor, sent=sent, now=utcnow(), limit=STREAM_BATCH, owner=owner
            )
            return [hotlists.alarm_dict(a) for a in rows]

    async def events(last: int) -> AsyncIterator[str]:
        wake = hub.subscribe(ALARMS)
        beat = time.monotonic()
        sent: dict[int, float] = {}  # ids sent within the settling window -> when
        try:
            yield f"retry: 2000\n: stream from alarm {last}\n\n"
            while True:
                now = time.monotonic()
                for k in [k for k, t in sent.items() if now - t > hotlists.SETTLE_S + 5]:
                    del sent[k]
                rows = await run_in_threadpool(fetch, last, sent)
                for a in rows:
                    sent[a["id"]] = now
                    last = max(last, a["id"])
                    # the event id is the highest id sent: a client resuming from it loses nothing newer
                    yield f"id: {last}\nevent: alarm\ndata: {json.dumps(a, ensure_ascii=False)}\n\n"
                if len(rows) == STREAM_BATCH:
                    continue
                if time.monotonic() - beat >= beat_s:
                    beat = time.monotonic()
                    yield ": heartbeat\n\n"
                    if await request.is_disconnected():
                        return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), min(poll_s, beat_s))
                wake.clear()
        finally:
            hub.unsubscribe(ALARMS, wake)

    return StreamingResponse(
        events(start),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
