"""Ingest of the 三轨 records: vehicle passes, face sightings, phone sightings.

A batch is validated item by item (bad items come back with their reasons, good ones are
stored). Only a truly broken item is refused: no key, no time, a time more than an hour ahead or
older than the retention (it would be deleted at the next maintenance run), or a sensor that is
not registered. A pass without a readable plate is stored under a marker (`plates.read`), and an
optional field out of range is dropped and named in the reply's `warnings`. Storing is idempotent
on the item's key: the insert skips rows already there (ON CONFLICT DO NOTHING) and RETURNING
tells which were new, so only new records raise hotlist alarms. Large batches on PostgreSQL go
through COPY into a temporary staging table and one INSERT … SELECT … ON CONFLICT DO NOTHING;
smaller ones, and SQLite, through a multi-row INSERT.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tianwang.checkpoints import plates
from tianwang.config import get_settings
from tianwang.errors import ValidationFailed
from tianwang.protocol.ingest import Rejected
from tianwang.protocol.sightings import (
    EXTRA_WARNINGS,
    FACE_OPTIONAL,
    PASS_OPTIONAL,
    PHONE_OPTIONAL,
    FaceItem,
    PassItem,
    PhoneItem,
    RecordReply,
    Warned,
)
from tianwang.record_time import ts_problem
from tianwang.storage.models import (
    Alarm,
    Camera,
    Checkpoint,
    FaceSighting,
    Fence,
    Pass,
    PhoneSighting,
    utcnow,
)
from tianwang.trajectories import hotlists

COPY_THRESHOLD = 1000


@dataclass
class Outcome:
    reply: RecordReply
    alarms: list[Alarm] = field(default_factory=list)
    inserted_keys: set[str] = field(default_factory=set)


@dataclass
class Row:
    index: int
    values: dict[str, Any]
    seen: hotlists.Seen | None


def _err_list(e: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in er['loc'])}: {er['msg']}" for er in e.errors()]


def retention(days: int | None) -> int:
    """The retention the ingest enforces: the caller's, else the configured `pass_retention_days`."""
    return days if days is not None else get_settings().pass_retention_days


def validate(
    items: Sequence[Any],
    model: type[BaseModel],
    now: dt.datetime,
    *,
    optional: frozenset[str] = frozenset(),
    retention_days: int | None = None,
) -> tuple[list[tuple[int, Any]], list[Rejected], dict[int, list[str]]]:
    """(index, item) of the good items, the refused ones, and per index the optional fields dropped.

    An item whose only faults are in `optional` fields is kept without them: one bad optional
    attribute (a vendor's Direction 0, a lane of 120) must not lose the record."""
    good: list[tuple[int, Any]] = []
    bad: list[Rejected] = []
    warned: dict[int, list[str]] = {}
    for i, raw in enumerate(items):
        key = str(raw.get("key")) if isinstance(raw, dict) and raw.get("key") is not None else None
        try:
            item = model.model_validate(raw)
        except ValidationError as e:
            # an error with no field (the item is not an object) is never optional
            fields = {str(er["loc"][0]) if er["loc"] else "" for er in e.errors()}
            if not isinstance(raw, dict) or not fields <= optional:
                bad.append(Rejected(index=i, key=key, errors=_err_list(e)))
                continue
            try:
                item = model.model_validate({k: v for k, v in raw.items() if k not in fields})
            except ValidationError as e2:
                bad.append(Rejected(index=i, key=key, errors=_err_list(e2)))
                continue
            warned[i] = [f"{m} (dropped: stored without it)" for m in _err_list(e)]
        problem = ts_problem(item.ts, now, retention_days)  # type: ignore[attr-defined]
        if problem is not None:
            bad.append(Rejected(index=i, key=key, errors=[problem]))
            warned.pop(i, None)
            continue
        good.append((i, item))
    return good, bad, warned


