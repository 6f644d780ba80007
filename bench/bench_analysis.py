"""Cloned plates (套牌) and companions (同行车) at city scale on PostgreSQL: seconds, precision, recall.

The movement simulator makes the traffic (default 100k vehicles, 150k people × 1 day ≈ 12M passes,
with planted clone pairs and companion groups); the passes go into a fresh database by COPY (the
rows the ingest would store: plate classified, colours as codes), the city's checkpoints and roads
into the registry. Then, each beside its peer measured in the same run:

1. cloned plates over the whole window (`tianwang.analyses.clones.analyse`, what the API
   runs): seconds, precision and recall against the planted pairs; peers: a bare `count(*)` of the
   window's passes and a binary COPY of every pass's (plate, time, checkpoint), drained — the floor
   of any analysis that reads every pass out of the database;
2. companions for every member of every planted group that went out together in the window
   (`companions.analyse`): seconds per call (p50 / p95 / max), precision and recall against the
   other members of the group; peer: the subject's own trajectory read (index range scan).

The simulated days are the simulator's own (from a fixed Monday), so every run makes the same world.
Goal: precision and recall ≥ 0.95 each. Usage:
`python bench/bench_analysis.py [--vehicles N] [--people N] [--days D] [--seed S] [--keep] [--smoke]`
(needs PostgreSQL at TIANWANG_TEST_PG_URL; the database is dropped at the end unless --keep;
`--smoke`: a few seconds at a tiny size, only to check that it runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import statistics
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.sql
from common import (
    PASS_COLS,
    SimulatedPasses,
    copy_rows,
    db_url,
    drop_db,
    make_db,
    movement_args,
    movement_world,
    parse,
    pct,
    raw_dsn,
)
from sqlalchemy import text

from tianwang.analyses import clones, companions
from tianwang.records import partitions
from tianwang.storage.db import Database
from tianwang.storage.models import Checkpoint, Road

GOAL = 0.95
TRAJECTORY = "SELECT ts, checkpoint_id FROM passes WHERE plate_no = :p AND ts >= :f AND ts <= :t"


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss() -> float:
    """Reset the process's peak RSS to its current RSS (Linux clear_refs); returns that RSS, MiB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def peak_rss() -> float:
    return _status("VmHWM")


def load_registry(db: Database, city: Any) -> None:
    keys = ("checkpoint_id", "name", "lon", "lat", "direction_deg", "lanes", "road", "area_code")
    with db.session() as s:
        s.add_all(Checkpoint(**{k: cp.get(k) for k in keys}) for cp in city.checkpoints)
        s.add_all(
            Road(road_id=f["id"], geometry=f["geometry"], road_class=f["properties"]["road_class"],
                 length_m=f["properties"]["length_m"])
            for f in city.roads_geojson()["features"]
        )  # fmt: skip


def make_partitions(db: Database, frm: dt.datetime, to: dt.datetime) -> None:
    with db.engine.begin() as conn:
        have = partitions.existing_days(conn, "passes")
        day = frm.astimezone(dt.UTC).date()
        while day <= to.astimezone(dt.UTC).date():
            if day not in have:
                partitions.create_day(conn, "passes", day)
            day += dt.timedelta(days=1)


def pass_rows(batches: Iterable[Any]) -> Iterator[tuple[Any, ...]]:
    """The simulator's passes as the ingest would store them, with progress every million."""
    conv = SimulatedPasses(dt.datetime.now(dt.UTC))
    n = 0
    for b in batches:
        if b.kind == "passes":
            yield from conv.rows(b.items)
            n += len(b.items)
            if n % 1_000_000 < len(b.items):
                print(f"  {n:,} passes copied", flush=True)


def copy_passes(url: str, batches: Iterable[Any]) -> int:
    """Stream the simulator's pass batches into `passes` by binary COPY."""
    with psycopg.connect(raw_dsn(url)) as conn:
        n = copy_rows(conn, "passes", PASS_COLS, pass_rows(batches))
        conn.commit()
        conn.execute("ANALYZE passes")
        conn.commit()
    return n


