"""Probes per second against N simulated cameras, and the client's CPU time per device.

Compared, in the same run and with the same client, against the peer: a plain sequential loop
over the same devices. The simulator runs in a child process, so `time.process_time()` here is
the client's alone. Run twice: devices answering at once (CPU-bound), and answering after a
camera-like latency (the simulator's `slow` fault).
Usage: `python bench/bench_probe.py [N] [CONCURRENCY] [LATENCY_S] [--smoke]` (defaults 200 50 0.05;
`--smoke`: a few seconds at a tiny size, only to check that it runs).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from common import parse

from edge_agent.devices.onvif_client import OnvifPool, warm_wsdl
from edge_agent.probes import ProbeSettings, run_with_deadline
from edge_agent.probes import onvif as onvif_probe
from simulator.devices import SimulatorThread
from tianwang.protocol import OnvifEndpoint


@dataclass(frozen=True)
class Dev:
    port: int
    username: str
    password: str


def serve(n: int, latency_s: float, conn: Connection) -> None:
    """Child process: the simulated cameras, until the parent says stop."""
    with SimulatorThread(n_cameras=n, n_checkpoints=0) as sim:
        if latency_s > 0:
            for d in sim.devices:
                sim.set_faults(d.device_id, {"slow": latency_s})
        conn.send([Dev(d.port, d.username, d.password) for d in sim.devices])
        conn.recv()


def endpoint(dev: Any) -> OnvifEndpoint:
    return OnvifEndpoint(host="127.0.0.1", port=dev.port, username=dev.username, password=dev.password)


async def probe_all(devices: list[Dev], concurrency: int, pool: OnvifPool | None) -> tuple[float, float, int]:
    settings = ProbeSettings(pool=pool)
    gate = asyncio.Semaphore(concurrency)

    async def one(dev: Any) -> bool:
        async with gate:
            r = await run_with_deadline(onvif_probe.probe, endpoint(dev), settings, 30.0)
            return r.success

    wall0, cpu0 = time.perf_counter(), time.process_time()
    ok = await asyncio.gather(*(one(d) for d in devices))
    return time.perf_counter() - wall0, time.process_time() - cpu0, sum(ok)


async def measure(devices: list[Dev], concurrency: int) -> list[tuple[str, float, float, int]]:
    rows = []
    for label, conc in (("sequential loop (peer)", 1), (f"concurrent x{concurrency}", concurrency)):
        for pooled in (False, True):
            pool = OnvifPool() if pooled else None
            try:
                if pooled:  # first pass opens the sessions; the second is the steady state
                    await probe_all(devices, conc, pool)
                wall, cpu, ok = await probe_all(devices, conc, pool)
            finally:
                if pool is not None:
                    await pool.close()
            rows.append((label + (", pooled" if pooled else ", fresh client"), wall, cpu, ok))
    return rows


async def main(n: int, concurrency: int, latency_s: float) -> None:
    await warm_wsdl()
    ctx = mp.get_context("spawn")
    for latency in (0.0, latency_s):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(n, latency, child), daemon=True)
        proc.start()
        try:
            if not parent.poll(120):
                raise SystemExit("simulator did not start")
            devices = parent.recv()
            rows = await measure(devices, concurrency)
        finally:
            parent.send("stop")
            proc.join(30)
            if proc.is_alive():
                proc.terminate()
        print(f"\n{n} simulated cameras in a child process, each ONVIF call answered after {latency:g} s")
        print("probe = GetSystemDateAndTime + GetDeviceInformation + GetServices + GetProfiles")
        print(f"{'mode':<40} {'probes/s':>9} {'client CPU ms/device':>21} {'ok':>8}")
        for label, wall, cpu, ok in rows:
            print(f"{label:<40} {n / wall:9.1f} {cpu / n * 1000:21.2f} {ok:>4}/{n}")
        print(f"concurrent vs sequential loop (pooled): {rows[1][1] / rows[3][1]:.1f}x the probes per second")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("n", nargs="?", type=int, default=200, help="simulated cameras")
    ap.add_argument("concurrency", nargs="?", type=int, default=50, help="probes in flight")
    ap.add_argument("latency", nargs="?", type=float, default=0.05, help="seconds before each answer")
    a = parse(ap, smoke={"n": 6, "concurrency": 3, "latency": 0.01})
    asyncio.run(main(a.n, a.concurrency, a.latency))
