"""Ingest of the 三轨 records: vehicle passes, face sightings, phone sightings.

A batch is validated item by item (bad items come back with their reasons, good ones are
stored), items naming a sensor that is not registered are refused, and storing is idempotent
on the item's key: the insert skips rows already there (ON CONFLICT DO NOTHING) and RETURNING
tells which were new, so only new records raise hotlist alarms. Large batches on PostgreSQL go
through COPY into a temporary staging table and one INSERT … SELECT … ON CONFLICT DO NOTHING;
smaller ones, and SQLite, through a multi-row INSERT.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tianwang.checkpoints import plates
from tianwang.errors import ValidationFailed
from tianwang.protocol.ingest import IngestReply, Rejected
from tianwang.protocol.sightings import FaceItem, PassItem, PhoneItem
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
# Times further than this in the future are a device clock gone wrong, not a record.
MAX_FUTURE = dt.timedelta(hours=1)


@dataclass
class Outcome:
    reply: IngestReply
    alarms: list[Alarm] = field(default_factory=list)
    inserted_keys: set[str] = field(default_factory=set)


@dataclass
class Row:
    index: int
    values: dict[str, Any]
    seen: hotlists.Seen


def _err_list(e: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in er['loc'])}: {er['msg']}" for er in e.errors()]


def validate(
    items: Sequence[Any], model: type[BaseModel], now: dt.datetime
) -> tuple[list[tuple[int, Any]], list[Rejected]]:
    good: list[tuple[int, Any]] = []
    bad: list[Rejected] = []
    for i, raw in enumerate(items):
        key = str(raw.get("key")) if isinstance(raw, dict) and raw.get("key") is not None else None
        try:
            item = model.model_validate(raw)
        except ValidationError as e:
            bad.append(Rejected(index=i, key=key, errors=_err_list(e)))
            continue
        ts: dt.datetime = item.ts  # type: ignore[attr-defined]
        if ts.tzinfo is None:
            bad.append(Rejected(index=i, key=key, errors=["ts: needs a UTC offset"]))
            continue
        if ts > now + MAX_FUTURE:
            bad.append(Rejected(index=i, key=key, errors=["ts: more than an hour in the future"]))
            continue
        good.append((i, item))
    return good, bad


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
) -> Outcome:
    # the first of several items with one key wins; the others count as duplicates
    unique: dict[str, Row] = {}
    for r in rows:
        unique.setdefault(r.values["key"], r)
    inserted = insert_new(session, table, [r.values for r in unique.values()], copy_threshold)
    alarms = hotlists.match(session, kind, [r.seen for r in unique.values() if r.values["key"] in inserted])
    reply = IngestReply(
        accepted=len(inserted),
        duplicates=len(rows) - len(inserted),
        rejected=sorted(rejected, key=lambda x: x.index),
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


def pass_row(item: PassItem, plate_no: str, received: dt.datetime) -> dict[str, Any]:
    return {
        "plate_no": plate_no,
        "ts": item.ts.astimezone(dt.UTC),
        "key": item.key,
        "checkpoint_id": item.checkpoint_id,
        "lane": item.lane,
        "plate_color": plates.colour_code(item.plate_color),
        "vehicle_type": item.vehicle_type,
        "vehicle_color": plates.colour_code(item.vehicle_color),
        "speed_kmh": item.speed_kmh,
        "direction_deg": item.direction_deg,
        "image_key": item.image_key,
        "device_id": None,
        "received_at": received,
    }


def ingest_passes(
    session: Session,
    items: Sequence[Any],
    *,
    copy_threshold: int = COPY_THRESHOLD,
    to_row: Callable[[PassItem, str, dt.datetime], dict[str, Any]] = pass_row,
    extra: Sequence[dict[str, Any]] | None = None,
) -> Outcome:
    """Store vehicle passes; `extra[i]` adds columns to item i (the GA/T 1400 DeviceID)."""
    now = utcnow()
    good, rejected = validate(items, PassItem, now)
    where = _positions(
        session,
        (Checkpoint.checkpoint_id, Checkpoint.lon, Checkpoint.lat),
        {it.checkpoint_id for _, it in good},
    )
    rows: list[Row] = []
    for i, it in good:
        errors: list[str] = []
        plate_no = ""
        try:
            plate_no = plates.parse(it.plate_no).plate_no
        except plates.InvalidPlate as e:
            errors.append(f"plate_no: {e.detail}")
        if it.checkpoint_id not in where:
            errors.append(f"checkpoint_id: checkpoint {it.checkpoint_id} is not registered")
        try:
            values = to_row(it, plate_no, now)
        except ValidationFailed as e:
            errors.append(f"plate_color / vehicle_color: {e.detail}")
            values = {}
        if errors:
            rejected.append(Rejected(index=i, key=it.key, errors=errors))
            continue
        if extra is not None:
            values.update(extra[i])
        lon, lat = where[it.checkpoint_id]
        rows.append(Row(i, values, hotlists.Seen(plate_no, values["ts"], it.key, it.checkpoint_id, lon, lat)))
    return _store(session, Pass.__table__, rows, rejected, "plate", copy_threshold)


def ingest_faces(session: Session, items: Sequence[Any], *, copy_threshold: int = COPY_THRESHOLD) -> Outcome:
    now = utcnow()
    good, rejected = validate(items, FaceItem, now)
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
    return _store(session, FaceSighting.__table__, rows, rejected, "person", copy_threshold)


def ingest_phones(session: Session, items: Sequence[Any], *, copy_threshold: int = COPY_THRESHOLD) -> Outcome:
    now = utcnow()
    good, rejected = validate(items, PhoneItem, now)
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
    return _store(session, PhoneSighting.__table__, rows, rejected, "imsi", copy_threshold)
