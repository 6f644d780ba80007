"""The edge agent's throughput: health probes per minute per agent core, and snapshots per second
through the whole pipeline (fetch → diagnose → outbox → presign → PUT → record at a local API).

Compared in the same run with: a naive sequential loop over the same devices with the same ONVIF
client (the peer; goal ≥ 50× slower than the agent), and the raw loopback HTTP request rate to the
same simulator (the limit). The simulator runs in a child process, so CPU time here is the agent's
(plus, for the snapshot pipeline, the in-process API's — said so in the output).
Usage: `python bench/bench_agent.py [N] [LATENCY_S] [ROUNDS] [--smoke]` (defaults 200 0.2 3;
`--smoke`: a few seconds at a tiny size, only to check that it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from common import parse

from edge_agent.devices.onvif_client import OnvifClient, OnvifPool, warm_wsdl
from edge_agent.metrics import Metrics
from edge_agent.observe import DeviceWork, Judge
from edge_agent.outbox import Outbox
from edge_agent.scheduler import Job, Scheduler
from edge_agent.sender import Sender
from edge_agent.settings import AgentSettings
from simulator.devices import SimulatorThread
from tianwang.protocol.agents import Assignment, OnvifCredentials

CLOCK = (
    '<?xml version="1.0" encoding="UTF-8"?><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope">'
    '<s:Body><GetSystemDateAndTime xmlns="http://www.onvif.org/ver10/device/wsdl"/></s:Body></s:Envelope>'
)


def serve(n: int, latency_s: float, conn: Connection) -> None:
    """Child process: the simulated cameras, each answering after `latency_s`; the parent may send
    ("latency", s) to change that, then "stop"."""
    with SimulatorThread(n_cameras=n, n_checkpoints=0, seed=5) as sim:
        msg: Any = ("latency", latency_s)
        while msg != "stop":
            for d in sim.devices:
                sim.set_faults(d.device_id, {"slow": msg[1] or None})
            conn.send(sim.describe())
            msg = conn.recv()


def assignments(described: list[dict[str, Any]]) -> list[Assignment]:
    return [
        Assignment(
            device_id=d["device_id"],
            kind=d["kind"],
            onvif=OnvifCredentials(**d["onvif"]),
            snapshot_url=d["snapshot_url"],
            health_interval_s=10,
            snapshot_interval_s=30,
        )
        for d in described
    ]


async def agent_health(
    devs: list[Assignment], rounds: int, concurrency: int, tmp: Path
) -> tuple[float, float, int]:
    """The agent's path (pooled clients, semaphore, outbox writes): (wall s, CPU s, probes)."""
    s = AgentSettings(
        central="http://127.0.0.1:1",
        token="bench-token-never-sent",  # nothing is sent to the central here
        outbox=tmp / "o.db",
        concurrency=concurrency,
    )
    box = Outbox(s.outbox, synchronous="NORMAL")
    pool = OnvifPool(max_size=len(devs) + 16)
    async with httpx.AsyncClient() as http:
        work = DeviceWork(s, box, Metrics(), pool, http, Judge(box))
        sem = asyncio.Semaphore(concurrency)

        async def one(a: Assignment) -> None:
            async with sem:
                await work.health(a)

        await asyncio.gather(*(one(a) for a in devs))  # warm: sessions open, as in a running agent
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(rounds):
            await asyncio.gather(*(one(a) for a in devs))
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    await pool.close()
    ok = sum(1 for e in box.take("health", 10**6) if e.payload["authenticated"])
    box.close()
    return wall, cpu, ok


async def naive_health(devs: list[Assignment], limit: int) -> tuple[float, int]:
    """The peer: one device after another, a fresh client each, the same two calls."""
    w0 = time.perf_counter()
    done = 0
    for a in devs[:limit]:
        assert a.onvif is not None
        c = OnvifClient(a.onvif.host, a.onvif.port, a.onvif.username, a.onvif.password or "")
        try:
            await c.system_date_and_time()
            await c.device_information()
            done += 1
        finally:
            await c.close()
    return time.perf_counter() - w0, done


async def raw_rate(devs: list[Assignment], seconds: float, concurrency: int) -> float:
    """The limit: bare HTTP POSTs of GetSystemDateAndTime to the same simulator over aiohttp (the
    ONVIF client's transport), as many in flight as the agent had, no SOAP client."""
    import aiohttp

    n = 0
    end = time.perf_counter() + seconds
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as c:

        async def worker(i: int) -> None:
            nonlocal n
            k = i
            while time.perf_counter() < end:
                a = devs[k % len(devs)]
                k += concurrency
                assert a.onvif is not None
                url = f"http://127.0.0.1:{a.onvif.port}/onvif/device_service"
                async with c.post(url, data=CLOCK, headers={"Content-Type": "application/soap+xml"}) as r:
                    await r.read()
                    n += r.status == 200

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        return n / (time.perf_counter() - t0)


