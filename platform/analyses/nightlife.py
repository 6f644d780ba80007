"""昼伏夜出 (night-active): subjects whose movement falls mostly at night, on several nights.

One SQL statement per query: each sighting's local time of day and night (UTC offset, the city's
zone, a parameter) is computed in the database from its epoch seconds, then grouped per subject with
the night count and night share as HAVING conditions. Also the local-clock helpers the other place
analyses (stay points, first entries) share.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, case, func, literal, or_, select
from sqlalchemy.orm import Session

from tianwang.errors import ValidationFailed
from tianwang.storage import sql
from tianwang.storage.models import FaceSighting, Pass, PhoneSighting

DAY_S = 86400
# the city's zone (Asia/Shanghai has no daylight saving): local clock = UTC + 8 h
DEFAULT_UTC_OFFSET = "+08:00"
DEFAULT_NIGHT_START = "22:00"
DEFAULT_NIGHT_END = "05:00"
DEFAULT_MIN_NIGHTS = 2
DEFAULT_MIN_SHARE = 0.5
# phones: a fence heard again after this long is an arrival (movement); sooner, the phone is resting
# there (fences ping a resting phone about hourly: 4 h survives two missed pings and clock noise)
DEFAULT_REST_S = 4 * 3600
KINDS = ("vehicle", "phone", "person")

_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")


# ---------------------------------------------------------------- local clock


def parse_clock(value: str, field: str) -> int:
    """ "HH:MM" → seconds after local midnight."""
    m = _CLOCK.match(value.strip())
    if not m:
        raise ValidationFailed(f"{field} must be HH:MM", errors=[{"field": field, "message": "not HH:MM"}])
    return int(m[1]) * 3600 + int(m[2]) * 60


def parse_utc_offset(value: str, field: str = "utc_offset") -> int:
    """ "+08:00" / "+0800" / "Z" → seconds east of UTC (−14 h … +14 h)."""
    v = value.strip()
    if v in ("Z", "z"):
        return 0
    m = _OFFSET.match(v)
    if not m or int(m[3]) >= 60:
        raise ValidationFailed(
            f"{field} must be ±HH:MM", errors=[{"field": field, "message": "not an offset like +08:00"}]
        )
    s = (int(m[2]) * 3600 + int(m[3]) * 60) * (1 if m[1] == "+" else -1)
    if abs(s) > 14 * 3600:
        raise ValidationFailed(f"{field} is beyond ±14:00", errors=[{"field": field, "message": "too large"}])
    return s


def format_offset(seconds: int) -> str:
    sign = "+" if seconds >= 0 else "-"
    h, m = divmod(abs(seconds) // 60, 60)
    return f"{sign}{h:02d}:{m:02d}"


@dataclass(frozen=True)
class Night:
    """A night on the local clock: [start, end) seconds after local midnight, wrapping past midnight
    when start > end; `offset_s` turns UTC into local time."""

    start_s: int
    end_s: int
    offset_s: int

    def __post_init__(self) -> None:
        if self.start_s == self.end_s:
            raise ValidationFailed(
                "night_start equals night_end", errors=[{"field": "night_end", "message": "empty night"}]
            )

    @classmethod
    def parse(cls, start: str, end: str, utc_offset: str) -> Night:
        return cls(
            parse_clock(start, "night_start"), parse_clock(end, "night_end"), parse_utc_offset(utc_offset)
        )

    def contains_sql(self, local_s: Any) -> Any:
        sod = local_s % DAY_S
        if self.start_s < self.end_s:
            return (sod >= self.start_s) & (sod < self.end_s)
        return or_(sod >= self.start_s, sod < self.end_s)

    def key_sql(self, local_s: Any) -> Any:
        """Which night (days since the epoch of the local date the night began)."""
        return (local_s - self.start_s) // DAY_S

    def local_date(self, key: int) -> str:
        return (dt.date(1970, 1, 1) + dt.timedelta(days=int(key))).isoformat()

    def echo(self) -> dict[str, str]:
        return {
            "night_start": f"{self.start_s // 3600:02d}:{self.start_s % 3600 // 60:02d}",
            "night_end": f"{self.end_s // 3600:02d}:{self.end_s % 3600 // 60:02d}",
            "utc_offset": format_offset(self.offset_s),
        }


# ---------------------------------------------------------------- night-active


def _movement(kind: str, frm: dt.datetime, to: dt.datetime, rest_s: int) -> Any:
    """(subject, ts) of the sightings that are movement, as a subquery. For phones only an arrival
    counts: a sighting at a fence the phone was not heard at in the `rest_s` before, while it was
    heard somewhere in that time (a phone switched on after a silence has not been seen moving). A
    phone resting inside a fence (or where fences overlap) is heard every hour all night, which is
    sleep, not night life; the `rest_s` before `frm` is read for this."""
    if kind == "vehicle":
        return (
            select(Pass.plate_no.label("subject"), Pass.ts.label("ts"))
            .where(Pass.ts >= frm, Pass.ts < to, Pass.plate_valid.is_(True))
            .subquery()
        )
    if kind == "person":
        return (
            select(FaceSighting.person_id.label("subject"), FaceSighting.ts.label("ts"))
            .where(FaceSighting.ts >= frm, FaceSighting.ts < to)
            .subquery()
        )
    e = sql.epoch_whole_seconds(PhoneSighting.ts)
    order = (PhoneSighting.ts, PhoneSighting.key)
    here = func.lag(e).over(partition_by=(PhoneSighting.imsi, PhoneSighting.fence_id), order_by=order)
    anywhere = func.lag(e).over(partition_by=PhoneSighting.imsi, order_by=order)
    all_ = (
        select(
            PhoneSighting.imsi.label("subject"),
            PhoneSighting.ts.label("ts"),
            e.label("e"),
            here.label("here_e"),
            anywhere.label("prev_e"),
        )
        .where(PhoneSighting.ts >= frm - dt.timedelta(seconds=rest_s), PhoneSighting.ts < to)
        .subquery()
    )
    c = all_.c
    return (
        select(c.subject, c.ts)
        .where(
            c.ts >= frm,
            c.e - c.prev_e <= rest_s,  # heard lately: the phone is on, so a new fence is a move
            or_(c.here_e.is_(None), c.e - c.here_e > rest_s),
        )
        .subquery()
    )


def night_active(
    session: Session,
    *,
    kind: str,
    frm: dt.datetime,
    to: dt.datetime,
    night: Night,
    min_nights: int = DEFAULT_MIN_NIGHTS,
    min_share: float = DEFAULT_MIN_SHARE,
    rest_s: int = DEFAULT_REST_S,
    limit: int = 100,
) -> tuple[list[dict[str, Any]], bool]:
    """Subjects moving on at least `min_nights` distinct nights with at least `min_share` of their
    movement at night, most nights first; (items, truncated)."""
    if kind not in KINDS:
        raise ValidationFailed(f"kind must be one of {', '.join(KINDS)}")
    mv = _movement(kind, frm, to, rest_s)
    local = sql.epoch_whole_seconds(mv.c.ts) + literal(night.offset_s, BigInteger)
    # which night each sighting falls in (NULL by day), then per (subject, night) and per subject:
    # two hash aggregations instead of a count(DISTINCT …) that sorts every group
    tagged = select(
        mv.c.subject, mv.c.ts, case((night.contains_sql(local), night.key_sql(local)), else_=None).label("nk")
    ).subquery()
    per_night = (
        select(
            tagged.c.subject,
            tagged.c.nk,
            func.count().label("n"),
            func.min(tagged.c.ts).label("first"),
            func.max(tagged.c.ts).label("last"),
        )
        .group_by(tagged.c.subject, tagged.c.nk)
        .subquery()
    )
    g = per_night.c
    total = func.sum(g.n)
    n_night = func.sum(case((g.nk.is_not(None), g.n), else_=0))
    nights = func.count(g.nk)
    stmt = (
        select(
            g.subject,
            total,
            n_night,
            nights,
            func.min(g.nk),
            func.max(g.nk),
            func.min(g.first),
            func.max(g.last),
        )
        .group_by(g.subject)
        .having(nights >= min_nights, n_night >= literal(float(min_share)) * total)
        .order_by(nights.desc(), (n_night * 1.0 / total).desc(), g.subject)
        .limit(limit + 1)
    )
    rows = session.execute(stmt).all()
    items = [
        {
            "id": r[0],
            "nights": int(r[3]),
            "night_sightings": int(r[2]),
            "sightings": int(r[1]),
            "night_share": round(int(r[2]) / int(r[1]), 4),
            "first_night": night.local_date(r[4]),
            "last_night": night.local_date(r[5]),
            "first_ts": r[6].isoformat() if isinstance(r[6], dt.datetime) else str(r[6]),
            "last_ts": r[7].isoformat() if isinstance(r[7], dt.datetime) else str(r[7]),
        }
        for r in rows[:limit]
    ]
    return items, len(rows) > limit
