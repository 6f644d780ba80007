"""Hotlists (布控) and their alarms: what is wanted, and the hits raised when it is seen.

An alarm is stored in the same transaction as the record that raised it, so a committed pass is
never without its alarm and delivery survives a restart; listeners are woken after the commit
and read the alarms from the database (the stream resumes from an alarm id).

Only the investigator who made a hotlist, or an admin, may withdraw it. Reading alarms (where and
when listed subjects were seen) leaves one audit row per call: who, when, since, how many.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Sequence
from functools import cache
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import String, and_, bindparam, cast, func, or_, select, union
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.orm import Session, aliased

from tianwang.auth.tokens import Principal
from tianwang.checkpoints import plates
from tianwang.errors import Forbidden, NotFound, ValidationFailed
from tianwang.storage.models import Alarm, Hotlist, HotlistEntry, Role, utcnow
from tianwang.trajectories import alarm_sinks, audit

Kind = Literal["plate", "imsi", "person"]
CHUNK = 5000
# case_no of an alarm-read audit row when the reader named none (alarms span every case)
NO_CASE = "-"


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    plate_no: str | None = Field(None, max_length=40)
    imsi: str | None = Field(None, pattern=r"^\d{6,15}$")
    person_id: str | None = Field(None, min_length=1, max_length=64)
    note: str | None = Field(None, max_length=500)

    @model_validator(mode="after")
    def _one(self) -> EntryIn:
        named = [x for x in (self.plate_no, self.imsi, self.person_id) if x]
        if len(named) != 1:
            raise ValueError("an entry names exactly one of plate_no, imsi, person_id")
        return self


class HotlistIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    reason: str = Field(min_length=1, max_length=1000)
    case_no: str = Field(min_length=1, max_length=64)
    valid_from: dt.datetime
    valid_to: dt.datetime
    priority: int = Field(ge=0, le=100)
    fuzzy: bool = False
    entries: list[EntryIn] = Field(min_length=1, max_length=10_000)


class Seen(NamedTuple):
    """A newly stored record, as the matcher needs it (one per record at ingest: kept cheap)."""

    subject: str
    ts: dt.datetime
    key: str
    sensor_id: str
    lon: float | None
    lat: float | None


def create(session: Session, body: HotlistIn, created_by: str) -> Hotlist:
    errors: list[dict[str, str]] = []
    for name in ("valid_from", "valid_to"):
        if getattr(body, name).tzinfo is None:
            errors.append({"field": name, "message": "needs a UTC offset"})
    if not errors and body.valid_to <= body.valid_from:
        errors.append({"field": "valid_to", "message": "must be after valid_from"})
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


def revoke(session: Session, hotlist_id: int, by: Principal | str) -> Hotlist:
    """Withdraw a hotlist (撤控): it raises no more alarms; it and its alarms stay on record.

    Only its creator or an admin may; `by` as a bare name can only be the creator (no role known)."""
    h, _ = get(session, hotlist_id)
    name, role = (by.name, by.role) if isinstance(by, Principal) else (by, None)
    if name != h.created_by and role is not Role.admin:
        raise Forbidden(
            f"hotlist {hotlist_id} was made by {h.created_by}: only they or an admin may withdraw it"
        )
    if h.revoked_at is None:
        h.revoked_at, h.revoked_by = utcnow(), name
        session.flush()
    return h


def is_active(h: Hotlist, at: dt.datetime) -> bool:
    return h.revoked_at is None and h.valid_from <= at <= h.valid_to


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
    pg = session.get_bind().dialect.name == "postgresql"
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
    alarms: list[Alarm] = []
    now = utcnow()
    for s in seen:
        hits = list(by_value.get(s.subject, []))
        if fuzzy:
            hits += [x for x in by_value.get("~" + plates.ocr_key(s.subject), []) if x not in hits]
        for e, h in hits:
            if not is_active(h, s.ts):
                continue
            alarms.append(
                Alarm(
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
                )
            )
    session.add_all(alarms)
    session.flush()
    alarm_sinks.enqueue(session, alarms)  # the outbox rows of webhooks and MQTT, in this transaction
    return alarms


def list_alarms(
    session: Session,
    *,
    since: dt.datetime | None,
    after_id: int | None,
    limit: int,
    reader: Principal | None = None,
    case_no: str | None = None,
) -> list[Alarm]:
    """Alarms oldest first; with `reader`, the read is audited (one row, in the same transaction)."""
    stmt = select(Alarm)
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
    session: Session, *, last: int, floor: int, sent: Collection[int], now: dt.datetime, limit: int
) -> list[Alarm]:
    """The alarms a stream that has sent everything up to `last` (and the ids in `sent`) owes now:
    newer ids, and late-committed older ones raised within SETTLE_S, never at or below `floor`."""
    low = max(floor, last - LOOKBACK_IDS)
    settle_since = now - dt.timedelta(seconds=SETTLE_S)
    stmt = (
        select(Alarm)
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
    }


def hotlist_dict(h: Hotlist, entries: list[HotlistEntry]) -> dict[str, Any]:
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
        "active": is_active(h, utcnow()),
        "entries": [{"id": e.id, "kind": e.kind, "value": e.value, "note": e.note} for e in entries],
    }
