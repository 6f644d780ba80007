"""What the agent does to one device on each tick: a health check, or a snapshot judged by diagnosis.

Both end in the outbox, never in a direct send. Picture diagnosis keeps, per camera, the previous
frame's state, a reference per mode and the hysteresis counters, in memory and in the outbox's
state table, so a restart neither forgets the reference nor calls the first frame frozen.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
from pydantic import ValidationError

from edge_agent.devices.addresses import DeviceAddresses
from edge_agent.devices.errors import AuthRefused, BadAnswer, DeviceError
from edge_agent.devices.onvif_client import OnvifPool
from edge_agent.devices.snapshot import MAX_PIXELS, fetch_snapshot, image_size, storable
from edge_agent.diagnosis import DiagnosisConfig, FaultTracker, FrameState, ReferenceStore, diagnose_jpeg
from edge_agent.metrics import Metrics
from edge_agent.outbox import Outbox, health_key
from edge_agent.probes import rtsp
from edge_agent.settings import AgentSettings
from tianwang.protocol.agents import Assignment
from tianwang.protocol.fields import escape_text
from tianwang.protocol.ingest import HealthItem

log = logging.getLogger("edge_agent.observe")
SNAPSHOT_URI_TTL_S = 3600.0
# faults a reference frame re-judges; a frame with only these may become the first reference
NEEDS_REFERENCE = frozenset({"occlusion"})


def _error(e: DeviceError) -> str:
    # the message may quote the device: what the API refuses in text is sent escaped
    return escape_text(f"{e.code}: {e.message}", multiline=True)[:500]


def health_item(base: dict[str, Any], **fields: Any) -> HealthItem:
    """The health item; a field the wire model refuses (a reading beyond any sense) is left out
    and named in `error`, so the rest of the observation is still reported."""
    try:
        return HealthItem(**base, **fields)
    except ValidationError as e:
        bad = {str(er["loc"][0]) for er in e.errors() if er["loc"]} & set(fields)
        if not bad:
            raise
        note = "agent: refused " + ", ".join(f"{k}={fields[k]!r}" for k in sorted(bad))
        log.error("device %s: %s", base.get("device_id"), note)
        kept = {k: v for k, v in fields.items() if k not in bad}
        kept["error"] = "; ".join(x for x in (kept.get("error"), note) if x)[:500]
        return HealthItem(**base, **kept)


def assignment_addresses(a: Assignment) -> DeviceAddresses:
    """Where this device's credentials may go: its ONVIF service and the URLs the registry holds."""
    return DeviceAddresses.of(
        a.onvif.host if a.onvif else None, a.onvif.port if a.onvif else None, [a.snapshot_url, a.rtsp_url]
    )


# -- diagnosis memory, persisted ---------------------------------------------------------------


def frame_state_to_bytes(s: FrameState) -> bytes:
    out = io.BytesIO()
    meta = {"noise_sigma": s.noise_sigma, "dhash": str(s.dhash), "width": s.width, "height": s.height}
    np.savez_compressed(
        out, thumb=s.thumb, patch=s.patch, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8)
    )
    return out.getvalue()


def frame_state_from_bytes(data: bytes) -> FrameState:
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        meta = json.loads(z["meta"].tobytes())
        return FrameState(
            thumb=z["thumb"].astype(np.uint8),
            patch=z["patch"].astype(np.uint8),
            noise_sigma=float(meta["noise_sigma"]),
            dhash=int(meta["dhash"]),
            width=int(meta["width"]),
            height=int(meta["height"]),
        )


def _tracker_dump(tracker: FaultTracker, camera: str) -> dict[str, list[Any]]:
    # FaultTracker has no export yet: read its per-camera counters (seen, missing, active)
    counters = getattr(tracker, "_state", {}).get(camera, {})
    return {name: [c.seen, c.missing, c.active] for name, c in counters.items()}


