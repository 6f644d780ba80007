"""Pass ingest at city scale on PostgreSQL, each figure beside its peer measured in the same run:

1. ingest through the API (HTTP, JSON, validation, plates, hotlist matching, COPY into the
   partitioned, fully indexed table) in passes/s, against a raw binary COPY of the same rows into
   the same emptied table (the limit; goal ≥ 0.5×), over several rounds (the median is the
   figure), with the CPU each side spent per pass (API processes, PostgreSQL backends, client);
2. hotlist alarm latency, ingest request sent → SSE event received, at a sustained offered rate
   (default 10,000 passes/s), with the rate the machine actually reached.

The trajectory and disk figures at 10M passes are `bench/bench_trajectory.py`.

The API runs in child processes (`tianwang serve --workers N`), so client, API and database share
this machine's cores. The client posts pre-encoded JSON bodies from several threads.
Usage: `python bench/bench_passes.py [--ingest N] [--batch N] [--threads N] [--workers N]
[--rounds N] [--alarm-rate N] [--alarm-senders N] [--no-alarm] [--no-ingest] [--smoke]` (defaults:
200,000 passes a round, 5000 a request, 4 threads, 2 workers, 3 rounds, 10,000 passes/s from 2
senders; `--smoke`: a few seconds at a tiny size, only to check that it runs).
CPU figures read /proc (Linux). Needs PostgreSQL at TIANWANG_TEST_PG_URL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import tempfile
import threading
import time
from collections.abc import Iterable
from typing import Any

import httpx
import psycopg
from common import PASS_COLS, copy_rows, parse, pct, raw_dsn, scratch_db, start_api, stop_api

from tianwang.auth.tokens import create_token
from tianwang.records import partitions
from tianwang.storage.db import Database
from tianwang.storage.models import Checkpoint

PROVINCE = "粤"
N_CHECKPOINTS = 300


def cp_id(i: int) -> str:
    return f"4403050000121{i:07d}"


def plate(i: int) -> str:
    # 5 digits keeps every generated plate valid (serials never use I or O)
    return f"{PROVINCE}{'ABCDEFGHJK'[i // 100_000 % 10]}{i % 100_000:05d}"


def setup(url: str, days_back: int) -> tuple[str, str]:
    """Day partitions for `days_back` days, the checkpoints, and (agent, investigator) tokens."""
    db = Database(url)
    with db.engine.begin() as c:
        partitions.maintain(c, ahead_days=2, retention_days=days_back + 5, behind_days=days_back + 1)
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
    db.dispose()
    return agent, inv


def pass_row(
    rnd: random.Random, plate_i: int, ts: dt.datetime, key: str, now: dt.datetime
) -> tuple[Any, ...]:
    """One pass in PASS_COLS order, as the API stores a valid ordinary plate sent with a lane, a plate
    colour and a speed (the checkpoint, lane and speed drawn): the COPY peer writes the very same rows."""
    lane, cp, speed = rnd.randrange(1, 5), cp_id(rnd.randrange(N_CHECKPOINTS)), float(rnd.randrange(20, 90))
    return (plate(plate_i), ts, key, cp, "ordinary", True, lane, "5", None, None, speed, None, now)


def gen_rows(
    n: int, start: dt.datetime, span_s: int, plates_n: int, seed: int, tag: str
) -> list[tuple[Any, ...]]:
    """Rows in PASS_COLS order, as the API would store them."""
    rnd = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    return [
        pass_row(
            rnd,
            rnd.randrange(plates_n),
            start + dt.timedelta(seconds=rnd.randrange(span_s)),
            f"{tag}-{i:09d}",
            now,
        )
        for i in range(n)
    ]


def copy_passes(dsn: str, rows: Iterable[tuple[Any, ...]]) -> tuple[float, float, float]:
    """One raw binary COPY of `rows` into `passes` in one transaction (the fastest way in):
    (seconds, database CPU seconds, client CPU seconds)."""
    with psycopg.connect(dsn) as conn:
        pid = conn.info.backend_pid
        db0, cl0, t0 = cpu_s([pid]), time.process_time(), time.perf_counter()
        copy_rows(conn, "passes", PASS_COLS, rows)
        conn.commit()
        return time.perf_counter() - t0, cpu_s([pid]) - db0, time.process_time() - cl0


def cpu_s(pids: Iterable[int]) -> float:
    """CPU seconds (user + system) used so far by these processes (Linux /proc; gone ones count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def tree(root: int) -> list[int]:
    """`root` and all its descendants (the API's supervisor and its workers)."""
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(c for c, pp in parent.items() if pp == p)
    return out


def backends(dsn: str) -> list[int]:
    """The PostgreSQL backends connected to the bench database (the API's pooled connections)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [int(r[0]) for r in rows]


def to_items(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        {
            "key": r[2],
            "checkpoint_id": r[3],
            "lane": r[6],
            "ts": r[1].isoformat(),
            "plate_no": r[0],
            "plate_color": r[7],
            "speed_kmh": r[8],
        }
        for r in rows
    ]


def ingest_api(base: str, token: str, items: list[dict[str, Any]], batch: int, threads: int) -> float:
    """Post `items` in batches from `threads` client threads; seconds taken. Every item must be new."""
    bodies = [
        (len(items[i : i + batch]), json.dumps({"items": items[i : i + batch]}).encode())
        for i in range(0, len(items), batch)
    ]
    errors: list[str] = []

    def worker(part: list[tuple[int, bytes]]) -> None:
        with httpx.Client(
            base_url=base,
            timeout=300,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        ) as c:
            for n, b in part:
                r = c.post("/api/v1/ingest/passes", content=b)
                if r.status_code != 200 or r.json()["accepted"] != n:
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


def empty_passes(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE passes")
        conn.execute("TRUNCATE alarm_deliveries, alarms")


def count_passes(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM passes").fetchone()[0])  # type: ignore[index]


def bench_ingest(dsn: str, base: str, api_pid: int, agent: str, args: argparse.Namespace) -> None:
    n = args.ingest
    day_ago = dt.datetime.now(dt.UTC) - dt.timedelta(hours=20)
    ratios = []
    for k in range(args.rounds):
        rows = gen_rows(n, day_ago, 3600 * 12, 200_000, 1 + k, f"api{k}")
        items = to_items(rows)
        empty_passes(dsn)
        # warm the API's pooled connections so that their backends exist before counting
        ingest_api(
            base, agent, to_items(gen_rows(2 * args.threads, day_ago, 60, 1000, 0, f"w{k}")), 1, args.threads
        )
        procs, pg = tree(api_pid), backends(dsn)
        api0, pg0, cl0 = cpu_s(procs), cpu_s(pg), time.process_time()
        api_s = ingest_api(base, agent, items, args.batch, args.threads)
        api_cpu, pg_cpu, cl_cpu = cpu_s(procs) - api0, cpu_s(pg) - pg0, time.process_time() - cl0
        stored = count_passes(dsn)
        if stored != n + 2 * args.threads:
            raise SystemExit(f"the API stored {stored} of {n} passes")
        empty_passes(dsn)
        copy_s, copy_db, copy_cl = copy_passes(dsn, rows)
        empty_passes(dsn)
        api_rate, copy_rate = n / api_s, n / copy_s
        ratios.append(api_rate / copy_rate)
        us = 1e6 / n
        print(
            f"[ingest] round {k + 1}: {n:,} passes through the API ({args.batch}/batch, {args.threads} "
            f"client threads, {args.workers} API workers): {api_rate:,.0f} passes/s"
        )
        print(
            f"[ingest] round {k + 1}: raw COPY of the same rows into the same table: "
            f"{copy_rate:,.0f} passes/s"
        )
        print(f"[ingest] round {k + 1}: ratio API/COPY = {api_rate / copy_rate:.2f} (goal ≥ 0.5)")
        print(
            f"[ingest] round {k + 1}: CPU per pass through the API: API processes {api_cpu * us:.1f} µs, "
            f"PostgreSQL {pg_cpu * us:.1f} µs, client {cl_cpu * us:.1f} µs (wall {api_s * us:.1f} µs); "
            f"raw COPY: PostgreSQL {copy_db * us:.1f} µs, client {copy_cl * us:.1f} µs "
            f"(wall {copy_s * us:.1f} µs)"
        )
    if args.rounds > 1:
        print(f"[ingest] median ratio over {args.rounds} rounds: {statistics.median(ratios):.2f}")


def bench_alarms(base: str, dsn: str, agent: str, inv: str, args: argparse.Namespace) -> None:
    """Alarm latency while `args.alarm_senders` threads offer `args.alarm_rate` passes/s in total."""
    hot = [f"{PROVINCE}H{i:05d}" for i in range(100)]
    now = dt.datetime.now(dt.UTC)
    with httpx.Client(base_url=base, timeout=30, headers={"Authorization": f"Bearer {inv}"}) as c:
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
    keys_got: list[str] = []
    stop = threading.Event()
    listening = threading.Event()

    def listen() -> None:
        try:
            with (
                httpx.Client(base_url=base, timeout=httpx.Timeout(30, read=60)) as c,
                c.stream(
                    "GET",
                    "/api/v1/alarms/stream",
                    headers={"Authorization": f"Bearer {inv}", "Accept": "text/event-stream"},
                ) as resp,
            ):
                listening.set()
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        k = json.loads(line[5:])["record_key"]
                        if k in sent:
                            lat.append(time.perf_counter() - sent[k])
                            keys_got.append(k)
                    if stop.is_set():
                        return
        except httpx.HTTPError:
            if not stop.is_set():  # the server going away at the end is expected
                raise

    lt = threading.Thread(target=listen, daemon=True)
    lt.start()
    listening.wait(10)
    time.sleep(0.5)
    seconds, ticks, senders_n = args.alarm_seconds, args.alarm_ticks, args.alarm_senders
    per_thread = args.alarm_rate / senders_n  # each sender posts `ticks` batches a second
    batch = max(1, round(per_thread / ticks))
    offered = [0] * senders_n
    errors: list[str] = []
    t_start = time.perf_counter()

    def sender(k: int) -> None:
        rnd = random.Random(4 + k)
        n = 0
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {agent}"}) as c:
            while time.perf_counter() - t_start < seconds:
                ts = dt.datetime.now(dt.UTC).isoformat()
                its = []
                for j in range(batch):
                    n += 1
                    p = rnd.choice(hot) if j == 0 else plate(rnd.randrange(400_000))
                    its.append(
                        {
                            "key": f"al{k}-{n:09d}",
                            "checkpoint_id": cp_id(n % N_CHECKPOINTS),
                            "lane": 1,
                            "ts": ts,
                            "plate_no": p,
                            "plate_color": "5",
                        }
                    )
                body = json.dumps({"items": its}).encode()
                sent[its[0]["key"]] = time.perf_counter()
                r = c.post(
                    "/api/v1/ingest/passes", content=body, headers={"Content-Type": "application/json"}
                )
                if r.status_code != 200:
                    errors.append(r.text[:300])
                offered[k] += batch
                # pace to the offered rate (falls behind when the machine cannot keep up)
                ahead = t_start + offered[k] / per_thread - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)

    senders = [threading.Thread(target=sender, args=(k,)) for k in range(senders_n)]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    achieved = sum(offered) / (time.perf_counter() - t_start)
    deadline = time.perf_counter() + 2  # the last alarms may still be on their way
    while len(lat) < len(sent) and time.perf_counter() < deadline:
        time.sleep(0.05)
    stop.set()
    lt.join(5)  # the listener leaves at the next heartbeat; an open stream would hold the API's shutdown
    if errors:
        raise SystemExit(f"ingest errors: {errors[:3]}")
    print(
        f"[alarm] offered {args.alarm_rate:,}/s ({senders_n} senders × {batch} passes × {ticks}/s), "
        f"achieved {achieved:,.0f} passes/s for {seconds}s; {len(lat)}/{len(sent)} alarms received over SSE"
    )
    got = set(keys_got)
    missing = sorted(k for k in sent if k not in got)
    if missing:
        with psycopg.connect(dsn) as conn:
            stored = conn.execute(
                "SELECT count(*) FROM alarms WHERE record_key = ANY(%s)", (missing,)
            ).fetchone()
        print(
            f"[alarm] {len(missing)} alarms not received over SSE, of which {stored[0] if stored else 0} "
            "are stored in the alarms table (raised, committed, but skipped by the stream)"
        )
    if lat:
        print(
            f"[alarm] ingest request sent → SSE event received: p50 {pct(lat, 0.5) * 1000:.0f} ms, "
            f"p95 {pct(lat, 0.95) * 1000:.0f} ms, max {max(lat) * 1000:.0f} ms (limit: 1000 ms)"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ingest", type=int, default=200_000, help="passes posted per round")
    ap.add_argument("--batch", type=int, default=5000, help="passes per request (the API takes ≤ 5000)")
    ap.add_argument("--threads", type=int, default=4, help="client threads posting")
    ap.add_argument("--workers", type=int, default=2, help="API worker processes")
    ap.add_argument("--rounds", type=int, default=3, help="API-vs-COPY rounds (the median is the figure)")
    ap.add_argument("--alarm-rate", type=int, default=10_000, help="passes/s offered in the alarm test")
    ap.add_argument("--alarm-seconds", type=int, default=15)
    ap.add_argument("--alarm-senders", type=int, default=2, help="client threads in the alarm test")
    ap.add_argument(
        "--alarm-ticks", type=int, default=5, help="batches a second per sender in the alarm test"
    )
    ap.add_argument("--no-alarm", action="store_true", help="skip the alarm latency test")
    ap.add_argument("--no-ingest", action="store_true", help="skip the ingest rate test")
    args = parse(
        ap,
        smoke={
            "ingest": 2000,
            "batch": 500,
            "threads": 2,
            "workers": 1,
            "rounds": 1,
            "alarm_rate": 200,
            "alarm_seconds": 1,
            "alarm_senders": 1,
        },
    )

    proc = None
    with scratch_db("passes") as (name, url), tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
        dsn = raw_dsn(url)
        try:
            agent, inv = setup(url, 3)
            proc, base = start_api(
                url, tmp, args.workers, TIANWANG_ALARM_POLL_S="0.5", TIANWANG_SSE_HEARTBEAT_S="1"
            )
            print(
                f"PostgreSQL database {name}; {N_CHECKPOINTS} checkpoints; API with {args.workers} "
                f"worker(s); {os.cpu_count()} cores shared by client, API and database"
            )
            if not args.no_ingest:
                bench_ingest(dsn, base, proc.pid, agent, args)
            if not args.no_alarm:
                bench_alarms(base, dsn, agent, inv, args)
        finally:
            stop_api(proc)


if __name__ == "__main__":
    main()
