"""Ingest of the 三轨 records: vehicle passes, face sightings, phone sightings.

A batch is validated item by item (bad items come back with their reasons, good ones are
stored). Only a truly broken item is refused: no key, no time, a time more than an hour ahead or
older than the retention (it would be deleted at the next maintenance run), or a sensor that is
not registered. A pass without a readable plate is stored under a marker (`plates.read`), and an
optional field out of range is dropped and named in the reply's `warnings`. Storing is idempotent
on the item's key: rows already there are skipped, and only the new ones raise hotlist alarms.

How the rows reach the table: large batches on PostgreSQL are COPYed straight into the
partitioned table under a savepoint — the common case, a batch never seen before, costs what a
raw COPY costs. If any row is already there (an agent's retry, another replica's concurrent
insert), the primary key refuses the COPY, the savepoint rolls it back, and the batch goes through
COPY into a temporary staging table and one INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING
key, which tells which rows were new. Smaller batches, and SQLite, use a multi-row INSERT … ON
CONFLICT DO NOTHING RETURNING key.

The per-item work is kept to what the checks need: one pydantic call validates the whole batch
(items are revisited one by one only when some fail), the time bounds are computed once per
batch, and the common plate is recognised by one regex (`plates.read`).
"""

from __future__ import annotations

import datetime as dt
import gc
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from typing import Any, NamedTuple

import psycopg.errors
from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from tianwang.alarms import hotlists
from tianwang.checkpoints import plates
from tianwang.config import get_settings
from tianwang.errors import ValidationFailed
from tianwang.protocol.fields import BAD_TEXT, text_error
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
from tianwang.record_time import MAX_FUTURE, oldest_accepted, ts_problem
from tianwang.storage import sql
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

COPY_THRESHOLD = 1000
# Plates without a subject to match against a hotlist: every pass without a plate shares them.
_NO_SUBJECT = frozenset({plates.PlateKind.none, plates.PlateKind.unread})
# The PostgreSQL errors that send a COPY batch to the staging path: a row already stored (a
# retry, or a concurrent insert of the same record), or a lock cycle with a concurrent batch.
_RETRY_STAGED = (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected)


@dataclass
class Outcome:
    reply: RecordReply
    alarms: list[Alarm] = field(default_factory=list)
    inserted_keys: set[str] = field(default_factory=set)


class Row(NamedTuple):
    at: int  # the item's index in the batch
    values: tuple[Any, ...]  # in the track's `columns` order: subject, ts, key first
    seen: hotlists.Seen | None


@dataclass(frozen=True)
class Track:
    """What differs between the three record kinds (三轨)."""

    model: type[BaseModel]
    optional: frozenset[str]
    table: Table
    # the columns a row fills, in the order of its values; the primary key (subject, ts, key) first
    columns: tuple[str, ...]
    hotlist_kind: hotlists.Kind
    sensor_field: str  # the item's field naming its sensor
    sensor_what: str  # the sensor, as named in a refusal
    registry: tuple[Any, Any, Any]  # the registry's id, lon and lat columns


KEY = 2  # where a row's key is (the third column of every record table's primary key)
PASSES = Track(
    PassItem,
    PASS_OPTIONAL,
    Pass.__table__,
    (
        "plate_no",
        "ts",
        "key",
        "checkpoint_id",
        "plate_kind",
        "plate_valid",
        "lane",
        "plate_color",
        "vehicle_type",
        "vehicle_color",
        "speed_kmh",
        "direction_deg",
        "image_key",
        "device_id",
        "received_at",
        "plate_class",
        "plate_char_reliability",
    ),
    "plate",
    "checkpoint_id",
    "checkpoint",
    (Checkpoint.checkpoint_id, Checkpoint.lon, Checkpoint.lat),
)
FACES = Track(
    FaceItem,
    FACE_OPTIONAL,
    FaceSighting.__table__,
    ("person_id", "ts", "key", "camera_id", "confidence", "image_key", "received_at"),
    "person",
    "camera_id",
    "camera",
    (Camera.device_id, Camera.lon, Camera.lat),
)
PHONES = Track(
    PhoneItem,
    PHONE_OPTIONAL,
    PhoneSighting.__table__,
    ("imsi", "ts", "key", "fence_id", "imei", "mac", "rssi", "received_at"),
    "imsi",
    "fence_id",
    "fence",
    (Fence.fence_id, Fence.lon, Fence.lat),
)
_PASS_COLUMN = {c: n for n, c in enumerate(PASSES.columns)}
_HEADING = _PASS_COLUMN["direction_deg"]  # a hotlist may be limited to directions of travel

# (index, validated item, its sensor's position, warnings so far) → the stored row
Build = Callable[[int, Any, tuple[float, float], list[str]], Row]


