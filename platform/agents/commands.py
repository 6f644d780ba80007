"""Running a command on the agent that owns a device and waiting for its answer (the installer's probe)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from tianwang.agents import service
from tianwang.errors import ServiceUnavailable
from tianwang.storage.db import Database
from tianwang.storage.models import AgentCommand
from tianwang.wakeups import WakeHub, agent_topic, command_topic

POLL_S = 0.25  # how often a waiting request re-reads the database (other replicas do not notify us)


def _enqueue(
    db: Database,
    kind: str,
    device_id: str,
    requested_by: str,
    deadline_s: float,
    payload: Callable[[str], dict[str, Any]],
) -> tuple[str, str]:
    with db.session() as s:
        agent_id, _row = service.owner_of(s, device_id)
        if agent_id is None:
            raise ServiceUnavailable(
                f"no agent online for device {device_id}: no live agent's zones reach it",
                errors=[{"field": "device_id", "message": "no agent online"}],
            )
        cmd = service.enqueue(
            s,
            kind=kind,
            device_id=device_id,
            agent_id=agent_id,
            deadline_s=deadline_s,
            requested_by=requested_by,
            payload=payload(agent_id),
        )
        return cmd.id, agent_id


def _read(db: Database, command_id: str) -> AgentCommand | None:
    with db.session() as s:
        return service.get_command(s, command_id)


async def run_on_agent(
    db: Database,
    wakeups: WakeHub,
    *,
    kind: str,
    device_id: str,
    requested_by: str,
    deadline_s: float,
    payload: Callable[[str], dict[str, Any]],
) -> AgentCommand:
    """Queue the command for the owning agent, wake it, and wait for the result until the deadline.

    Raises ServiceUnavailable (503) naming why: no agent online for the device, or its agent did
    not answer in time.
    """
    command_id, agent_id = await run_in_threadpool(
        _enqueue, db, kind, device_id, requested_by, deadline_s, payload
    )
    wakeups.publish(agent_topic(agent_id))
    end = time.monotonic() + deadline_s
    while True:
        row = await run_in_threadpool(_read, db, command_id)
        if row is not None and row.state in ("done", "failed"):
            return row
        left = end - time.monotonic()
        if left <= 0:
            break
        await wakeups.wait(command_topic(command_id), min(POLL_S, left))
    state = row.state if row is not None else "unknown"
    why = "never picked it up" if state == "queued" else "did not answer"
    raise ServiceUnavailable(f"agent {agent_id} {why} within {deadline_s:g} s (command {command_id})")


async def sleep(seconds: float) -> None:  # seam for tests
    await asyncio.sleep(seconds)
