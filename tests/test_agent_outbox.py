"""The agent's outbox (bound, drop-oldest-snapshot, dead letter, restart) and scheduler (jitter,
concurrency cap, deadlines, reassignment) — unit tests, no network."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from pathlib import Path

from edge_agent.outbox import Outbox, health_key
from edge_agent.scheduler import Job, Scheduler
from tianwang.protocol.agents import Assignment, CommandResult
from tianwang.protocol.ingest import HealthItem

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def health(i: int, device: str = "44030400001320000001") -> HealthItem:
    ts = T0 + dt.timedelta(seconds=i)
    return HealthItem(key=health_key("edge-1", device, ts), device_id=device, ts=ts, reachable=True)


def snap(box: Outbox, i: int, size: int = 10_000) -> str | None:
    ts = T0 + dt.timedelta(seconds=i)
    return box.add_snapshot(
        "edge-1", "44030400001320000002", ts, b"x" * size, sha256="0" * 64, width=1, height=1, quality=None
    )


def test_keys_are_deterministic_and_a_replay_is_stored_once(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", journal=True)
    assert box.add_health(health(1)) is True
    assert box.add_health(health(1)) is False  # same observation, same key
    assert health(1).key == health_key("edge-1", "44030400001320000001", T0 + dt.timedelta(seconds=1))
    assert snap(box, 1) is not None and snap(box, 1) is None
    assert box.depth() == {"health": 1, "snapshot": 1, "result": 0, "stream": 0}
    assert len(box.journal_keys()) == 2
    box.close()


def test_full_outbox_drops_the_oldest_snapshots_never_health(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_bytes=10**9, max_items=10)
    for i in range(4):
        box.add_health(health(i))
    for i in range(10):
        snap(box, 100 + i)
    assert box.items == 10
    assert box.depth()["health"] == 4  # no health observation dropped
    kept = [e.payload["ts"] for e in box.take("snapshot", 100)]
    assert len(kept) == 6
    assert kept[0] == (T0 + dt.timedelta(seconds=104)).isoformat()  # the oldest four went
    assert box.counter("dropped_snapshots") == 4
    # health keeps coming when only health is left: kept (over the bound), never dropped
    box2 = Outbox(tmp_path / "o2.db", max_items=100)
    for i in range(150):
        box2.add_health(health(i))
    assert box2.depth()["health"] == 150
    # a byte bound drops snapshots the same way
    box3 = Outbox(tmp_path / "o3.db", max_bytes=2 * 1024 * 1024)
    for i in range(10):
        snap(box3, i, size=500_000)
    assert box3.bytes <= 2 * 1024 * 1024 and box3.counter("dropped_snapshots") == 6
    for b in (box, box2, box3):
        b.close()


def test_dead_letter_ack_drop_and_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    box = Outbox(path)
    for i in range(5):
        box.add_health(health(i))
    box.add_result("cmd-1", "44030400001320000001", T0, CommandResult(ok=True, result={"a": 1}))
    entries = box.take("health", 10)
    assert [e.key for e in entries] == [health(i).key for i in range(5)]
    assert box.dead_letter({entries[0].id: "device 4403… is not registered"}) == 1
    assert box.ack([entries[1].id, entries[2].id]) == 2
    assert box.drop([box.take("result", 1)[0].id], "expired_results") == 1
    box.put_state("diag:x", b"\x00state")
    box.close()

    again = Outbox(path)  # a restart: what was not settled is still there, with the counters
    assert [e.key for e in again.take("health", 10)] == [health(3).key, health(4).key]
    assert again.depth() == {"health": 2, "snapshot": 0, "result": 0, "stream": 0}
    assert again.counter("dead_letters") == 1 and again.counter("dead_health") == 1
    assert again.counter("expired_results") == 1
    assert again.dead()[0]["reason"].startswith("device 4403")
    assert again.get_state("diag:x") == b"\x00state"
    # the dead letter is not retried: it is not among the items any more
    assert health(0).key not in {e.key for e in again.take("health", 10)}
    again.close()


# -- scheduler ---------------------------------------------------------------------------------


def assignment(i: int, interval: int = 10) -> Assignment:
    return Assignment(
        device_id=f"4403040000132{i:07d}",
        kind="bullet",
        health_interval_s=interval,
        snapshot_interval_s=interval,
    )


async def test_first_runs_spread_over_the_interval_and_concurrency_is_capped() -> None:
    starts: list[float] = []
    t0 = asyncio.get_running_loop().time()

    async def run(a: Assignment) -> None:
        starts.append(asyncio.get_running_loop().time() - t0)
        await asyncio.sleep(0.2)

    sched = Scheduler(
        [Job("health", lambda a: a.health_interval_s, run, 5.0)],
        concurrency=4,
        interval_scale=0.1,
        rng=random.Random(1),
    )
    sched.update([assignment(i) for i in range(40)])  # interval 1 s
    await asyncio.sleep(0.9)
    await sched.stop(grace_s=1)
    assert sched.stats.max_in_flight == 4  # never more than the cap
    # jitter: the first runs are not bunched at t=0 but spread over the first interval
    early = [s for s in starts if s < 0.25]
    assert len(starts) >= 8 and len(early) < len(starts)


async def test_deadline_is_enforced_outside_the_job_and_ticks_are_skipped_not_piled() -> None:
    timeouts: list[str] = []
    skipped: list[int] = []

    async def hang(a: Assignment) -> None:
        await asyncio.sleep(3600)

    async def on_timeout(a: Assignment, started: dt.datetime) -> None:
        timeouts.append(a.device_id)

    sched = Scheduler(
        [Job("health", lambda a: a.health_interval_s, hang, 0.35, on_timeout)],
        concurrency=8,
        interval_scale=0.01,
        min_interval_s=0.1,
        on_skip=lambda k, n: skipped.append(n),
        rng=random.Random(2),
    )
    sched.update([assignment(1)])  # every 0.1 s, each run cut at 0.35 s
    await asyncio.sleep(1.3)
    await sched.stop(grace_s=0.1)
    assert 2 <= len(timeouts) <= 4  # runs back to back, never overlapping
    assert sched.stats.max_in_flight == 1
    assert sum(skipped) >= 4  # the ticks missed while a run hung were skipped


async def test_reassignment_touches_only_what_changed() -> None:
    runs: dict[str, int] = {}

    async def run(a: Assignment) -> None:
        runs[a.device_id] = runs.get(a.device_id, 0) + 1

    sched = Scheduler(
        [Job("health", lambda a: a.health_interval_s, run, 1.0)],
        concurrency=8,
        interval_scale=0.01,
        min_interval_s=0.05,
    )
    a, b, c = assignment(1), assignment(2), assignment(3)
    sched.update([a, b])
    task_a, task_b = sched.task(a.device_id, "health"), sched.task(b.device_id, "health")
    await asyncio.sleep(0.3)
    b_faster = b.model_copy(update={"health_interval_s": 20})
    changes = sched.update([a, b_faster, c])
    assert changes == {"started": [c.device_id], "stopped": [], "updated": [b.device_id]}
    assert sched.task(a.device_id, "health") is task_a  # untouched
    assert sched.task(b.device_id, "health") is not task_b  # new interval, restarted
    a_moved = a.model_copy(update={"snapshot_url": "http://127.0.0.1:1/snap.jpg"})
    changes = sched.update([a_moved, c])
    assert changes == {"started": [], "stopped": [b.device_id], "updated": [a.device_id]}
    assert sched.task(a.device_id, "health") is task_a  # same intervals: no restart
    assert task_b is not None and sched.task(b.device_id, "health") is None
    await asyncio.sleep(0.3)
    await sched.stop(grace_s=1)
    assert runs[a.device_id] >= 4 and runs[c.device_id] >= 2
    assert set(sched.devices) == set()
