"""Hotlists (布控) and their alarms: what is wanted, and the hits raised when it is seen.

An alarm is stored in the same transaction as the record that raised it, so a committed pass is
never without its alarm and delivery survives a restart; listeners are woken after the commit
and read the alarms from the database (the stream resumes from an alarm id).

A hotlist may be limited in place and time (its `Scope`: checkpoints, areas, local hours, directions
of travel): a record raises an alarm only inside every limit given. Its status (布控中 active, 已撤控
withdrawn, 到期 expired, or pending before it starts) is derived from the clock, never stored, so it
expires by itself. On creation it is matched against the passes of the last `retro_days` days too:
those alarms are marked `retro` (from the past).

Alarms belong to the case of their hotlist: an investigator reads and acknowledges (签收: confirmed
or false positive) only the alarms of the hotlists they made; an admin, all.

Only the investigator who made a hotlist, or an admin, may withdraw it. Reading alarms (where and
when listed subjects were seen) leaves one audit row per call: who, when, since, how many.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import String, and_, bindparam, cast, func, or_, select, union
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.orm import Session, aliased

from tianwang import audit
from tianwang.alarms import sinks as alarm_sinks
from tianwang.auth.tokens import Principal
from tianwang.checkpoints import codes, plates
from tianwang.errors import Forbidden, NotFound, ValidationFailed
from tianwang.protocol.fields import Instant, Line, Text
from tianwang.records import search
from tianwang.storage import sql
from tianwang.storage.models import Alarm, Camera, Checkpoint, Hotlist, HotlistEntry, Pass, Role, utcnow
from tianwang.validation import OptCode, check_display_text

# text people read: no control characters (Line / Text) and nothing invisible (check_display_text)
ShownLine = Annotated[Line, AfterValidator(check_display_text)]
ShownText = Annotated[Text, AfterValidator(check_display_text)]

Kind = Literal["plate", "imsi", "person"]
CHUNK = 5000
# case_no of an alarm-read audit row when the reader named none (alarms span every case)
NO_CASE = audit.NO_CASE
# active hours are local time (China Standard Time), as the people who set them read a clock
CST = dt.timezone(dt.timedelta(hours=8), "CST")
MAX_RETRO_DAYS = 92
# fuzzy plates matched against the past per query (each one a look-alike pattern)
RETRO_FUZZY_CHUNK = 50
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")
_AREA = re.compile(r"^\d{2,12}$")
Status = Literal["active", "withdrawn", "expired", "pending"]
Verdict = Literal["confirmed", "false_positive"]


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    plate_no: Line | None = Field(None, max_length=40)
    imsi: OptCode = Field(None, pattern=r"^[0-9]{6,15}$")
    person_id: Line | None = Field(None, min_length=1, max_length=64)
    note: ShownText | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _one(self) -> EntryIn:
        named = [x for x in (self.plate_no, self.imsi, self.person_id) if x]
        if len(named) != 1:
            raise ValueError("an entry names exactly one of plate_no, imsi, person_id")
        return self


class ScopeIn(BaseModel):
    """Where a hotlist alarms: at these checkpoints and/or in these areas (division codes or their
    prefixes). A face sighting is in an area by its camera's; a phone sighting is in none."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    checkpoint_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] | None = Field(
        None, min_length=1, max_length=1000
    )
    area_codes: list[Annotated[str, Field(max_length=12)]] | None = Field(None, min_length=1, max_length=100)


class HotlistIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: ShownLine = Field(min_length=1, max_length=200)
    reason: ShownText = Field(min_length=1, max_length=1000)
    case_no: Line = Field(min_length=1, max_length=64)
    valid_from: Instant
    valid_to: Instant
    priority: int = Field(ge=0, le=100)
    fuzzy: bool = False
    entries: list[EntryIn] = Field(min_length=1, max_length=10_000)
    scope: ScopeIn | None = None
    # local time (+08:00), "22:00-06:00"; may wrap midnight
    active_hours: str | None = Field(None, max_length=11)
    directions: list[int | str] | None = Field(None, min_length=1, max_length=8)
    retro_days: int | None = Field(None, ge=0, le=MAX_RETRO_DAYS)


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    verdict: Verdict
    note: ShownText | None = Field(None, max_length=1000)


