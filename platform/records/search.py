"""Pass search (过车查询): passes by a partial plate, OCR look-alikes, vehicle and place, over a window.

Investigators rarely have an exact plate: a witness saw part of it, or the reader misread it. A
plate pattern takes `?` for one character and `*` for any run (`粤B1?3*`); with `lookalikes` each
character also matches the characters a plate reader confuses it with (`LOOKALIKES`).

How it stays fast (PostgreSQL): an exact plate walks the primary key (plate_no, ts, key); a pattern
with a fixed prefix and no look-alikes is a LIKE that the same key serves under the C collation and
the trigram index (`ix_passes_plate_trgm`, pg_trgm) serves under any; a leading wildcard or a
look-alike pattern is a POSIX regular expression that the trigram index serves. Every search is
bounded by its window, which prunes the day partitions. On SQLite (the embedded default) the same
patterns are a GLOB, which SQLite runs as a range of the primary key when the pattern has a prefix.

Pages are keyset pages on (ts, plate_no, key) in either order; `total_estimate` counts matches up
to `COUNT_CAP` and `total_exact` says whether it stopped there.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, tuple_
from sqlalchemy.orm import Session

from tianwang.checkpoints import viid
from tianwang.checkpoints.plates import PlateKind
from tianwang.errors import ValidationFailed
from tianwang.storage import sql
from tianwang.storage.models import Checkpoint, Pass

# Characters a plate reader confuses (license-plate OCR: round glyphs, bar glyphs, B/8, Z/2, S/5).
# Only within a class; a class is a set, so the relation is symmetric.
LOOKALIKES: tuple[str, ...] = ("0ODQ", "1I", "8B", "2Z", "5S")
_CLASS_OF = {ch: cls for cls in LOOKALIKES for ch in cls}
MAX_PATTERN = 16
MAX_WINDOW = dt.timedelta(days=92)
COUNT_CAP = 10_000
EXPORT_CAP = 100_000
# a GA/T 1400 行驶方向 code matches a stored heading within this many degrees
DIRECTION_TOL_DEG = 22.5
# characters that a plate never holds and that a pattern language of SQL would read as syntax
_REFUSED = set("%_[]\\^$.|()+{}!'\"`;")


@dataclass(frozen=True)
class PlatePattern:
    """A normalised plate pattern: `text` with `?` and `*`, and the three forms the stores run."""

    text: str
    lookalikes: bool

    @property
    def exact(self) -> bool:
        return "?" not in self.text and "*" not in self.text and not self.lookalikes

    @property
    def prefix(self) -> str:
        """The literal characters before the first wildcard or look-alike class."""
        out = []
        for ch in self.text:
            if ch in "?*" or (self.lookalikes and ch in _CLASS_OF):
                break
            out.append(ch)
        return "".join(out)

    def like(self) -> str:
        """A LIKE pattern (no look-alikes); the refused characters never reach it, so no escapes."""
        return self.text.replace("?", "_").replace("*", "%")

    def glob(self) -> str:
        """A SQLite GLOB pattern: `?`, `*` and `[…]` classes are GLOB's own syntax."""
        return "".join(
            f"[{_CLASS_OF[ch]}]" if self.lookalikes and ch in _CLASS_OF else ch for ch in self.text
        )

    def regex(self) -> str:
        """An anchored POSIX regular expression (PostgreSQL `~`)."""
        parts = ["^"]
        for ch in self.text:
            if ch == "?":
                parts.append(".")
            elif ch == "*":
                parts.append(".*")
            elif self.lookalikes and ch in _CLASS_OF:
                parts.append(f"[{_CLASS_OF[ch]}]")
            else:
                parts.append(re.escape(ch))
        parts.append("$")
        return "".join(parts)

    def matches(self, plate: str) -> bool:
        """The same test in Python (tests, and anything filtered after the database)."""
        return re.fullmatch(self.regex()[1:-1], plate) is not None


