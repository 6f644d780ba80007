"""Agent ingest: health observations, snapshot uploads (presigned) and their diagnoses; idempotent batches."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends

from tianwang.api.deps import DB, Ctx, require
from tianwang.auth.tokens import Principal
from tianwang.cameras import evidence
from tianwang.errors import Conflict, NotFound, ValidationFailed
from tianwang.protocol.ingest import Batch, IngestReply, PresignReply, PresignRequest
from tianwang.storage.models import Camera, Checkpoint, Role, utcnow
from tianwang.storage.objectstore import snapshot_key

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])
AgentOnly = Annotated[Principal, Depends(require(Role.agent, admin=False))]


@router.post("/health", response_model=IngestReply)
def ingest_health(body: Batch, db: DB, ctx: Ctx, who: AgentOnly) -> IngestReply:
    return evidence.ingest_health(db, body.items, who.name, ctx.settings.allowed_misses)


@router.post("/snapshots/presign", response_model=PresignReply)
def presign_snapshot(body: PresignRequest, db: DB, ctx: Ctx, _who: AgentOnly) -> PresignReply:
    from sqlalchemy import select

    if body.ts.tzinfo is None:
        raise ValidationFailed("ts needs a UTC offset", errors=[{"field": "ts", "message": "naive time"}])
    known = db.scalar(select(Camera.id).where(Camera.device_id == body.device_id)) or db.scalar(
        select(Checkpoint.id).where(Checkpoint.checkpoint_id == body.device_id)
    )
    if not known:
        raise NotFound(f"device {body.device_id} is not registered")
    key = snapshot_key(body.device_id, body.ts)
    # a stored picture is evidence: only an upload of the very same bytes may be presigned again
    if ctx.store.exists(key) and ctx.store.stat(key).sha256 not in (None, body.sha256):
        raise Conflict(f"a different snapshot is already stored at {key}")
    expires = ctx.settings.presign_expiry_s
    return PresignReply(
        key=key,
        url=ctx.store.presigned_put(key, expires),
        expires_at=utcnow() + dt.timedelta(seconds=expires),
    )


@router.post("/snapshots", response_model=IngestReply)
def ingest_snapshots(body: Batch, db: DB, ctx: Ctx, _who: AgentOnly) -> IngestReply:
    return evidence.ingest_snapshots(db, body.items, ctx.store, ctx.settings.allowed_misses)