def _err_list(e: ValidationError) -> list[str]:
    return [f"{'.'.join(str(p) for p in er['loc'])}: {text_error(er) or er['msg']}" for er in e.errors()]


def _corrupt(e: ValidationError) -> bool:
    """Whether the item holds text no database can store (a NUL, a control character, a lone
    surrogate): corrupt, not odd, so refused even when the field is optional — a plate with a NUL
    in it is no plate to store as "unread"."""
    return any(er["type"] == BAD_TEXT or text_error(er) is not None for er in e.errors())


def retention(days: int | None) -> int:
    """The retention the ingest enforces: the caller's, else the configured `pass_retention_days`."""
    return days if days is not None else get_settings().pass_retention_days


@cache
def _list_of(model: type[BaseModel]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def _one(
    i: int, raw: Any, model: type[BaseModel], optional: frozenset[str]
) -> tuple[Any, list[str] | None] | Rejected:
    """One item on its own: validated, or kept without its bad optional fields, or refused."""
    key = str(raw.get("key")) if isinstance(raw, dict) and raw.get("key") is not None else None
    try:
        return model.model_validate(raw), None
    except ValidationError as e:
        # an error with no field (the item is not an object) is never optional
        fields = {str(er["loc"][0]) if er["loc"] else "" for er in e.errors()}
        if not isinstance(raw, dict) or not fields <= optional or _corrupt(e):
            return Rejected(index=i, key=key, errors=_err_list(e))
        try:
            item = model.model_validate({k: v for k, v in raw.items() if k not in fields})
        except ValidationError as e2:
            return Rejected(index=i, key=key, errors=_err_list(e2))
        return item, [f"{m} (dropped: stored without it)" for m in _err_list(e)]


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
    raws = items if isinstance(items, list) else list(items)
    adapter = _list_of(model)
    bad: list[Rejected] = []
    warned: dict[int, list[str]] = {}
    try:
        checked: list[tuple[int, Any]] = list(enumerate(adapter.validate_python(raws)))
    except ValidationError as e:
        # some items fail: the others in one call again, the failing ones one by one
        failed = {int(er["loc"][0]) for er in e.errors() if er["loc"]}
        fine = [i for i in range(len(raws)) if i not in failed]
        by_index = dict(zip(fine, adapter.validate_python([raws[i] for i in fine]), strict=True))
        for i in sorted(failed):
            got = _one(i, raws[i], model, optional)
            if isinstance(got, Rejected):
                bad.append(got)
                continue
            by_index[i], dropped = got
            if dropped:
                warned[i] = dropped
        checked = sorted(by_index.items())
    # the time bounds once per batch; ts_problem only to word a refusal
    future = now + MAX_FUTURE
    oldest = oldest_accepted(now, retention_days) if retention_days is not None else None
    good: list[tuple[int, Any]] = []
    for i, item in checked:
        ts = item.ts
        if ts.tzinfo is None or ts > future or (oldest is not None and ts < oldest):
            problem = ts_problem(ts, now, retention_days)
            if problem is not None:
                bad.append(Rejected(index=i, key=item.key, errors=[problem]))
                warned.pop(i, None)
                continue
        good.append((i, item))
    return good, bad, warned


def insert_new(
    session: Session, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]], copy_threshold: int
) -> set[str]:
    """Insert rows (values in `columns` order, `key` among them) whose primary key is not stored
    yet; return the keys of those inserted."""
    if not rows:
        return set()
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql" and len(rows) >= copy_threshold:
        return _copy_insert(session, table, list(columns), rows)
    ins = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
    stmt = ins.on_conflict_do_nothing().returning(table.c.key)
    return {r[0] for r in session.execute(stmt, [dict(zip(columns, r, strict=True)) for r in rows])}


_TYPES: dict[tuple[str, tuple[str, ...]], list[int]] = {}


def _column_types(cur: psycopg.Cursor[Any], table: str, cols: list[str]) -> list[int]:
    """The PostgreSQL type of each column, as the binary COPY needs them (read once per process)."""
    key = (table, tuple(cols))
    if key not in _TYPES:
        got = dict(
            cur.execute(
                "SELECT attname, atttypid::int FROM pg_attribute "
                "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
                (f"public.{table}",),
            ).fetchall()
        )
        _TYPES[key] = [got[c] for c in cols]
    return _TYPES[key]


