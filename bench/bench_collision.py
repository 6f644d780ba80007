"""Area collision (区域碰撞) over three space-time windows on a city day of passes, PostgreSQL.

Loads N passes (default 10M: one day of a city of 5,000 checkpoints and 1M plates) by COPY into the
partitioned, fully indexed `passes` table of a fresh database, plants subjects seen at three places,
then times, each beside its peer measured in the same run:

1. the collision (`tianwang.analyses.collision`: areas → sensors from the registry, one SQL
   statement) for three windows (±`--minutes` around each planted pass, a square of `--area-m`
   around its checkpoint), p50 / p95 over the planted subjects — against the bare index range scans
   of the same three windows' rows (plate_no of `checkpoint_id = ANY(...) AND ts in range`, SQL
   only), which any answer has to read;
2. the same through the API (in-process ASGI: HTTP, validation, audit row), p50 / p95;
3. the whole-window analyses on the same table, for scale: night-active over the day against a bare
   scan-and-group of the same rows, and first entry (the checkpoints on the grid's edge as the city's
   entries, half a day with half a day of look-back) against the bare range scans of those
   checkpoints' passes.

Usage: `python bench/bench_collision.py [--passes N] [--checkpoints C] [--plates P] [--keep] [--smoke]`.
Needs PostgreSQL at TIANWANG_TEST_PG_URL. A reduced run (`--passes 500000`) takes a minute; `--smoke`
a few seconds at a tiny size, only to check that it runs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import math
import statistics
import tempfile
import time
from typing import Any

import numpy as np
import psycopg
from common import parse, pct, raw_dsn, scratch_db

from tianwang.analyses import collision, entries, nightlife
from tianwang.records import partitions
from tianwang.storage.db import Database
from tianwang.storage.models import Checkpoint

LON0, LAT0 = 113.90, 22.50
SPACING_M = 400.0
CHUNK = 500_000
LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def cp_id(i: int) -> str:
    return f"4403050000121{i:07d}"


def plates(n: int) -> np.ndarray:
    i = np.arange(n)
    letter = np.array(list(LETTERS))[(i // 100_000) % len(LETTERS)]
    return np.char.add(np.char.add("粤", letter), np.char.zfill((i % 100_000).astype(str), 5))


def grid(n_cp: int) -> tuple[np.ndarray, np.ndarray]:
    side = math.ceil(math.sqrt(n_cp))
    k = np.arange(n_cp)
    dlat = SPACING_M / 110_540
    dlon = SPACING_M / (111_320 * math.cos(math.radians(LAT0)))
    return LON0 + (k % side) * dlon, LAT0 + (k // side) * dlat


def copy_chunk(
    dsn: str, plate: np.ndarray, ts_s: np.ndarray, cp: np.ndarray, first_key: int, tag: str
) -> None:
    """COPY (text) one chunk of passes (the columns without a database default)."""
    ts_txt = np.datetime_as_string((ts_s * 1000).astype("int64").astype("datetime64[ms]"), unit="ms")
    now = dt.datetime.now(dt.UTC).isoformat()
    buf = io.StringIO()
    for k, (p, t, c) in enumerate(zip(plate.tolist(), ts_txt.tolist(), cp.tolist(), strict=True)):
        buf.write(f"{p}\t{t}+00\t{tag}{first_key + k:010d}\t{cp_id(c)}\tordinary\tt\t{now}\n")
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY passes (plate_no, ts, key, checkpoint_id, plate_kind, plate_valid, received_at) FROM STDIN"
        ) as cp_:
            cp_.write(buf.getvalue())
        conn.commit()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--passes", type=int, default=10_000_000)
    ap.add_argument("--checkpoints", type=int, default=5000)
    ap.add_argument("--plates", type=int, default=1_000_000)
    ap.add_argument("--subjects", type=int, default=30, help="planted subjects (queries timed)")
    ap.add_argument("--minutes", type=float, default=15.0, help="half-width of each window")
    ap.add_argument("--area-m", type=float, default=1000.0, help="side of each window's square")
    ap.add_argument("--keep", action="store_true", help="keep the database")
    a = parse(ap, smoke={"passes": 5000, "checkpoints": 100, "plates": 2000, "subjects": 3})
    with scratch_db("coll", keep=a.keep) as (name, url):
        run(a, name, url)


def run(a: argparse.Namespace, name: str, url: str) -> None:
    dsn = raw_dsn(url)
    rng = np.random.default_rng(7)
    day = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    d0 = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
    db = Database(url)
    with db.engine.begin() as c:
        partitions.maintain(c, ahead_days=1, retention_days=30, behind_days=2)
    lon, lat = grid(a.checkpoints)
    with db.session() as s:
        for i in range(a.checkpoints):
            s.add(
                Checkpoint(
                    checkpoint_id=cp_id(i),
                    name=f"cp{i}",
                    lon=float(lon[i]),
                    lat=float(lat[i]),
                    direction_deg=0,
                    lanes=4,
                    area_code="440305",
                )
            )
    print(
        f"PostgreSQL database {name}: {a.checkpoints} checkpoints {SPACING_M:.0f} m apart, "
        f"{a.plates:,} plates, one day ({day})",
        flush=True,
    )

    # load: uniform over checkpoints and the day; plates drawn with a heavy head (some cars drive a lot)
    t0 = time.perf_counter()
    names = plates(a.plates)
    done = 0
    while done < a.passes:
        n = min(CHUNK, a.passes - done)
        pi = np.minimum((rng.pareto(1.2, n) * a.plates / 20).astype(np.int64), a.plates - 1)
        ts = d0.timestamp() + rng.uniform(0, 86400, n)
        copy_chunk(dsn, names[pi], ts, rng.integers(0, a.checkpoints, n), done, "b")
        done += n
        print(f"  loaded {done:,} passes ({time.perf_counter() - t0:.0f}s)", flush=True)
    # planted: each subject at three far-apart checkpoints, at three times of the day
    planted = []
    for j in range(a.subjects):
        cps = rng.choice(a.checkpoints, 3, replace=False)
        times = d0.timestamp() + np.sort(rng.uniform(3600, 82800, 3))
        plate = f"粤Z{j:05d}"
        copy_chunk(dsn, np.array([plate] * 3), times, cps, j * 3, "planted")
        planted.append((plate, cps, times))
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE passes")
        count = conn.execute("SELECT count(*) FROM passes").fetchone()[0]  # type: ignore[index]
    print(f"[load] {count:,} passes by COPY in {time.perf_counter() - t0:.0f}s (indexed, partitioned)")

    # the windows of each planted subject
    half = dt.timedelta(minutes=a.minutes)
    d_lat = a.area_m / 2 / 110_540
    d_lon = a.area_m / 2 / (111_320 * math.cos(math.radians(LAT0)))

    def square(i: int) -> dict[str, Any]:
        x, y = float(lon[i]), float(lat[i])
        ring = [
            [x - d_lon, y - d_lat],
            [x + d_lon, y - d_lat],
            [x + d_lon, y + d_lat],
            [x - d_lon, y + d_lat],
        ]
        return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}

    def specs(cps: np.ndarray, times: np.ndarray) -> list[collision.WindowSpec]:
        out = []
        for c, t in zip(cps.tolist(), times.tolist(), strict=True):
            tt = dt.datetime.fromtimestamp(t, dt.UTC)
            out.append(collision.WindowSpec(tt - half, tt + half, square(c)))
        return out

    # 1. collision (service) vs bare range scans of the same windows' rows
    coll_ms, scan_ms, rows_read, sizes, sensors = [], [], [], [], []
    with db.session() as s:
        collision.collide(s, "vehicle", collision.resolve(s, "vehicle", specs(*planted[0][1:])), 3, 1000)
        for plate, cps, times in planted:
            t1 = time.perf_counter()
            wins = collision.resolve(s, "vehicle", specs(cps, times))
            items, _ = collision.collide(s, "vehicle", wins, 3, 1000)
            coll_ms.append((time.perf_counter() - t1) * 1000)
            assert plate in {i["id"] for i in items}, plate
            sizes.append(len(items))
            sensors.append(sum(len(w.sensor_ids) for w in wins))
            with psycopg.connect(dsn) as conn:
                conn.execute("SELECT 1")
                t2 = time.perf_counter()
                n = 0
                for w in wins:
                    n += len(
                        conn.execute(
                            "SELECT plate_no FROM passes "
                            "WHERE checkpoint_id = ANY(%s) AND ts >= %s AND ts < %s",
                            (list(w.sensor_ids), w.frm, w.to),
                        ).fetchall()
                    )
                scan_ms.append((time.perf_counter() - t2) * 1000)
                rows_read.append(n)
    print(
        f"[collision] 3 windows of ±{a.minutes:.0f} min over {a.area_m:.0f} m squares: "
        f"{statistics.mean(sensors):.0f} checkpoints, "
        f"{statistics.mean(rows_read):.0f} passes read per query; "
        f"answer sizes median {statistics.median(sizes)}, max {max(sizes)}"
    )
    print(
        f"[collision] service (areas → sensors, one SQL statement): p50 {pct(coll_ms, 0.5):.1f} ms, "
        f"p95 {pct(coll_ms, 0.95):.1f} ms"
    )
    print(
        f"[collision] bare index range scans of the 3 windows' rows:  p50 {pct(scan_ms, 0.5):.1f} ms, "
        f"p95 {pct(scan_ms, 0.95):.1f} ms"
    )

    # 2. through the API, in process
    from cryptography.fernet import Fernet
    from fastapi.testclient import TestClient

    from tianwang.api.app import create_app
    from tianwang.auth.tokens import create_token
    from tianwang.config import Settings
    from tianwang.context import AppContext

    with tempfile.TemporaryDirectory(prefix="tw-bench-coll-") as tmp:
        st = Settings(
            data_dir=tmp,
            database_url=url,
            object_store=f"dir:{tmp}/objects",
            secret_key=Fernet.generate_key().decode(),
            public_url="http://testserver",
        )
        ctx = AppContext.build(st)
        try:
            with ctx.db.session() as s:
                tok = create_token(s, "investigator", "bench-inv")
            api_ms = []
            with TestClient(create_app(st, ctx)) as client:
                h = {"Authorization": f"Bearer {tok}"}
                for k, (plate, cps, times) in enumerate([planted[0], *planted]):
                    body = {
                        "windows": [
                            {"area": w.area, "from": w.frm.isoformat(), "to": w.to.isoformat()}
                            for w in specs(cps, times)
                        ]
                    }
                    t1 = time.perf_counter()
                    r = client.post(
                        "/api/v1/analysis/collision", params={"case_no": "BENCH-1"}, json=body, headers=h
                    )
                    if k:  # the first is the warm-up
                        api_ms.append((time.perf_counter() - t1) * 1000)
                    assert r.status_code == 200 and plate in {i["id"] for i in r.json()["items"]}, r.text
        finally:
            ctx.close()
    print(
        f"[collision] API (HTTP in process, validation, audit):     p50 {pct(api_ms, 0.5):.1f} ms, "
        f"p95 {pct(api_ms, 0.95):.1f} ms"
    )

    # 3. whole-window analyses, each against a bare SQL pass over the rows it has to read
    side = math.ceil(math.sqrt(a.checkpoints))
    k = np.arange(a.checkpoints)
    col, row = k % side, k // side
    on_edge = (col == 0) | (col == side - 1) | (row == 0) | (row == row.max())
    edge = [cp_id(i) for i in np.flatnonzero(on_edge).tolist()]
    night = nightlife.Night.parse("22:00", "05:00", "+08:00")
    frm, to = d0, d0 + dt.timedelta(days=1)
    with db.session() as s:
        t1 = time.perf_counter()
        items, _ = nightlife.night_active(s, kind="vehicle", frm=frm, to=to, night=night, min_nights=1)
        na_s = time.perf_counter() - t1
        t1 = time.perf_counter()
        fe, _ = entries.first_entries(
            s,
            frm=d0 + dt.timedelta(hours=12),
            to=to,
            entry_ids=edge,
            lookback=dt.timedelta(hours=12),
            limit=1000,
        )
        fe_s = time.perf_counter() - t1
    with psycopg.connect(dsn) as conn:
        t1 = time.perf_counter()
        conn.execute(
            "SELECT plate_no, count(*) FROM passes WHERE ts >= %s AND ts < %s GROUP BY plate_no",
            (frm, to),
        ).fetchall()
        scan_s = time.perf_counter() - t1
        t1 = time.perf_counter()
        n_edge = len(
            conn.execute(
                "SELECT plate_no, ts FROM passes WHERE checkpoint_id = ANY(%s) AND ts >= %s AND ts < %s",
                (edge, d0, to),
            ).fetchall()
        )
        edge_s = time.perf_counter() - t1
    print(
        f"[night-active] one day, every plate: {na_s:.2f} s ({len(items)} answers, limit 100); "
        f"bare scan-and-group of the day's passes by plate: {scan_s:.2f} s"
    )
    print(
        f"[first-entry] {len(edge)} entry checkpoints, 12 h + 12 h look-back: {fe_s * 1000:.0f} ms "
        f"({len(fe)} answers, limit 1000); "
        f"bare range scans of their {n_edge:,} passes: {edge_s * 1000:.0f} ms"
    )


if __name__ == "__main__":
    main()
