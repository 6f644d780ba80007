"""Hostile devices — malformed XML, 50 MB answers, silence, a slow drip — against one agent subprocess:
it stays up with bounded memory and records each as a device error in its health observations."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from simulator.devices import SimulatorThread
from tests.agent_support import AgentProcess, register, tokens_for, wait_until
from tests.conftest import LiveServer
from tianwang.context import AppContext
from tianwang.storage.models import HealthObservation

MAX_RSS_KB = 450 * 1024  # the agent idles near 200 MB (OpenCV, numpy, zeep); 50 MB answers must not add up


class Drip:
    """A device that answers HTTP 200 with no length, then sends one byte every 0.2 s, forever."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.read(65536)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml\r\nConnection: close\r\n\r\n"
            )
            while True:
                writer.write(b"<")
                await writer.drain()
                await asyncio.sleep(0.2)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        server.close()

    def __enter__(self) -> Drip:
        self.thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        def stop() -> None:
            for t in asyncio.all_tasks(self.loop):
                t.cancel()
            self.loop.stop()

        self.loop.call_soon_threadsafe(stop)
        self.thread.join(10)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_hostile_devices_are_errors_not_crashes(
    live_server: tuple[LiveServer, AppContext], tmp_path: Path
) -> None:
    srv, ctx = live_server
    tok = tokens_for(ctx)
    faults = {0: {"malformed_xml": True}, 1: {"oversized": 50}, 2: {"silent": True}}
    expect = {0: "bad_answer", 1: "bad_answer", 2: "timeout", 3: "timeout", 4: None}
    with SimulatorThread(n_cameras=5, n_checkpoints=0, seed=31, faults=faults) as sim, Drip() as drip:
        described: list[dict[str, Any]] = sim.describe()
        # the fourth camera's address points at the drip instead
        described[3]["onvif"]["port"] = drip.port
        described[3]["snapshot_url"] = f"http://127.0.0.1:{drip.port}/snapshot.jpg"
        ids = [d["device_id"] for d in described]
        over = {d: {"health_interval_s": 10, "snapshot_interval_s": 30} for d in ids}
        register(srv.url, tok["installer"], described, **over)
        agent = AgentProcess(
            srv.url,
            tok["agent"],
            tmp_path / "outbox.db",
            tmp_path / "agent.log",
            interval_scale=0.1,
            call_timeout_s=2,
            health_deadline_s=5,
            snapshot_deadline_s=6,
            heartbeat_wait_s=5,
            concurrency=16,
        ).start()
        try:

            def errors() -> dict[int, list[HealthObservation]]:
                with ctx.db.session() as s:
                    rows = s.scalars(select(HealthObservation)).all()
                    out: dict[int, list[HealthObservation]] = {i: [] for i in range(5)}
                    for r in rows:
                        out[ids.index(r.device_id)].append(r)
                    return out

            # several rounds of every hostile answer (the oversized one streams 50 MB each time)
            wait_until(
                "five observations of every device", lambda: all(len(v) >= 5 for v in errors().values()), 90
            )
            assert agent.alive(), agent.log_tail()
            rss = agent.rss_peak_kb()
            assert rss < MAX_RSS_KB, f"agent peak RSS {rss / 1024:.0f} MB"
            obs = errors()
            for i, code in expect.items():
                if code is None:
                    assert all(o.reachable and o.authenticated for o in obs[i])
                    continue
                assert all(not o.reachable for o in obs[i]), [(o.reachable, o.error) for o in obs[i]]
                assert all(o.error and o.error.startswith(code) for o in obs[i]), [o.error for o in obs[i]]
            print(f"agent peak RSS {rss / 1024:.0f} MB")
        finally:
            code = agent.terminate()
        assert code == 0, agent.log_tail()