def _copy(cur: psycopg.Cursor[Any], target: str, cols: list[str], types: list[int], rows: list[Any]) -> None:
    # binary: the driver packs each value in C (~0.2 µs a row) where the text format costs ~10 µs
    with cur.copy(f"COPY {target} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(types)
        for r in rows:
            cp.write_row(r)


def _copy_insert(session: Session, table: Table, cols: list[str], rows: list[tuple[Any, ...]]) -> set[str]:
    key = cols.index("key")
    names = ", ".join(cols)
    stage = f"_stage_{table.name}"
    raw = session.connection().connection.driver_connection
    with raw.cursor() as cur:  # type: ignore[union-attr]
        types = _column_types(cur, table.name, cols)
        # a batch never seen before (the common case): straight into the table, all rows new
        cur.execute("SAVEPOINT tw_copy")
        try:
            _copy(cur, f"public.{table.name}", cols, types, rows)
        except _RETRY_STAGED:
            cur.execute("ROLLBACK TO SAVEPOINT tw_copy")
        else:
            cur.execute("RELEASE SAVEPOINT tw_copy")
            return {r[key] for r in rows}
        # some rows are stored already: stage them, insert those that are not, learn which
        # (a temporary table lives as long as the pooled connection: made once, emptied at commit)
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE public.{table.name} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        _copy(cur, stage, cols, types, rows)
        cur.execute(
            f"INSERT INTO public.{table.name} ({names}) SELECT {names} FROM {stage} "  # noqa: S608
            "ON CONFLICT DO NOTHING RETURNING key"
        )
        keys = {r[0] for r in cur.fetchall()}
        cur.execute(f"TRUNCATE {stage}")
    return keys


def _store(
    session: Session,
    track: Track,
    rows: list[Row],
    rejected: list[Rejected],
    copy_threshold: int,
    warned: dict[int, list[str]],
) -> Outcome:
    # the first of several items with one key wins; the others count as duplicates
    unique: dict[str, Row] = {}
    for r in rows:
        unique.setdefault(r.values[KEY], r)
    values = [r.values for r in unique.values()]
    inserted = insert_new(session, track.table, track.columns, values, copy_threshold)
    # records without a subject (a pass with no readable plate) are stored but match no hotlist
    if len(inserted) == len(unique):
        seen = [r.seen for r in unique.values() if r.seen is not None]
    else:
        seen = [r.seen for r in unique.values() if r.seen is not None and r.values[KEY] in inserted]
    alarms = hotlists.match(session, track.hotlist_kind, seen)
    reply = RecordReply(
        accepted=len(inserted),
        duplicates=len(rows) - len(inserted),
        rejected=sorted(rejected, key=lambda x: x.index),
        warnings=[
            Warned(index=r.at, key=r.values[KEY], warnings=warned[r.at]) for r in rows if warned.get(r.at)
        ],
    )
    return Outcome(reply, alarms, inserted)


@cache
def _positions_statement(track: Track, pg: bool) -> Any:
    id_col, lon, lat = track.registry
    return select(id_col, lon, lat).where(hotlists.one_of(id_col, "ids", pg))


def _positions(session: Session, track: Track, ids: set[str]) -> dict[str, tuple[float, float]]:
    """Where each registered sensor of `ids` is; an id absent from the answer is not registered."""
    pg = sql.is_pg(session)
    stmt = _positions_statement(track, pg)
    out: dict[str, tuple[float, float]] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 1000):
        for sid, x, y in session.execute(stmt, {"ids": hotlists.values_param(ordered[i : i + 1000], pg)}):
            out[sid] = (x, y)
    return out


