"""Benchmark: fusion (三轨联控) at city scale on PostgreSQL — one simulated day of 100k vehicles and 150k
people by default (≈ 12M passes, 1.4M face sightings, 21M phone sightings, see docs/movement.md).

The movement simulator's batches are COPYed straight into the partitioned, indexed record tables of
a fresh database (the registry rows inserted directly; not the ingest path, whose rate is
bench/bench_passes.py's), then VACUUM ANALYZE. For a sample of vehicle owners it runs fusion by
plate (→ phone, → person) and by IMSI (→ plate), and prints per query the seconds (p50 / p95 / max)
and precision@1 against the simulator's truth, beside two peers measured in the same run on the
same subjects: the plain trajectory query (`query.trajectory`, one page of 1000) and the SQL floor
of fusion — fetching the subject and its candidate sightings with nothing scored.

The simulated days are the simulator's own (from a fixed Monday), so every run makes the same world.
Usage: `python bench/bench_fusion.py [--vehicles N] [--people N] [--owners N] [--keep]
[--db NAME --skip-load] [--smoke]`. Needs PostgreSQL at TIANWANG_TEST_PG_URL (default the test
server). `--smoke`: a few seconds at a tiny size, only to check that it runs.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import statistics
import time
from collections.abc import Iterable
from typing import Any

import common
import numpy as np
import psycopg
from sqlalchemy import create_engine, insert, text
from sqlalchemy.orm import Session

from tianwang.analyses import fusion
from tianwang.records import partitions, query
from tianwang.storage.models import Camera, Checkpoint, Fence

TZ = dt.timezone(dt.timedelta(hours=8))
GOAL_PRECISION = 0.95

COLUMNS = {
    "passes": common.PASS_COLS,
    "faces": ("person_id", "ts", "key", "camera_id", "confidence", "received_at"),
    "phones": ("imsi", "ts", "key", "fence_id", "rssi", "received_at"),
}
TABLE = {"passes": "passes", "faces": "face_sightings", "phones": "phone_sightings"}


def _rows(
    kind: str, items: list[dict[str, Any]], passes: common.SimulatedPasses
) -> Iterable[tuple[Any, ...]]:
    ts, now = dt.datetime.fromisoformat, passes.now
    if kind == "passes":
        return passes.rows(items)
    if kind == "faces":
        return [(i["person_id"], ts(i["ts"]), i["key"], i["camera_id"], i["confidence"], now) for i in items]
    return [(i["imsi"], ts(i["ts"]), i["key"], i["fence_id"], i.get("rssi"), now) for i in items]


def _registry(url: str, city: Any, fences: list[dict[str, Any]]) -> None:
    eng = create_engine(url)
    with Session(eng) as s, s.begin():
        s.execute(
            insert(Checkpoint),
            [
                {k: c[k] for k in ("checkpoint_id", "name", "lon", "lat", "direction_deg", "lanes", "road")}
                | {"area_code": c.get("area_code") or "440300"}
                for c in city.checkpoints
            ],
        )
        cams = [c for c in city.cameras if c["kind"] == "face"]
        keys = (
            "device_id",
            "name",
            "kind",
            "lon",
            "lat",
            "heading_deg",
            "hfov_deg",
            "range_m",
            "point_class",
        )
        s.execute(
            insert(Camera),
            [{k: c[k] for k in keys} | {"area_code": c.get("area_code") or "440300"} for c in cams],
        )
        s.execute(
            insert(Fence), [{k: f[k] for k in ("fence_id", "name", "lon", "lat", "radius_m")} for f in fences]
        )
    eng.dispose()


def _load(url: str, batches: Any, days: list[dt.date]) -> tuple[dict[str, int], float]:
    """COPY every batch into its table; returns the row counts and the seconds."""
    eng = create_engine(url)
    with eng.begin() as c:
        for table in partitions.RECORD_TABLES:
            have = partitions.existing_days(c, table)
            for d in days:
                if d not in have:
                    partitions.create_day(c, table, d)
    eng.dispose()
    n: collections.Counter[str] = collections.Counter()
    t0 = time.perf_counter()
    last = t0
    passes = common.SimulatedPasses(dt.datetime.now(dt.UTC))
    with psycopg.connect(common.raw_dsn(url)) as conn:
        for b in batches:
            n[b.kind] += common.copy_rows(
                conn, TABLE[b.kind], COLUMNS[b.kind], _rows(b.kind, b.items, passes)
            )
            if time.perf_counter() - last > 30:
                conn.commit()
                last = time.perf_counter()
                total = sum(n.values())
                print(f"  loaded {dict(n)} ({total / (last - t0):,.0f} rows/s)", flush=True)
        conn.commit()
    return dict(n), time.perf_counter() - t0


def _fmt(xs: list[float]) -> str:
    return f"p50 {common.pct(xs, 0.5):.3f}s  p95 {common.pct(xs, 0.95):.3f}s  max {max(xs):.3f}s"


def _floor(s: Session, kind: str, subject: str, frm: dt.datetime, to: dt.datetime) -> float:
    """The SQL fusion cannot do without: the subject's sightings and its candidates' rows."""
    p = fusion.Params()
    t0 = time.perf_counter()
    track, _ = fusion._track(s, kind, subject, frm, to, p.max_subject_sightings)
    for other in fusion.KINDS:
        if other != kind:
            fusion.candidates(s, track, other, fusion._sensors(s, other), p, frm, to)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    common.movement_args(ap)
    ap.add_argument("--owners", type=int, default=60, help="subjects queried (each by plate and by IMSI)")
    ap.add_argument("--db", help="database name to use (default: a fresh one, dropped at the end)")
    ap.add_argument("--skip-load", action="store_true", help="the database already holds this run's data")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    a = common.parse(ap, smoke={"vehicles": 400, "people": 500, "owners": 5})

    if a.db and a.skip_load:
        name, url = a.db, common.db_url(a.db)
    else:
        name, url = common.make_db("fusion", name=a.db)
    try:
        t = time.perf_counter()
        city, start, batches, truth, sim = common.movement_world(a)
        print(
            f"city: {len(city.checkpoints)} checkpoints, {len(sim.roads.face_ids)} face cameras, "
            f"{len(sim.roads.fence_bodies)} fences; world {time.perf_counter() - t:.0f}s",
            flush=True,
        )
        d0 = dt.datetime.combine(start, dt.time(), TZ)
        frm, to = d0.astimezone(dt.UTC), (d0 + dt.timedelta(days=a.days)).astimezone(dt.UTC)
        utc_days = sorted({(frm + dt.timedelta(hours=h)).date() for h in range(0, a.days * 24 + 1)})

        pass_count: collections.Counter[str] = collections.Counter()
        face_count: collections.Counter[str] = collections.Counter()

        def tee() -> Any:
            for b in batches:
                if b.kind == "passes":
                    pass_count.update(i["plate_no"] for i in b.items)
                elif b.kind == "faces":
                    face_count.update(i["person_id"] for i in b.items)
                yield b

        t = time.perf_counter()
        if a.skip_load:
            for _ in tee():
                pass
            print(f"re-simulated in {time.perf_counter() - t:.0f}s (data already loaded)", flush=True)
        else:
            _registry(url, city, sim.roads.fence_bodies)
            n, load_s = _load(url, tee(), utc_days)
            print(
                f"loaded {n} in {load_s:.0f}s ({sum(n.values()) / load_s:,.0f} rows/s, generation included)"
            )
            t = time.perf_counter()
            with create_engine(url, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(text("VACUUM ANALYZE"))
            print(f"VACUUM ANALYZE {time.perf_counter() - t:.0f}s", flush=True)
        cnt = truth.counts
        print(
            f"{a.days} day(s): {cnt['passes']:,} passes, {cnt['faces']:,} face sightings, "
            f"{cnt['phones']:,} phone sightings"
        )

        cloned = {x["plate_no"] for x in truth.clones}
        own = [
            o
            for o in truth.owners
            if o["role"] == "commuter"
            and o["phones"]
            and o["vehicles"]
            and o["vehicles"][0]["kind"] == "private"
            and o["vehicles"][0]["plate_no"] not in cloned
            and pass_count[o["vehicles"][0]["plate_no"]] >= 10
        ]
        if not own:
            raise SystemExit("no vehicle owner fits the sample (too small a world: more --vehicles)")
        rng = np.random.default_rng(0)
        sample = [own[k] for k in rng.choice(len(own), min(a.owners, len(own)), replace=False)]
        eng = create_engine(url)
        secs: dict[str, list[float]] = collections.defaultdict(list)
        tops: dict[str, list[tuple[float, bool]]] = collections.defaultdict(list)
        asked: collections.Counter[str] = collections.Counter()
        unfloored = fusion.Params(min_score=0.0)
        with Session(eng) as s:
            # warm the registry and the plan cache once, as a running API would be
            fusion.fuse(s, "vehicle", sample[0]["vehicles"][0]["plate_no"], frm=frm, to=to)
            for o in sample:
                for kind, subject in (
                    ("vehicle", o["vehicles"][0]["plate_no"]),
                    ("phone", o["phones"][0]["imsi"]),
                ):
                    t0 = time.perf_counter()
                    query.trajectory(s, kind, subject, frm=frm, to=to, limit=1000, cursor=None)
                    secs[f"trajectory {kind}"].append(time.perf_counter() - t0)
                    secs[f"floor {kind}"].append(_floor(s, kind, subject, frm, to))
                    t0 = time.perf_counter()
                    # no floor here: the top score is kept, and the floors are applied below
                    res = fusion.fuse(s, kind, subject, frm=frm, to=to, params=unfloored)
                    secs[f"fusion {kind}"].append(time.perf_counter() - t0)
                    top: dict[str, dict[str, Any]] = {}
                    for x in res["associations"]:
                        top.setdefault(x["kind"], x)
                    want = {
                        "phone": {p["imsi"] for p in o["phones"]},
                        "person": {o["person_id"]},
                        "vehicle": {v["plate_no"] for v in o["vehicles"]},
                    }
                    for other in fusion.KINDS:
                        if other == kind or (other == "person" and face_count[o["person_id"]] < 3):
                            continue
                        q = f"{kind} → {other}"
                        asked[q] += 1
                        if other in top:
                            tops[q].append((top[other]["score"], top[other]["id"] in want[other]))
        eng.dispose()
        print(f"{len(sample)} owners (commuters, private car with ≥ 10 passes, not cloned) of {len(own)}:")
        for kind in ("vehicle", "phone"):
            print(f"  by {kind:7s}  fusion      {_fmt(secs[f'fusion {kind}'])}")
            print(f"             SQL floor   {_fmt(secs[f'floor {kind}'])}   (subject + candidate rows only)")
            print(
                f"             trajectory  {_fmt(secs[f'trajectory {kind}'])}   (peer: one page of the track)"
            )
        ratio = statistics.median(secs["fusion vehicle"]) / statistics.median(secs["trajectory vehicle"])
        print(f"  fusion by plate / trajectory by plate (medians): {ratio:.1f}×")
        default = fusion.Params().min_score
        print(f"precision@1 (answered / asked) by the evidence floor min_score (default {default}):")
        for q in asked:
            line = []
            for floor in sorted({0.0, 2.0, default, 5.0}):
                got = [ok for sc, ok in tops[q] if sc >= floor]
                prec = sum(got) / len(got) if got else float("nan")
                mark = "*" if floor == default else " "
                line.append(f"{floor:g}{mark} {prec:.3f} ({sum(got)}/{len(got)}/{asked[q]})")
            note = " — persons seen by face cameras ≥ 3 times" if q.endswith("person") else ""
            print(f"  {q:16s} " + "   ".join(line) + note)
        print(f"goal: precision@1 ≥ {GOAL_PRECISION} (plate ↔ phone, plate → person) at the default floor")
    finally:
        if a.keep or a.db:
            print(f"kept database {name}: {url}")
        else:
            common.drop_db(name)


if __name__ == "__main__":
    main()
