"""The alarm delivery worker: sends the outbox (`alarm_sinks`) to signed webhooks and MQTT brokers.

It runs as a background task of each API process. Every round it claims the due deliveries
(leased, so a crashed worker's rows come back after the lease), sends them concurrently, and
records each outcome: 2xx from a webhook or PUBACK from the broker is delivered; anything else is
due again after a backoff. Delivery is at least once: a receiver may see an alarm twice (a reply
lost after it arrived, a lease that ran out) and dedupes by the alarm id, which every message
carries (`X-Tianwang-Alarm-Id`, and `id` in the body).

Webhook: `POST url` with the alarm as JSON, `X-Tianwang-Signature: sha256=<hex HMAC-SHA256 of the
body under the sink's secret>` when the sink has one. MQTT: QoS 1 on `{topic}/hotlists/{hotlist_id}`,
one connection per sink kept open by paho's network thread, which reconnects by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from tianwang.alarms import hotlists
from tianwang.alarms import sinks as alarm_sinks
from tianwang.alarms.sinks import Job, SinkConf
from tianwang.config import Settings
from tianwang.context import AppContext
from tianwang.storage.models import Alarm, utcnow

log = logging.getLogger("tianwang.alarm_delivery")

SIGNATURE_HEADER = "X-Tianwang-Signature"
ALARM_ID_HEADER = "X-Tianwang-Alarm-Id"
# webhook calls in flight at once per sink: a slow receiver is not flooded
WEBHOOK_CONCURRENCY = 16

Outcome = Callable[[SinkConf, str], None]  # (sink, "delivered" | "failed")


def body_of(alarm: dict[str, Any]) -> bytes:
    return json.dumps(alarm, ensure_ascii=False, separators=(",", ":")).encode()


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def mqtt_topic(prefix: str, hotlist_id: int) -> str:
    return f"{prefix}/hotlists/{hotlist_id}"


class MqttLink:
    """One sink's connection to its broker, kept open (paho reconnects in its network thread)."""

    def __init__(self, sink: SinkConf, reconnect_max_s: float) -> None:
        u = urlsplit(sink.url)
        self.key = (sink.url, sink.secret)
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"tianwang-sink{sink.id}-{uuid.uuid4().hex[:8]}",
            clean_session=True,
        )
        if u.username:
            self.client.username_pw_set(u.username, sink.secret)
        if u.scheme.lower() == "mqtts":
            self.client.tls_set()
        self.client.reconnect_delay_set(1, max(1, int(reconnect_max_s)))
        default_port = 8883 if u.scheme.lower() == "mqtts" else 1883
        self.client.connect_async(u.hostname or "127.0.0.1", u.port or default_port, keepalive=30)
        self.client.loop_start()
        self.opened = time.monotonic()

    async def publish(self, messages: Sequence[tuple[str, bytes]], timeout_s: float) -> list[str | None]:
        """Publish each at QoS 1; per message None when its PUBACK came, else why not."""
        deadline = time.monotonic() + timeout_s
        # a link just opened gets the timeout to connect; one that lost its broker fails at once (the
        # alarms are due again after the backoff, by when paho may have reconnected)
        while not self.client.is_connected() and time.monotonic() < min(deadline, self.opened + timeout_s):
            await asyncio.sleep(0.02)
        if not self.client.is_connected():
            # not handed to paho while offline: it would queue them in memory and resend them itself
            return ["not connected to the broker"] * len(messages)
        infos: list[mqtt.MQTTMessageInfo | None] = []
        errors: list[str | None] = []
        for topic, payload in messages:
            info = self.client.publish(topic, payload, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                infos.append(None)
                errors.append(f"publish refused: {mqtt.error_string(info.rc)}")
            else:
                infos.append(info)
                errors.append(None)
        pause = 0.001
        while time.monotonic() < deadline and any(i is not None and not i.is_published() for i in infos):
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
        return [
            e if e is not None else (None if i is not None and i.is_published() else "no PUBACK in time")
            for i, e in zip(infos, errors, strict=True)
        ]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.disconnect()
        with contextlib.suppress(Exception):
            self.client.loop_stop()


class Deliverer:
    """Delivers the outbox of one API process until cancelled."""

    def __init__(self, ctx: AppContext, on_outcome: Outcome | None = None) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.on_outcome = on_outcome
        self.links: dict[int, MqttLink] = {}
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.alarm_delivery_timeout_s), follow_redirects=False
        )

    @property
    def lease_s(self) -> float:
        # a lease shorter than one call would let a second worker send the same row meanwhile
        return max(self.settings.alarm_delivery_lease_s, 2 * self.settings.alarm_delivery_timeout_s + 1)

    def _sinks(self) -> dict[int, SinkConf]:
        with self.ctx.db.session() as s:
            return alarm_sinks.sink_confs(s, self.ctx.box)

    def _claim(self, sink_id: int) -> tuple[list[Job], dict[int, dict[str, Any]]]:
        with self.ctx.db.session() as s:
            jobs = alarm_sinks.claim(
                s,
                now=utcnow(),
                lease_s=self.lease_s,
                limit=self.settings.alarm_delivery_batch,
                sink_id=sink_id,
            )
            if not jobs:
                return [], {}
            ids = sorted({j.alarm_id for j in jobs})
            alarms = {a.id: hotlists.alarm_dict(a) for a in s.scalars(select(Alarm).where(Alarm.id.in_(ids)))}
            return jobs, alarms

    def _record(self, delivered: list[Job], failed: list[tuple[Job, str]]) -> None:
        with self.ctx.db.session() as s:
            now = utcnow()
            alarm_sinks.mark_delivered(s, [j.delivery_id for j in delivered], now)
            alarm_sinks.mark_failed(
                s,
                failed,
                now=now,
                base_s=self.settings.alarm_retry_base_s,
                max_s=self.settings.alarm_retry_max_s,
            )

    async def deliver(self, sink: SinkConf) -> int:
        """One round for one sink: claim its due rows, send them, record each outcome. Returns how
        many deliveries were tried."""
        jobs, alarms = await run_in_threadpool(self._claim, sink.id)
        if not jobs:
            return 0
        outcome = await self._send(sink, jobs, alarms)
        delivered = [j for j, error in outcome if error is None]
        failed = [(j, error) for j, error in outcome if error is not None]
        if self.on_outcome is not None:
            for _, error in outcome:
                self.on_outcome(sink, "delivered" if error is None else "failed")
        await run_in_threadpool(self._record, delivered, failed)
        return len(jobs)

    async def once(self) -> int:
        """One round over every sink (the sinks side by side)."""
        sinks = await run_in_threadpool(self._sinks)
        self._drop_links(set(sinks))
        return sum(await asyncio.gather(*(self.deliver(s) for s in sinks.values())))

    async def _send(
        self, sink: SinkConf, jobs: list[Job], alarms: dict[int, dict[str, Any]]
    ) -> list[tuple[Job, str | None]]:
        if sink.error is not None:
            return [(j, sink.error) for j in jobs]
        try:
            if sink.kind == "webhook":
                return await self._webhooks(sink, jobs, alarms)
            return await self._mqtt(sink, jobs, alarms)
        except Exception as e:  # a bug or an odd receiver: retried like any failure
            log.exception("alarm sink %d: delivery failed", sink.id)
            return [(j, f"{type(e).__name__}: {e}") for j in jobs]

    async def _webhooks(
        self, sink: SinkConf, jobs: list[Job], alarms: dict[int, dict[str, Any]]
    ) -> list[tuple[Job, str | None]]:
        gate = asyncio.Semaphore(WEBHOOK_CONCURRENCY)

        async def post(job: Job) -> tuple[Job, str | None]:
            body = body_of(alarms[job.alarm_id])
            headers = {"Content-Type": "application/json", ALARM_ID_HEADER: str(job.alarm_id)}
            if sink.secret:
                headers[SIGNATURE_HEADER] = signature(sink.secret, body)
            async with gate:
                try:
                    r = await self.http.post(sink.url, content=body, headers=headers)
                except httpx.HTTPError as e:
                    return job, f"{type(e).__name__}: {e}"[:500]
            return job, None if 200 <= r.status_code < 300 else f"HTTP {r.status_code}"

        return list(await asyncio.gather(*(post(j) for j in jobs)))

    async def _mqtt(
        self, sink: SinkConf, jobs: list[Job], alarms: dict[int, dict[str, Any]]
    ) -> list[tuple[Job, str | None]]:
        link = self.links.get(sink.id)
        if link is not None and link.key != (sink.url, sink.secret):  # the sink was replaced
            link.close()
            link = None
        if link is None:
            link = self.links[sink.id] = MqttLink(sink, self.settings.alarm_retry_max_s)
        topic = sink.topic or "tianwang"
        messages = [(mqtt_topic(topic, j.hotlist_id), body_of(alarms[j.alarm_id])) for j in jobs]
        errors = await link.publish(messages, self.settings.alarm_delivery_timeout_s)
        return list(zip(jobs, errors, strict=True))

    def _drop_links(self, existing: set[int]) -> None:
        for sid in [s for s in self.links if s not in existing]:
            self.links.pop(sid).close()

    async def run(self) -> None:
        """Deliver until cancelled: one loop per sink, so a slow or dead receiver delays only its own
        alarms. A loop goes on at once after a full batch; otherwise it waits for a commit that wrote
        outbox rows in this process, or the poll interval (other replicas' alarms, retries due)."""
        loop = asyncio.get_running_loop()
        wakes: set[asyncio.Event] = set()
        poll_s = self.settings.alarm_delivery_poll_s

        def nudge() -> None:
            for ev in list(wakes):
                with contextlib.suppress(RuntimeError):  # the loop is closed: this worker is gone
                    loop.call_soon_threadsafe(ev.set)

        async def sink_loop(sink: SinkConf) -> None:
            wake = asyncio.Event()
            wakes.add(wake)
            try:
                while True:
                    wake.clear()
                    try:
                        n = await self.deliver(sink)
                    except Exception:
                        log.exception("alarm sink %d: delivery round failed; retrying next interval", sink.id)
                        n = 0
                    if n >= self.settings.alarm_delivery_batch:
                        continue
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), poll_s)
            finally:
                wakes.discard(wake)

        tasks: dict[int, asyncio.Task[None]] = {}
        found = asyncio.Event()  # the sink list is read again at each wake-up too (a new sink)
        wakes.add(found)
        alarm_sinks.add_listener(nudge)
        try:
            while True:
                found.clear()
                try:
                    sinks = await run_in_threadpool(self._sinks)
                except Exception:  # the sink loops go on with what they have
                    log.exception("alarm delivery: reading the sinks failed; retrying next interval")
                else:
                    for sid in [sid for sid in tasks if sid not in sinks]:
                        tasks.pop(sid).cancel()
                    self._drop_links(set(sinks))
                    for sid, conf in sinks.items():
                        if sid not in tasks or tasks[sid].done():
                            tasks[sid] = asyncio.create_task(sink_loop(conf))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(found.wait(), poll_s)
        finally:
            alarm_sinks.remove_listener(nudge)
            for t in tasks.values():
                t.cancel()
            for t in tasks.values():
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self.aclose()

    async def aclose(self) -> None:
        for link in self.links.values():
            link.close()
        self.links.clear()
        await self.http.aclose()
