"""Agent routes: heartbeat (long poll) with assignments and commands, and command results."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from tianwang.agents import service
from tianwang.api.deps import DB, Ctx, require
from tianwang.api.metrics import count_not_owned
from tianwang.auth.tokens import Principal
from tianwang.context import AppContext
from tianwang.protocol.agents import CommandResult, Heartbeat, HeartbeatReply
from tianwang.storage.models import Agent, Role, utcnow
from tianwang.wakeups import WakeHub, agent_topic, command_topic

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])
AgentOnly = Annotated[Principal, Depends(require(Role.agent, admin=False))]


def wakeups_of(request: Request) -> WakeHub:
    n: WakeHub = request.app.state.wakeups
    return n


def _beat(ctx: AppContext, hb: Heartbeat, who: Principal, first: bool) -> HeartbeatReply:
    with ctx.db.session() as s:
        if first:
            service.record_heartbeat(s, hb, who)
        assignments = service.assignments_for(s, hb.agent_id, ctx.box)
        version = service.config_version(assignments)
        commands = service.take_pending(s, hb.agent_id, ctx.box)
        return HeartbeatReply(
            agent_id=hb.agent_id,
            config_version=version,
            assignments=None if version == hb.config_version else assignments,
            commands=commands,
            server_time=utcnow(),
        )


@router.post("/heartbeat", response_model=HeartbeatReply)
async def heartbeat(hb: Heartbeat, request: Request, ctx: Ctx, principal: AgentOnly) -> HeartbeatReply:
    """Record the agent as alive; answer its assignments and pending commands.

    With `wait_s` > 0 and nothing pending, the request is held open until a command arrives or
    `wait_s` passes, so a queued probe reaches the agent at once.
    """
    reply = await run_in_threadpool(_beat, ctx, hb, principal, True)
    if reply.commands or reply.assignments is not None or hb.wait_s <= 0:
        return reply
    wakeups = wakeups_of(request)
    end = time.monotonic() + hb.wait_s
    while (left := end - time.monotonic()) > 0:
        await wakeups.wait(agent_topic(hb.agent_id), min(1.0, left))
        reply = await run_in_threadpool(_beat, ctx, hb, principal, False)
        if reply.commands or reply.assignments is not None:
            break
    return reply


@router.post("/commands/{command_id}/result", status_code=204)
def command_result(
    command_id: str, body: CommandResult, request: Request, db: DB, principal: AgentOnly
) -> None:
    try:
        service.complete(db, command_id, principal, body.ok, body.result, body.error)
    except service.NotOwned:
        count_not_owned(request, "result")
        raise
    db.commit()
    wakeups_of(request).publish(command_topic(command_id))


class AgentOut(BaseModel):
    agent_id: str
    version: str
    capacity: int
    zones: list[str]
    last_heartbeat: str
    live: bool


@router.get("", response_model=list[AgentOut], dependencies=[Depends(require(Role.staff))])
def list_agents(db: DB) -> list[AgentOut]:
    from sqlalchemy import select

    live = {a.agent_id for a in service.live_agents(db)}
    rows = db.scalars(select(Agent).order_by(Agent.agent_id))
    return [
        AgentOut(
            agent_id=r.agent_id,
            version=r.version,
            capacity=r.capacity,
            zones=list(r.zones),
            last_heartbeat=r.last_heartbeat.isoformat(),
            live=r.agent_id in live,
        )
        for r in rows
    ]
