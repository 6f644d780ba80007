"""Alarm sinks (告警推送) and the durable outbox that feeds them.

A sink is a signed webhook or an MQTT broker with a topic prefix, for every hotlist or a few. When
an alarm is stored, one outbox row per matching sink is written in the same transaction, so an
alarm is never committed without its deliveries; the delivery worker (`alarm_delivery`) claims due
rows with a lease, sends them, and marks them delivered or due again later (exponential backoff
with jitter). Claiming is one conditional UPDATE (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so any
number of API workers and replicas deliver side by side without sending a row twice at once.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import delete, event, func, insert, literal_column, select, update
from sqlalchemy.orm import Session

from tianwang.auth.secrets_box import SecretBox
from tianwang.errors import NotFound, ValidationFailed
from tianwang.storage.models import Alarm, AlarmDelivery, AlarmSink, Hotlist, utcnow

SinkKind = Literal["webhook", "mqtt"]
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
PENDING, DELIVERED = "pending", "delivered"
# written as a literal, never bound: the planner then sees it implies the partial index's predicate
IS_PENDING = AlarmDelivery.state == literal_column("'pending'")
HotlistId = Annotated[int, Field(ge=1, le=2**31 - 1)]
_WRITTEN = "tianwang.alarm_outbox_written"
# called (from the committing thread) after a transaction that wrote outbox rows commits: the
# delivery workers of this process wake at once instead of at their next poll
_listeners: set[Callable[[], None]] = set()


def add_listener(fn: Callable[[], None]) -> None:
    _listeners.add(fn)


def remove_listener(fn: Callable[[], None]) -> None:
    _listeners.discard(fn)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_WRITTEN, False):
        for fn in list(_listeners):
            fn()


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_WRITTEN, None)


class SinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    kind: SinkKind
    url: str | None = Field(None, min_length=1, max_length=2000)
    topic: str | None = Field(None, min_length=1, max_length=200)
    secret: SecretStr | None = Field(None, min_length=1, max_length=500)
    hotlist_ids: list[HotlistId] | None = Field(None, min_length=1, max_length=1000)


@dataclass(frozen=True)
class SinkConf:
    """What the worker needs of a sink, its secret decrypted (held in memory only)."""

    id: int
    kind: str
    url: str
    topic: str | None
    secret: str | None
    error: str | None = None  # why it cannot be used (its secret unreadable with the configured key)


@dataclass(frozen=True)
class Job:
    """One claimed delivery: an alarm for a sink, leased to one worker under `claim`."""

    delivery_id: int
    sink_id: int
    alarm_id: int
    hotlist_id: int
    attempts: int
    claim: str


def _field_error(field: str, message: str) -> ValidationFailed:
    errors = [{"field": field, "message": message}]
    return ValidationFailed("the alarm sink has invalid fields", errors=errors)


def _check_url(url: str, schemes: tuple[str, ...]) -> str:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as e:
        raise _field_error("url", f"not a URL: {e}") from None
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise _field_error("url", f"needs a scheme of {', '.join(schemes)} and a host")
    if parts.password:
        raise _field_error("url", "put the password in `secret`, not in the URL")
    return url


def _check_topic(topic: str) -> str:
    if any(c in topic for c in "+#\x00") or topic.startswith("/") or topic.endswith("/"):
        raise _field_error("topic", "a topic prefix without wildcards (+ #) nor a leading or trailing /")
    return topic


def create_sink(session: Session, body: SinkIn, box: SecretBox, created_by: str) -> AlarmSink:
    if body.kind == "webhook":
        if not body.url:
            raise _field_error("url", "a webhook needs a url")
        if body.topic:
            raise _field_error("topic", "a webhook has no topic")
        url, topic = _check_url(body.url, ("http", "https")), None
    else:
        if not body.topic:
            raise _field_error("topic", "an MQTT sink needs a topic prefix")
        url, topic = _check_url(body.url or DEFAULT_BROKER, ("mqtt", "mqtts")), _check_topic(body.topic)
    ids = sorted(set(body.hotlist_ids)) if body.hotlist_ids else None
    if ids:
        known = set(session.scalars(select(Hotlist.id).where(Hotlist.id.in_(ids))))
        missing = [i for i in ids if i not in known]
        if missing:
            raise _field_error("hotlist_ids", f"no such hotlist: {', '.join(map(str, missing))}")
    secret = body.secret.get_secret_value() if body.secret else None
    sink = AlarmSink(
        kind=body.kind,
        url=url,
        topic=topic,
        secret_enc=box.encrypt(secret) if secret else None,
        hotlist_ids=ids,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(sink)
    session.flush()
    return sink


def list_sinks(session: Session) -> list[AlarmSink]:
    return list(session.scalars(select(AlarmSink).order_by(AlarmSink.id)))


def delete_sink(session: Session, sink_id: int) -> None:
    """Remove a sink and its undelivered outbox rows (nothing more is sent to it)."""
    sink = session.get(AlarmSink, sink_id)
    if sink is None:
        raise NotFound(f"alarm sink {sink_id} does not exist")
    session.execute(delete(AlarmDelivery).where(AlarmDelivery.sink_id == sink_id))
    session.delete(sink)
    session.flush()


def pending_by_sink(session: Session) -> dict[int, int]:
    """The outbox depth: undelivered rows per sink (the `state, next_at` index answers it)."""
    rows = session.execute(
        select(AlarmDelivery.sink_id, func.count()).where(IS_PENDING).group_by(AlarmDelivery.sink_id)
    ).all()
    return {int(k): int(n) for k, n in rows}


def last_errors(session: Session, sink_ids: Sequence[int]) -> dict[int, str]:
    """Per sink, why its latest failed try of a still undelivered alarm failed (none: all is well)."""
    out: dict[int, str] = {}
    for sid in sink_ids:
        err = session.scalar(
            select(AlarmDelivery.last_error)
            .where(IS_PENDING, AlarmDelivery.sink_id == sid, AlarmDelivery.last_error.is_not(None))
            .order_by(AlarmDelivery.next_at.desc())
            .limit(1)
        )
        if err:
            out[sid] = err
    return out


def _shown_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def sink_dict(s: AlarmSink, pending: int = 0, last_error: str | None = None) -> dict[str, Any]:
    """A sink as the API shows it: the secret never, only whether one is set."""
    return {
        "id": s.id,
        "kind": s.kind,
        "url": _shown_url(s.url),
        "topic": s.topic,
        "has_secret": s.secret_enc is not None,
        "hotlist_ids": s.hotlist_ids,
        "created_by": s.created_by,
        "created_at": s.created_at.isoformat(),
        "pending": pending,
        "last_error": last_error,
    }


def sink_confs(session: Session, box: SecretBox) -> dict[int, SinkConf]:
    """Every sink with its secret decrypted; a secret the configured key cannot read makes the sink's
    deliveries fail (and be retried) rather than stop the others'."""
    out: dict[int, SinkConf] = {}
    for s in list_sinks(session):
        secret, error = None, None
        if s.secret_enc:
            try:
                secret = box.decrypt(s.secret_enc)
            except ValueError as e:
                error = str(e)
        out[s.id] = SinkConf(id=s.id, kind=s.kind, url=s.url, topic=s.topic, secret=secret, error=error)
    return out


