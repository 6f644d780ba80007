"""Companion vehicles (同行车): plates that pass the same checkpoints as a subject plate, close in time.

Another plate co-occurs with the subject when it passes a checkpoint within ±`window_s` seconds of
one of the subject's passes there. A companion co-occurs at `min_sites` or more distinct
checkpoints, on `min_outings` or more of the subject's outings (its passes split wherever they are
more than `outing_gap_s` apart: out and back are two), and meets at least `min_share` of the
subject's passes on those outings — a car that only shares a stretch of road with the subject, as
neighbours commuting the same arterial do, meets a few of them; one travelling with it meets most.
Plates that pass checkpoints all day — buses, taxis, service fleets — meet everyone by chance, so
very frequent plates are left out: a plate with more passes in the window than `freq_factor` × the
median plate's (plates seen at least twice), or than `max_passes` when given, is dropped.

Pure part: `find_companions` takes the subject's passes and the other passes near them as columns
and returns the companions (numpy: one sort, `searchsorted` per subject pass, grouped counts — no
loop over passes). `analyse` loads them with one SQL self-join on (checkpoint, time) — the
(checkpoint_id, ts) index, and on PostgreSQL only the window's day partitions — then applies the
frequency cut to the few plates that met every other criterion: their pass counts by primary key,
against the window's median plate (one grouped count over the window widened to whole hours,
remembered for ten minutes per database and window).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import and_, func, literal, select
from sqlalchemy.orm import Session, aliased

from tianwang.analyses.clones import NOT_READ, epoch_of
from tianwang.storage import sql
from tianwang.storage.models import Pass

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]
Bool = NDArray[np.bool_]


@dataclass(frozen=True)
class CompanionParams:
    window_s: float = 60.0  # ± seconds between the subject's pass and the other's at one checkpoint
    min_sites: int = 3  # distinct checkpoints where they co-occur
    min_outings: int = 2  # distinct outings of the subject they share (out and back count as two)
    min_share: float = 0.6  # … and on those outings, the share of the subject's passes they met
    outing_gap_s: float = 1800.0  # the subject's passes further apart than this start a new outing
    freq_factor: float = 8.0  # plates with more passes than this × the median plate's are left out …
    max_passes: int | None = None  # … or than this many, when given (skips the window-wide count)
    max_sites_listed: int = 50

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Companions:
    """Per companion (best first): plate code, distinct sites, co-occurrences (subject passes
    matched), outings shared, mean |Δt|; `site_lists[i]` the site codes."""

    plate: I64
    sites: I64
    co_occurrences: I64
    outings: I64
    share: F64
    mean_abs_dt_s: F64
    site_lists: list[I64]
    candidates: int  # plates co-occurring at least once (before the cuts)
    excluded_frequent: int  # of those, left out by `frequent`

    def subset(self, idx: I64) -> Companions:
        """These companions at positions `idx` (in order)."""
        return dataclasses.replace(
            self,
            plate=self.plate[idx],
            sites=self.sites[idx],
            co_occurrences=self.co_occurrences[idx],
            outings=self.outings[idx],
            share=self.share[idx],
            mean_abs_dt_s=self.mean_abs_dt_s[idx],
            site_lists=[self.site_lists[i] for i in idx.tolist()],
        )


def outings_of(ts: F64, gap_s: float) -> I64:
    """Outing number per pass (ts sorted): a new outing after a gap longer than `gap_s`."""
    if not len(ts):
        return np.zeros(0, np.int64)
    return np.cumsum(np.r_[0, np.diff(ts) > gap_s]).astype(np.int64)


def find_companions(
    subj_ts: F64,
    subj_site: I64,
    other_plate: I64,
    other_ts: F64,
    other_site: I64,
    params: CompanionParams,
    frequent: Bool | None = None,
) -> Companions:
    """Companions of one subject. `subj_*`: its passes (ts sorted); `other_*`: other plates' passes
    (any order; duplicates of one pass are counted once); `frequent[code]` marks plates to leave out."""
    subj_ts, subj_site = np.asarray(subj_ts, float), np.asarray(subj_site, np.int64)
    other_plate, other_ts = np.asarray(other_plate, np.int64), np.asarray(other_ts, float)
    other_site = np.asarray(other_site, np.int64)
    e = np.zeros(0, np.int64)
    if not len(subj_ts) or not len(other_ts):
        return Companions(e, e, e, e, np.zeros(0), np.zeros(0), [], 0, 0)
    w = float(params.window_s)
    outing = outings_of(subj_ts, params.outing_gap_s)
    t0 = min(subj_ts.min(), other_ts.min()) - w
    span = max(subj_ts.max(), other_ts.max()) - t0 + 2 * w + 1.0
    # one sorted key per pass: site-major, time-minor; a ±w range never leaves its site's block
    ko = np.unique(np.c_[other_site * span + (other_ts - t0), other_plate], axis=0)  # sorted, deduplicated
    key_o, plate_o = ko[:, 0], ko[:, 1].astype(np.int64)
    ks = subj_site * span + (subj_ts - t0)
    lo = np.searchsorted(key_o, ks - w, "left")
    hi = np.searchsorted(key_o, ks + w, "right")
    n = hi - lo
    total = int(n.sum())
    if not total:
        return Companions(e, e, e, e, np.zeros(0), np.zeros(0), [], 0, 0)
    si = np.repeat(np.arange(len(ks)), n)  # subject pass of each match
    oi = lo[si] + (np.arange(total) - np.repeat(np.cumsum(n) - n, n))  # other pass of each match
    mplate, msite = plate_o[oi], subj_site[si]
    mdt = np.abs(key_o[oi] - ks[si])
    cand = np.unique(mplate)
    n_frequent = 0
    if frequent is not None and len(frequent):
        freq = np.zeros(len(mplate), bool)
        inside = mplate < len(frequent)
        freq[inside] = frequent[mplate[inside]]
        n_frequent = int(np.unique(mplate[freq]).size)
        mplate, msite, mdt, si = mplate[~freq], msite[~freq], mdt[~freq], si[~freq]
    plates, pinv = np.unique(mplate, return_inverse=True)
    pinv = pinv.ravel()
    k = len(plates)

    def distinct(col: I64) -> I64:
        width = int(col.max()) + 1 if len(col) else 1
        u = np.unique(pinv.astype(np.int64) * width + col)
        return np.bincount(u // width, minlength=k).astype(np.int64)

    sites = distinct(msite)
    co = distinct(si.astype(np.int64))
    outs = distinct(outing[si])
    # the share of the subject's passes, over the outings they share, that the other plate met
    n_out = int(outing.max()) + 1
    shared = np.unique(pinv.astype(np.int64) * n_out + outing[si])
    size = np.bincount(outing, minlength=n_out)
    share = co / np.bincount(shared // n_out, weights=size[shared % n_out], minlength=k)
    mean_dt = np.bincount(pinv, weights=mdt, minlength=k) / np.maximum(np.bincount(pinv, minlength=k), 1)
    keep = np.flatnonzero(
        (sites >= params.min_sites) & (outs >= params.min_outings) & (share >= params.min_share)
    )
    keep = keep[np.lexsort((plates[keep], mean_dt[keep], -co[keep], -sites[keep]))]
    site_lists = []
    if len(keep):
        pos = np.full(k, -1, np.int64)
        pos[keep] = np.arange(len(keep))
        m = pos[pinv] >= 0
        pairs = np.unique(np.c_[pos[pinv[m]], msite[m]], axis=0)
        bounds = np.searchsorted(pairs[:, 0], np.arange(len(keep) + 1))
        site_lists = [pairs[bounds[i] : bounds[i + 1], 1] for i in range(len(keep))]
    return Companions(
        plate=plates[keep],
        sites=sites[keep],
        co_occurrences=co[keep],
        outings=outs[keep],
        share=share[keep],
        mean_abs_dt_s=mean_dt[keep],
        site_lists=site_lists,
        candidates=len(cand),
        excluded_frequent=n_frequent,
    )


# ---- loading from the database


def _readable(p: Any) -> Any:
    return and_(p.plate_valid.is_(True), p.plate_kind.not_in(NOT_READ))


def _shifted(session: Session, col: Any, seconds: float) -> Any:
    """`col` ± seconds as SQL that compares with the stored column (index-friendly on the other side)."""
    if sql.is_pg(session):
        return col + func.make_interval(0, 0, 0, 0, 0, 0, literal(seconds))
    # SQLite keeps UTC times as 'YYYY-MM-DD HH:MM:SS.ffffff' text; strftime's %f has milliseconds,
    # so the bound is widened by a second here and made exact by `find_companions`
    s = seconds + (1 if seconds >= 0 else -1)
    return func.strftime("%Y-%m-%d %H:%M:%f", col, f"{s:+.3f} seconds")


# the median plate's passes per window (hour-rounded), kept a while: it is a property of the window,
# not of the subject, and one GROUP BY over a day of a city's passes takes seconds
_MEDIANS: dict[tuple[str, dt.datetime, dt.datetime], tuple[float, float]] = {}
MEDIAN_TTL_S = 600.0


def _hour_window(frm: dt.datetime, to: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    f = frm.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    t = to.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return f, (t if t == to else t + dt.timedelta(hours=1))


def median_plate_passes(session: Session, frm: dt.datetime, to: dt.datetime) -> float:
    """The median number of passes of the plates seen at least twice over the window (widened to
    whole hours), from one grouped count, remembered for `MEDIAN_TTL_S` per database and window."""
    f, t = _hour_window(frm, to)
    key = (session.get_bind().engine.url.render_as_string(hide_password=True), f, t)
    now = time.monotonic()
    hit = _MEDIANS.get(key)
    if hit is not None and now - hit[1] < MEDIAN_TTL_S:
        return hit[0]
    counts = np.array(
        session.execute(
            select(func.count())
            .select_from(Pass)
            .where(Pass.ts >= f, Pass.ts <= t, _readable(Pass))
            .group_by(Pass.plate_no)
            .having(func.count() >= 2)
        )
        .scalars()
        .all(),
        float,
    )
    median = float(np.median(counts)) if len(counts) else 0.0
    for k in [k for k, (_, at) in list(_MEDIANS.items()) if now - at >= MEDIAN_TTL_S]:
        _MEDIANS.pop(k, None)
    _MEDIANS[key] = (median, now)
    return median


def plate_counts(session: Session, plates: list[str], frm: dt.datetime, to: dt.datetime) -> dict[str, int]:
    """Passes per plate over the window, for a few plates (one primary-key range each)."""
    out = dict.fromkeys(plates, 0)
    for i in range(0, len(plates), 50):
        rows = session.execute(
            select(Pass.plate_no, func.count())
            .where(Pass.plate_no.in_(plates[i : i + 50]), Pass.ts >= frm, Pass.ts <= to)
            .group_by(Pass.plate_no)
        )
        out.update((p, int(n)) for p, n in rows)
    return out


def analyse(
    session: Session, plate_no: str, frm: dt.datetime, to: dt.datetime, params: CompanionParams
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Companions of `plate_no` over a window (best first) and figures about the run."""
    epoch = epoch_of(session, Pass.ts)
    subj = session.execute(
        select(epoch, Pass.checkpoint_id)
        .where(Pass.plate_no == plate_no, Pass.ts >= frm, Pass.ts <= to)
        .order_by(Pass.ts, Pass.key)
    ).all()
    stats: dict[str, Any] = {"subject_passes": len(subj)}
    if not subj:
        return [], stats | {
            "candidates": 0,
            "frequency_cut": None,
            "median_plate_passes": None,
            "excluded_frequent": 0,
        }
    s, o = aliased(Pass), aliased(Pass)
    w = float(params.window_s)
    rows = session.execute(
        select(o.plate_no, epoch_of(session, o.ts), o.checkpoint_id)
        .select_from(s)
        .join(
            o,
            and_(
                o.checkpoint_id == s.checkpoint_id,
                o.ts >= _shifted(session, s.ts, -w),
                o.ts <= _shifted(session, s.ts, w),
            ),
        )
        .where(
            s.plate_no == plate_no,
            s.ts >= frm,
            s.ts <= to,
            o.ts >= frm - dt.timedelta(seconds=w + 1),
            o.ts <= to + dt.timedelta(seconds=w + 1),
            o.plate_no != plate_no,
            _readable(o),
        )
        .distinct()
    ).all()
    sites = sorted({r[1] for r in subj} | {r[2] for r in rows})
    site_code = {c: i for i, c in enumerate(sites)}
    names = sorted({r[0] for r in rows})
    plate_code = {p: i for i, p in enumerate(names)}
    found = find_companions(
        np.array([r[0] for r in subj], float),
        np.array([site_code[r[1]] for r in subj], np.int64),
        np.array([plate_code[r[0]] for r in rows], np.int64),
        np.array([r[1] for r in rows], float),
        np.array([site_code[r[2]] for r in rows], np.int64),
        params,
    )
    # the frequency cut, on the plates that met every other criterion (a handful)
    keep = np.ones(len(found.plate), bool)
    median: float | None = None
    cut: float | None = None
    if len(found.plate):
        if params.max_passes is not None:
            cut = float(params.max_passes)
        else:
            median = median_plate_passes(session, frm, to)
            cut = params.freq_factor * median
        counts = plate_counts(session, [names[int(c)] for c in found.plate], frm, to)
        keep = np.array([counts[names[int(c)]] <= cut for c in found.plate], bool)
    stats |= {
        "candidates": found.candidates,
        "frequency_cut": cut,
        "median_plate_passes": median,
        "excluded_frequent": int((~keep).sum()),
    }
    found = found.subset(np.flatnonzero(keep))
    items = [
        {
            "plate_no": names[int(found.plate[i])],
            "sites": int(found.sites[i]),
            "co_occurrences": int(found.co_occurrences[i]),
            "outings": int(found.outings[i]),
            "share": round(float(found.share[i]), 3),
            "mean_abs_dt_s": round(float(found.mean_abs_dt_s[i]), 1),
            "checkpoint_ids": [sites[c] for c in found.site_lists[i][: params.max_sites_listed].tolist()],
        }
        for i in range(len(found.plate))
    ]
    return items, stats
