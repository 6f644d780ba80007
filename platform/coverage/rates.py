"""Online rate (在线率, time-weighted) and intact rate (完好率) from the stored evidence, in SQL.

A device's state between two of its health observations is the earlier observation's (reachable
and not refusing the credentials = online), for at most `health_interval_s × allowed_misses`
after it (beyond that, with no newer report, it is offline). The per-device sums are one SQL
statement (LEAD over health_observations per device: SQLite ≥ 3.25 and PostgreSQL); roll-ups
over areas are numpy sums over those per-device figures. Definitions: docs/coverage.md.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from tianwang.errors import ValidationFailed
from tianwang.storage import sql
from tianwang.storage.models import Camera, HealthObservation, Snapshot

F64 = NDArray[np.float64]
MAX_STEPS = 1000


@dataclass(frozen=True)
class Window:
    """A half-open time window [start, end), both UTC-aware."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        for name, t in (("from", self.start), ("to", self.end)):
            if t.tzinfo is None:
                raise ValidationFailed(
                    f"{name} needs a UTC offset", errors=[{"field": name, "message": "naive time"}]
                )
        if self.start >= self.end:
            raise ValidationFailed(
                "from must be before to", errors=[{"field": "from", "message": "not before to"}]
            )

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": self.start.astimezone(dt.UTC).isoformat(),
            "to": self.end.astimezone(dt.UTC).isoformat(),
            "seconds": self.seconds,
        }


def _least(dialect: str, *args: Any) -> ColumnElement[float]:
    return func.min(*args) if dialect == "sqlite" else func.least(*args)


def _greatest(dialect: str, *args: Any) -> ColumnElement[float]:
    return func.max(*args) if dialect == "sqlite" else func.greatest(*args)


def _ts(t: dt.datetime) -> float:
    return t.timestamp()


def device_seconds_query(
    dialect: str, window: Window, allowed_misses: int, max_interval_s: int, where: Any = None
) -> Any:
    """SELECT device_id, scheduled_s, online_s per in-service camera (optionally filtered by `where`).

    `max_interval_s` bounds how far before the window an observation can still speak for it.
    """
    w0, w1 = _ts(window.start), _ts(window.end)
    scoped = [Camera.lifecycle == "in_use"] + ([where] if where is not None else [])
    lo = window.start - dt.timedelta(seconds=max_interval_s * allowed_misses)
    t = sql.epoch_seconds(HealthObservation.ts, dialect)
    up = case(
        (and_(HealthObservation.reachable, func.coalesce(HealthObservation.authenticated, True)), 1.0),
        else_=0.0,
    )
    obs = (
        select(
            HealthObservation.device_id.label("device_id"),
            t.label("t"),
            up.label("up"),
            func.lead(t)
            .over(partition_by=HealthObservation.device_id, order_by=HealthObservation.ts)
            .label("t_next"),
            (Camera.health_interval_s * float(allowed_misses)).label("cap"),
            _greatest(dialect, literal(w0), sql.epoch_seconds(Camera.created_at, dialect)).label("s0"),
        )
        .join(Camera, Camera.device_id == HealthObservation.device_id)
        .where(HealthObservation.ts >= lo, HealthObservation.ts < window.end, *scoped)
        .subquery("obs")
    )
    end = _least(dialect, func.coalesce(obs.c.t_next, obs.c.t + obs.c.cap), obs.c.t + obs.c.cap, literal(w1))
    start = _greatest(dialect, obs.c.t, obs.c.s0)
    seg = _greatest(dialect, literal(0.0), end - start) * obs.c.up
    online = (
        select(obs.c.device_id, func.sum(seg).label("online_s")).group_by(obs.c.device_id).subquery("on_s")
    )
    sched = _greatest(
        dialect,
        literal(0.0),
        literal(w1) - _greatest(dialect, literal(w0), sql.epoch_seconds(Camera.created_at, dialect)),
    )
    return (
        select(
            Camera.device_id.label("device_id"),
            sched.label("scheduled_s"),
            func.coalesce(online.c.online_s, 0.0).label("online_s"),
        )
        .outerjoin(online, online.c.device_id == Camera.device_id)
        .where(*scoped)
    )


def _max_interval(session: Session, where: Any = None) -> int:
    stmt = select(func.max(Camera.health_interval_s)).where(Camera.lifecycle == "in_use")
    if where is not None:
        stmt = stmt.where(where)
    return int(session.scalar(stmt) or 60)


@dataclass(frozen=True)
class DeviceSeconds:
    """Per in-service device: scheduled and online seconds in a window."""

    window: Window
    device_ids: tuple[str, ...]
    scheduled_s: F64
    online_s: F64

    def index(self) -> dict[str, int]:
        return {d: i for i, d in enumerate(self.device_ids)}


def device_seconds(session: Session, window: Window, allowed_misses: int, where: Any = None) -> DeviceSeconds:
    dialect = session.get_bind().dialect.name
    q = device_seconds_query(dialect, window, allowed_misses, _max_interval(session, where), where)
    rows = session.execute(q.order_by(Camera.device_id)).all()
    return DeviceSeconds(
        window,
        tuple(r[0] for r in rows),
        np.array([float(r[1]) for r in rows], float),
        np.array([float(r[2]) for r in rows], float),
    )


