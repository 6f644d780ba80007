"""Pass search (过车查询) at city scale on PostgreSQL, each figure beside the bare index scan of the
same rows measured in the same run:

1. load: N passes (default 10,000,000) over D day partitions (default 10) by binary COPY into the
   fully indexed partitioned table, the trigram index on the plate included (its ingest cost shows
   in the COPY rate);
2. one page (100 passes) and the capped count of a plate pattern over a one-day window, p50/p95,
   through `tianwang.records.search` (SQL + Python, no HTTP):
   - a wildcard with a prefix (`粤A1?35*`: three digits of the serial seen: the bench's serials
     are digits only, so this is as selective as `粤B1?3*` among real plates), goal p95 ≤ 50 ms;
   - a leading wildcard (`*1234`: the last four seen), goal p95 ≤ 500 ms;
   - look-alikes of a whole plate (`粤A10380` with 0/O/D/Q, 8/B …);
   against the floor: the same page read by primary key with the matching plates known in advance
   (`plate_no = ANY(…)`, the bare index scan of the same rows);
3. the same patterns over the whole window (D days), for the record.

Usage: `python bench/bench_pass_search.py [--passes N] [--plates N] [--days N] [--sample N] [--smoke]`.
Needs PostgreSQL at TIANWANG_TEST_PG_URL and about 3 GB of disk for 10M passes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import time

import psycopg
from bench_passes import N_CHECKPOINTS, plate, setup
from bench_trajectory import load
from common import parse, pct, raw_dsn, scratch_db

from tianwang.records import search
from tianwang.storage.db import Database

FLOOR_SQL = (
    "SELECT p.*, c.name, c.lon, c.lat FROM passes p LEFT JOIN checkpoints c USING (checkpoint_id) "
    "WHERE p.plate_no = ANY(%s) AND p.ts >= %s AND p.ts < %s "
    "ORDER BY p.ts DESC, p.plate_no DESC, p.key DESC LIMIT 101"
)


def patterns(kind: str, n: int, plates_n: int, rnd: random.Random) -> list[search.PlatePattern]:
    out = []
    for _ in range(n):
        p = plate(rnd.randrange(plates_n))
        if kind == "prefix":
            # the bench's serials are digits only (10 values a place, a real plate's 34): three
            # digits seen narrow a pattern about as much as the 粤B1?3* does in real plates
            out.append(search.parse_pattern(p[:3] + "?" + p[4:6] + "*"))
        elif kind == "leading":
            out.append(search.parse_pattern("*" + p[-4:]))
        else:
            out.append(search.parse_pattern(p, lookalikes=True))
    return out


def run(
    db: Database, dsn: str, label: str, pats: list[search.PlatePattern], frm: dt.datetime, to: dt.datetime
) -> None:
    ours, floor, sizes, totals = [], [], [], []
    with db.session() as s, psycopg.connect(dsn) as conn:
        for p in pats:
            f = search.PassFilter(frm=frm, to=to, plate=p)
            # the plates that match, found untimed: the floor reads the page knowing them
            known = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT plate_no FROM passes WHERE plate_no ~ %s AND ts >= %s AND ts < %s",
                    (p.regex(), frm, to),
                )
            ]
            t1 = time.perf_counter()
            page = search.search(s, f, limit=100)
            ours.append((time.perf_counter() - t1) * 1000)
            t1 = time.perf_counter()
            rows = conn.execute(FLOOR_SQL, (known, frm, to)).fetchall()
            floor.append((time.perf_counter() - t1) * 1000)
            if len(page["items"]) != min(100, len(rows)):
                raise SystemExit(f"{p.text}: search gave {len(page['items'])} passes, the floor {len(rows)}")
            sizes.append(len(known))
            totals.append(page["total_estimate"])
    days = (to - frm).days
    print(
        f"[search] {label}, {days}-day window, {len(pats)} patterns ({pats[0].text} …): "
        f"{sum(sizes) / len(sizes):.0f} plates and {sum(totals) / len(totals):,.0f} passes match on average"
    )
    print(
        f"[search]   page of 100 + capped count: p50 {pct(ours, 0.5):.1f} ms, p95 {pct(ours, 0.95):.1f} ms; "
        f"bare index scan of the same page: p50 {pct(floor, 0.5):.1f} ms, p95 {pct(floor, 0.95):.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--passes", type=int, default=10_000_000)
    ap.add_argument("--plates", type=int, default=400_000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--sample", type=int, default=40, help="patterns timed per kind")
    args = parse(ap, smoke={"passes": 20_000, "plates": 2_000, "days": 2, "sample": 4})

    db = None
    with scratch_db("search") as (name, url):
        try:
            today = dt.datetime.now(dt.UTC).date()
            start = dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC) - dt.timedelta(
                days=args.days
            )
            setup(url, args.days)
            print(
                f"PostgreSQL database {name}; {N_CHECKPOINTS} checkpoints; {args.days} day partitions; "
                f"{os.cpu_count()} cores"
            )
            dsn = raw_dsn(url)
            load(dsn, args.passes, args.plates, start, args.days)
            db = Database(url)
            rnd = random.Random(5)
            day = (start + dt.timedelta(days=args.days // 2), start + dt.timedelta(days=args.days // 2 + 1))
            whole = (start, start + dt.timedelta(days=args.days))
            goals = {"prefix": "goal p95 ≤ 50 ms", "leading": "goal p95 ≤ 500 ms", "lookalike": "no goal set"}
            for kind in ("prefix", "leading", "lookalike"):
                pats = patterns(kind, args.sample, args.plates, rnd)
                run(db, dsn, f"{kind} ({goals[kind]})", pats, *day)
                run(db, dsn, kind, pats[: max(2, args.sample // 4)], *whole)
        finally:
            if db is not None:
                db.dispose()


if __name__ == "__main__":
    main()
