"""Stream checks (码流检测) as evidence: each check stored, and the camera's latest one kept on it, from
which `evidence.refresh` derives the `stream` fault (see `cameras.stream`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from tianwang.cameras import evidence
from tianwang.protocol.ingest import IngestReply, Rejected
from tianwang.protocol.stream import StreamCheckItem
from tianwang.storage.models import Camera, StreamCheck, utcnow


def ingest_stream_checks(
    session: Session, items: list[dict[str, Any]], agent: str, allowed_misses: int
) -> IngestReply:
    good, rejected = evidence._validate(items, StreamCheckItem)
    devices = evidence._devices(session, {it.device_id for _, it in good})
    rows, keep = [], []
    for i, it in good:
        if not isinstance(devices.get(it.device_id), Camera):
            rejected.append(
                Rejected(index=i, key=it.key, errors=[f"camera {it.device_id} is not registered"])
            )
            continue
        m = it.measured
        keep.append(it)
        rows.append(
            {
                "key": it.key,
                "device_id": it.device_id,
                "ts": it.ts,
                "ok": it.ok,
                "faults": list(it.faults),
                "codec": m.codec if m else None,
                "width": m.width if m else None,
                "height": m.height if m else None,
                "fps": m.fps if m else None,
                "bitrate_kbps": m.bitrate_kbps if m else None,
                "declared": it.declared.model_dump() if it.declared else None,
                "measured": m.model_dump() if m else None,
                "error": it.error,
                "agent": agent,
                "received_at": utcnow(),
            }
        )
    inserted = evidence._insert_ignore(session, StreamCheck.__table__, rows)
    now = utcnow()
    # evidence moves forward only: a replayed older check is stored but does not rewrite the present
    for it in sorted((it for it in keep if it.key in inserted), key=lambda x: x.ts):
        cam = devices[it.device_id]
        if cam.last_stream_at is not None and it.ts <= cam.last_stream_at:
            continue
        cam.last_stream_at = it.ts
        cam.last_stream_faults = list(it.faults)
        cam.last_stream_error = it.error
    for dev in devices.values():
        evidence.refresh(dev, now, allowed_misses)
    session.flush()
    accepted = len(inserted)
    return IngestReply(
        accepted=accepted, duplicates=len(keep) - accepted, rejected=sorted(rejected, key=lambda r: r.index)
    )