@dataclass(frozen=True)
class Scope:
    """A hotlist's limits, parsed once per match (None: no limit of that kind)."""

    checkpoint_ids: frozenset[str] | None = None
    area_codes: tuple[str, ...] | None = None
    hours: tuple[int, int] | None = None  # [start, end) in minutes of the local day; may wrap
    headings: tuple[float, ...] | None = None  # degrees, each matched within ±search.DIRECTION_TOL_DEG

    @property
    def unlimited(self) -> bool:
        return self == NO_SCOPE

    def admits(self, ts: dt.datetime, sensor_id: str, area_code: str | None, heading: float | None) -> bool:
        """Whether a record at `ts`, by `sensor_id` (in `area_code`), heading `heading`, is inside
        every limit (a record without a heading is outside a limit on directions)."""
        if self.checkpoint_ids is not None and sensor_id not in self.checkpoint_ids:
            return False
        if self.area_codes is not None and (
            area_code is None or not any(area_code.startswith(a) for a in self.area_codes)
        ):
            return False
        if self.hours is not None and not in_hours(ts, self.hours):
            return False
        return self.headings is None or (heading is not None and heading_within(heading, self.headings))


NO_SCOPE = Scope()


def parse_hours(text: str) -> tuple[int, int]:
    m = _HOURS.match(text)
    if m is None:
        raise ValueError('active_hours is "HH:MM-HH:MM" (local time, e.g. "22:00-06:00")')
    h1, m1, h2, m2 = (int(x) for x in m.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end:
        raise ValueError("active_hours must not start and end at the same time (leave it out for all day)")
    return start, end


def in_hours(ts: dt.datetime, hours: tuple[int, int]) -> bool:
    """Whether `ts` falls in [start, end) of the local (+08:00) day; an end before the start wraps
    midnight (22:00-06:00 is the night)."""
    local = ts.astimezone(CST)
    m = local.hour * 60 + local.minute
    start, end = hours
    return start <= m < end if start < end else (m >= start or m < end)


def heading_within(deg: float, headings: Sequence[float]) -> bool:
    """The pass search's rule (search._heading_condition): [code − 22.5°, code + 22.5°)."""
    tol = search.DIRECTION_TOL_DEG
    return any((deg - h) % 360 >= 360 - tol or (deg - h) % 360 < tol for h in headings)


def direction_codes(values: Sequence[int | str]) -> list[str]:
    """GA/T 1400 行驶方向 codes 1–8 (codes.DIRECTIONS) as stored; 9 其他 has no heading to match."""
    out: list[str] = []
    for v in values:
        code = str(v).strip()
        if codes.DIRECTIONS.get(code, (None, ""))[0] is None:
            raise ValueError(f"{str(v)[:10]!r} is not a 行驶方向 code 1–8")
        if code not in out:
            out.append(code)
    return out


def scope_of(h: Hotlist) -> Scope:
    sc = h.scope or {}
    cps, areas = sc.get("checkpoint_ids"), sc.get("area_codes")
    if not (cps or areas or h.active_hours or h.directions):
        return NO_SCOPE
    return Scope(
        checkpoint_ids=frozenset(cps) if cps else None,
        area_codes=tuple(areas) if areas else None,
        hours=parse_hours(h.active_hours) if h.active_hours else None,
        headings=tuple(float(codes.DIRECTIONS[c][0] or 0) for c in h.directions) if h.directions else None,
    )


class Seen(NamedTuple):
    """A newly stored record, as the matcher needs it (one per record at ingest: kept cheap)."""

    subject: str
    ts: dt.datetime
    key: str
    sensor_id: str
    lon: float | None
    lat: float | None
    direction_deg: float | None = None  # passes only: the heading of travel


def create(session: Session, body: HotlistIn, created_by: str) -> Hotlist:
    errors: list[dict[str, str]] = []
    for name in ("valid_from", "valid_to"):
        if getattr(body, name).tzinfo is None:
            errors.append({"field": name, "message": "needs a UTC offset"})
    if not errors and body.valid_to <= body.valid_from:
        errors.append({"field": "valid_to", "message": "must be after valid_from"})
    scope: dict[str, Any] | None = None
    if body.scope is not None:
        scope = {}
        if body.scope.checkpoint_ids:
            scope["checkpoint_ids"] = sorted(set(body.scope.checkpoint_ids))
        if body.scope.area_codes:
            for a in body.scope.area_codes:
                if not _AREA.match(a):
                    errors.append({"field": "scope.area_codes", "message": f"{a[:20]!r}: 2–12 digits"})
            scope["area_codes"] = sorted(set(body.scope.area_codes))
        scope = scope or None
    if body.active_hours is not None:
        try:
            parse_hours(body.active_hours)
        except ValueError as exc:
            errors.append({"field": "active_hours", "message": str(exc)})
    directions: list[str] | None = None
    if body.directions is not None:
        try:
            directions = direction_codes(body.directions)
        except ValueError as exc:
            errors.append({"field": "directions", "message": str(exc)})
    entries: list[HotlistEntry] = []
    for i, e in enumerate(body.entries):
        if e.plate_no:
            try:
                p = plates.parse(e.plate_no)
            except plates.InvalidPlate as exc:
                errors.append({"field": f"entries.{i}.plate_no", "message": exc.detail})
                continue
            entries.append(
                HotlistEntry(
                    kind="plate", value=p.plate_no, match_key=plates.ocr_key(p.plate_no), note=e.note
                )
            )
        elif e.imsi:
            entries.append(HotlistEntry(kind="imsi", value=e.imsi, note=e.note))
        else:
            entries.append(HotlistEntry(kind="person", value=str(e.person_id), note=e.note))
    if errors:
        raise ValidationFailed("the hotlist has invalid fields", errors=errors)
    h = Hotlist(
        name=body.name,
        reason=body.reason,
        case_no=body.case_no,
        valid_from=body.valid_from,
        valid_to=body.valid_to,
        priority=body.priority,
        fuzzy=body.fuzzy,
        created_by=created_by,
        created_at=utcnow(),
        scope=scope,
        active_hours=body.active_hours,
        directions=directions,
        retro_days=body.retro_days,
    )
    session.add(h)
    session.flush()
    for en in entries:
        en.hotlist_id = h.id
    session.add_all(entries)
    session.flush()
    return h


def get(session: Session, hotlist_id: int) -> tuple[Hotlist, list[HotlistEntry]]:
    h = session.get(Hotlist, hotlist_id)
    if h is None:
        raise NotFound(f"hotlist {hotlist_id} does not exist")
    entries = list(
        session.scalars(select(HotlistEntry).where(HotlistEntry.hotlist_id == h.id).order_by(HotlistEntry.id))
    )
    return h, entries


def revoke(session: Session, hotlist_id: int, by: Principal | str, reason: str | None = None) -> Hotlist:
    """Withdraw a hotlist (撤控): it raises no more alarms; it and its alarms stay on record.

    Only its creator or an admin may; `by` as a bare name can only be the creator (no role known)."""
    h, _ = get(session, hotlist_id)
    name, role = (by.name, by.role) if isinstance(by, Principal) else (by, None)
    if name != h.created_by and role is not Role.admin:
        raise Forbidden(
            f"hotlist {hotlist_id} was made by {h.created_by}: only they or an admin may withdraw it"
        )
    if h.revoked_at is None:
        h.revoked_at, h.revoked_by, h.revoked_reason = utcnow(), name, reason
        session.flush()
    return h


def is_active(h: Hotlist, at: dt.datetime) -> bool:
    return h.revoked_at is None and h.valid_from <= at <= h.valid_to


def status(h: Hotlist, now: dt.datetime) -> Status:
    """布控中 active, 已撤控 withdrawn, 到期 expired (past valid_to: no one needs to end it), or
    pending (valid_from still ahead)."""
    if h.revoked_at is not None:
        return "withdrawn"
    if now > h.valid_to:
        return "expired"
    if now < h.valid_from:
        return "pending"
    return "active"


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def json_values(name: str) -> Any:
    """PostgreSQL: a one-column table (`value`) of the strings in the JSON array bound as `name` —
    not thousands of bound parameters to render and plan, nor a text[] whose every element the
    driver adapts in Python (3× slower for 5000 values)."""
    param = cast(bindparam(name, type_=String), PG_JSON)
    return func.json_array_elements_text(param).table_valued("value")


def one_of(col: Any, name: str, pg: bool) -> Any:
    """`col IN` the list bound as `name` (bind it with `values_param`), for a few thousand values."""
    if pg:
        return col.in_(select(json_values(name).c.value))
    return col.in_(bindparam(name, expanding=True))


def values_param(values: list[str], pg: bool) -> Any:
    return json.dumps(values) if pg else values


@cache
def _match_statement(kind: Kind, pg: bool) -> Any:
    """The entries in force in [:first, :last] whose value is one of :subjects (or, fuzzy plate
    hotlists, whose OCR key is one of theirs). Built once: the hot path only binds values."""
    if pg:
        # two joins of the subjects to the entry indexes, united: an OR of two IN-lists would
        # be planned as a scan of every entry of the kind (measured 3× slower at 100 entries)
        subjects, e = json_values("subjects"), aliased(HotlistEntry)
        ids: Any = (
            select(e.id).select_from(subjects).join(e, e.value == subjects.c.value).where(e.kind == kind)
        )
        if kind == "plate":  # plate subjects are normalised already: their OCR key is a translate
            again, f, h = json_values("subjects"), aliased(HotlistEntry), aliased(Hotlist)
            ocr = func.translate(again.c.value, plates.OCR_FROM, plates.OCR_TO)
            fuzzy = (
                select(f.id)
                .select_from(again)
                .join(f, f.match_key == ocr)
                .join(h, h.id == f.hotlist_id)
                .where(f.kind == kind, h.fuzzy.is_(True))
            )
            ids = union(ids, fuzzy)
        hit = HotlistEntry.id.in_(ids)
    else:
        hit = HotlistEntry.value.in_(bindparam("subjects", expanding=True))
        if kind == "plate":
            keys: Any = bindparam("keys", expanding=True)
            hit = or_(hit, and_(Hotlist.fuzzy.is_(True), HotlistEntry.match_key.in_(keys)))
    stamp = Hotlist.valid_from.type
    return (
        select(HotlistEntry, Hotlist)
        .join(Hotlist, Hotlist.id == HotlistEntry.hotlist_id)
        .where(
            HotlistEntry.kind == kind,
            Hotlist.revoked_at.is_(None),
            Hotlist.valid_from <= bindparam("last", type_=stamp),
            Hotlist.valid_to >= bindparam("first", type_=stamp),
            hit,
        )
    )


def match(session: Session, kind: Kind, seen: Sequence[Seen]) -> list[Alarm]:
    """Alarms for the records that hit a hotlist entry in force at the record's time; stored (flushed).

    One query per 5000 subjects on the entry indexes (exact value, and for fuzzy plate hotlists
    the OCR key), limited to the hotlists in force at some time of the batch."""
    if not seen:
        return []
    subjects = sorted({s.subject for s in seen})
    pg = sql.is_pg(session)
    stmt = _match_statement(kind, pg)
    params: dict[str, Any] = {"first": min(s.ts for s in seen), "last": max(s.ts for s in seen)}
    found: dict[int, tuple[HotlistEntry, Hotlist]] = {}
    for part in _chunks(subjects):
        params["subjects"] = values_param(part, pg)
        if kind == "plate" and not pg:
            params["keys"] = sorted({plates.ocr_key(s) for s in part})
        for e, h in session.execute(stmt, params):
            found[e.id] = (e, h)
    if not found:
        return []
    by_value: dict[str, list[tuple[HotlistEntry, Hotlist]]] = {}
    for e, h in found.values():
        by_value.setdefault(e.value, []).append((e, h))
        if h.fuzzy and e.match_key:
            by_value.setdefault("~" + e.match_key, []).append((e, h))
    fuzzy = kind == "plate" and any(h.fuzzy and e.match_key for e, h in found.values())
    scopes = {h.id: scope_of(h) for _, h in found.values()}
    candidates: list[tuple[Seen, HotlistEntry, Hotlist]] = []
    for s in seen:
        hits = list(by_value.get(s.subject, []))
        if fuzzy:
            hits += [x for x in by_value.get("~" + plates.ocr_key(s.subject), []) if x not in hits]
        candidates.extend((s, e, h) for e, h in hits if is_active(h, s.ts))
    # the sensors' areas, read only when a hit's hotlist is limited to areas (hits are rare)
    areas: dict[str, str] = {}
    if any(scopes[h.id].area_codes is not None for _, _, h in candidates):
        areas = sensor_areas(session, kind, {s.sensor_id for s, _, _ in candidates})
    now = utcnow()
    alarms = [
        new_alarm(kind, s, e, h, now)
        for s, e, h in candidates
        if scopes[h.id].unlimited
        or scopes[h.id].admits(s.ts, s.sensor_id, areas.get(s.sensor_id), s.direction_deg)
    ]
    session.add_all(alarms)
    session.flush()
    alarm_sinks.enqueue(session, alarms)  # the outbox rows of webhooks and MQTT, in this transaction
    return alarms


def new_alarm(
    kind: str, s: Seen, e: HotlistEntry, h: Hotlist, now: dt.datetime, retro: bool = False
) -> Alarm:
    return Alarm(
        hotlist_id=h.id,
        entry_id=e.id,
        kind=kind,
        subject=s.subject,
        listed=e.value,
        record_key=s.key,
        sensor_id=s.sensor_id,
        ts=s.ts,
        lon=s.lon,
        lat=s.lat,
        priority=h.priority,
        case_no=h.case_no,
        created_at=now,
        retro=retro,
    )


def sensor_areas(session: Session, kind: Kind, ids: set[str]) -> dict[str, str]:
    """The area (division code) of each sensor of `ids`: a checkpoint's, a face camera's; phone
    fences have none."""
    if kind == "imsi" or not ids:
        return {}
    id_col, area = (
        (Checkpoint.checkpoint_id, Checkpoint.area_code)
        if kind == "plate"
        else (Camera.device_id, Camera.area_code)
    )
    out: dict[str, str] = {}
    ordered = sorted(ids)
    for i in range(0, len(ordered), 1000):
        for sid, code in session.execute(select(id_col, area).where(id_col.in_(ordered[i : i + 1000]))):
            out[sid] = code
    return out


def match_past(session: Session, h: Hotlist, days: int, now: dt.datetime) -> list[Alarm]:
    """Alarms (`retro`) for the passes of the last `days` days that hit the plate entries of `h`
    inside its scope, up to its valid_to; stored (flushed). Idempotent: a pass that already raised
    an alarm for an entry raises none again.

    One query per 5000 exact plates on the plate index; fuzzy hotlists add one per
    RETRO_FUZZY_CHUNK plates through the pass search's look-alike patterns (a superset of the
    OCR-equivalent characters), each hit then checked on its OCR key like a live match."""
    since, until = now - dt.timedelta(days=days), min(now, h.valid_to)
    if days <= 0 or h.revoked_at is not None or since >= until:
        return []
    entries = list(
        session.scalars(
            select(HotlistEntry).where(HotlistEntry.hotlist_id == h.id, HotlistEntry.kind == "plate")
        )
    )
    if not entries:
        return []
    pg = sql.is_pg(session)
    scope = scope_of(h)
    cols = (
        Pass.plate_no,
        Pass.ts,
        Pass.key,
        Pass.checkpoint_id,
        Checkpoint.lon,
        Checkpoint.lat,
        Pass.direction_deg,
        Checkpoint.area_code,
    )
    base = (
        select(*cols)
        .join(Checkpoint, Checkpoint.checkpoint_id == Pass.checkpoint_id)
        .where(Pass.ts >= since, Pass.ts < until)
    )
    if scope.checkpoint_ids is not None:
        base = base.where(Pass.checkpoint_id.in_(sorted(scope.checkpoint_ids)))
    by_value = {e.value: e for e in entries}
    by_key: dict[str, list[HotlistEntry]] = {}
    if h.fuzzy:
        for e in entries:
            if e.match_key:
                by_key.setdefault(e.match_key, []).append(e)
    rows: dict[tuple[str, str], Any] = {}  # (record key, plate) -> row: one pass found twice counts once
    for part in _chunks(sorted(by_value)):
        for r in session.execute(base.where(Pass.plate_no.in_(part))):
            rows[(r.key, r.plate_no)] = r
    fuzzy_values = sorted(by_value) if by_key else []
    for i in range(0, len(fuzzy_values), RETRO_FUZZY_CHUNK):
        pats = [search.PlatePattern(v, lookalikes=True) for v in fuzzy_values[i : i + RETRO_FUZZY_CHUNK]]
        like = [
            Pass.plate_no.regexp_match(p.regex()) if pg else Pass.plate_no.op("GLOB")(p.glob()) for p in pats
        ]
        for r in session.execute(base.where(or_(*like))):
            rows[(r.key, r.plate_no)] = r
    done = {
        (entry_id, key)
        for entry_id, key in session.execute(
            select(Alarm.entry_id, Alarm.record_key).where(Alarm.hotlist_id == h.id)
        )
    }
    alarms: list[Alarm] = []
    for r in sorted(rows.values(), key=lambda r: (r.ts, r.key)):
        if not scope.admits(r.ts, r.checkpoint_id, r.area_code, r.direction_deg):
            continue
        hits = [by_value[r.plate_no]] if r.plate_no in by_value else []
        hits += [e for e in by_key.get(plates.ocr_key(r.plate_no), []) if e not in hits]
        seen = Seen(r.plate_no, r.ts, r.key, r.checkpoint_id, r.lon, r.lat, r.direction_deg)
        for e in hits:
            if (e.id, r.key) not in done:
                done.add((e.id, r.key))
                alarms.append(new_alarm("plate", seen, e, h, now, retro=True))
    session.add_all(alarms)
    session.flush()
    alarm_sinks.enqueue(session, alarms)  # past alarms reach webhooks and MQTT like live ones
    return alarms


def visible_to(reader: Principal) -> str | None:
    """Whose hotlists' alarms `reader` may see: their own (the hotlists they made, under their
    cases); None for an admin (all)."""
    return None if reader.role is Role.admin else reader.name


def _owned(stmt: Any, owner: str | None) -> Any:
    if owner is None:
        return stmt
    return stmt.where(Alarm.hotlist_id.in_(select(Hotlist.id).where(Hotlist.created_by == owner)))


def get_alarm(session: Session, alarm_id: int, reader: Principal) -> tuple[Alarm, Hotlist]:
    """An alarm the reader may see; another case's alarm is as absent as one never raised."""
    a = session.get(Alarm, alarm_id)
    h = session.get(Hotlist, a.hotlist_id) if a is not None else None
    owner = visible_to(reader)
    if a is None or h is None or (owner is not None and h.created_by != owner):
        raise NotFound(f"alarm {alarm_id} does not exist")
    return a, h


def acknowledge(session: Session, alarm_id: int, body: AckIn, reader: Principal) -> tuple[Alarm, Hotlist]:
    """签收: the reader's verdict on an alarm (confirmed or false_positive) and why; a later
    acknowledgement replaces it (each one is audited by the caller)."""
    a, h = get_alarm(session, alarm_id, reader)
    a.ack_verdict, a.ack_note, a.ack_by, a.ack_at = body.verdict, body.note, reader.name, utcnow()
    session.flush()
    return a, h


def list_alarms(
    session: Session,
    *,
    since: dt.datetime | None,
    after_id: int | None,
    limit: int,
    reader: Principal | None = None,
    case_no: str | None = None,
) -> list[Alarm]:
    """Alarms oldest first; with `reader`, only those it may see (`visible_to`), and the read is
    audited (one row, in the same transaction)."""
    stmt = _owned(select(Alarm), visible_to(reader) if reader is not None else None)
    if since is not None:
        stmt = stmt.where(Alarm.created_at >= since)
    if after_id is not None:
        stmt = stmt.where(Alarm.id > after_id)
    rows = list(session.scalars(stmt.order_by(Alarm.id).limit(limit)))
    if reader is not None:
        audit_alarm_read(
            session,
            reader,
            route="alarms.list",
            since=since,
            after_id=after_id,
            count=len(rows),
            case_no=case_no,
        )
    return rows


def audit_alarm_read(
    session: Session,
    reader: Principal,
    *,
    route: str,
    since: dt.datetime | None,
    after_id: int | None,
    count: int,
    case_no: str | None = None,
) -> None:
    """One audit row for a read of alarms (a list call, or the opening of a stream): who, when
    (the row's `at`), from when, how many. One insert: cheap enough for every call."""
    audit.record(
        session,
        user=reader.name,
        role=reader.role.value,
        route=route,
        case_no=audit.check_case_no(case_no) if case_no else NO_CASE,
        params={"since": since, "after_id": after_id},
        result_size=count,
    )


# Alarm ids come from a sequence at insert, but concurrent ingest transactions commit in any order: an
# alarm with a smaller id can become visible after a larger one was streamed. A stream therefore
# re-reads alarms raised in the last SETTLE_S seconds (within LOOKBACK_IDS ids) and skips those sent.
SETTLE_S = 30.0
LOOKBACK_IDS = 100_000


def stream_batch(
    session: Session,
    *,
    last: int,
    floor: int,
    sent: Collection[int],
    now: dt.datetime,
    limit: int,
    owner: str | None = None,
) -> list[Alarm]:
    """The alarms a stream that has sent everything up to `last` (and the ids in `sent`) owes now:
    newer ids, and late-committed older ones raised within SETTLE_S, never at or below `floor`."""
    low = max(floor, last - LOOKBACK_IDS)
    settle_since = now - dt.timedelta(seconds=SETTLE_S)
    stmt = (
        _owned(select(Alarm), owner)
        .where(Alarm.id > low, or_(Alarm.id > last, Alarm.created_at >= settle_since))
        .order_by(Alarm.id)
        .limit(limit + len(sent))
    )
    return [a for a in session.scalars(stmt) if a.id not in sent][:limit]


def last_alarm_id(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.max(Alarm.id), 0))) or 0)