def insert_new(session: Session, table: Table, rows: list[dict[str, Any]], copy_threshold: int) -> set[str]:
    """Insert rows whose primary key is not stored yet; return the keys of those inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(rows) >= copy_threshold:
        return _copy_insert(session, table, rows)
    ins = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    stmt = ins.on_conflict_do_nothing().returning(table.c.key)
    return {r[0] for r in session.execute(stmt, rows)}


def _copy_insert(session: Session, table: Table, rows: list[dict[str, Any]]) -> set[str]:
    cols = [c.name for c in table.columns]
    names = ", ".join(cols)
    stage = f"_stage_{table.name}"
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        # a temporary table lives as long as the pooled connection: made once, emptied at commit
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE public.{table.name} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        with cur.copy(f"COPY {stage} ({names}) FROM STDIN") as cp:
            for r in rows:
                cp.write_row([r.get(c) for c in cols])
        cur.execute(
            f"INSERT INTO public.{table.name} ({names}) SELECT {names} FROM {stage} "  # noqa: S608
            "ON CONFLICT DO NOTHING RETURNING key"
        )
        keys = {r[0] for r in cur.fetchall()}
        cur.execute(f"TRUNCATE {stage}")
    return keys


def _store(
    session: Session,
    table: Table,
    rows: list[Row],
    rejected: list[Rejected],
    kind: hotlists.Kind,
    copy_threshold: int,
    warned: dict[int, list[str]],
) -> Outcome:
    # the first of several items with one key wins; the others count as duplicates
    unique: dict[str, Row] = {}
    for r in rows:
        unique.setdefault(r.values["key"], r)
    inserted = insert_new(session, table, [r.values for r in unique.values()], copy_threshold)
    # records without a subject (a pass with no readable plate) are stored but match no hotlist
    seen = [r.seen for r in unique.values() if r.seen is not None and r.values["key"] in inserted]
    alarms = hotlists.match(session, kind, seen)
    reply = RecordReply(
        accepted=len(inserted),
        duplicates=len(rows) - len(inserted),
        rejected=sorted(rejected, key=lambda x: x.index),
        warnings=[
            Warned(index=r.index, key=r.values["key"], warnings=warned[r.index])
            for r in rows
            if warned.get(r.index)
        ],
    )
    return Outcome(reply, alarms, inserted)


def _positions(session: Session, cols: Any, ids: set[str]) -> dict[str, tuple[float, float]]:
    id_col, lon, lat = cols
    out: dict[str, tuple[float, float]] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 1000):
        for sid, x, y in session.execute(select(id_col, lon, lat).where(id_col.in_(ordered[i : i + 1000]))):
            out[sid] = (x, y)
    return out


def _colour(value: str | int | None, name: str, warnings: list[str]) -> str | None:
    try:
        return plates.colour_code(value)
    except ValidationFailed as e:
        warnings.append(f"{name}: {e.detail} (dropped: stored without it)")
        return None


def pass_row(
    item: PassItem, plate: plates.Plate, received: dt.datetime, warnings: list[str]
) -> dict[str, Any]:
    """The `passes` row of a validated item; unknown colour codes are dropped into `warnings`."""
    return {
        "plate_no": plate.plate_no,
        "ts": item.ts.astimezone(dt.UTC),
        "key": item.key,
        "checkpoint_id": item.checkpoint_id,
        "lane": item.lane,
        "plate_color": _colour(item.plate_color, "plate_color", warnings),
        "vehicle_type": item.vehicle_type,
        "vehicle_color": _colour(item.vehicle_color, "vehicle_color", warnings),
        "speed_kmh": item.speed_kmh,
        "direction_deg": item.direction_deg,
        "image_key": item.image_key,
        "device_id": None,
        "plate_kind": plate.kind.value,
        "plate_valid": plate.valid,
        "received_at": received,
    }


def ingest_passes(
    session: Session,
    items: Sequence[Any],
    *,
    copy_threshold: int = COPY_THRESHOLD,
    extra: Sequence[dict[str, Any]] | None = None,
    retention_days: int | None = None,
) -> Outcome:
    """Store vehicle passes; `extra[i]` adds columns to item i (the GA/T 1400 DeviceID), and its
    `_warnings` entry, if any, joins the item's warnings."""
    now = utcnow()
    good, rejected, warned = validate(
        items, PassItem, now, optional=PASS_OPTIONAL, retention_days=retention(retention_days)
    )
    where = _positions(
        session,
        (Checkpoint.checkpoint_id, Checkpoint.lon, Checkpoint.lat),
        {it.checkpoint_id for _, it in good},
    )
    rows: list[Row] = []
    for i, it in good:
        if it.checkpoint_id not in where:
            warned.pop(i, None)
            rejected.append(
                Rejected(
                    index=i,
                    key=it.key,
                    errors=[f"checkpoint_id: checkpoint {it.checkpoint_id} is not registered"],
                )
            )
            continue
        warnings = warned.setdefault(i, [])
        plate = plates.read(it.plate_no)
        if plate.kind is plates.PlateKind.other:
            warnings.append(f"plate_no: {plate.plate_no!r} {plate.why}: stored as read, plate_valid false")
        values = pass_row(it, plate, now, warnings)
        if extra is not None:
            more = dict(extra[i])
            warnings.extend(more.pop(EXTRA_WARNINGS, None) or [])
            values.update(more)
        lon, lat = where[it.checkpoint_id]
        seen = None
        if plate.kind not in (plates.PlateKind.none, plates.PlateKind.unread):
            seen = hotlists.Seen(plate.plate_no, values["ts"], it.key, it.checkpoint_id, lon, lat)
        rows.append(Row(i, values, seen))
    return _store(session, Pass.__table__, rows, rejected, "plate", copy_threshold, warned)