def _tracker_load(tracker: FaultTracker, camera: str, data: dict[str, list[Any]]) -> None:
    state = getattr(tracker, "_state", None)
    if state is None or not data:
        return
    from edge_agent.diagnosis.tracker import _Counter

    state[camera] = {
        str(n): _Counter(seen=int(v[0]), missing=int(v[1]), active=bool(v[2])) for n, v in data.items()
    }


@dataclass
class _Memory:
    loaded: bool = False
    previous: FrameState | None = None
    references: ReferenceStore = field(default_factory=ReferenceStore)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Judge:
    """Diagnosis with memory per camera (previous frame, references, hysteresis), persisted in the outbox."""

    def __init__(self, outbox: Outbox, config: DiagnosisConfig | None = None) -> None:
        self.outbox = outbox
        self.config = config or DiagnosisConfig()
        self.tracker = FaultTracker.from_config(self.config)
        self._mem: dict[str, _Memory] = {}
        self._mem_lock = threading.Lock()

    def _memory(self, camera: str) -> _Memory:
        with self._mem_lock:
            mem = self._mem.setdefault(camera, _Memory())
        if not mem.loaded:
            mem.loaded = True
            try:
                raw = self.outbox.get_state(f"diag:{camera}")
                if raw:
                    blob = json.loads(raw)
                    if blob.get("previous"):
                        mem.previous = frame_state_from_bytes(bytes.fromhex(blob["previous"]))
                    _tracker_load(self.tracker, camera, blob.get("tracker") or {})
                refs = self.outbox.get_state(f"ref:{camera}")
                if refs:
                    mem.references = ReferenceStore.from_bytes(refs)
            except (ValueError, KeyError, OSError) as e:  # a corrupt state costs one reference, no more
                log.warning("diagnosis state of %s unreadable, starting afresh: %s", camera, e)
        return mem

    def judge(self, camera: str, jpeg: bytes) -> dict[str, Any]:
        """Blocking (run it in a thread): the quality dict with the hysteresis-filtered verdict."""
        mem = self._memory(camera)
        with mem.lock:
            previous = mem.previous
            d = diagnose_jpeg(
                jpeg, previous=previous, reference=mem.references.for_camera(camera), config=self.config
            )
            new_ref = mem.references.get(camera, d.mode) is None and set(d.faults) <= NEEDS_REFERENCE
            if new_ref:
                # The first frame of a mode without a fault of its own becomes the camera's reference.
                # Occlusion is only a guess without a reference (a wide flat sky or road looks like a
                # cover), so a frame flagged for it alone still qualifies, and is judged again against
                # itself-as-reference so that guess is not reported.
                mem.references.set(camera, d.as_reference())
                if d.faults:
                    d = diagnose_jpeg(
                        jpeg,
                        previous=previous,
                        reference=mem.references.for_camera(camera),
                        config=self.config,
                    )
            mem.previous = d.state
            update = self.tracker.update(camera, d.faults)
            quality = d.as_dict()
            quality["raw_verdict"], quality["raw_faults"] = quality["verdict"], list(quality["faults"])
            quality["faults"] = sorted(update.active)
            quality["verdict"] = "fault" if update.active else "ok"
            state = {
                "previous": frame_state_to_bytes(d.state).hex(),
                "tracker": _tracker_dump(self.tracker, camera),
            }
            self.outbox.put_state(f"diag:{camera}", json.dumps(state).encode())
            if new_ref:
                self.outbox.put_state(f"ref:{camera}", mem.references.to_bytes())
        return quality

    def forget(self, camera: str) -> None:
        with self._mem_lock:
            self._mem.pop(camera, None)
        self.tracker.forget(camera)


# -- the device work ---------------------------------------------------------------------------


