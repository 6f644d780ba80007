"""Device status from stored evidence: health observations and judged snapshots sent by agents.

A device's status is never asserted, only derived: the last answer, how many checks in a row
went unanswered against the allowed misses, the credentials' verdict and the latest picture's
diagnosis. `status_reason` says which piece of evidence decided it, so staff can see why a
camera is called offline (离线) or faulty (故障).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from pydantic import ValidationError
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tianwang.cameras.stream import stream_reason
from tianwang.errors import NotFound, ValidationFailed
from tianwang.protocol.fields import text_error
from tianwang.protocol.ingest import HealthItem, IngestReply, Rejected, SnapshotItem
from tianwang.record_time import ts_problem
from tianwang.storage.models import Camera, Checkpoint, HealthObservation, Snapshot, utcnow
from tianwang.storage.objectstore import ObjectStore

Device: TypeAlias = Camera | Checkpoint


@dataclass(frozen=True)
class Verdict:
    status: str
    reason: str


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).isoformat(timespec="seconds")


def derive_status(
    *,
    now: dt.datetime,
    interval_s: int,
    allowed_misses: int,
    current: str,
    last_checked: dt.datetime | None,
    failures: int,
    last_authenticated: bool | None,
    last_error: str | None,
    verdict: str | None,
    faults: list[str] | None,
    snapshot_failures: int = 0,
    allowed_snapshot_misses: int = 3,
    last_snapshot_error: str | None = None,
    stream: str | None = None,
) -> Verdict:
    """The status the evidence supports (pure, so it is tested without a database).

    A camera whose last `allowed_snapshot_misses` snapshots in a row gave no picture is a fault
    (not intact, 不完好) though it answers: nobody can see what it sees.
    """
    if last_checked is None:
        return Verdict("registered", "not yet checked by an agent")
    silent_for = (now - last_checked).total_seconds()
    if silent_for > interval_s * allowed_misses:
        return Verdict(
            "offline",
            f"no report from any agent since {_iso(last_checked)} "
            f"({int(silent_for // interval_s)} checks of {interval_s}s missed)",
        )
    if failures >= allowed_misses:
        return Verdict("offline", f"no answer in the last {failures} checks: {last_error or 'unreachable'}")
    if failures > 0:
        base = current if current in ("online", "fault", "offline") else "registered"
        return Verdict(
            base, f"{failures} of {allowed_misses} allowed missed answers: {last_error or 'unreachable'}"
        )
    if last_authenticated is False:
        return Verdict("fault", "answers but refuses the registered credentials")
    if snapshot_failures >= allowed_snapshot_misses:
        return Verdict(
            "fault",
            f"no picture in the last {snapshot_failures} snapshots: {last_snapshot_error or 'unspecified'}",
        )
    if verdict == "fault":
        return Verdict("fault", f"picture fails diagnosis: {', '.join(faults or []) or 'unspecified'}")
    if stream is not None:  # the `stream` fault: the latest stream check's reason (cameras.stream)
        return Verdict("fault", stream)
    return Verdict("online", f"answered at {_iso(last_checked)}")


def clock_fault(skew_s: float | None, max_skew_s: float) -> str | None:
    """The `clock` fault (时钟不准) when the measured skew is beyond the allowed one, as its reason.

    A fault of its own beside the status: a camera with a wrong clock still answers and still
    shows the road, but its recordings and its timestamps (OSD, events) are off by the skew.
    """
    if skew_s is None or abs(skew_s) <= max_skew_s:
        return None
    return f"device clock {'behind' if skew_s < 0 else 'ahead'} by {_span(abs(skew_s))} ({skew_s:+.0f} s)"


def _span(s: float) -> str:
    for unit, size in (("years", 365.25 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if s >= 2 * size:
            return f"{s / size:.1f} {unit}"
    return f"{s:.0f} s"


def open_faults(dev: Device, allowed_snapshot_misses: int) -> list[str]:
    """The names of a device's open faults, from the same stored evidence as its status:
    `offline`, `auth` (refuses the credentials), `no_picture`, the picture's diagnosis faults
    (`blur`, …) and `clock`, which may stand beside an online status."""
    out: list[str] = []
    if dev.status == "offline":
        out.append("offline")
    elif dev.status == "fault":
        if dev.last_authenticated is False:
            out.append("auth")
        elif isinstance(dev, Camera) and dev.snapshot_failures >= allowed_snapshot_misses:
            out.append("no_picture")
        elif isinstance(dev, Camera) and dev.last_verdict == "fault":
            out.extend(str(f) for f in dev.last_faults or [])
    if isinstance(dev, Camera) and dev.clock_fault_since is not None:
        out.append("clock")
    return out


# Called with the device id whenever a status changes in this process (the coverage model listens).
status_listeners: list[Callable[[str], None]] = []


def _apply(dev: Device, v: Verdict, now: dt.datetime) -> None:
    if dev.status != v.status:
        dev.status_since = now
        device_id = dev.device_id if isinstance(dev, Camera) else dev.checkpoint_id
        for notify in tuple(status_listeners):
            notify(device_id)
    dev.status, dev.status_reason = v.status, v.reason[:500]


def refresh(dev: Device, now: dt.datetime, allowed_misses: int, allowed_snapshot_misses: int = 3) -> None:
    interval = dev.health_interval_s if isinstance(dev, Camera) else 60
    verdict = dev.last_verdict if isinstance(dev, Camera) else None
    faults = dev.last_faults if isinstance(dev, Camera) else None
    stream = stream_reason(dev.last_stream_faults, dev.last_stream_error) if isinstance(dev, Camera) else None
    v = derive_status(
        now=now,
        interval_s=interval,
        allowed_misses=allowed_misses,
        current=dev.status,
        last_checked=dev.last_checked,
        failures=dev.failures,
        last_authenticated=dev.last_authenticated,
        last_error=dev.last_error,
        verdict=verdict,
        faults=faults,
        snapshot_failures=dev.snapshot_failures if isinstance(dev, Camera) else 0,
        allowed_snapshot_misses=allowed_snapshot_misses,
        last_snapshot_error=dev.last_snapshot_error if isinstance(dev, Camera) else None,
        stream=stream,
    )
    _apply(dev, v, now)


def _devices(session: Session, ids: set[str]) -> dict[str, Any]:
    found: dict[str, Any] = {
        c.device_id: c for c in session.scalars(select(Camera).where(Camera.device_id.in_(ids)))
    }
    rest = ids - set(found)
    if rest:
        for cp in session.scalars(select(Checkpoint).where(Checkpoint.checkpoint_id.in_(rest))):
            found[cp.checkpoint_id] = cp
    return found


def _insert_ignore(session: Session, table: Any, rows: list[dict[str, Any]]) -> set[str]:
    """Insert rows, skipping keys already stored; return the keys actually inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    ins = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    stmt = ins.on_conflict_do_nothing(index_elements=["key"]).returning(table.c.key)
    return {r[0] for r in session.execute(stmt, rows)}


