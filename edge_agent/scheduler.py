"""The agent's scheduler: per device and job kind, a run every interval, spread, bounded and deadlined.

- jitter: each device's first run falls at a random point of its first interval, so 5 000 devices
  assigned at once do not all fire in the same second;
- bounded concurrency: one semaphore caps the device conversations in flight;
- hard deadlines: each run is cancelled at `deadline_s`, enforced here, outside the job, and the
  job's `on_timeout` records what that means (an unanswered health check is evidence too);
- no pile-up: a run that overran (or waited long for the semaphore) makes the missed ticks
  skipped and counted, never queued;
- reassignment: `update()` starts new devices, stops removed ones and updates changed ones
  without touching the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tianwang.protocol.agents import Assignment

log = logging.getLogger("edge_agent.scheduler")


@dataclass(frozen=True)
class Job:
    kind: str  # "health" | "snapshot"
    interval: Callable[[Assignment], float]  # seconds, from the assignment
    run: Callable[[Assignment], Awaitable[Any]]
    deadline_s: float
    # called (not under the deadline) when a run was cut by it, with the run's start time
    on_timeout: Callable[[Assignment, dt.datetime], Awaitable[Any]] | None = None


@dataclass
class _Device:
    assignment: Assignment
    tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    intervals: dict[str, float] = field(default_factory=dict)


@dataclass
class Stats:
    runs: dict[str, int] = field(default_factory=dict)
    timeouts: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0

    def add(self, what: dict[str, int], kind: str, n: int = 1) -> None:
        what[kind] = what.get(kind, 0) + n


class Scheduler:
    def __init__(
        self,
        jobs: list[Job],
        *,
        concurrency: int,
        interval_scale: float = 1.0,
        min_interval_s: float = 0.2,
        on_skip: Callable[[str, int], None] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.jobs = {j.kind: j for j in jobs}
        self.concurrency = concurrency
        self.interval_scale = interval_scale
        self.min_interval_s = min_interval_s
        self.on_skip = on_skip
        self.rng = rng or random.Random()  # jitter, not security
        self.stats = Stats()
        self._sem = asyncio.Semaphore(concurrency)
        self._devices: dict[str, _Device] = {}
        self._busy: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def devices(self) -> dict[str, Assignment]:
        return {d: dev.assignment for d, dev in self._devices.items()}

    def task(self, device_id: str, kind: str) -> asyncio.Task[None] | None:
        dev = self._devices.get(device_id)
        return dev.tasks.get(kind) if dev else None

    def _interval(self, job: Job, a: Assignment) -> float:
        return max(self.min_interval_s, job.interval(a) * self.interval_scale)

    def update(self, assignments: list[Assignment]) -> dict[str, list[str]]:
        """Make the running set match `assignments`; returns the device ids started, stopped, updated."""
        if self._stopping:
            return {"started": [], "stopped": [], "updated": []}
        wanted = {a.device_id: a for a in assignments}
        started: list[str] = []
        stopped: list[str] = []
        updated: list[str] = []
        for device_id in list(self._devices):
            if device_id not in wanted:
                dev = self._devices.pop(device_id)
                for t in dev.tasks.values():
                    t.cancel()
                stopped.append(device_id)
        for device_id, a in wanted.items():
            found = self._devices.get(device_id)
            if found is None:
                new = self._devices[device_id] = _Device(a)
                for job in self.jobs.values():
                    self._start(new, job)
                started.append(device_id)
                continue
            dev = found
            if dev.assignment == a:
                continue
            dev.assignment = a  # credentials, URLs: the next run reads them, no restart
            for job in self.jobs.values():
                if dev.intervals.get(job.kind) != self._interval(job, a):
                    dev.tasks[job.kind].cancel()
                    self._start(dev, job)
            updated.append(device_id)
        if started or stopped or updated:
            log.info(
                "assignment: %d devices (%d started, %d stopped, %d updated)",
                len(self._devices),
                len(started),
                len(stopped),
                len(updated),
            )
        return {"started": started, "stopped": stopped, "updated": updated}

    def _start(self, dev: _Device, job: Job) -> None:
        interval = self._interval(job, dev.assignment)
        dev.intervals[job.kind] = interval
        dev.tasks[job.kind] = asyncio.create_task(
            self._loop(dev.assignment.device_id, job, interval), name=f"{job.kind}:{dev.assignment.device_id}"
        )

    async def _loop(self, device_id: str, job: Job, interval: float) -> None:
        next_t = time.monotonic() + self.rng.uniform(0, interval)
        while not self._stopping:
            delay = next_t - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            dev = self._devices.get(device_id)
            if dev is None or self._stopping:
                return
            await self._run_once(dev.assignment, job)
            next_t += interval
            now = time.monotonic()
            if next_t <= now:
                missed = math.floor((now - next_t) / interval) + 1
                next_t += missed * interval
                self.stats.add(self.stats.skipped, job.kind, missed)
                if self.on_skip:
                    self.on_skip(job.kind, missed)

    async def _run_once(self, a: Assignment, job: Job) -> None:
        me = asyncio.current_task()
        async with self._sem:
            if self._stopping:
                return
            assert me is not None
            self._busy.add(me)
            self.stats.in_flight += 1
            self.stats.max_in_flight = max(self.stats.max_in_flight, self.stats.in_flight)
            started = dt.datetime.now(dt.UTC)
            timed_out = False
            try:
                async with asyncio.timeout(job.deadline_s):
                    await job.run(a)
                self.stats.add(self.stats.runs, job.kind)
            except TimeoutError:
                timed_out = True
                self.stats.add(self.stats.timeouts, job.kind)
            except Exception:
                self.stats.add(self.stats.errors, job.kind)
                log.exception("%s of %s failed", job.kind, a.device_id)
            finally:
                self.stats.in_flight -= 1
                self._busy.discard(me)
        if timed_out and job.on_timeout is not None:
            try:
                await job.on_timeout(a, started)
            except Exception:
                log.exception("recording the timeout of %s of %s failed", job.kind, a.device_id)

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop scheduling; let runs in flight finish within `grace_s`, then cancel the rest."""
        self._stopping = True
        tasks = [t for dev in self._devices.values() for t in dev.tasks.values()]
        for t in tasks:
            if t not in self._busy:
                t.cancel()
        busy = [t for t in tasks if t in self._busy]
        if busy:
            _, pending = await asyncio.wait(busy, timeout=grace_s)
            for t in pending:
                t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._devices.clear()