class DeviceWork:
    def __init__(
        self,
        settings: AgentSettings,
        outbox: Outbox,
        metrics: Metrics,
        pool: OnvifPool,
        http: httpx.AsyncClient,
        judge: Judge,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.metrics = metrics
        self.pool = pool
        self.http = http
        self.judge = judge
        self._diag = asyncio.Semaphore(settings.diagnosis_concurrency)
        self._snapshot_uris: dict[str, tuple[str, float]] = {}
        # a trusted camera's own XAddr hosts, where its snapshot URI may point
        self._advertised: dict[str, frozenset[str]] = {}
        self._stream_uris: dict[str, tuple[str, float]] = {}

    async def _record(self, item: HealthItem) -> None:
        await self.outbox.call(self.outbox.add_health, item)

    # -- health ----------------------------------------------------------------------------------

    async def health(self, a: Assignment) -> HealthItem:
        ts = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        try:
            item = await self._health(a, ts)
        except Exception as e:
            # a bug or an answer nobody foresaw must not silence the device's evidence: the check
            # is reported, as an error of the agent's own
            log.exception("health check of %s failed inside the agent", a.device_id)
            item = HealthItem(
                key=health_key(self.settings.agent_id, a.device_id, ts),
                device_id=a.device_id,
                ts=ts,
                reachable=False,
                error=f"agent_error: {type(e).__name__}: {e}"[:500],
            )
        finally:
            self.metrics.probe_seconds.labels("health").observe(time.perf_counter() - t0)
        outcome = (
            "ok"
            if item.reachable and item.authenticated is not False
            else ("auth_refused" if item.reachable else (item.error or "error").split(":", 1)[0])
        )
        self.metrics.probes.labels("health", outcome).inc()
        self.metrics.device_health(a.device_id, outcome)
        await self._record(item)
        return item

    async def health_timeout(self, a: Assignment, started: dt.datetime) -> None:
        """The scheduler's hard deadline cut a health check: that is an unanswered check."""
        self.metrics.probes.labels("health", "timeout").inc()
        self.metrics.device_health(a.device_id, "timeout")
        item = HealthItem(
            key=health_key(self.settings.agent_id, a.device_id, started),
            device_id=a.device_id,
            ts=started,
            reachable=False,
            error=f"timeout: health check deadline of {self.settings.health_deadline_s:g} s passed",
        )
        await self._record(item)

    async def _health(self, a: Assignment, ts: dt.datetime) -> HealthItem:
        key = health_key(self.settings.agent_id, a.device_id, ts)
        base: dict[str, Any] = {"key": key, "device_id": a.device_id, "ts": ts}
        if a.onvif is None:
            return await self._health_without_onvif(a, base)
        o = a.onvif
        client = await self.pool.get(
            o.host,
            o.port,
            o.username,
            o.password or "",
            timeout_s=self.settings.call_timeout_s,
            trust_device_addresses=o.trust_device_addresses,
        )
        t0 = time.perf_counter()
        try:
            clock = await client.system_date_and_time()
        except AuthRefused:
            clock = None  # some firmware wants credentials even for the clock: it answered
        except DeviceError as e:
            # unreachable, timeout, or an answer that is no ONVIF at all (malformed, oversized): the
            # device gives no usable service, which is a miss
            await self.pool.discard(client)
            return health_item(base, reachable=False, error=_error(e))
        latency = round((time.perf_counter() - t0) * 1000, 1)
        skew = clock.skew_s if clock else None
        try:
            await client.device_information()
        except AuthRefused as e:
            return health_item(
                base,
                reachable=True,
                authenticated=False,
                latency_ms=latency,
                clock_skew_s=skew,
                error=_error(e),
            )
        except DeviceError as e:
            # answered the clock, then nothing usable (a truncated or oversized answer, silence):
            # the device serves no working ONVIF, which counts as a miss, with the reason kept
            if not e.answered:
                await self.pool.discard(client)
            return health_item(base, reachable=False, latency_ms=latency, clock_skew_s=skew, error=_error(e))
        return health_item(base, reachable=True, authenticated=True, latency_ms=latency, clock_skew_s=skew)

    async def _health_without_onvif(self, a: Assignment, base: dict[str, Any]) -> HealthItem:
        """No ONVIF registered: the snapshot URL (or the RTSP stream) is the only sign of life."""
        t0 = time.perf_counter()
        try:
            if a.snapshot_url:
                await fetch_snapshot(
                    a.snapshot_url,
                    decode=False,
                    max_bytes=self.settings.snapshot_max_bytes,
                    connect_timeout_s=self.settings.call_timeout_s,
                    read_timeout_s=self.settings.call_timeout_s,
                )
            elif a.rtsp_url:
                await rtsp.fetch_frame(a.rtsp_url, timeout_s=self.settings.rtsp_timeout_s)
                return health_item(
                    base,
                    reachable=True,
                    stream_ok=True,
                    latency_ms=round((time.perf_counter() - t0) * 1000, 1),
                )
            else:
                return health_item(base, reachable=False, error="bad_answer: nothing registered to check")
        except AuthRefused as e:
            return health_item(base, reachable=True, authenticated=False, error=_error(e))
        except DeviceError as e:
            return health_item(base, reachable=False, error=_error(e))
        return health_item(base, reachable=True, latency_ms=round((time.perf_counter() - t0) * 1000, 1))

    # -- snapshot --------------------------------------------------------------------------------

    async def _snapshot_url(self, a: Assignment, addresses: DeviceAddresses) -> str | None:
        if a.snapshot_url:
            return a.snapshot_url
        if a.onvif is None:
            return None
        cached = self._snapshot_uris.get(a.device_id)
        if not a.onvif.trust_device_addresses and self._advertised.pop(a.device_id, None) is not None:
            cached = None  # learned while the camera was trusted: ask again, and rewrite it
        if cached and time.monotonic() - cached[1] < SNAPSHOT_URI_TTL_S:
            return cached[0]
        o = a.onvif
        client = await self.pool.get(
            o.host,
            o.port,
            o.username,
            o.password or "",
            timeout_s=self.settings.call_timeout_s,
            trust_device_addresses=o.trust_device_addresses,
        )
        profiles = await client.profiles()
        if not profiles:
            raise BadAnswer("device lists no media profile")
        uri = await client.snapshot_uri(profiles[0].token)
        if o.trust_device_addresses:
            self._advertised[a.device_id] = client.advertised_hosts
            addresses = addresses.trusting(client.advertised_hosts)
        try:
            # the device's answer names where its credentials would go: only to its own address
            addresses.check_snapshot(uri)
        except BadAnswer as e:
            log.warning("device %s: %s", a.device_id, e.message)
            raise
        self._snapshot_uris[a.device_id] = (uri, time.monotonic())
        return uri

    async def _stream_url(self, a: Assignment) -> str | None:
        """The stream a picture can be taken from: the registered RTSP URL, the one the probe
        learned, or the device's own answer to GetStreamUri (its first profile, cached)."""
        if a.rtsp_url or a.stream_uri:
            return a.rtsp_url or a.stream_uri
        if a.onvif is None:
            return None
        cached = self._stream_uris.get(a.device_id)
        if cached and time.monotonic() - cached[1] < SNAPSHOT_URI_TTL_S:
            return cached[0]
        o = a.onvif
        client = await self.pool.get(
            o.host, o.port, o.username, o.password or "", timeout_s=self.settings.call_timeout_s
        )
        profiles = await client.profiles()
        if not profiles:
            raise BadAnswer("device lists no media profile")
        uri = await client.stream_uri(profiles[0].token)
        self._stream_uris[a.device_id] = (uri, time.monotonic())
        return uri

    async def _fetch(self, a: Assignment) -> tuple[bytes, str]:
        """One picture and its content type: from the snapshot URL, else one frame of the stream.

        Raises the DeviceError that explains why there is none (both reasons when both failed).
        """
        user = a.onvif.username if a.onvif else ""
        password = (a.onvif.password or "") if a.onvif else ""
        addresses = assignment_addresses(a)
        snapshot_error: DeviceError | None = None
        try:
            url = await self._snapshot_url(a, addresses)
            if a.onvif is not None and a.onvif.trust_device_addresses:
                addresses = addresses.trusting(self._advertised.get(a.device_id, ()))
            if url:
                snap = await fetch_snapshot(
                    url,
                    user,
                    password,
                    addresses=addresses,
                    decode=False,
                    client=self.http,
                    max_bytes=self.settings.snapshot_max_bytes,
                    connect_timeout_s=self.settings.call_timeout_s,
                    read_timeout_s=self.settings.call_timeout_s,
                )
                return snap.data, snap.content_type
        except AuthRefused:
            raise  # the stream would refuse the same credentials
        except DeviceError as e:
            snapshot_error = e
        try:
            stream = await self._stream_url(a)
        except DeviceError as e:
            if snapshot_error is not None:
                raise type(snapshot_error)(f"{snapshot_error.message}; no stream either: {e.message}") from e
            raise
        if stream is None:
            if snapshot_error is not None:
                raise snapshot_error
            raise BadAnswer("no snapshot URL and no stream: nothing to take a picture from")
        if snapshot_error is not None:
            log.debug(
                "snapshot of %s failed (%s), trying one frame of the stream", a.device_id, snapshot_error
            )
        try:
            jpeg, _, _ = await rtsp.fetch_frame(
                stream, user, password, self.settings.rtsp_timeout_s, addresses
            )
        except DeviceError as e:
            if snapshot_error is not None:
                raise type(snapshot_error)(f"{snapshot_error.message}; stream: {e.message}") from e
            raise
        return jpeg, "image/jpeg"

    async def snapshot(self, a: Assignment) -> str | None:
        """Fetch, judge and store one snapshot; returns its outbox key. A snapshot that gives no
        picture is stored too, as a failure with its reason: it is evidence (不完好) as well."""
        ts = dt.datetime.now(dt.UTC)
        t0 = time.perf_counter()
        try:
            data, content_type = await self._fetch(a)
            width, height, content_type = image_size(data)
            if width * height > MAX_PIXELS:
                raise BadAnswer(f"snapshot declares {width}×{height} pixels, over the limit")
            async with self._diag:
                try:
                    quality = await asyncio.to_thread(self.judge.judge, a.device_id, data)
                except ValueError as e:  # InvalidSnapshot: it does not decode
                    raise BadAnswer(f"snapshot does not decode: {e}") from e
            data, content_type = storable(data, content_type)
        except DeviceError as e:
            self.metrics.probes.labels("snapshot", e.code).inc()
            log.info("snapshot of %s gave no picture: %s", a.device_id, e)
            return await self._failed(a, ts, _error(e))
        finally:
            self.metrics.probe_seconds.labels("snapshot").observe(time.perf_counter() - t0)
        self.metrics.probes.labels("snapshot", "ok").inc()
        return await self.outbox.call(
            self.outbox.add_snapshot,
            self.settings.agent_id,
            a.device_id,
            ts,
            data,
            sha256=hashlib.sha256(data).hexdigest(),
            width=width,
            height=height,
            quality=quality,
            content_type=content_type,
        )

    async def _failed(self, a: Assignment, ts: dt.datetime, error: str) -> str | None:
        return await self.outbox.call(
            self.outbox.add_snapshot_failure, self.settings.agent_id, a.device_id, ts, error
        )

    async def snapshot_timeout(self, a: Assignment, started: dt.datetime) -> None:
        self.metrics.probes.labels("snapshot", "timeout").inc()
        deadline = self.settings.snapshot_deadline_s
        await self._failed(a, started, f"timeout: snapshot deadline of {deadline:g} s passed")

    def forget(self, device_id: str) -> None:
        self._snapshot_uris.pop(device_id, None)
        self._advertised.pop(device_id, None)
        self._stream_uris.pop(device_id, None)
        self.judge.forget(device_id)
