"""Alarm → webhook delivered latency on PostgreSQL at a sustained ingest rate, beside its peer, the
alarm raise itself, measured in the same run.

Senders offer passes at `--rate` passes/s through the API (the first pass of every batch is on a
hotlist); a signed webhook sink points at a receiver on 127.0.0.1 that checks each signature. For
each alarm the figures are: ingest request sent → ingest answered (the alarm raised and committed
with its outbox row: the peer), and ingest request sent → webhook received (the delivery, goal p95
≤ 1 s at 10,000 passes/s), with the delivery's own share (answered → received).

The API runs in child processes (`tianwang serve --workers N`), so client, API, receiver and
database share this machine's cores.
Usage: `python bench/bench_alarm_delivery.py [--rate N] [--seconds N] [--senders N] [--ticks N]
[--workers N] [--smoke]` (defaults: 10,000 passes/s for 15 s from 2 senders at 5 batches/s, 2
workers; `--smoke`: 200 passes/s for 3 s, 1 worker — it checks that the bench runs, not the figure).
Needs PostgreSQL at TIANWANG_TEST_PG_URL.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import hmac
import json
import os
import random
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from bench_passes import N_CHECKPOINTS, PROVINCE, cp_id, plate, setup  # the sibling bench's helpers
from common import parse, pct, scratch_db, start_api, stop_api

from tianwang.auth.tokens import create_token
from tianwang.storage.db import Database

SECRET = "bench-webhook-secret"
JSON = {"Content-Type": "application/json"}


class Receiver:
    """The webhook receiver: when each alarm first arrived (by record key), signatures checked."""

    def __init__(self) -> None:
        self.first: dict[str, float] = {}
        self.count: collections.Counter[int] = collections.Counter()
        self.bad = 0
        self.lock = threading.Lock()
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the API's client reuses its connections

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.perf_counter()
                want = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                alarm = json.loads(body)
                with rx.lock:
                    rx.bad += self.headers.get("X-Tianwang-Signature") != want
                    rx.count[int(alarm["id"])] += 1
                    rx.first.setdefault(alarm["record_key"], at)
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/alarms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def run(base: str, agent: str, inv: str, admin: str, rx: Receiver, args: argparse.Namespace) -> None:
    hot = [f"{PROVINCE}H{i:05d}" for i in range(100)]
    now = dt.datetime.now(dt.UTC)
    with httpx.Client(base_url=base, timeout=30) as c:
        c.post(
            "/api/v1/hotlists",
            headers={"Authorization": f"Bearer {inv}"},
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
        c.post(
            "/api/v1/alarm-sinks",
            headers={"Authorization": f"Bearer {admin}"},
            json={"kind": "webhook", "url": rx.url, "secret": SECRET},
        ).raise_for_status()
    sent: dict[str, float] = {}
    answered: dict[str, float] = {}
    per_thread = args.rate / args.senders
    batch = max(1, round(per_thread / args.ticks))
    offered = [0] * args.senders
    errors: list[str] = []
    t_start = time.perf_counter()

    def sender(k: int) -> None:
        rnd = random.Random(11 + k)
        n = 0
        with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {agent}"}) as c:
            while time.perf_counter() - t_start < args.seconds:
                ts = dt.datetime.now(dt.UTC).isoformat()
                items = []
                for j in range(batch):
                    n += 1
                    p = rnd.choice(hot) if j == 0 else plate(rnd.randrange(400_000))
                    items.append(
                        {
                            "key": f"dl{k}-{n:09d}",
                            "checkpoint_id": cp_id(n % N_CHECKPOINTS),
                            "lane": 1,
                            "ts": ts,
                            "plate_no": p,
                            "plate_color": "5",
                        }
                    )
                body = json.dumps({"items": items}).encode()
                key = items[0]["key"]
                sent[key] = time.perf_counter()
                r = c.post(
                    "/api/v1/ingest/passes", content=body, headers={"Content-Type": "application/json"}
                )
                answered[key] = time.perf_counter()
                if r.status_code != 200:
                    errors.append(r.text[:300])
                offered[k] += batch
                ahead = t_start + offered[k] / per_thread - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(args.senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    achieved = sum(offered) / (time.perf_counter() - t_start)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(rx.first) < len(sent):
        time.sleep(0.1)
    if errors:
        raise SystemExit(f"ingest errors: {errors[:3]}")
    raise_lat = [answered[k] - sent[k] for k in sent]
    got = [k for k in sent if k in rx.first]
    deliver = [rx.first[k] - sent[k] for k in got]
    after = [rx.first[k] - answered[k] for k in got]
    dupes = sum(n - 1 for n in rx.count.values())
    print(
        f"[delivery] offered {args.rate:,}/s ({args.senders} senders × {batch} passes × {args.ticks}/s), "
        f"achieved {achieved:,.0f} passes/s for {args.seconds}s; {len(got)}/{len(sent)} alarms delivered "
        f"to the webhook, {dupes} repeats, {rx.bad} bad signatures"
    )
    print(
        f"[peer] ingest sent → answered (alarm raised, committed): p50 {pct(raise_lat, 0.5) * 1000:.0f} ms, "
        f"p95 {pct(raise_lat, 0.95) * 1000:.0f} ms"
    )
    if deliver:
        print(
            f"[delivery] ingest sent → webhook received: p50 {pct(deliver, 0.5) * 1000:.0f} ms, "
            f"p95 {pct(deliver, 0.95) * 1000:.0f} ms, max {max(deliver) * 1000:.0f} ms (limit: 1000 ms); "
            f"after the answer: p50 {pct(after, 0.5) * 1000:.0f} ms, p95 {pct(after, 0.95) * 1000:.0f} ms"
        )
    if len(got) < len(sent):
        raise SystemExit(f"{len(sent) - len(got)} alarms were not delivered within 30 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=int, default=10_000, help="passes/s offered")
    ap.add_argument("--seconds", type=int, default=15)
    ap.add_argument("--senders", type=int, default=2, help="client threads posting")
    ap.add_argument("--ticks", type=int, default=5, help="batches a second per sender")
    ap.add_argument("--workers", type=int, default=2, help="API worker processes")
    args = parse(ap, smoke={"rate": 200, "seconds": 3, "senders": 1, "ticks": 5, "workers": 1})

    proc = None
    rx = Receiver()
    with scratch_db("alarms") as (name, url), tempfile.TemporaryDirectory(prefix="tw-bench-") as tmp:
        try:
            agent, inv = setup(url, 3)
            db = Database(url)
            with db.session() as s:
                admin = create_token(s, "admin", "bench-admin")
            db.dispose()
            proc, base = start_api(url, tmp, args.workers, TIANWANG_ALARM_DELIVERY_POLL_S="1.0")
            print(
                f"PostgreSQL database {name}; API with {args.workers} worker(s); {os.cpu_count()} cores "
                "shared by client, API, receiver and database"
            )
            run(base, agent, inv, admin, rx, args)
        finally:
            stop_api(proc)
            rx.close()


if __name__ == "__main__":
    main()
