"""Nothing lost, nothing twice: the API down for a while, then the agent SIGKILLed while it drains its
backlog and restarted — every health observation and snapshot the agent produced is stored once."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from simulator.devices import SimulatorThread
from tests.agent_support import AgentProcess, register, tokens_for, wait_until
from tests.conftest import LiveServer
from tianwang.api.app import create_app
from tianwang.context import AppContext
from tianwang.storage.models import HealthObservation, Snapshot

AGENT_ENV: dict[str, Any] = {
    "interval_scale": 0.1,  # registered 10 s / 30 s → every 1 s / 3 s
    "heartbeat_wait_s": 2,
    "backoff_cap_s": 2,  # come back quickly once the API is up again
    "call_timeout_s": 3,
    "concurrency": 16,
}


def _ms(ts: dt.datetime | str) -> int:
    t = dt.datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC
    return round(t.timestamp() * 1000)


def journal(outbox: Path) -> list[tuple[str, str, str, str]]:
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        return [tuple(r) for r in db.execute("SELECT key, kind, device_id, ts FROM journal")]
    finally:
        db.close()


def outbox_left(outbox: Path) -> tuple[int, int, int]:
    """(items waiting, dead letters, dropped snapshots) in the outbox file."""
    db = sqlite3.connect(f"file:{outbox}?mode=ro", uri=True)
    try:
        items = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        dead = db.execute("SELECT COUNT(*) FROM dead").fetchone()[0]
        row = db.execute("SELECT value FROM counters WHERE name = 'dropped_snapshots'").fetchone()
        return int(items), int(dead), int(row[0]) if row else 0
    finally:
        db.close()


def outbox_depth(agent: AgentProcess, outbox: Path) -> int:
    """Items waiting in the agent's outbox (read from its file; the agent must still be running)."""
    assert agent.alive(), agent.log_tail()
    return outbox_left(outbox)[0]


def check_stored_once(ctx: AppContext, outbox: Path, devices: set[str]) -> tuple[int, int]:
    produced = journal(outbox)
    health = {k for k, kind, _, _ in produced if kind == "health"}
    snaps = {(d, _ms(ts)) for _, kind, d, ts in produced if kind == "snapshot"}
    assert health and snaps
    with ctx.db.session() as s:
        rows = s.execute(
            select(HealthObservation.key, HealthObservation.device_id, HealthObservation.ts).where(
                HealthObservation.device_id.in_(devices)
            )
        ).all()
        stored = [r[0] for r in rows]
        assert len(stored) == len(set(stored))
        assert set(stored) == health, (
            f"lost {len(health - set(stored))}, unknown {len(set(stored) - health)} health observations"
        )
        per_obs = {(r[1], _ms(r[2])) for r in rows}
        assert len(per_obs) == len(rows)  # no observation stored twice under another key
        snap_rows = s.execute(
            select(Snapshot.device_id, Snapshot.ts).where(Snapshot.device_id.in_(devices))
        ).all()
        stored_snaps = [(d, _ms(t)) for d, t in snap_rows]
        assert len(stored_snaps) == len(set(stored_snaps))
        assert set(stored_snaps) == snaps, (
            f"lost {len(snaps - set(stored_snaps))}, unknown {len(set(stored_snaps) - snaps)} snapshots"
        )
        dupes = s.execute(
            select(Snapshot.device_id, Snapshot.ts)
            .group_by(Snapshot.device_id, Snapshot.ts)
            .having(func.count() > 1)
        ).all()
        assert not dupes
    items, dead, dropped = outbox_left(outbox)
    assert (items, dead, dropped) == (0, 0, 0)
    return len(health), len(snaps)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_api_outage_then_sigkill_mid_drain_lose_nothing(
    live_server: tuple[LiveServer, AppContext], tmp_path: Path
) -> None:
    srv, ctx = live_server
    port = int(srv.url.rsplit(":", 1)[1])
    tok = tokens_for(ctx)
    outbox = tmp_path / "outbox.db"
    servers: list[LiveServer] = []

    def restart_api() -> LiveServer:
        new = LiveServer(create_app(ctx.settings, ctx), port).start()  # same port, same database
        servers.append(new)
        return new

    def stored_health() -> int:
        with ctx.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(HealthObservation)) or 0)

    with SimulatorThread(n_cameras=8, n_checkpoints=0, seed=21) as sim:
        described = sim.describe()
        devices = {d["device_id"] for d in described}
        over = {d: {"health_interval_s": 10, "snapshot_interval_s": 30} for d in devices}
        register(srv.url, tok["installer"], described, **over)
        agent = AgentProcess(srv.url, tok["agent"], outbox, tmp_path / "agent.log", **AGENT_ENV).start()
        try:
            agent.wait_ready(len(devices))
            wait_until("the agent's first observations", lambda: stored_health() >= 16, 60)

            # 1. the API goes away; the agent keeps observing into its outbox
            srv.stop()
            wait_until(
                "a backlog in the outbox while the API is down",
                lambda: outbox_depth(agent, outbox) >= 60,
                60,
            )
            assert agent.metrics()["tianwang_agent_heartbeat_failures_total"] > 0
            api = restart_api()
            wait_until("the backlog delivered", lambda: outbox_depth(agent, outbox) < 10, 60)
            assert agent.terminate() == 0, agent.log_tail()
            n_health, n_snaps = check_stored_once(ctx, outbox, devices)
            assert n_health >= 60 and n_snaps >= 8

            # 2. a backlog again, then SIGKILL while the agent is draining it, twice, and restart
            agent = AgentProcess(api.url, tok["agent"], outbox, tmp_path / "agent.log", **AGENT_ENV).start()
            agent.wait_ready(len(devices))
            kills = attempts = 0
            # twice, and more (up to four) until a kill has landed with items left: on a loaded
            # machine a drain may finish before the kill
            while attempts < 2 or (kills == 0 and attempts < 4):
                attempts += 1
                api.stop()
                running = agent
                wait_until("a backlog", lambda a=running: outbox_depth(a, outbox) >= 40, 60)
                before = stored_health()
                api = restart_api()
                wait_until("draining under way", lambda b=before: stored_health() > b, 30, every_s=0.05)
                agent.kill()  # SIGKILL: no flush, no goodbye
                kills += outbox_left(outbox)[0] > 0  # what the killed agent left in its file
                agent = AgentProcess(
                    api.url, tok["agent"], outbox, tmp_path / "agent.log", **AGENT_ENV
                ).start()
                agent.wait_ready(len(devices))
            assert kills >= 1  # at least one kill landed with items still in flight or waiting
            time.sleep(1)
            assert agent.terminate() == 0, agent.log_tail()
            n_health2, n_snaps2 = check_stored_once(ctx, outbox, devices)
            assert n_health2 > n_health and n_snaps2 > n_snaps
        finally:
            if agent.alive():
                agent.kill()
            for s in servers:
                s.stop()
