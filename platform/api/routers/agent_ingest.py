"""Agent ingest: health observations, snapshot uploads (presigned) and their diagnoses; idempotent batches."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.orm import Session

from tianwang.agents.service import area_codes
from tianwang.api.deps import DB, Ctx, require
from tianwang.api.metrics import count_not_owned
from tianwang.auth.tokens import Principal
from tianwang.cameras import evidence, stream_evidence
from tianwang.errors import Conflict, Forbidden, NotFound, ValidationFailed
from tianwang.protocol.ingest import IMAGE_TYPES, Batch, IngestReply, PresignReply, PresignRequest, Rejected
from tianwang.storage.models import Camera, Checkpoint, Role, utcnow
from tianwang.storage.objectstore import snapshot_key

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])
AgentOnly = Annotated[Principal, Depends(require(Role.agent, admin=False))]


def _owned_only(
    db: Session, who: Principal, items: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[int], list[Rejected]]:
    """Split off the items about devices outside the sender's token zones: (kept, their indices in
    `items`, refusals). An unregistered device or a malformed item is left to the ingest's own checks."""
    if who.zones is None or "*" in who.zones:
        return items, list(range(len(items))), []
    ids = {d for it in items if isinstance(d := it.get("device_id"), str)}
    areas = area_codes(db, ids)
    kept, where, refused = [], [], []
    for i, it in enumerate(items):
        d = it.get("device_id")
        if isinstance(d, str) and d in areas and not who.reaches(areas[d], d):
            key = it.get("key")
            why = f"device {d} is not in this agent token's zones"
            refused.append(Rejected(index=i, key=key if isinstance(key, str) else None, errors=[why]))
        else:
            kept.append(it)
            where.append(i)
    return kept, where, refused


def _merge(reply: IngestReply, where: list[int], refused: list[Rejected]) -> IngestReply:
    for r in reply.rejected:
        r.index = where[r.index]
    reply.rejected = sorted([*reply.rejected, *refused], key=lambda r: r.index)
    return reply


@router.post("/health", response_model=IngestReply)
def ingest_health(body: Batch, db: DB, ctx: Ctx, who: AgentOnly, request: Request) -> IngestReply:
    """Health observations; an item about a device outside the token's zones is refused (per item)."""
    items, where, refused = _owned_only(db, who, body.items)
    count_not_owned(request, "health", len(refused))
    reply = evidence.ingest_health(
        db,
        items,
        who.name,
        ctx.settings.allowed_misses,
        allowed_snapshot_misses=ctx.settings.allowed_snapshot_misses,
        max_clock_skew_s=ctx.settings.max_clock_skew_s,
    )
    return _merge(reply, where, refused)


@router.post("/streams", response_model=IngestReply)
def ingest_streams(body: Batch, db: DB, ctx: Ctx, who: AgentOnly, request: Request) -> IngestReply:
    """Stream checks (码流检测); an item about a camera outside the token's zones is refused (per item)."""
    items, where, refused = _owned_only(db, who, body.items)
    count_not_owned(request, "streams", len(refused))
    reply = stream_evidence.ingest_stream_checks(db, items, who.name, ctx.settings.allowed_misses)
    return _merge(reply, where, refused)


@router.post("/snapshots/presign", response_model=PresignReply)
def presign_snapshot(
    body: PresignRequest, db: DB, ctx: Ctx, who: AgentOnly, request: Request
) -> PresignReply:
    from sqlalchemy import select

    if body.ts.tzinfo is None:
        raise ValidationFailed("ts needs a UTC offset", errors=[{"field": "ts", "message": "naive time"}])
    known = db.scalar(select(Camera.id).where(Camera.device_id == body.device_id)) or db.scalar(
        select(Checkpoint.id).where(Checkpoint.checkpoint_id == body.device_id)
    )
    if not known:
        raise NotFound(f"device {body.device_id} is not registered")
    area = area_codes(db, {body.device_id})[body.device_id]
    if not who.reaches(area, body.device_id):
        count_not_owned(request, "presign")
        raise Forbidden(f"device {body.device_id} is not in this agent token's zones")
    # the key's extension records what the picture is (a PNG camera's pictures stay PNG)
    key = snapshot_key(body.device_id, body.ts, IMAGE_TYPES[body.content_type])
    # a stored picture is evidence: only an upload of the very same bytes may be presigned again
    if ctx.store.exists(key) and ctx.store.stat(key).sha256 not in (None, body.sha256):
        raise Conflict(f"a different snapshot is already stored at {key}")
    expires = ctx.settings.presign_expiry_s
    return PresignReply(
        key=key,
        url=ctx.store.presigned_upload(key, expires, body.sha256),
        expires_at=utcnow() + dt.timedelta(seconds=expires),
    )


@router.post("/snapshots", response_model=IngestReply)
def ingest_snapshots(body: Batch, db: DB, ctx: Ctx, who: AgentOnly, request: Request) -> IngestReply:
    """Snapshot records (pictures and failed snapshots); an item about a device outside the token's
    zones is refused (per item)."""
    items, where, refused = _owned_only(db, who, body.items)
    count_not_owned(request, "snapshots", len(refused))
    reply = evidence.ingest_snapshots(
        db,
        items,
        ctx.store,
        ctx.settings.allowed_misses,
        allowed_snapshot_misses=ctx.settings.allowed_snapshot_misses,
    )
    return _merge(reply, where, refused)