@dataclass(frozen=True)
class Rate:
    """A figure with what it is made of (design rule: publish numerator, denominator, window)."""

    numerator: float
    denominator: float
    window: Window | None = None
    unit: str = "devices"

    @property
    def rate(self) -> float:
        return float(self.numerator / self.denominator) if self.denominator > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "rate": round(self.rate, 6),
            "numerator": round(self.numerator, 3),
            "denominator": round(self.denominator, 3),
            "unit": self.unit,
        }
        if self.window is not None:
            out["window"] = self.window.as_dict()
        return out


def online_rate(session: Session, window: Window, allowed_misses: int, where: Any = None) -> Rate:
    """Σ online seconds ÷ Σ scheduled seconds over in-service cameras (matching `where`), all in SQL."""
    dialect = session.get_bind().dialect.name
    q = device_seconds_query(dialect, window, allowed_misses, _max_interval(session, where), where).subquery()
    num, den = session.execute(
        select(func.coalesce(func.sum(q.c.online_s), 0.0), func.coalesce(func.sum(q.c.scheduled_s), 0.0))
    ).one()
    return Rate(float(num), float(den), window, "s")


def scope_where(area_code: str | None = None, division: str | None = None) -> Any:
    """SQL filters for the code scopes: the device record's area_code prefix, or the GB/T 2260
    division in the first digits of the device code."""
    conds = []
    if area_code:
        conds.append(Camera.area_code.startswith(area_code, autoescape=True))
    if division:
        conds.append(Camera.device_id.startswith(division, autoescape=True))
    return and_(*conds) if conds else None


# ---------------------------------------------------------------- history


def parse_step(step: str) -> dt.timedelta:
    """'15m', '1h', '1d', '30s' → a timedelta (at least a minute)."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    s = step.strip().lower()
    if len(s) < 2 or s[-1] not in units or not s[:-1].isdigit():
        raise ValidationFailed(
            "step is a number and a unit: 30s, 15m, 1h, 1d", errors=[{"field": "step", "message": "bad step"}]
        )
    td = dt.timedelta(seconds=int(s[:-1]) * units[s[-1]])
    if td < dt.timedelta(minutes=1):
        raise ValidationFailed("step must be at least 1m", errors=[{"field": "step", "message": "too small"}])
    return td


def steps(window: Window, step: dt.timedelta) -> list[Window]:
    n = int(np.ceil(window.seconds / step.total_seconds()))
    if n > MAX_STEPS:
        raise ValidationFailed(
            f"{n} steps asked; at most {MAX_STEPS}: widen the step or narrow the window",
            errors=[{"field": "step", "message": "too many steps"}],
        )
    return [Window(window.start + k * step, min(window.start + (k + 1) * step, window.end)) for k in range(n)]


def intact_at(
    session: Session, at: dt.datetime, allowed_misses: int, where: Any = None
) -> tuple[tuple[str, ...], NDArray[np.bool_], NDArray[np.bool_]]:
    """(device ids, in service at `at`, intact at `at`) — the past state rebuilt from the evidence.

    Intact at t: registered by t, its latest health observation at or before t is online and no
    older than interval × misses, and its latest snapshot at or before t did not fail diagnosis
    (no snapshot yet counts as not failing, as in the live status). Lifecycle is today's: the
    registry keeps no lifecycle history.
    """
    dialect = session.get_bind().dialect.name
    scoped = [Camera.lifecycle == "in_use"] + ([where] if where is not None else [])
    lo = at - dt.timedelta(seconds=_max_interval(session, where) * allowed_misses)
    up = case(
        (and_(HealthObservation.reachable, func.coalesce(HealthObservation.authenticated, True)), 1), else_=0
    )
    last_h = (
        select(
            HealthObservation.device_id.label("device_id"),
            up.label("up"),
            sql.epoch_seconds(HealthObservation.ts, dialect).label("t"),
            func.row_number()
            .over(partition_by=HealthObservation.device_id, order_by=HealthObservation.ts.desc())
            .label("rn"),
        )
        .where(HealthObservation.ts >= lo, HealthObservation.ts <= at)
        .subquery("last_h")
    )
    last_s = (
        select(
            Snapshot.device_id.label("device_id"),
            Snapshot.verdict.label("verdict"),
            func.row_number().over(partition_by=Snapshot.device_id, order_by=Snapshot.ts.desc()).label("rn"),
        )
        .where(Snapshot.ts <= at, Snapshot.verdict.is_not(None))
        .subquery("last_s")
    )
    t_at = _ts(at)
    fresh = and_(
        last_h.c.up == 1, last_h.c.t > literal(t_at) - Camera.health_interval_s * float(allowed_misses)
    )
    q = (
        select(
            Camera.device_id,
            sql.epoch_seconds(Camera.created_at, dialect) <= literal(t_at),
            case((and_(fresh, func.coalesce(last_s.c.verdict, "ok") != "fault"), 1), else_=0),
        )
        .outerjoin(last_h, and_(last_h.c.device_id == Camera.device_id, last_h.c.rn == 1))
        .outerjoin(last_s, and_(last_s.c.device_id == Camera.device_id, last_s.c.rn == 1))
        .where(*scoped)
        .order_by(Camera.device_id)
    )
    rows = session.execute(q).all()
    ids = tuple(r[0] for r in rows)
    present = np.array([bool(r[1]) for r in rows], bool)
    intact = np.array([bool(r[2]) for r in rows], bool) & present
    return ids, present, intact
