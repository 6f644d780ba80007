"""The edge agent's main loop: heartbeat (long poll) for assignments and commands, the scheduler for
health and snapshots, the sender draining the outbox, metrics, and a graceful stop on SIGTERM/SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import logging
import random
import signal
import threading
from importlib import metadata
from urllib.parse import urlsplit

import httpx
from pydantic import ValidationError

from edge_agent.devices.errors import DeviceError
from edge_agent.devices.onvif_client import OnvifClient, OnvifPool, warm_wsdl
from edge_agent.metrics import Metrics
from edge_agent.observe import DeviceWork, Judge
from edge_agent.outbox import Outbox
from edge_agent.probes import ProbeSettings, installer
from edge_agent.scheduler import Job, Scheduler
from edge_agent.sender import Sender, _problem, _wait, backoff_delay
from edge_agent.settings import AgentSettings
from edge_agent.stream_work import StreamWork
from tianwang.protocol import OnvifEndpoint, ProbeRequest
from tianwang.protocol.agents import Command, CommandResult, Heartbeat, HeartbeatReply

log = logging.getLogger("edge_agent.agent")
# a result needs a moment to reach the API before the command's deadline
RESULT_MARGIN_S = 0.5


def agent_version() -> str:
    try:
        return metadata.version("tianwang")[:50]
    except metadata.PackageNotFoundError:
        return "dev"


class HeartbeatFailed(Exception):
    pass


class Agent:
    def __init__(self, settings: AgentSettings) -> None:
        self.settings = settings
        self.stop_event = asyncio.Event()
        self.config_version: str | None = None
        self.metrics = Metrics()
        self.metrics_port: int | None = None
        self.outbox: Outbox | None = None
        self.scheduler: Scheduler | None = None
        self.work: DeviceWork | None = None
        self.streams: StreamWork | None = None
        self.sender: Sender | None = None
        self.rng = random.Random()  # jitter
        self._commands: set[asyncio.Task[None]] = set()
        self.ready = asyncio.Event()  # set once the first heartbeat was answered

    def stop(self) -> None:
        self.stop_event.set()

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)

    async def run(self) -> None:
        s = self.settings
        self._install_signals()
        outbox = self.outbox = Outbox(
            s.outbox,
            max_bytes=s.outbox_max_bytes,
            max_items=s.outbox_max_items,
            synchronous=s.outbox_synchronous,
            journal=s.outbox_journal,
        )
        if outbox.items:
            log.info(
                "outbox holds %d items (%d bytes) from before: sending them first", outbox.items, outbox.bytes
            )
        self.metrics.watch_outbox(outbox)
        if s.metrics_port:
            self.metrics_port = self.metrics.serve(s.metrics_port, s.metrics_host)
            log.info("metrics on http://%s:%d/metrics", s.metrics_host, self.metrics_port)
        if _plain_http_off_host(s.central):
            log.warning(
                "central %s is plain HTTP off this host: heartbeat replies carry camera passwords and "
                "the token travels in clear; put the API behind TLS (https://)",
                s.central,
            )
        timeout = httpx.Timeout(s.http_read_timeout_s, connect=s.http_connect_timeout_s)
        headers = {"Authorization": f"Bearer {s.token.get_secret_value()}"}
        api = httpx.AsyncClient(base_url=s.central, headers=headers, timeout=timeout, trust_env=False)
        put = httpx.AsyncClient(timeout=timeout, trust_env=False)
        # device side: never a proxy, never redirects, a pool sized to the probes in flight
        devices_http = httpx.AsyncClient(
            timeout=httpx.Timeout(s.call_timeout_s),
            trust_env=False,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=s.concurrency * 2, max_keepalive_connections=s.concurrency),
        )
        pool = OnvifPool(max_size=s.capacity + 16, timeout_s=s.call_timeout_s)
        try:
            try:
                await warm_wsdl()  # local CPU work, before any device deadline runs
            except Exception as e:  # the first device call will parse them instead
                log.warning("WSDL warm-up failed: %s", e)
            work = self.work = DeviceWork(s, outbox, self.metrics, pool, devices_http, Judge(outbox))
            streams = self.streams = StreamWork(s, outbox, self.metrics, pool)
            # the stream check (码流检测) runs only where set: it reads seconds of video per camera
            stream_jobs = (
                [
                    Job(
                        "stream",
                        lambda a: s.stream_interval_s,
                        streams.check,
                        s.stream_deadline_s,
                        streams.timeout,
                    )
                ]
                if s.stream_interval_s > 0
                else []
            )
            self.scheduler = Scheduler(
                [
                    Job(
                        "health",
                        lambda a: a.health_interval_s,
                        work.health,
                        s.health_deadline_s,
                        work.health_timeout,
                    ),
                    Job(
                        "snapshot",
                        lambda a: a.snapshot_interval_s,
                        work.snapshot,
                        s.snapshot_deadline_s,
                        work.snapshot_timeout,
                    ),
                    *stream_jobs,
                ],
                concurrency=s.concurrency,
                interval_scale=s.interval_scale,
                min_interval_s=s.min_interval_s,
                on_skip=lambda kind, n: self.metrics.skipped_ticks.labels(kind).inc(n),
            )
            sender = self.sender = Sender(s, outbox, self.metrics, api, put)
            sender_task = asyncio.create_task(sender.run(self.stop_event), name="sender")
            hb_task = asyncio.create_task(self._heartbeats(api), name="heartbeat")
            log.info("agent %s started (central %s, zones %s)", s.agent_id, s.central, ",".join(s.zones))
            await self.stop_event.wait()

            log.info("stopping: finishing work in flight (grace %.0f s)", s.grace_s)
            hb_task.cancel()
            await asyncio.gather(hb_task, return_exceptions=True)
            await self.scheduler.stop(s.grace_s)
            if self._commands:
                await asyncio.wait(self._commands, timeout=s.grace_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sender_task, timeout=s.grace_s)
            if await sender.flush(s.grace_s):
                log.info("outbox flushed")
            else:
                log.warning("%d items stay in the outbox for the next start", outbox.items)
        finally:
            for t in self._commands:
                t.cancel()
            await pool.close()
            for c in (api, put, devices_http):
                await c.aclose()
            self.metrics.stop()
            outbox.close()

    # -- heartbeat -------------------------------------------------------------------------------

    async def _heartbeats(self, api: httpx.AsyncClient) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        failures = 0
        version = agent_version()
        while not self.stop_event.is_set():
            started = loop.time()
            hb = Heartbeat(
                agent_id=s.agent_id,
                version=version,
                capacity=s.capacity,
                zones=s.zones,
                wait_s=s.heartbeat_wait_s,
                config_version=self.config_version,
            )
            try:
                r = await api.post(
                    "/api/v1/agents/heartbeat",
                    json=hb.model_dump(mode="json"),
                    timeout=httpx.Timeout(
                        s.heartbeat_wait_s + s.http_read_timeout_s, connect=s.http_connect_timeout_s
                    ),
                )
                if r.status_code != 200:
                    raise HeartbeatFailed(_problem(r))
                reply = HeartbeatReply.model_validate(r.json())
            except (httpx.HTTPError, HeartbeatFailed, ValidationError, ValueError) as e:
                failures += 1
                self.metrics.heartbeat_failures.inc()
                delay = backoff_delay(failures, s.backoff_base_s, s.backoff_cap_s, self.rng)
                log.warning("heartbeat failed (%d in a row), again in %.1f s: %s", failures, delay, e)
                await _wait(self.stop_event, delay)
                continue
            failures = 0
            self.metrics.heartbeats.inc()
            self._apply(reply)
            self.ready.set()
            left = s.heartbeat_min_interval_s - (loop.time() - started)
            if left > 0:
                await _wait(self.stop_event, left)

    def _apply(self, reply: HeartbeatReply) -> None:
        assert self.scheduler is not None
        if reply.assignments is not None and not self.stop_event.is_set():
            changes = self.scheduler.update(reply.assignments)
            for device_id in changes["stopped"]:
                self.metrics.forget_device(device_id)
                if self.work is not None:
                    self.work.forget(device_id)
                if self.streams is not None:
                    self.streams.forget(device_id)
            self.config_version = reply.config_version
            self.metrics.devices.set(len(self.scheduler.devices))
        for cmd in reply.commands:
            task = asyncio.create_task(self._command(cmd), name=f"command:{cmd.id}")
            self._commands.add(task)
            task.add_done_callback(self._commands.discard)

    # -- commands --------------------------------------------------------------------------------

    async def _set_clock(self, cmd: Command, left: float) -> CommandResult:
        """Set the device clock to this agent's (the API's `clock` correction), within the deadline."""
        try:
            async with asyncio.timeout(left):
                result = await _set_clock_of(cmd, self.settings.call_timeout_s)
        except TimeoutError:
            result = CommandResult(ok=False, error=f"setting the clock took longer than {left:.0f} s")
        except Exception as e:
            log.exception("command %s failed", cmd.id)
            result = CommandResult(
                ok=False, error=f"agent failed to set the clock: {type(e).__name__}: {e}"[:1000]
            )
        outcome = "failed" if not result.ok else ("ok" if result.result.get("ok") else "device_error")
        self.metrics.commands.labels(cmd.kind, outcome).inc()
        return result

    async def _command(self, cmd: Command) -> None:
        """Run an installer probe within the command's deadline; its result goes through the outbox."""
        assert self.outbox is not None
        left = (cmd.deadline - dt.datetime.now(dt.UTC)).total_seconds() - RESULT_MARGIN_S
        if left <= 0:
            log.warning("command %s arrived after its deadline: dropped", cmd.id)
            self.metrics.commands.labels(cmd.kind, "expired").inc()
            return
        if cmd.kind == "set_clock":
            result = await self._set_clock(cmd, left)
            await self.outbox.call(self.outbox.add_result, cmd.id, cmd.device_id, cmd.deadline, result)
            return
        dev = cmd.device
        onvif = None
        if dev.onvif is not None:
            onvif = OnvifEndpoint(
                host=dev.onvif.host,
                port=dev.onvif.port,
                username=dev.onvif.username,
                password=dev.onvif.password or "",
                trust_device_addresses=dev.onvif.trust_device_addresses,
            )
        jpeg: bytes | None = None
        try:
            request = ProbeRequest(
                device_id=cmd.device_id,
                onvif=onvif,
                snapshot_url=dev.snapshot_url,
                deadline_s=min(120.0, left),
            )
            outcome = await installer.run(
                request, ProbeSettings(call_timeout_s=self.settings.call_timeout_s), deadline_s=left
            )
            res = outcome.result
            if outcome.jpeg is not None and cmd.snapshot_put_url and res.snapshot is not None:
                jpeg = outcome.jpeg
                res.snapshot.key = cmd.snapshot_key
            # the probe ran: device trouble is in the answer (reachable, error), not a failed command
            result = CommandResult(ok=True, result=res.model_dump(mode="json"))
            self.metrics.commands.labels(cmd.kind, "ok" if res.error is None else "device_error").inc()
        except Exception as e:
            log.exception("command %s failed", cmd.id)
            result = CommandResult(
                ok=False, error=f"agent failed to run the probe: {type(e).__name__}: {e}"[:1000]
            )
            self.metrics.commands.labels(cmd.kind, "failed").inc()
        await self.outbox.call(
            self.outbox.add_result,
            cmd.id,
            cmd.device_id,
            cmd.deadline,
            result,
            jpeg=jpeg,
            put_url=cmd.snapshot_put_url,
        )


async def _set_clock_of(cmd: Command, call_timeout_s: float) -> CommandResult:
    o = cmd.device.onvif
    if o is None:
        return CommandResult(ok=False, error="the device has no ONVIF endpoint")
    client = OnvifClient(o.host, o.port, o.username, o.password or "", timeout_s=call_timeout_s)
    before: float | None = None
    try:
        before = (await client.system_date_and_time()).skew_s
        await client.set_system_date_and_time(dt.datetime.now(dt.UTC))
        after = client.clock_skew_s
        return CommandResult(
            ok=True, result={"ok": True, "clock_skew_s_before": before, "clock_skew_s_after": after}
        )
    except DeviceError as e:
        # the device's refusal is the answer (not a failed command): ok false, with its reason
        error = f"{e.code}: {e.message}"
        return CommandResult(ok=True, result={"ok": False, "clock_skew_s_before": before, "error": error})
    finally:
        await client.close()


def _plain_http_off_host(central: str) -> bool:
    """True when the API is reached over plain HTTP on another machine than this one."""
    u = urlsplit(central)
    if u.scheme.lower() != "http":
        return False
    host = (u.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


async def run_agent(settings: AgentSettings) -> None:
    await Agent(settings).run()