def parse_pattern(raw: str, lookalikes: bool = False) -> PlatePattern:
    """Normalise a typed plate pattern: NFKC (full-width letters and digits fold), upper case,
    spaces and dots dropped, runs of `*` folded; refused with a reason when it cannot be a plate."""
    text = unicodedata.normalize("NFKC", raw).upper()
    text = "".join(ch for ch in text if not ch.isspace() and ch not in "·•")
    text = re.sub(r"\*+", "*", text)
    bad = sorted({ch for ch in text if ch in _REFUSED or unicodedata.category(ch)[0] in "CZ"})
    problem = None
    if not text:
        problem = "empty"
    elif len(text) > MAX_PATTERN:
        problem = f"at most {MAX_PATTERN} characters"
    elif bad:
        problem = f"characters a plate never holds: {' '.join(repr(c) for c in bad)}"
    elif text.replace("*", "") == "":
        problem = "give at least one character or ? (a lone * matches every pass: leave plate out)"
    if problem:
        raise ValidationFailed(
            f"plate pattern {raw[:40]!r}: {problem}",
            errors=[{"field": "plate", "message": f"{problem} (? one character, * any run)"}],
        )
    return PlatePattern(text, lookalikes)


@dataclass
class PassFilter:
    frm: dt.datetime
    to: dt.datetime
    plate: PlatePattern | None = None
    plate_kinds: list[str] = field(default_factory=list)
    plate_colors: list[str] = field(default_factory=list)
    vehicle_colors: list[str] = field(default_factory=list)
    vehicle_types: list[str] = field(default_factory=list)
    checkpoint_ids: list[str] = field(default_factory=list)
    area_code: str | None = None
    lanes: list[int] = field(default_factory=list)
    directions: list[str] = field(default_factory=list)

    def check(self) -> None:
        errors = []
        if self.frm.tzinfo is None or self.to.tzinfo is None:
            errors.append({"field": "from", "message": "times need a UTC offset"})
        elif self.to <= self.frm:
            errors.append({"field": "to", "message": "must be after from"})
        elif self.to - self.frm > MAX_WINDOW:
            errors.append({"field": "to", "message": f"a window of at most {MAX_WINDOW.days} days"})
        kinds = {k.value for k in PlateKind}
        for k in self.plate_kinds:
            if k not in kinds:
                errors.append(
                    {"field": "plate_kind", "message": f"{k[:20]!r}: one of {', '.join(sorted(kinds))}"}
                )
        for d in self.directions:
            if viid.DIRECTION_DEG.get(d) is None:  # 9 (其他) has no heading to match
                errors.append({"field": "direction", "message": f"{d[:20]!r}: a 行驶方向 code 1–8"})
        if self.area_code is not None and not re.fullmatch(r"\d{2,12}", self.area_code):
            errors.append({"field": "area_code", "message": "2–12 digits (a division code or its prefix)"})
        if errors:
            raise ValidationFailed("invalid pass search", errors=errors)

    def params(self) -> dict[str, Any]:
        """What the search was, for the answer and the audit."""
        d = asdict(self)
        d["frm"], d["to"] = self.frm.isoformat(), self.to.isoformat()
        d["plate"] = None if self.plate is None else self.plate.text
        d["lookalike"] = bool(self.plate and self.plate.lookalikes)
        d["from"] = d.pop("frm")
        return {k: v for k, v in d.items() if v not in (None, [], False)}


def _heading_condition(codes: list[str]) -> ColumnElement[bool]:
    conds = []
    for code in codes:
        deg = viid.DIRECTION_DEG[code]
        assert deg is not None  # PassFilter.check refused the codes without a heading
        lo, hi = (deg - DIRECTION_TOL_DEG) % 360, (deg + DIRECTION_TOL_DEG) % 360
        col = Pass.direction_deg
        conds.append(and_(col >= lo, col < hi) if lo < hi else or_(col >= lo, col < hi))
    return or_(*conds)


def conditions(session: Session, f: PassFilter) -> list[ColumnElement[bool]]:
    pg = sql.is_pg(session)
    c: list[ColumnElement[bool]] = [Pass.ts >= f.frm, Pass.ts < f.to]
    if f.plate is not None:
        p = f.plate
        if p.exact:
            c.append(Pass.plate_no == p.text)
        elif not pg:
            c.append(Pass.plate_no.op("GLOB")(p.glob()))
        elif p.lookalikes:
            c.append(Pass.plate_no.regexp_match(p.regex()))
        else:
            c.append(Pass.plate_no.like(p.like()))
    if f.plate_kinds:
        c.append(Pass.plate_kind.in_(f.plate_kinds))
    if f.plate_colors:
        c.append(Pass.plate_color.in_(f.plate_colors))
    if f.vehicle_colors:
        c.append(Pass.vehicle_color.in_(f.vehicle_colors))
    if f.vehicle_types:
        c.append(Pass.vehicle_type.in_(f.vehicle_types))
    if f.checkpoint_ids:
        c.append(Pass.checkpoint_id.in_(f.checkpoint_ids))
    if f.area_code:
        inside = select(Checkpoint.checkpoint_id).where(Checkpoint.area_code.startswith(f.area_code))
        c.append(Pass.checkpoint_id.in_(inside))
    if f.lanes:
        c.append(Pass.lane.in_(f.lanes))
    if f.directions:
        c.append(_heading_condition(f.directions))
    return c


