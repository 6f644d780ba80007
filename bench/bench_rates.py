"""Time-weighted online rate (在线率) in SQL over a day of health observations, against the floor: a bare
`SELECT count(*)` over the same rows. PostgreSQL (TIANWANG_TEST_PG_URL), a scratch database dropped after.

    .venv/bin/python bench/bench_rates.py [--devices 2000] [--every 60] [--smoke]

(`--smoke`: a few seconds at a tiny size, only to check that it runs.) The day is a fixed one: the
rate is computed over a given window, so the bench does not depend on the date it runs on.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import time

import numpy as np
from common import parse, scratch_db
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from tianwang.coverage.rates import Window, device_seconds, online_rate
from tianwang.storage.models import HealthObservation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--devices", type=int, default=2000)
    ap.add_argument("--every", type=int, default=60, help="seconds between observations of a device")
    a = parse(ap, smoke={"devices": 5})
    with scratch_db("rates") as (_name, url):
        run(url, a.devices, a.every)


def run(url: str, n_dev: int, every: int) -> None:
    eng = create_engine(url)
    day0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    window = Window(day0, day0 + dt.timedelta(days=1))
    ids = [f"44030500001320{k:06d}" for k in range(n_dev)]
    rng = np.random.default_rng(1)
    t0 = time.perf_counter()
    raw = eng.raw_connection()
    try:
        cur = raw.cursor()
        cams = io.StringIO()
        for d in ids:
            cams.write(
                f"{d}\tc\tbullet\t114.05\t22.55\t0\t90\t50\t2\t440305\t[]\tin_use\t60\t900\tonline\t0\t"
                f"{(day0 - dt.timedelta(days=1)).isoformat()}\t{day0.isoformat()}\n"
            )
        with cur.copy(
            "COPY cameras (device_id, name, kind, lon, lat, heading_deg, hfov_deg, range_m, point_class, "
            "area_code, photos, lifecycle, health_interval_s, snapshot_interval_s, status, failures, "
            "created_at, updated_at) FROM STDIN"
        ) as cp:
            cp.write(cams.getvalue())
        steps = 86400 // every
        rows = 0
        with cur.copy(
            "COPY health_observations (key, device_id, ts, reachable, authenticated, received_at) FROM STDIN"
        ) as cp:
            for k, d in enumerate(ids):
                # each device: up, with an outage of random length somewhere in the day
                down0 = int(rng.integers(0, steps))
                down1 = down0 + int(rng.integers(0, steps // 8))
                buf = io.StringIO()
                for s in range(steps):
                    ts = (day0 + dt.timedelta(seconds=s * every + k % every)).isoformat()
                    up = "f" if down0 <= s < down1 else "t"
                    buf.write(f"{d}-{s}\t{d}\t{ts}\t{up}\t{up}\t{ts}\n")
                cp.write(buf.getvalue())
                rows += steps
        raw.commit()
    finally:
        raw.close()
    with eng.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(text("VACUUM ANALYZE health_observations"))
        c.execute(text("VACUUM ANALYZE cameras"))
    print(
        f"loaded {n_dev} devices × {86400 // every} observations = {rows:,} rows "
        f"in {time.perf_counter() - t0:.1f} s"
    )
    with Session(eng) as s:
        for _ in range(2):  # second run is the warm one
            t = time.perf_counter()
            n = s.scalar(
                select(func.count())
                .select_from(HealthObservation)
                .where(
                    HealthObservation.ts >= window.start - dt.timedelta(seconds=180),
                    HealthObservation.ts < window.end,
                )
            )
            floor = time.perf_counter() - t
            t = time.perf_counter()
            r = online_rate(s, window, 3)
            rate_s = time.perf_counter() - t
            t = time.perf_counter()
            ds = device_seconds(s, window, 3)
            per_dev = time.perf_counter() - t
        print(f"floor: SELECT count(*) over the window's {n:,} rows       {floor:7.2f} s")
        print(
            f"online rate, totals in SQL (LEAD per device)          {rate_s:7.2f} s  "
            f"({rate_s / floor:.1f}× the floor)"
        )
        print(f"online rate, per-device rows (for areas / report)     {per_dev:7.2f} s")
        print(
            f"online_rate = {r.rate:.4%} = {r.numerator:,.0f} s / {r.denominator:,.0f} s; "
            f"devices {len(ds.device_ids)}"
        )
    eng.dispose()


if __name__ == "__main__":
    main()
