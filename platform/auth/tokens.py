"""API tokens: random, shown once, stored as SHA-256, each bound to one role."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tianwang.errors import Unauthorized, ValidationFailed
from tianwang.storage.models import ApiToken, Role, utcnow

PREFIX = "tw_"


@dataclass(frozen=True)
class Principal:
    token_id: int
    name: str
    role: Role


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, role: str, name: str) -> str:
    try:
        r = Role(role)
    except ValueError:
        allowed = ", ".join(x.value for x in Role)
        raise ValidationFailed(f"unknown role {role!r} (one of {allowed})") from None
    if not name or len(name) > 100:
        raise ValidationFailed("token name must be 1–100 characters")
    token = PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, role=r.value, token_hash=_hash(token), prefix=token[:10]))
    session.flush()
    return token


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
    return Principal(row.id, row.name, Role(row.role))


def revoke(session: Session, token_id: int) -> bool:
    res = session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    return bool(res.rowcount)  # type: ignore[attr-defined]