def snapshot_pipeline(described: list[dict[str, Any]], seconds: float, tmp: Path) -> tuple[float, float, int]:
    """Snapshots judged and delivered to a local API (uvicorn thread, directory store): (wall, CPU, n)."""
    from cryptography.fernet import Fernet

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.conftest's LiveServer
    from tests.conftest import LiveServer, free_port
    from tianwang.api.app import create_app
    from tianwang.auth.tokens import create_token
    from tianwang.config import Settings
    from tianwang.context import AppContext
    from tianwang.storage import migrate

    port = free_port()
    url = f"sqlite:///{tmp / 'tw.db'}"
    migrate.upgrade(url)
    settings = Settings(
        data_dir=tmp,
        database_url=url,
        object_store=f"dir:{tmp / 'objects'}",
        secret_key=Fernet.generate_key().decode(),
        public_url=f"http://127.0.0.1:{port}",
    )
    ctx = AppContext.build(settings)
    srv = LiveServer(create_app(settings, ctx), port).start()
    with ctx.db.session() as s:
        installer, agent_token = create_token(s, "installer", "b-i"), create_token(s, "agent", "b-a")
    devs = described[:20]
    with httpx.Client(base_url=srv.url, headers={"Authorization": f"Bearer {installer}"}) as c:
        for d in devs:
            body = {k: v for k, v in d.items() if k not in ("faults", "resolution")}
            assert c.post("/api/v1/cameras", json=body).status_code == 201

    async def go() -> tuple[float, float, int]:
        s = AgentSettings(
            central=srv.url,
            token=agent_token,
            outbox=tmp / "o.db",
            interval_scale=0.001,
            min_interval_s=0.01,
            diagnosis_concurrency=os.cpu_count() or 2,
        )
        box = Outbox(s.outbox, synchronous="NORMAL")
        pool = OnvifPool()
        async with (
            httpx.AsyncClient() as http,
            httpx.AsyncClient(base_url=srv.url, headers={"Authorization": f"Bearer {agent_token}"}) as api,
            httpx.AsyncClient() as put,
        ):
            work = DeviceWork(s, box, Metrics(), pool, http, Judge(box))
            sender = Sender(s, box, Metrics(), api, put)
            sched = Scheduler(
                [Job("snapshot", lambda a: a.snapshot_interval_s, work.snapshot, 30)],
                concurrency=16,
                interval_scale=0.001,
                min_interval_s=0.01,
            )
            stop = asyncio.Event()
            w0, c0 = time.perf_counter(), time.process_time()
            sched.update(assignments(devs))
            sending = asyncio.create_task(sender.run(stop))
            await asyncio.sleep(seconds)
            await sched.stop(5)
            await sender.flush(60)
            stop.set()
            await sending
            wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        await pool.close()
        box.close()
        return wall, cpu, 0

    try:
        wall, cpu, _ = asyncio.run(go())
        from sqlalchemy import func, select

        from tianwang.storage.models import Snapshot

        with ctx.db.session() as s:
            n = int(s.scalar(select(func.count()).select_from(Snapshot)) or 0)
        return wall, cpu, n
    finally:
        srv.stop()
        ctx.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=200, help="simulated cameras")
    ap.add_argument("latency", nargs="?", type=float, default=0.2, help="seconds before each answer")
    ap.add_argument("rounds", nargs="?", type=int, default=3, help="health rounds over every camera")
    ap.add_argument("--raw-seconds", type=float, default=5.0, help="how long the raw HTTP limit runs")
    ap.add_argument("--snapshot-seconds", type=float, default=15.0, help="how long snapshots are taken")
    a = parse(ap, smoke={"n": 6, "latency": 0.01, "rounds": 1, "raw_seconds": 0.5, "snapshot_seconds": 1.5})
    n, latency = a.n, a.latency
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=serve, args=(n, latency, child), daemon=True)
    proc.start()
    try:
        described = parent.recv()
        health(described, a)
        # pictures with no added latency: the pipeline's own cost
        parent.send(("latency", 0.0))
        described = parent.recv()[:20]
        with tempfile.TemporaryDirectory(prefix="tw-bench-agent-") as tmp:
            wall, cpu, stored = snapshot_pipeline(described, a.snapshot_seconds, Path(tmp))
        print(
            f"snapshot pipeline ({len(described)} cameras, fetch → diagnose → outbox → presign → PUT → "
            f"record): {stored} stored in {wall:.1f} s = {stored / wall:.1f}/s; CPU {cpu:.1f} s (agent + API "
            f"in this process) → {stored / max(cpu, 1e-9):.1f} snapshots per core-second"
        )
    finally:
        parent.send("stop")
        proc.join(30)
        if proc.is_alive():
            proc.terminate()


def health(described: list[dict[str, Any]], a: argparse.Namespace) -> None:
    devs = assignments(described)
    asyncio.run(warm_wsdl())
    with tempfile.TemporaryDirectory(prefix="tw-bench-agent-") as tmp:
        wall, cpu, ok = asyncio.run(agent_health(devs, a.rounds, 200, Path(tmp)))
    probes = len(devs) * a.rounds
    print(f"devices: {a.n}, device latency {a.latency:g} s per answer (simulator in a child process)")
    print(
        f"agent health probes: {probes} in {wall:.2f} s = {probes / wall * 60:,.0f}/min; CPU {cpu:.2f} s "
        f"→ {probes / max(cpu, 1e-9) * 60:,.0f} probes/min per agent core "
        f"({ok} of {probes + len(devs)} authenticated, warm-up round included)"
    )
    limit = min(len(devs), 20)
    nwall, done = asyncio.run(naive_health(devs, limit))
    naive_rate = done / nwall * 60
    print(
        f"naive sequential loop: {done} probes in {nwall:.2f} s = {naive_rate:,.0f}/min "
        f"→ agent is {probes / wall * 60 / naive_rate:.0f}× faster"
    )
    rate = asyncio.run(raw_rate(devs, a.raw_seconds, 200))  # as many in flight as the agent had
    print(
        f"raw loopback HTTP to the simulator (limit, one request per probe call): {rate:,.0f} req/s "
        f"= {rate * 60 / 2:,.0f} two-call probes/min"
    )


if __name__ == "__main__":
    main()