def ingest_faces(
    session: Session,
    items: Sequence[Any],
    *,
    copy_threshold: int = COPY_THRESHOLD,
    retention_days: int | None = None,
) -> Outcome:
    now = utcnow()
    good, rejected, warned = validate(
        items, FaceItem, now, optional=FACE_OPTIONAL, retention_days=retention(retention_days)
    )
    where = _positions(session, (Camera.device_id, Camera.lon, Camera.lat), {it.camera_id for _, it in good})
    rows: list[Row] = []
    for i, it in good:
        if it.camera_id not in where:
            rejected.append(
                Rejected(index=i, key=it.key, errors=[f"camera_id: camera {it.camera_id} is not registered"])
            )
            continue
        ts = it.ts.astimezone(dt.UTC)
        values = {
            "person_id": it.person_id,
            "ts": ts,
            "key": it.key,
            "camera_id": it.camera_id,
            "confidence": it.confidence,
            "image_key": it.image_key,
            "received_at": now,
        }
        lon, lat = where[it.camera_id]
        rows.append(Row(i, values, hotlists.Seen(it.person_id, ts, it.key, it.camera_id, lon, lat)))
    return _store(session, FaceSighting.__table__, rows, rejected, "person", copy_threshold, warned)


def ingest_phones(
    session: Session,
    items: Sequence[Any],
    *,
    copy_threshold: int = COPY_THRESHOLD,
    retention_days: int | None = None,
) -> Outcome:
    now = utcnow()
    good, rejected, warned = validate(
        items, PhoneItem, now, optional=PHONE_OPTIONAL, retention_days=retention(retention_days)
    )
    where = _positions(session, (Fence.fence_id, Fence.lon, Fence.lat), {it.fence_id for _, it in good})
    rows: list[Row] = []
    for i, it in good:
        if it.fence_id not in where:
            rejected.append(
                Rejected(index=i, key=it.key, errors=[f"fence_id: fence {it.fence_id} is not registered"])
            )
            continue
        ts = it.ts.astimezone(dt.UTC)
        values = {
            "imsi": it.imsi,
            "ts": ts,
            "key": it.key,
            "fence_id": it.fence_id,
            "imei": it.imei,
            "mac": it.mac.upper() if it.mac else None,
            "rssi": it.rssi,
            "received_at": now,
        }
        lon, lat = where[it.fence_id]
        rows.append(Row(i, values, hotlists.Seen(it.imsi, ts, it.key, it.fence_id, lon, lat)))
    return _store(session, PhoneSighting.__table__, rows, rejected, "imsi", copy_threshold, warned)
