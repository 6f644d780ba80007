"""Heartbeats, assignments and the command queue, on the database (so API replicas share them)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import uuid
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tianwang.agents.assign import AgentInfo, DeviceRef, intersect_zones, owner
from tianwang.auth.secrets_box import SecretBox
from tianwang.auth.tokens import Principal
from tianwang.cameras.service import join_userinfo, url_credentials
from tianwang.errors import Forbidden, NotFound, ValidationFailed
from tianwang.protocol.agents import Assignment, Command, Heartbeat, OnvifCredentials
from tianwang.storage.models import Agent, AgentCommand, ApiToken, Camera, Checkpoint, utcnow

log = logging.getLogger("tianwang.agents")

# an agent missing this many seconds of heartbeats is taken for dead and its devices move
AGENT_TTL_S = 90
CHUNK = 900  # ids per IN list (SQLite allows 999 bound parameters in older builds)


def bind_agent_id(session: Session, token_id: int, agent_id: str) -> None:
    """Check that `agent_id` may heartbeat with this token; a token with no agent ids yet is bound
    to this one (one token, one agent, unless it was made for several)."""
    # conditional UPDATE: of two first heartbeats with different ids, exactly one binds the token
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.agent_ids.is_(None))
        .values(agent_ids=[agent_id])
    )
    allowed = session.scalar(select(ApiToken.agent_ids).where(ApiToken.id == token_id)) or []
    if agent_id not in allowed:
        shown = ", ".join(map(str, allowed[:5])) + (" …" if len(allowed) > 5 else "")
        raise Forbidden(f"this token is for agent {shown}, not {agent_id}")


def record_heartbeat(session: Session, hb: Heartbeat, who: Principal) -> Agent:
    bind_agent_id(session, who.token_id, hb.agent_id)
    row = session.scalar(select(Agent).where(Agent.agent_id == hb.agent_id))
    if row is None:
        row = Agent(agent_id=hb.agent_id, token_name=who.name)
        session.add(row)
    elif row.token_name != who.name:
        # one agent identity per token: a second token claiming the name is refused
        raise Forbidden(f"agent {hb.agent_id} belongs to another token")
    # the zones it is given: what it claims, within what its token allows
    zones = intersect_zones(hb.zones, who.zones)
    if not zones and row.zones != []:
        log.warning(
            "agent %s claims zones %s, none of them in its token's %s", hb.agent_id, hb.zones, who.zones
        )
    row.version, row.capacity, row.zones = hb.version, hb.capacity, list(zones)
    row.allowed_zones = list(who.zones) if who.zones is not None else None
    row.last_heartbeat = utcnow()
    session.flush()
    return row


def live_agents(
    session: Session, now: dt.datetime | None = None, ttl_s: float = AGENT_TTL_S
) -> list[AgentInfo]:
    since = (now or utcnow()) - dt.timedelta(seconds=ttl_s)
    rows = session.scalars(select(Agent).where(Agent.last_heartbeat >= since).order_by(Agent.agent_id))
    return [
        AgentInfo(
            r.agent_id,
            r.capacity,
            tuple(r.zones),
            tuple(r.allowed_zones) if r.allowed_zones is not None else None,
        )
        for r in rows
    ]


def _watched() -> Any:
    # a device is watched while in use and reachable somehow
    return (Camera.lifecycle == "in_use") & (
        (Camera.onvif_host.is_not(None)) | (Camera.snapshot_url.is_not(None)) | (Camera.rtsp_url.is_not(None))
    )


def _assignment(row: Camera | Checkpoint, box: SecretBox, kind: str) -> Assignment:
    onvif = None
    if row.onvif_host:
        pw = box.decrypt(row.onvif_password_enc) if row.onvif_password_enc else None  # ValueError: bad key
        onvif = OnvifCredentials(
            host=row.onvif_host,
            port=row.onvif_port or 80,
            username=row.onvif_username or "",
            password=pw,
            trust_device_addresses=bool(row.onvif_trust_device_addresses),
        )
    if isinstance(row, Camera):
        creds = url_credentials(row, box)
        return Assignment(
            device_id=row.device_id,
            kind=kind,
            onvif=onvif,
            # the registry's own (device answers are re-checked by the agent), credentials put back
            rtsp_url=join_userinfo(row.rtsp_url, creds.get("rtsp_url")),
            snapshot_url=join_userinfo(row.snapshot_url, creds.get("snapshot_url")),
            stream_uri=row.stream_uri,
            health_interval_s=row.health_interval_s,
            snapshot_interval_s=row.snapshot_interval_s,
        )
    return Assignment(
        device_id=row.checkpoint_id, kind=kind, onvif=onvif, health_interval_s=60, snapshot_interval_s=900
    )


def device_ref(row: Camera | Checkpoint) -> DeviceRef:
    if isinstance(row, Camera):
        return DeviceRef(row.device_id, row.area_code, row.agent_id)
    return DeviceRef(row.checkpoint_id, row.area_code, None)


def _append(out: list[Assignment], row: Camera | Checkpoint, box: SecretBox, kind: str) -> None:
    """Add a device's assignment; one password the key cannot decrypt must not stop the agent's others."""
    try:
        out.append(_assignment(row, box, kind))
    except ValueError:
        log.error(
            "device %s: its stored password cannot be decrypted with this key; not assigned",
            device_ref(row).device_id,
        )


def assignments_for(session: Session, agent_id: str, box: SecretBox) -> list[Assignment]:
    """The devices `agent_id` owns now, with their credentials. Ownership is decided on three light
    columns per device; only the owned rows are loaded whole (at 10^5 devices, loading every row as an
    ORM object was most of a heartbeat's cost)."""
    agents = live_agents(session)
    if not any(a.agent_id == agent_id for a in agents):
        return []
    cams = session.execute(
        select(Camera.device_id, Camera.area_code, Camera.agent_id)
        .where(_watched())
        .order_by(Camera.device_id)
    )
    mine = [d for d, area, pinned in cams if owner(DeviceRef(d, area, pinned), agents) == agent_id]
    cps = session.execute(
        select(Checkpoint.checkpoint_id, Checkpoint.area_code)
        .where(Checkpoint.onvif_host.is_not(None))
        .order_by(Checkpoint.id)
    )
    mine_cp = [c for c, area in cps if owner(DeviceRef(c, area, None), agents) == agent_id]
    out: list[Assignment] = []
    for i in range(0, len(mine), CHUNK):
        rows = session.scalars(
            select(Camera).where(Camera.device_id.in_(mine[i : i + CHUNK])).order_by(Camera.device_id)
        )
        for cam in rows:
            _append(out, cam, box, cam.kind)
    for i in range(0, len(mine_cp), CHUNK):
        for cp in session.scalars(
            select(Checkpoint)
            .where(Checkpoint.checkpoint_id.in_(mine_cp[i : i + CHUNK]))
            .order_by(Checkpoint.id)
        ):
            _append(out, cp, box, "checkpoint")
    return out


def area_codes(session: Session, device_ids: set[str]) -> dict[str, str]:
    """The area code of each registered device (camera or checkpoint) among `device_ids`."""
    out: dict[str, str] = {}
    ids = sorted(device_ids)
    for i in range(0, len(ids), CHUNK):
        part = ids[i : i + CHUNK]
        q = select(Camera.device_id, Camera.area_code).where(Camera.device_id.in_(part))
        out.update((d, a) for d, a in session.execute(q))
        rest = [d for d in part if d not in out]
        if rest:
            q = select(Checkpoint.checkpoint_id, Checkpoint.area_code).where(
                Checkpoint.checkpoint_id.in_(rest)
            )
            out.update((d, a) for d, a in session.execute(q))
    return out


def config_version(assignments: list[Assignment]) -> str:
    blob = json.dumps([a.model_dump(mode="json") for a in assignments], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def owner_of(session: Session, device_id: str) -> tuple[str | None, Camera | Checkpoint]:
    row = _device_row(session, device_id)
    if row is None:
        raise NotFound(f"device {device_id} is not registered")
    return owner(device_ref(row), live_agents(session)), row


# -- commands ---------------------------------------------------------------------------------
def enqueue(
    session: Session,
    *,
    kind: str,
    device_id: str,
    agent_id: str,
    deadline_s: float,
    requested_by: str,
    payload: dict[str, Any],
) -> AgentCommand:
    cmd = AgentCommand(
        id=str(uuid.uuid4()),
        kind=kind,
        device_id=device_id,
        agent_id=agent_id,
        state="queued",
        requested_by=requested_by,
        deadline=utcnow() + dt.timedelta(seconds=deadline_s),
        payload=payload,
    )
    session.add(cmd)
    session.flush()
    return cmd


def take_pending(session: Session, agent_id: str, box: SecretBox) -> list[Command]:
    """Hand this agent its queued, unexpired commands (each delivered once).

    The device's credentials are attached here, from the registry, at delivery: the queue itself
    holds no password, so nothing secret sits in plain text in the database.
    """
    now = utcnow()
    session.execute(
        update(AgentCommand)
        .where(AgentCommand.state.in_(("queued", "delivered")), AgentCommand.deadline < now)
        .values(state="expired", completed_at=now)
    )
    rows = list(
        session.scalars(
            select(AgentCommand)
            .where(AgentCommand.agent_id == agent_id, AgentCommand.state == "queued")
            .order_by(AgentCommand.created_at)
            .limit(100)
            .with_for_update(skip_locked=True)
        )
    )
    out = []
    for r in rows:
        device = _device_row(session, r.device_id)
        if device is None:
            r.state, r.error, r.completed_at = "failed", "device no longer registered", now
            continue
        kind = device.kind if isinstance(device, Camera) else "checkpoint"
        r.state, r.delivered_at = "delivered", now
        out.append(
            Command(
                id=r.id,
                kind="set_clock" if r.kind == "set_clock" else "probe",
                device_id=r.device_id,
                deadline=r.deadline,
                device=_assignment(device, box, kind),
                snapshot_key=r.payload.get("snapshot_key"),
                snapshot_put_url=r.payload.get("snapshot_put_url"),
            )
        )
    session.flush()
    return out


def _device_row(session: Session, device_id: str) -> Camera | Checkpoint | None:
    cam = session.scalar(select(Camera).where(Camera.device_id == device_id))
    if cam is not None:
        return cam
    return session.scalar(select(Checkpoint).where(Checkpoint.checkpoint_id == device_id))


def has_pending(session: Session, agent_id: str) -> bool:
    now = utcnow()
    q = select(AgentCommand.id).where(
        AgentCommand.agent_id == agent_id, AgentCommand.state == "queued", AgentCommand.deadline >= now
    )
    return session.scalar(q.limit(1)) is not None


class NotOwned(Forbidden):
    """An agent reported on a device outside its token's zones."""


def complete(
    session: Session, command_id: str, who: Principal, ok: bool, result: dict[str, Any], error: str | None
) -> AgentCommand:
    row = session.get(AgentCommand, command_id)
    if row is None:
        raise NotFound(f"command {command_id} does not exist")
    holder = session.scalar(select(Agent.token_name).where(Agent.agent_id == row.agent_id))
    allowed = session.scalar(select(ApiToken.agent_ids).where(ApiToken.id == who.token_id)) or []
    if holder != who.name or row.agent_id not in allowed:
        raise Forbidden("this command was queued for another agent")
    area = area_codes(session, {row.device_id}).get(row.device_id)
    if area is not None and not who.reaches(area, row.device_id):
        raise NotOwned(f"device {row.device_id} is not in this agent token's zones")
    if row.state in ("done", "failed"):
        return row  # a retried post of the same result: idempotent
    if row.state == "expired":
        raise ValidationFailed(f"command {command_id} expired before its result arrived")
    row.state = "done" if ok else "failed"
    row.result, row.error, row.completed_at = result, error, utcnow()
    session.flush()
    return row


def get_command(session: Session, command_id: str) -> AgentCommand | None:
    session.expire_all()
    return session.get(AgentCommand, command_id)