def _validate(items: list[dict[str, Any]], model: Any) -> tuple[list[tuple[int, Any]], list[Rejected]]:
    good, bad = [], []
    now = utcnow()
    for i, raw in enumerate(items):
        try:
            item = model.model_validate(raw)
        except ValidationError as e:
            errs = [
                f"{'.'.join(str(p) for p in er['loc'])}: {text_error(er) or er['msg']}" for er in e.errors()
            ]
            bad.append(
                Rejected(index=i, key=str(raw.get("key")) if isinstance(raw, dict) else None, errors=errs)
            )
            continue
        # no offset, or more than an hour ahead (a 2099 reading would keep the device online forever)
        problem = ts_problem(item.ts, now)
        if problem is not None:
            bad.append(Rejected(index=i, key=item.key, errors=[problem]))
            continue
        good.append((i, item))
    return good, bad


def ingest_health(
    session: Session,
    items: list[dict[str, Any]],
    agent: str,
    allowed_misses: int,
    *,
    allowed_snapshot_misses: int = 3,
    max_clock_skew_s: float = 60.0,
) -> IngestReply:
    good, rejected = _validate(items, HealthItem)
    devices = _devices(session, {it.device_id for _, it in good})
    rows, keep = [], []
    for i, it in good:
        if it.device_id not in devices:
            rejected.append(
                Rejected(index=i, key=it.key, errors=[f"device {it.device_id} is not registered"])
            )
            continue
        keep.append(it)
        rows.append({**it.model_dump(), "agent": agent, "received_at": utcnow()})
    inserted = _insert_ignore(session, HealthObservation.__table__, rows)
    now = utcnow()
    # evidence moves forward only: a replayed old observation is stored but does not rewrite the present
    for it in sorted((it for it in keep if it.key in inserted), key=lambda x: x.ts):
        dev = devices[it.device_id]
        if dev.last_checked is not None and it.ts <= dev.last_checked:
            continue
        dev.last_checked = it.ts
        if it.reachable:
            dev.failures = 0
            dev.last_seen = it.ts
            dev.last_authenticated = it.authenticated
            dev.last_error = None if it.authenticated is not False else (it.error or "authentication refused")
        else:
            dev.failures += 1
            dev.last_error = it.error or "unreachable"
        if isinstance(dev, Camera) and it.clock_skew_s is not None:
            # the clock read is kept until the next reading: an unanswered check says nothing of it
            dev.clock_skew_s = it.clock_skew_s
            off = clock_fault(it.clock_skew_s, max_clock_skew_s) is not None
            dev.clock_fault_since = (dev.clock_fault_since or it.ts) if off else None
    for dev in devices.values():
        refresh(dev, now, allowed_misses, allowed_snapshot_misses)
    session.flush()
    accepted = len(inserted)
    return IngestReply(
        accepted=accepted, duplicates=len(keep) - accepted, rejected=sorted(rejected, key=lambda r: r.index)
    )


