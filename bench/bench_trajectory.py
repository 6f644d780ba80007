"""Vehicle trajectories over 30 days at 10M passes on PostgreSQL, each figure beside its floor:

1. load: N passes (default 10,000,000) over 30 day partitions by binary COPY, day by day (the
   order a live feed arrives in), into the fully indexed partitioned table;
2. a plate's 30-day trajectory through the API (HTTP, audit row, join to the checkpoints, trips,
   GeoJSON), p50/p95, against the bare index range scan of the same rows in SQL (the floor), for
   busy plates (~500 passes in 30 days: a taxi) and ordinary ones (~24);
3. disk: table + indexes (pg_total_relation_size over the partitions) per pass, and what 10^8
   passes a day costs.

The API runs in child processes (`tianwang serve`), sharing this machine's cores with the client
and the database. Usage: `python bench/bench_trajectory.py [--passes N] [--plates N] [--sample N] [--smoke]`
(`--smoke`: a few seconds at a tiny size, only to check that it runs).
Needs PostgreSQL at TIANWANG_TEST_PG_URL and a few GB of disk (≈ 3 GB for 10M passes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import tempfile
import time
from typing import Any

import httpx
import psycopg
from bench_passes import N_CHECKPOINTS, pass_row, plate, setup  # the sibling bench's helpers
from common import PASS_COLS, copy_rows, parse, pct, raw_dsn, scratch_db, start_api, stop_api

DAYS = 30
HEAVY = 1000  # busy plates (taxis, vans): the ones an investigator follows over weeks
HEAVY_SHARE = 0.05  # of all passes: ~500 passes each over 30 days at 10M
PARTS = (
    "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'passes'"
)
FLOOR_SQL = (
    "SELECT ts, key, checkpoint_id FROM passes WHERE plate_no = %s AND ts >= %s AND ts <= %s "
    "ORDER BY ts, key LIMIT 1001"
)


def day_rows(day: dt.datetime, n: int, plates_n: int, rnd: random.Random, tag: str) -> list[tuple[Any, ...]]:
    """One day's passes in PASS_COLS order: a share on the busy plates, the rest on the long tail."""
    now = dt.datetime.now(dt.UTC)
    rows = []
    for i in range(n):
        p = rnd.randrange(HEAVY) if rnd.random() < HEAVY_SHARE else HEAVY + rnd.randrange(plates_n - HEAVY)
        rows.append(pass_row(rnd, p, day + dt.timedelta(seconds=rnd.randrange(86400)), f"{tag}-{i:08d}", now))
    return rows


def load(dsn: str, total: int, plates_n: int, start: dt.datetime, days: int = DAYS) -> None:
    """`total` passes over `days` day partitions from `start`, day by day, by binary COPY."""
    per_day = total // days
    rnd = random.Random(2)
    t0 = time.perf_counter()
    copy_s = 0.0
    with psycopg.connect(dsn) as conn:
        for d in range(days):
            n = per_day if d < days - 1 else total - per_day * (days - 1)
            rows = day_rows(start + dt.timedelta(days=d), n, plates_n, rnd, f"d{d:02d}")
            t1 = time.perf_counter()
            copy_rows(conn, "passes", PASS_COLS, rows)
            conn.commit()
            copy_s += time.perf_counter() - t1
            if d % 5 == 4:
                done = per_day * (d + 1)
                print(f"[load] day {d + 1}/{days}: {done:,} passes, {time.perf_counter() - t0:.0f}s")
    print(
        f"[load] {total:,} passes over {days} days by binary COPY: {copy_s:.1f}s in COPY "
        f"({total / copy_s:,.0f} passes/s into the indexed table), "
        f"{time.perf_counter() - t0:.0f}s with generation"
    )
    t1 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE passes")
    print(f"[load] VACUUM ANALYZE {time.perf_counter() - t1:.0f}s")


