"""API tokens: random, shown once, stored as SHA-256, each bound to one role.

An agent token is also bound to zones (the area-code prefixes its agents may be given, whatever
their heartbeat claims) and to agent ids (the ids allowed to heartbeat with it; by default the one
that heartbeats first).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tianwang.agents.assign import in_zones
from tianwang.errors import NotFound, Unauthorized, ValidationFailed
from tianwang.storage.models import ApiToken, Role, utcnow

PREFIX = "tw_"
_ZONE_RE = re.compile(r"\*|[0-9]{1,20}")  # "*" or an area-code (device-id) prefix
_AGENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")  # as the heartbeat's agent_id


@dataclass(frozen=True)
class Principal:
    token_id: int
    name: str
    role: Role
    # an agent token's zones; None: all (a token made before zones existed, or not an agent's)
    zones: tuple[str, ...] | None = None

    def reaches(self, area_code: str, device_id: str) -> bool:
        """Whether this token's agents may be given, and report on, a device in `area_code`."""
        return self.zones is None or in_zones(self.zones, area_code, device_id)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_zones(zones: Sequence[str]) -> list[str]:
    out = list(dict.fromkeys(z.strip() for z in zones if z.strip()))
    if not out:
        raise ValidationFailed(
            "an agent token needs zones: area-code prefixes like 4403,4404, or '*' for all"
        )
    bad = [z for z in out if not _ZONE_RE.fullmatch(z)]
    if bad:
        raise ValidationFailed(
            f"invalid zone(s) {', '.join(map(repr, bad))}: area-code prefixes (digits) or '*'"
        )
    return ["*"] if "*" in out else out


def check_agent_ids(agent_ids: Sequence[str]) -> list[str]:
    out = list(dict.fromkeys(a.strip() for a in agent_ids if a.strip()))
    if not out:
        raise ValidationFailed("give at least one agent id")
    bad = [a for a in out if not _AGENT_ID_RE.fullmatch(a)]
    if bad:
        raise ValidationFailed(f"invalid agent id(s) {', '.join(map(repr, bad))}: 1–100 of A-Z a-z 0-9 _ . -")
    return out


def create_token(
    session: Session,
    role: str,
    name: str,
    *,
    zones: Sequence[str] | None = None,
    agent_ids: Sequence[str] | None = None,
) -> str:
    """A new token. For role agent: `zones` (default ["*"], all) and `agent_ids` (default: bound to
    the first id that heartbeats with it). Other roles take neither."""
    try:
        r = Role(role)
    except ValueError:
        allowed = ", ".join(x.value for x in Role)
        raise ValidationFailed(f"unknown role {role!r} (one of {allowed})") from None
    if not name or len(name) > 100:
        raise ValidationFailed("token name must be 1–100 characters")
    if r is not Role.agent and (zones is not None or agent_ids is not None):
        raise ValidationFailed("zones and agent ids are for agent tokens only")
    row = ApiToken(name=name, role=r.value, prefix="")
    if r is Role.agent:
        row.zones = check_zones(zones) if zones is not None else ["*"]
        row.agent_ids = check_agent_ids(agent_ids) if agent_ids is not None else None
    token = PREFIX + secrets.token_urlsafe(32)
    row.token_hash, row.prefix = _hash(token), token[:10]
    session.add(row)
    session.flush()
    return token


def limit_token(
    session: Session, token_id: int, zones: Sequence[str] | None, agent_ids: Sequence[str] | None
) -> ApiToken:
    """Set an agent token's zones and/or agent ids (a token from before zones gets its bounds here)."""
    row = session.get(ApiToken, token_id)
    if row is None or row.revoked_at is not None:
        raise NotFound(f"no active token with id {token_id}")
    if row.role != Role.agent.value:
        raise ValidationFailed("zones and agent ids are for agent tokens only")
    if zones is not None:
        row.zones = check_zones(zones)
    if agent_ids is not None:
        row.agent_ids = check_agent_ids(agent_ids)
    session.flush()
    return row


def unbounded_agent_tokens(session: Session) -> list[str]:
    """Names of active agent tokens without zones (made before zones existed): they reach every zone."""
    q = select(ApiToken.name).where(
        ApiToken.role == Role.agent.value, ApiToken.revoked_at.is_(None), ApiToken.zones.is_(None)
    )
    return list(session.scalars(q.order_by(ApiToken.id)))


def authenticate(session: Session, token: str) -> Principal:
    if not token.startswith(PREFIX) or len(token) > 200:
        raise Unauthorized("invalid token")
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    if row is None or row.revoked_at is not None:
        raise Unauthorized("invalid or revoked token")
    now = utcnow()
    # last_used is advisory; write it at most once a minute per token to keep reads read-only
    if row.last_used_at is None or now - row.last_used_at > dt.timedelta(minutes=1):
        session.execute(update(ApiToken).where(ApiToken.id == row.id).values(last_used_at=now))
    zones = tuple(row.zones) if row.role == Role.agent.value and row.zones is not None else None
    return Principal(row.id, row.name, Role(row.role), zones)


def revoke(session: Session, token_id: int) -> bool:
    res = session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]