def alarm_dict(a: Alarm) -> dict[str, Any]:
    return {
        "id": a.id,
        "hotlist_id": a.hotlist_id,
        "entry_id": a.entry_id,
        "kind": a.kind,
        "subject": a.subject,
        "listed": a.listed,
        "record_key": a.record_key,
        "sensor_id": a.sensor_id,
        "ts": a.ts.isoformat(),
        "lon": a.lon,
        "lat": a.lat,
        "priority": a.priority,
        "case_no": a.case_no,
        "created_at": a.created_at.isoformat(),
        "retro": bool(a.retro),
        "ack": None
        if a.ack_verdict is None
        else {
            "verdict": a.ack_verdict,
            "note": a.ack_note,
            "by": a.ack_by,
            "at": a.ack_at.isoformat() if a.ack_at else None,
        },
    }


def hotlist_dict(h: Hotlist, entries: list[HotlistEntry]) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": h.id,
        "name": h.name,
        "reason": h.reason,
        "case_no": h.case_no,
        "valid_from": h.valid_from.isoformat(),
        "valid_to": h.valid_to.isoformat(),
        "priority": h.priority,
        "fuzzy": h.fuzzy,
        "created_by": h.created_by,
        "created_at": h.created_at.isoformat(),
        "revoked_at": h.revoked_at.isoformat() if h.revoked_at else None,
        "revoked_by": h.revoked_by,
        "revoked_reason": h.revoked_reason,
        "active": is_active(h, now),
        "status": status(h, now),
        "scope": h.scope,
        "active_hours": h.active_hours,
        "directions": h.directions,
        "retro_days": h.retro_days,
        "entries": [{"id": e.id, "kind": e.kind, "value": e.value, "note": e.note} for e in entries],
    }