def pr(found: set[str], truth: set[str]) -> tuple[float, float, int]:
    tp = len(found & truth)
    return tp / max(1, len(found)), tp / max(1, len(truth)), tp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    movement_args(ap)
    ap.add_argument("--keep", action="store_true", help="keep the database (prints its URL)")
    ap.add_argument(
        "--reuse",
        metavar="DBNAME",
        help="a database kept by an earlier run with the same arguments",
    )
    a = parse(ap, smoke={"vehicles": 400, "people": 500})

    tz = dt.timezone(dt.timedelta(hours=8))
    t = time.perf_counter()
    city, start, batches, truth, _sim = movement_world(a)
    print(
        f"city {len(city.node_lon)} nodes, {len(city.edge_u)} roads, {len(city.checkpoints)} checkpoints; "
        f"world {time.perf_counter() - t:.1f}s",
        flush=True,
    )
    frm = dt.datetime.combine(start, dt.time(), tz).astimezone(dt.UTC)
    to = frm + dt.timedelta(days=a.days)
    if a.reuse:
        name = a.reuse
        url = db_url(name)
    else:
        name, url = make_db("an")
    db = Database(url)
    try:
        t = time.perf_counter()
        if a.reuse:
            for _ in batches:  # the truth fills as the batches are made
                pass
            n = truth.counts["passes"]
            print(f"{n:,} passes simulated (reusing {name}) in {time.perf_counter() - t:.1f}s", flush=True)
        else:
            load_registry(db, city)
            make_partitions(db, frm, to)
            n = copy_passes(url, batches)
            print(
                f"{n:,} passes simulated and copied in {time.perf_counter() - t:.1f}s; "
                f"peak RSS {rss_mib():,.0f} MiB",
                flush=True,
            )
        del batches, _sim

        # peers: a bare count, and a binary COPY of the rows' (plate, ts, checkpoint) drained unread —
        # the floor of reading every pass of the window out of the database
        with db.session() as s:
            t = time.perf_counter()
            cnt = s.execute(
                text("SELECT count(*) FROM passes WHERE ts >= :f AND ts <= :t"), {"f": frm, "t": to}
            )
            total = cnt.scalar_one()
            t_count = time.perf_counter() - t
            t = time.perf_counter()
            raw = s.connection().connection.driver_connection
            q = psycopg.sql.SQL(
                "COPY (SELECT plate_no, ts, checkpoint_id FROM passes WHERE ts >= {} AND ts <= {}) "
                "TO STDOUT (FORMAT binary)"
            ).format(psycopg.sql.Literal(frm), psycopg.sql.Literal(to))
            nbytes = 0
            with raw.cursor() as cur, cur.copy(q) as cp:
                for chunk in cp:
                    nbytes += len(chunk)
            t_fetch = time.perf_counter() - t

        print(
            f"peers: count(*) of the window {t_count:.2f}s ({total:,} passes); binary COPY of (plate, ts, "
            f"checkpoint) of every pass, drained {t_fetch:.2f}s ({nbytes / 2**20:,.0f} MiB)",
            flush=True,
        )

        # 1. cloned plates (the process's peak RSS is reset first: its growth is the analysis's)
        with db.session() as s:
            base = reset_peak_rss()
            t = time.perf_counter()
            items, stats = clones.analyse(s, frm, to, clones.CloneParams())
            t_clones = time.perf_counter() - t
            mem_clones = peak_rss() - base
        # a pair is detectable when both vehicles were recorded in the window (a genuine car that
        # stayed home leaves the clone alone with the plate: nothing contradicts)
        planted = {c["plate_no"] for c in truth.clones}
        truth_cl = {c["plate_no"] for c in truth.clones if all(c["tracks"].values())}
        found_cl = {it["plate_no"] for it in items}
        p_cl, r_cl, tp_cl = pr(found_cl, truth_cl)

        print(
            f"cloned plates: {t_clones:.1f}s ({t_clones / max(t_fetch, 1e-9):.2f}× the COPY; "
            f"peak RSS +{mem_clones:,.0f} MiB), precision "
            f"{p_cl:.3f} recall {r_cl:.3f} ({tp_cl} true of {len(found_cl)} found; {len(truth_cl)} "
            f"detectable of {len(planted)} planted: both cars recorded; recall of all planted "
            f"{tp_cl / max(1, len(planted)):.3f})"
        )
        print(f"  {stats}")
        missed = sorted(truth_cl - found_cl)
        extra = [
            (it["plate_no"], it["contradictions"], it["implied_speed_kmh"])
            for it in items
            if it["plate_no"] not in truth_cl
        ]
        print(f"  missed {missed[:10]}; extra {extra[:10]}", flush=True)

        # 2. companions of every member of every group that went out together in the window
        times: list[float] = []
        tp = fp = fn = 0
        t_traj: list[float] = []
        cuts: list[float] = []
        groups = [g for g in truth.companions if g["outings"]]
        for g in groups:
            for plate in g["plates"]:
                with db.session() as s:
                    t = time.perf_counter()
                    s.execute(
                        text(TRAJECTORY),
                        {"p": plate, "f": frm, "t": to},
                    ).all()
                    t_traj.append(time.perf_counter() - t)
                    t = time.perf_counter()
                    got_items, c_stats = companions.analyse(s, plate, frm, to, companions.CompanionParams())
                    times.append(time.perf_counter() - t)
                    cuts.append(c_stats.get("frequency_cut") or 0)
                got = {it["plate_no"] for it in got_items}
                want = set(g["plates"]) - {plate}
                tp, fp, fn = tp + len(got & want), fp + len(got - want), fn + len(want - got)
        p_co, r_co = tp / max(1, tp + fp), tp / max(1, tp + fn)

        if times:
            print(
                f"companions: {len(times)} subjects in {len(groups)} of {len(truth.companions)} groups "
                "(the others did not go out together in the window); "
                f"per call p50 {statistics.median(times):.2f}s "
                f"p95 {pct(times, 0.95):.2f}s max {max(times):.2f}s; peer: the subject's trajectory read "
                f"p50 {statistics.median(t_traj) * 1000:.1f} ms; precision {p_co:.3f} recall {r_co:.3f} "
                f"(tp {tp}, fp {fp}, fn {fn}); frequency cut {max(cuts):.0f} passes; the first call "
                f"(computing the window's median plate) {times[0]:.2f}s"
            )
        ok = min(p_cl, r_cl, p_co, r_co) >= GOAL
        print(
            f"goal precision and recall ≥ {GOAL} each: {'met' if ok else 'NOT met'}; "
            f"peak RSS {rss_mib():,.0f} MiB"
        )
    finally:
        db.engine.dispose()
        if a.keep:
            print(f"kept: {url}")
        else:
            drop_db(name)


if __name__ == "__main__":
    main()