def ingest_snapshots(
    session: Session,
    items: list[dict[str, Any]],
    store: ObjectStore,
    allowed_misses: int,
    *,
    allowed_snapshot_misses: int = 3,
) -> IngestReply:
    """Store pictures (checked against the object store) and failed snapshots, and re-derive status.

    A failed snapshot is evidence too: each one in a row counts towards `allowed_snapshot_misses`,
    and a picture resets the count. The failure that reaches the limit is stored with the verdict
    `fault` (`no_picture`), so the intact rate rebuilt from history agrees with the live status.
    """
    good, rejected = _validate(items, SnapshotItem)
    devices = _devices(session, {it.device_id for _, it in good})
    rows, keep = [], []
    for i, it in good:
        errors: list[str] = []
        if it.device_id not in devices:
            errors.append(f"device {it.device_id} is not registered")
        elif it.error is not None:
            if it.key.startswith("snapshots/"):
                errors.append("a failed snapshot has no object: its key is the agent's, not an object key")
        elif not it.key.startswith(f"snapshots/{it.device_id}/"):
            errors.append("key is not one presigned for this device")
        else:
            try:
                # the content's own hash, never the uploader's word for it; on S3 this also moves
                # the upload from its staging key to its final one, which no URL can write
                digest: str | None = store.accept_upload(it.key, it.sha256)
            except NotFound:
                digest = None
            except ValidationFailed:
                # a key no store can hold ("..", an odd character): this item's fault, not the batch's
                rejected.append(
                    Rejected(index=i, key=it.key, errors=["key: not an object key the store can hold"])
                )
                continue
            # any other failure (the store is down) propagates as 503: the agent keeps the record
            # and retries, instead of being told it is invalid
            if digest is None:
                errors.append("object not found in the store: upload it through the presigned URL first")
            elif digest != it.sha256:
                errors.append("sha256 does not match the stored object")
        if errors:
            rejected.append(Rejected(index=i, key=it.key, errors=errors))
            continue
        q = it.quality.model_dump() if it.quality else None
        keep.append(it)
        rows.append(
            {
                "key": it.key,
                "device_id": it.device_id,
                "ts": it.ts,
                "sha256": it.sha256,
                "width": it.width,
                "height": it.height,
                "quality": q,
                "verdict": it.quality.verdict if it.quality else None,
                "error": it.error,
                "received_at": utcnow(),
            }
        )
    inserted = _insert_ignore(session, Snapshot.__table__, rows)
    now = utcnow()
    for it in sorted((it for it in keep if it.key in inserted), key=lambda x: x.ts):
        dev = devices[it.device_id]
        if not isinstance(dev, Camera):
            continue
        latest = max((t for t in (dev.last_snapshot_at, dev.last_snapshot_failed_at) if t), default=None)
        if latest is not None and it.ts <= latest:
            continue
        if it.error is not None:
            dev.snapshot_failures += 1
            dev.last_snapshot_error = it.error
            dev.last_snapshot_failed_at = it.ts
            if dev.snapshot_failures == allowed_snapshot_misses:
                session.execute(
                    update(Snapshot)
                    .where(Snapshot.key == it.key)
                    .values(verdict="fault", quality={"verdict": "fault", "faults": ["no_picture"]})
                )
            continue
        dev.snapshot_failures, dev.last_snapshot_error = 0, None
        dev.last_snapshot_at, dev.last_snapshot_key = it.ts, it.key
        if it.quality is not None:
            dev.last_verdict, dev.last_faults = it.quality.verdict, list(it.quality.faults)
    for dev in devices.values():
        refresh(dev, now, allowed_misses, allowed_snapshot_misses)
    session.flush()
    accepted = len(inserted)
    return IngestReply(
        accepted=accepted, duplicates=len(keep) - accepted, rejected=sorted(rejected, key=lambda r: r.index)
    )


def sweep(
    session: Session, allowed_misses: int, now: dt.datetime | None = None, allowed_snapshot_misses: int = 3
) -> int:
    """Mark devices whose reports stopped as offline; returns how many changed. Idempotent."""
    now = now or utcnow()
    changed = 0
    # Only silence depends on the clock (derive_status): a device that reported within the shortest
    # interval × allowed misses keeps the status its last report gave it, so only older ones are read.
    shortest = session.scalar(select(func.min(Camera.health_interval_s)))
    for model, interval in ((Camera, shortest or 60), (Checkpoint, 60)):
        stale_before = now - dt.timedelta(seconds=interval * allowed_misses)
        rows = session.scalars(
            select(model).where(
                model.last_checked.is_not(None), model.last_checked < stale_before, model.status != "offline"
            )
        )
        for dev in rows:
            before = dev.status
            refresh(dev, now, allowed_misses, allowed_snapshot_misses)
            changed += dev.status != before
    session.flush()
    return changed


def reset_evidence(session: Session, device_id: str) -> None:
    """Forget derived state (used when a device is re-registered)."""
    session.execute(
        update(Camera)
        .where(Camera.device_id == device_id)
        .values(
            status="registered",
            status_reason=None,
            failures=0,
            last_checked=None,
            snapshot_failures=0,
            last_snapshot_error=None,
            clock_fault_since=None,
        )
    )