def disk(dsn: str) -> None:
    with psycopg.connect(dsn) as conn:
        count = int(conn.execute("SELECT count(*) FROM passes").fetchone()[0])  # type: ignore[index]
        total, heap = conn.execute(
            f"SELECT sum(pg_total_relation_size(c.oid)), sum(pg_relation_size(c.oid)) {PARTS}"
        ).fetchone()  # type: ignore[misc]
        per_index = conn.execute(
            "SELECT regexp_replace(ic.relname, '^passes_p[0-9]+_|^passes_default_', ''), "
            "sum(pg_relation_size(ic.oid)) FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid "
            "JOIN pg_inherits i ON i.inhrelid = x.indrelid JOIN pg_class p ON p.oid = i.inhparent "
            "WHERE p.relname = 'passes' GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
    per = float(total) / count
    print(
        f"[disk] {count:,} passes: {float(total) / 2**30:.2f} GiB with indexes, {per:.0f} bytes/pass "
        f"({float(heap) / count:.0f} heap, the rest indexes and TOAST/free-space maps)"
    )
    print("[disk] indexes: " + ", ".join(f"{name} {float(b) / count:.0f} B/pass" for name, b in per_index))
    print(
        f"[disk] 10^8 passes/day ≈ {per * 1e8 / 2**30:.1f} GiB/day, {per * 1e8 * 365 / 2**40:.1f} TiB/year "
        "(before WAL, replicas and backups)"
    )


def trajectories(dsn: str, base: str, inv: str, start: dt.datetime, sample: int, plates_n: int) -> None:
    frm, to = start, start + dt.timedelta(days=DAYS + 1)
    rnd = random.Random(3)
    groups = {
        "busy plates": [plate(i) for i in rnd.sample(range(HEAVY), sample)],
        "ordinary plates": [plate(HEAVY + i) for i in rnd.sample(range(plates_n - HEAVY), sample)],
    }
    params = {"from": frm.isoformat(), "to": to.isoformat(), "case_no": "BENCH-TRAJ-1"}
    with (
        psycopg.connect(dsn) as conn,
        httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {inv}"}) as c,
    ):
        c.get(f"/api/v1/trajectories/vehicle/{plate(HEAVY + 7)}", params=params).raise_for_status()  # warm
        for label, group in groups.items():
            first_ms, sql_ms, api_ms, sizes = [], [], [], []
            for p in group:
                t1 = time.perf_counter()
                conn.execute(FLOOR_SQL, (p, frm, to)).fetchall()  # first touch: pages maybe not cached
                first_ms.append((time.perf_counter() - t1) * 1000)
                t1 = time.perf_counter()
                n = len(conn.execute(FLOOR_SQL, (p, frm, to)).fetchall())
                sql_ms.append((time.perf_counter() - t1) * 1000)
                t1 = time.perf_counter()
                r = c.get(f"/api/v1/trajectories/vehicle/{p}", params=params)
                api_ms.append((time.perf_counter() - t1) * 1000)
                r.raise_for_status()
                body = r.json()
                if len(body["points"]) != min(n, 1000):
                    raise SystemExit(f"{p}: the API returned {len(body['points'])} points, SQL {n}")
                sizes.append(len(body["points"]))
            print(
                f"[trajectory] {label}: {len(group)} plates, {statistics.mean(sizes):.0f} passes each "
                f"(min {min(sizes)}, max {max(sizes)}) over {DAYS} days"
            )
            print(
                f"[trajectory]   API (HTTP, audit, join, trips, GeoJSON): p50 {pct(api_ms, 0.5):.1f} ms, "
                f"p95 {pct(api_ms, 0.95):.1f} ms"
            )
            print(
                f"[trajectory]   bare index range scan (SQL, the floor):  p50 {pct(sql_ms, 0.5):.1f} ms, "
                f"p95 {pct(sql_ms, 0.95):.1f} ms (first touch of the plate: p50 {pct(first_ms, 0.5):.1f} ms, "
                f"p95 {pct(first_ms, 0.95):.1f} ms)"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--passes", type=int, default=10_000_000)
    ap.add_argument("--plates", type=int, default=400_000, help="distinct plates (busy ones included)")
    ap.add_argument("--sample", type=int, default=50, help="plates queried per group")
    ap.add_argument("--workers", type=int, default=2, help="API worker processes")
    args = parse(ap, smoke={"passes": 3000, "plates": 1500, "sample": 3, "workers": 1})

    proc = None
    with scratch_db("traj") as (name, url), tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
        dsn = raw_dsn(url)
        try:
            today = dt.datetime.now(dt.UTC).date()
            start = dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC) - dt.timedelta(days=DAYS)
            _agent, inv = setup(url, DAYS)
            print(
                f"PostgreSQL database {name}; {N_CHECKPOINTS} checkpoints; {DAYS} day partitions; "
                f"{os.cpu_count()} cores"
            )
            load(dsn, args.passes, args.plates, start)
            disk(dsn)
            proc, base = start_api(url, tmp, args.workers)
            trajectories(dsn, base, inv, start, args.sample, args.plates)
        finally:
            stop_api(proc)


if __name__ == "__main__":
    main()