def enqueue(session: Session, alarms: Sequence[Alarm]) -> int:
    """Write the outbox rows of freshly stored (flushed) alarms, in the caller's transaction."""
    if not alarms:
        return 0
    sinks = session.execute(select(AlarmSink.id, AlarmSink.hotlist_ids)).all()
    if not sinks:
        return 0
    now = utcnow()
    rows = [
        {"alarm_id": a.id, "sink_id": sid, "state": PENDING, "attempts": 0, "next_at": now, "created_at": now}
        for a in alarms
        for sid, only in sinks
        if not only or a.hotlist_id in only
    ]
    if rows:
        session.execute(insert(AlarmDelivery), rows)
        session.info[_WRITTEN] = True
    return len(rows)


def claim(
    session: Session, *, now: dt.datetime, lease_s: float, limit: int, sink_id: int | None = None
) -> list[Job]:
    """Lease up to `limit` due deliveries to the caller, oldest due first; commit to make it hold.

    One UPDATE whose row set is re-checked as it writes: on PostgreSQL the rows are picked with
    `FOR UPDATE SKIP LOCKED` (concurrent claimers take different rows, none waits), on SQLite the
    write lock serialises claimers and the repeated `state`/`next_at` condition keeps a row that
    another claimer just leased out."""
    token = uuid.uuid4().hex
    due = IS_PENDING & (AlarmDelivery.next_at <= now)
    if sink_id is not None:
        due = due & (AlarmDelivery.sink_id == sink_id)
    pick = (
        select(AlarmDelivery.id)
        .where(due)
        .order_by(AlarmDelivery.next_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        update(AlarmDelivery)
        .where(AlarmDelivery.id.in_(pick.scalar_subquery()), due)
        .values(claim=token, next_at=now + dt.timedelta(seconds=lease_s))
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(AlarmDelivery.id, AlarmDelivery.sink_id, AlarmDelivery.alarm_id)
        .add_columns(Alarm.hotlist_id, AlarmDelivery.attempts)
        .join(Alarm, Alarm.id == AlarmDelivery.alarm_id)
        .where(AlarmDelivery.claim == token)
        .order_by(AlarmDelivery.id)
    ).all()
    return [Job(int(d), int(s), int(a), int(h), int(n), token) for d, s, a, h, n in rows]


def backoff_s(attempts: int, base_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """The wait before try number `attempts + 1`: base·2^(attempts−1) capped at max, then jittered
    into [½, 1]× of that (equal jitter: waits never collapse to zero, retries of many rows spread)."""
    ceiling = min(max_s, base_s * 2 ** min(max(attempts - 1, 0), 40))
    return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


def mark_delivered(session: Session, delivery_ids: Sequence[int], now: dt.datetime) -> None:
    if delivery_ids:
        session.execute(
            update(AlarmDelivery)
            .where(AlarmDelivery.id.in_(list(delivery_ids)))
            .values(state=DELIVERED, delivered_at=now, claim=None, last_error=None)
            .execution_options(synchronize_session=False)
        )


def mark_failed(
    session: Session, failures: Sequence[tuple[Job, str]], *, now: dt.datetime, base_s: float, max_s: float
) -> None:
    """Due again after the backoff; only while this claim holds (after a lease ran out another worker
    may have claimed or delivered the row)."""
    for job, error in failures:
        attempts = job.attempts + 1
        session.execute(
            update(AlarmDelivery)
            .where(
                AlarmDelivery.id == job.delivery_id,
                AlarmDelivery.state == PENDING,
                AlarmDelivery.claim == job.claim,
            )
            .values(
                attempts=attempts,
                next_at=now + dt.timedelta(seconds=backoff_s(attempts, base_s, max_s)),
                claim=None,
                last_error=error[:500],
            )
            .execution_options(synchronize_session=False)
        )