def encode_cursor(ts: dt.datetime, plate_no: str, key: str) -> str:
    raw = "\x1f".join((ts.astimezone(dt.UTC).isoformat(), plate_no, key))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        ts, plate_no, key = raw.split("\x1f")
        t = dt.datetime.fromisoformat(ts)
        if t.tzinfo is None:
            raise ValueError
        return t, plate_no, key
    except (ValueError, UnicodeDecodeError):
        raise ValidationFailed(
            "invalid cursor", errors=[{"field": "cursor", "message": "not a cursor"}]
        ) from None


def _item(p: Pass, name: str | None, lon: float | None, lat: float | None) -> dict[str, Any]:
    return {
        "plate_no": p.plate_no,
        "plate_kind": p.plate_kind,
        "plate_valid": p.plate_valid,
        "plate_color": p.plate_color,
        "vehicle_type": p.vehicle_type,
        "vehicle_color": p.vehicle_color,
        "ts": p.ts.isoformat(),
        "key": p.key,
        "checkpoint_id": p.checkpoint_id,
        "checkpoint_name": name,
        "lon": lon,
        "lat": lat,
        "lane": p.lane,
        "direction_deg": p.direction_deg,
        "speed_kmh": p.speed_kmh,
        "image_key": p.image_key,
        "device_id": p.device_id,
    }


def search(
    session: Session,
    f: PassFilter,
    *,
    limit: int = 100,
    cursor: str | None = None,
    descending: bool = True,
    count: bool = True,
) -> dict[str, Any]:
    """One page of matching passes with the checkpoint's name and position, newest first unless
    `descending` is false; `total_estimate` counts matches up to COUNT_CAP (`total_exact` false
    past it)."""
    f.check()
    conds = conditions(session, f)
    order_key = tuple_(Pass.ts, Pass.plate_no, Pass.key)
    page_conds = list(conds)
    if cursor:
        after = tuple_(*decode_cursor(cursor))
        page_conds.append(order_key < after if descending else order_key > after)
    stmt = (
        select(Pass, Checkpoint.name, Checkpoint.lon, Checkpoint.lat)
        .join(Checkpoint, Checkpoint.checkpoint_id == Pass.checkpoint_id, isouter=True)
        .where(*page_conds)
    )
    cols = (Pass.ts, Pass.plate_no, Pass.key)
    stmt = stmt.order_by(*(c.desc() for c in cols) if descending else cols).limit(limit + 1)
    rows = session.execute(stmt).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = [_item(p, name, lon, lat) for p, name, lon, lat in rows]
    out: dict[str, Any] = {
        "params": f.params() | {"order": "desc" if descending else "asc", "limit": limit},
        "items": items,
        "next_cursor": encode_cursor(rows[-1][0].ts, rows[-1][0].plate_no, rows[-1][0].key) if more else None,
    }
    if count:
        capped = select(Pass.key).where(*conds).limit(COUNT_CAP + 1).subquery()
        n = int(session.scalar(select(func.count()).select_from(capped)) or 0)
        out["total_estimate"], out["total_exact"] = min(n, COUNT_CAP), n <= COUNT_CAP
    return out


def export_rows(session: Session, f: PassFilter, cap: int = EXPORT_CAP) -> tuple[list[dict[str, Any]], bool]:
    """Every match in time order up to `cap` (the export); (rows, truncated)."""
    f.check()
    stmt = (
        select(Pass, Checkpoint.name, Checkpoint.lon, Checkpoint.lat)
        .join(Checkpoint, Checkpoint.checkpoint_id == Pass.checkpoint_id, isouter=True)
        .where(*conditions(session, f))
        .order_by(Pass.ts, Pass.plate_no, Pass.key)
        .limit(cap + 1)
    )
    rows = [_item(p, name, lon, lat) for p, name, lon, lat in session.execute(stmt)]
    return rows[:cap], len(rows) > cap
