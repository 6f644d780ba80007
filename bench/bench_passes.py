"""Passes at city scale on PostgreSQL, each figure beside its peer measured in the same run:

1. ingest through the API (HTTP, JSON, validation, plates, hotlist matching, COPY + ON CONFLICT
   into the partitioned, fully indexed table) in passes/s, against a raw COPY of the same rows
   into the same table (the limit; goal ≥ 0.5×);
2. a plate's 30-day trajectory through the API, p50/p95, against the bare index range scan of the
   same rows in SQL (the limit);
3. hotlist alarm latency, ingest → SSE, at a sustained offered rate;
4. bytes per pass (table + indexes, pg_total_relation_size) and disk for 10^8 passes/day.

The API runs in a child process (`tianwang serve`), so client and server share this machine's two
cores. Scaled down to what fits here: by default 2M passes over 30 days (say so when reporting).
Usage: `python bench/bench_passes.py [TOTAL_PASSES] [INGEST_PASSES] [ALARM_RATE]`
(defaults 2000000 200000 5000). Needs PostgreSQL at TIANWANG_TEST_PG_URL.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

import httpx
import psycopg
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tianwang.auth.tokens import create_token
from tianwang.storage import migrate
from tianwang.storage.db import Database
from tianwang.storage.models import Checkpoint
from tianwang.trajectories import partitions

PG_URL = os.environ.get("TIANWANG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PROVINCE = "粤"
N_CHECKPOINTS = 300
DAYS = 30
PARTS = (
    "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
    "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'passes'"
)
COLS = ("plate_no", "ts", "key", "checkpoint_id", "lane", "plate_color", "speed_kmh", "received_at")


def cp_id(i: int) -> str:
    return f"4403050000121{i:07d}"


def plate(i: int) -> str:
    # 5 digits keeps every generated plate valid (serials never use I or O)
    return f"{PROVINCE}{'ABCDEFGHJK'[i // 100_000 % 10]}{i % 100_000:05d}"


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def make_db() -> tuple[str, str]:
    name = f"tw_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    return name, url


def drop_db(name: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def raw_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def gen_rows(
    n: int, start: dt.datetime, span_s: int, plates_n: int, seed: int, tag: str
) -> list[tuple[Any, ...]]:
    rnd = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    return [
        (
            plate(rnd.randrange(plates_n)),
            start + dt.timedelta(seconds=rnd.randrange(span_s)),
            f"{tag}-{i:09d}",
            cp_id(rnd.randrange(N_CHECKPOINTS)),
            rnd.randrange(1, 5),
            "5",
            float(rnd.randrange(20, 90)),
            now,
        )
        for i in range(n)
    ]


def copy_rows(dsn: str, rows: list[tuple[Any, ...]]) -> float:
    t0 = time.perf_counter()
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor() as cur,
        cur.copy(f"COPY passes ({', '.join(COLS)}) FROM STDIN") as cp,
    ):
        for r in rows:
            cp.write_row(r)
    return time.perf_counter() - t0


def start_api(url: str, data_dir: str) -> tuple[subprocess.Popen[bytes], str]:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "TIANWANG_DATABASE_URL": url,
        "TIANWANG_DATA_DIR": data_dir,
        "TIANWANG_OBJECT_STORE": f"dir:{data_dir}/objects",
        "TIANWANG_ALARM_POLL_S": "0.5",
        # PostgreSQL is shared, so the API insists on a configured key (any Fernet key will do here)
        "TIANWANG_SECRET_KEY": Fernet.generate_key().decode(),
    }
    log = open(os.path.join(data_dir, "api.log"), "wb")  # noqa: SIM115 - the child writes it
    proc = subprocess.Popen(
        [sys.executable, "-c", "from tianwang.cli import main; main()", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    with open(os.path.join(data_dir, "api.log"), encoding="utf-8", errors="replace") as f:
        tail = f.read()[-2000:]
    raise SystemExit(f"the API did not start:\n{tail}")


def to_items(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        {
            "key": r[2],
            "checkpoint_id": r[3],
            "lane": r[4],
            "ts": r[1].isoformat(),
            "plate_no": r[0],
            "plate_color": "5",
            "speed_kmh": r[6],
        }
        for r in rows
    ]


def ingest_api(base: str, token: str, items: list[dict[str, Any]], batch: int, threads: int = 2) -> float:
    bodies = [json.dumps({"items": items[i : i + batch]}).encode() for i in range(0, len(items), batch)]
    errors: list[str] = []

    def worker(part: list[bytes]) -> None:
        with httpx.Client(
            base_url=base,
            timeout=120,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ) as c:
            for b in part:
                r = c.post("/api/v1/ingest/passes", content=b)
                if r.status_code != 200 or r.json()["rejected"]:
                    errors.append(r.text[:300])

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(bodies[k::threads],)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise SystemExit(f"ingest errors: {errors[:3]}")
    return time.perf_counter() - t0


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 2_000_000
    n_ingest = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    alarm_rate = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
    name, url = make_db()
    dsn = raw_dsn(url)
    tmp = tempfile.mkdtemp(prefix="tw-bench-")
    proc = None
    try:
        today = dt.datetime.now(dt.UTC).date()
        start = dt.datetime(today.year, today.month, today.day, tzinfo=dt.UTC) - dt.timedelta(days=DAYS)
        db = Database(url)
        with db.engine.begin() as c:
            partitions.maintain(c, ahead_days=2, retention_days=DAYS + 5, behind_days=DAYS + 1)
        with db.session() as s:
            for i in range(N_CHECKPOINTS):
                s.add(
                    Checkpoint(
                        checkpoint_id=cp_id(i),
                        name=f"cp{i}",
                        lon=114 + i * 1e-3,
                        lat=22.5,
                        direction_deg=0,
                        lanes=4,
                        area_code="440305",
                    )
                )
            agent = create_token(s, "agent", "bench-agent")
            inv = create_token(s, "investigator", "bench-inv")
        print(f"PostgreSQL database {name}; {N_CHECKPOINTS} checkpoints; {DAYS} day partitions")

        # 1. ingest via the API vs raw COPY, same rows, same indexed partitioned table
        day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=20)
        rows = gen_rows(n_ingest, day_ago, 3600 * 12, 200_000, 1, "api")
        items = to_items(rows)
        proc, base = start_api(url, tmp)
        secs = ingest_api(base, agent, items, batch=2000)
        api_rate = n_ingest / secs
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("DELETE FROM passes")
            conn.execute("VACUUM ANALYZE passes")
        copy_s = copy_rows(dsn, rows)
        copy_rate = n_ingest / copy_s
        print(f"[ingest] {n_ingest} passes through the API (2000/batch, 2 threads): {api_rate:,.0f} passes/s")
        print(f"[ingest] raw COPY of the same rows into the same table:            {copy_rate:,.0f} passes/s")
        print(f"[ingest] ratio API/COPY = {api_rate / copy_rate:.2f} (goal ≥ 0.5)")

        # 2. load the 30-day history: heavy plates (the ones followed) and a long tail
        heavy = 1000
        rest = total - n_ingest
        t0 = time.perf_counter()
        rnd = random.Random(2)
        chunk = 250_000
        done = 0
        while done < rest:
            n = min(chunk, rest - done)
            part = gen_rows(n, start, DAYS * 86400, 400_000, 100 + done, f"h{done}")
            # one pass in ten belongs to a heavy plate: ~ total/10/heavy passes each over 30 days
            part = [(plate(rnd.randrange(heavy)), *r[1:]) if rnd.random() < 0.1 else r for r in part]
            copy_rows(dsn, part)
            done += n
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE passes")
            count = conn.execute("SELECT count(*) FROM passes").fetchone()[0]  # type: ignore[index]
            size = conn.execute(f"SELECT sum(pg_total_relation_size(c.oid)) {PARTS}").fetchone()[0]  # type: ignore[index]
            heap = conn.execute(f"SELECT sum(pg_relation_size(c.oid)) {PARTS}").fetchone()[0]  # type: ignore[index]
        print(f"[load] {count:,} passes over {DAYS} days loaded by COPY in {time.perf_counter() - t0:.0f}s")
        per = float(size) / count
        print(
            f"[disk] {per:.0f} bytes/pass with indexes ({float(heap) / count:.0f} heap); "
            f"10^8 passes/day ≈ {per * 1e8 / 2**30:.1f} GiB/day, {per * 1e8 * 365 / 2**40:.1f} TiB/year"
        )

        # 3. trajectories: API vs bare index range scan, heavy plates, 30-day window
        frm, to = start.isoformat(), (start + dt.timedelta(days=DAYS + 1)).isoformat()
        sample = [plate(i) for i in random.Random(3).sample(range(heavy), 50)]
        api_ms, sql_ms, sizes = [], [], []
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {inv}"}) as c:
            for p in sample:
                t1 = time.perf_counter()
                r = c.get(
                    f"/api/v1/trajectories/vehicle/{p}", params={"from": frm, "to": to, "case_no": "BENCH-1"}
                )
                api_ms.append((time.perf_counter() - t1) * 1000)
                sizes.append(len(r.json()["points"]))
        with psycopg.connect(dsn) as conn:
            for p in sample:
                t1 = time.perf_counter()
                conn.execute(
                    "SELECT ts, key, checkpoint_id FROM passes WHERE plate_no = %s AND ts >= %s AND ts <= %s "
                    "ORDER BY ts, key LIMIT 1001",
                    (p, start, start + dt.timedelta(days=DAYS + 1)),
                ).fetchall()
                sql_ms.append((time.perf_counter() - t1) * 1000)
        print(f"[trajectory] {len(sample)} plates, {statistics.mean(sizes):.0f} passes each over {DAYS} days")
        print(
            f"[trajectory] API (HTTP, audit, join, trips, GeoJSON): p50 {pct(api_ms, 0.5):.1f} ms, "
            f"p95 {pct(api_ms, 0.95):.1f} ms"
        )
        print(
            f"[trajectory] bare index range scan (SQL only):           p50 {pct(sql_ms, 0.5):.1f} ms, "
            f"p95 {pct(sql_ms, 0.95):.1f} ms"
        )

        # 4. alarm latency at a sustained offered rate
        hot = [f"{PROVINCE}H{i:05d}" for i in range(100)]
        with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {inv}"}) as c:
            now = dt.datetime.now(dt.UTC)
            c.post(
                "/api/v1/hotlists",
                json={
                    "name": "bench",
                    "reason": "bench",
                    "case_no": "BENCH-1",
                    "priority": 1,
                    "valid_from": (now - dt.timedelta(days=1)).isoformat(),
                    "valid_to": (now + dt.timedelta(days=1)).isoformat(),
                    "entries": [{"plate_no": p} for p in hot],
                },
            ).raise_for_status()
        sent: dict[str, float] = {}
        lat: list[float] = []
        stop = threading.Event()

        def listen() -> None:
            try:
                _listen()
            except httpx.HTTPError:
                if not stop.is_set():  # the server going away at the end is expected
                    raise

        def _listen() -> None:
            with (
                httpx.Client(base_url=base, timeout=httpx.Timeout(30, read=60)) as c,
                c.stream(
                    "GET",
                    "/api/v1/alarms/stream",
                    headers={"Authorization": f"Bearer {inv}", "Accept": "text/event-stream"},
                ) as resp,
            ):
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        k = json.loads(line[5:])["record_key"]
                        if k in sent:
                            lat.append(time.perf_counter() - sent[k])
                    if stop.is_set():
                        return

        lt = threading.Thread(target=listen, daemon=True)
        lt.start()
        time.sleep(1.0)
        seconds, batch = 15, max(1, alarm_rate // 10)
        rnd = random.Random(4)
        offered = 0
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {agent}"}) as c:
            t_start = time.perf_counter()
            n = 0
            while time.perf_counter() - t_start < seconds:
                ts = dt.datetime.now(dt.UTC)
                its = []
                for j in range(batch):
                    n += 1
                    p = rnd.choice(hot) if j == 0 else plate(rnd.randrange(400_000))
                    its.append(
                        {
                            "key": f"al-{n:09d}",
                            "checkpoint_id": cp_id(n % N_CHECKPOINTS),
                            "lane": 1,
                            "ts": ts.isoformat(),
                            "plate_no": p,
                            "plate_color": "5",
                        }
                    )
                sent[its[0]["key"]] = time.perf_counter()
                c.post("/api/v1/ingest/passes", json={"items": its}).raise_for_status()
                offered += batch
                # pace to the offered rate (falls behind when the machine cannot keep up)
                ahead = t_start + offered / alarm_rate - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
            achieved = offered / (time.perf_counter() - t_start)
        time.sleep(2)
        stop.set()
        got = len(lat)
        print(
            f"[alarm] offered {alarm_rate}/s, achieved {achieved:,.0f} passes/s for {seconds}s; "
            f"{got}/{len(sent)} alarms received over SSE"
        )
        if lat:
            print(
                f"[alarm] ingest request sent → SSE event received: p50 {pct(lat, 0.5) * 1000:.0f} ms, "
                f"p95 {pct(lat, 0.95) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms (limit: 1000 ms)"
            )
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        drop_db(name)


if __name__ == "__main__":
    main()