_gc_lock = threading.Lock()
_gc_pausers = 0
_gc_was_enabled = True


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off while a batch is processed (threads counted).

    A batch allocates several containers per record (the item, its row, its plate), all alive
    until the batch is stored, none in a reference cycle. The collector, triggered by those
    allocations, would walk them — and every long-lived object of the process — several times
    per batch for nothing: a third of the ingest's Python time, measured. Cycles made meanwhile
    are collected once it is back on."""
    global _gc_pausers, _gc_was_enabled
    with _gc_lock:
        if _gc_pausers == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pausers += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pausers -= 1
            if _gc_pausers == 0 and _gc_was_enabled:
                gc.enable()


def _ingest(
    session: Session,
    items: Sequence[Any],
    track: Track,
    build: Build,
    now: dt.datetime,
    copy_threshold: int,
    retention_days: int | None,
) -> Outcome:
    """Validate, refuse items of unregistered sensors, build the rows, store them, match hotlists."""
    with _collector_paused():
        return _ingest_batch(session, items, track, build, now, copy_threshold, retention_days)


def _ingest_batch(
    session: Session,
    items: Sequence[Any],
    track: Track,
    build: Build,
    now: dt.datetime,
    copy_threshold: int,
    retention_days: int | None,
) -> Outcome:
    good, rejected, warned = validate(
        items, track.model, now, optional=track.optional, retention_days=retention(retention_days)
    )
    sensor = track.sensor_field
    where = _positions(session, track, {getattr(it, sensor) for _, it in good})
    rows: list[Row] = []
    for i, it in good:
        pos = where.get(getattr(it, sensor))
        if pos is None:
            warned.pop(i, None)
            why = f"{sensor}: {track.sensor_what} {getattr(it, sensor)} is not registered"
            rejected.append(Rejected(index=i, key=it.key, errors=[why]))
            continue
        warnings = warned.get(i) or []
        rows.append(build(i, it, pos, warnings))
        if warnings:
            warned[i] = warnings
    return _store(session, track, rows, rejected, copy_threshold, warned)


def _colour(value: str | int | None, name: str, warnings: list[str]) -> str | None:
    if value is None or (value.__class__ is str and value in plates.COLOURS):
        return value  # absent, or already a code: the common case
    try:
        return plates.colour_code(value)
    except ValidationFailed as e:
        warnings.append(f"{name}: {e.detail} (dropped: stored without it)")
        return None


_OTHER = plates.PlateKind.other
_KIND_TEXT = {k: k.value for k in plates.PlateKind}


def pass_row(
    item: PassItem, plate: plates.Plate, received: dt.datetime, warnings: list[str]
) -> tuple[Any, ...]:
    """The `passes` row of a validated item (values in `PASSES.columns` order); unknown colour
    codes are dropped into `warnings`."""
    return (
        plate.plate_no,
        item.ts.astimezone(dt.UTC),
        item.key,
        item.checkpoint_id,
        _KIND_TEXT[plate.kind],
        plate.kind not in plates.NOT_VALID,
        item.lane,
        _colour(item.plate_color, "plate_color", warnings),
        item.vehicle_type,
        _colour(item.vehicle_color, "vehicle_color", warnings),
        item.speed_kmh,
        item.direction_deg,
        item.image_key,
        None,  # device_id: only GA/T 1400 pushes name the capturing device
        received,
        None,  # plate_class and
        None,  # plate_char_reliability: only GA/T 1400 pushes send them
    )


def ingest_passes(
    session: Session,
    items: Sequence[Any],
    *,
    copy_threshold: int = COPY_THRESHOLD,
    extra: Sequence[dict[str, Any]] | None = None,
    retention_days: int | None = None,
) -> Outcome:
    """Store vehicle passes; `extra[i]` adds columns to item i (the GA/T 1400 DeviceID, PlateClass,
    PlateCharReliability), and its
    `_warnings` entry, if any, joins the item's warnings."""
    now = utcnow()

    def build(i: int, it: PassItem, pos: tuple[float, float], warnings: list[str]) -> Row:
        plate = plates.read(it.plate_no)
        if plate.kind is _OTHER:
            warnings.append(f"plate_no: {plate.plate_no!r} {plate.why}: stored as read, plate_valid false")
        values = pass_row(it, plate, now, warnings)
        if extra is not None:
            more = dict(extra[i])
            warnings.extend(more.pop(EXTRA_WARNINGS, None) or [])
            row = list(values)
            for name, v in more.items():
                row[_PASS_COLUMN[name]] = v
            values = tuple(row)
        seen = None
        if plate.kind not in _NO_SUBJECT:
            seen = hotlists.Seen(plate.plate_no, values[1], it.key, it.checkpoint_id, *pos, values[_HEADING])
        return Row(i, values, seen)

    return _ingest(session, items, PASSES, build, now, copy_threshold, retention_days)


def ingest_faces(
    session: Session,
    items: Sequence[Any],
    *,
    copy_threshold: int = COPY_THRESHOLD,
    retention_days: int | None = None,
) -> Outcome:
    now = utcnow()

    def build(i: int, it: FaceItem, pos: tuple[float, float], warnings: list[str]) -> Row:
        ts = it.ts.astimezone(dt.UTC)
        values = (it.person_id, ts, it.key, it.camera_id, it.confidence, it.image_key, now)
        return Row(i, values, hotlists.Seen(it.person_id, ts, it.key, it.camera_id, *pos))

    return _ingest(session, items, FACES, build, now, copy_threshold, retention_days)


def ingest_phones(
    session: Session,
    items: Sequence[Any],
    *,
    copy_threshold: int = COPY_THRESHOLD,
    retention_days: int | None = None,
) -> Outcome:
    now = utcnow()

    def build(i: int, it: PhoneItem, pos: tuple[float, float], warnings: list[str]) -> Row:
        ts = it.ts.astimezone(dt.UTC)
        mac = it.mac.upper() if it.mac else None
        values = (it.imsi, ts, it.key, it.fence_id, it.imei, mac, it.rssi, now)
        return Row(i, values, hotlists.Seen(it.imsi, ts, it.key, it.fence_id, *pos))

    return _ingest(session, items, PHONES, build, now, copy_threshold, retention_days)
