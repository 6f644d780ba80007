"""Drains the outbox to the API: command results first, then health batches, then snapshots
(presign → PUT the bytes → post the records). An item leaves the outbox only on the API's answer.

When the API is down or answers 5xx (or 401/408/429), the sender backs off exponentially with full
jitter (sleep uniform(0, min(cap, base·2ⁿ))), so a thousand agents coming back do not knock it over
again in step. A 4xx about one item (the API's `rejected` list, a 404 device) sends that item to
the dead-letter table; it is never retried forever.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
from typing import Any

import httpx

from edge_agent.metrics import Metrics
from edge_agent.outbox import Entry, Outbox
from edge_agent.settings import AgentSettings
from tianwang.protocol.ingest import IngestReply, PresignReply

log = logging.getLogger("edge_agent.sender")

# statuses that say "not now" rather than "not this item"
TRANSIENT = {401, 403, 408, 425, 429}


class ApiUnavailable(Exception):
    """The API could not be reached or is not accepting work right now; try again later."""


def _problem(r: httpx.Response) -> str:
    try:
        body = r.json()
        detail = body.get("detail") or body.get("title") or ""
        errors = body.get("errors")
        if errors:
            detail = f"{detail} {errors}"
        return f"HTTP {r.status_code}: {detail}"[:1000]
    except ValueError:
        return f"HTTP {r.status_code}: {r.text[:300]}"


def backoff_delay(failures: int, base: float, cap: float, rng: random.Random) -> float:
    """Full jitter: uniform over [0, min(cap, base·2^(failures-1))]."""
    return rng.uniform(0, min(cap, base * 2 ** min(max(failures - 1, 0), 30)))


class Sender:
    def __init__(
        self,
        settings: AgentSettings,
        outbox: Outbox,
        metrics: Metrics,
        api: httpx.AsyncClient,
        put: httpx.AsyncClient,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.metrics = metrics
        self.api = api  # carries the agent's bearer token
        self.put = put  # presigned URLs carry their own authorisation: no token on them
        self.rng = rng or random.Random()  # jitter
        self.failures = 0

    # -- HTTP ------------------------------------------------------------------------------------

    async def _post(self, path: str, body: Any, kind: str) -> httpx.Response:
        try:
            r = await self.api.post(path, json=body)
        except httpx.HTTPError as e:
            self.metrics.send_failures.labels(kind).inc()
            raise ApiUnavailable(f"{path}: {type(e).__name__}: {e}") from e
        if r.status_code >= 500 or (
            r.status_code in TRANSIENT and not (kind == "result" and r.status_code == 403)
        ):
            self.metrics.send_failures.labels(kind).inc()
            raise ApiUnavailable(f"{path}: {_problem(r)}")
        return r

    # -- the loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.drain_once()
            except ApiUnavailable as e:
                self.failures += 1
                delay = backoff_delay(
                    self.failures, self.settings.backoff_base_s, self.settings.backoff_cap_s, self.rng
                )
                log.warning("API unavailable (%d in a row), retrying in %.1f s: %s", self.failures, delay, e)
                await _wait(stop, delay)
                continue
            except Exception:
                # a bug must not stop delivery for good: log, pause, go on
                log.exception("sender failed")
                await _wait(stop, self.settings.backoff_cap_s / 4)
                continue
            if self.failures:
                log.info("API reachable again after %d failed attempts", self.failures)
            self.failures = 0
            if not done:
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event, max_s: float = 1.0) -> None:
        # the outbox's `added` is a threading.Event (set from its thread): poll it briefly
        end = asyncio.get_running_loop().time() + max_s
        while not stop.is_set() and not self.outbox.added.is_set():
            if asyncio.get_running_loop().time() >= end:
                break
            await asyncio.sleep(0.05)
        self.outbox.added.clear()

    async def flush(self, timeout_s: float) -> bool:
        """Send what can be sent within `timeout_s` (shutdown); True when the outbox is empty."""
        try:
            async with asyncio.timeout(timeout_s):
                while self.outbox.items:
                    if not await self.drain_once():
                        break
        except (TimeoutError, ApiUnavailable) as e:
            log.warning("flush stopped with %d items left: %s", self.outbox.items, e or "time is up")
        return self.outbox.items == 0

    async def drain_once(self) -> int:
        """One pass over every kind; returns how many items left the outbox."""
        return await self.send_results() + await self.send_health() + await self.send_snapshots()

    # -- health ----------------------------------------------------------------------------------

    async def send_health(self) -> int:
        entries = await self.outbox.call(self.outbox.take, "health", self.settings.batch_size)
        if not entries:
            return 0
        r = await self._post("/api/v1/ingest/health", {"items": [e.payload for e in entries]}, "health")
        return await self._settle_batch("health", entries, r)

    async def _settle_batch(self, kind: str, entries: list[Entry], r: httpx.Response) -> int:
        if r.status_code != 200:
            # the whole batch refused for itself (never seen with items the agent built): dead-letter
            # rather than loop on it
            reason = _problem(r)
            return await self.outbox.call(self.outbox.dead_letter, {e.id: reason for e in entries})
        reply = IngestReply.model_validate(r.json())
        dead: dict[int, str] = {}
        for rej in reply.rejected:
            if 0 <= rej.index < len(entries):
                dead[entries[rej.index].id] = "; ".join(rej.errors) or "rejected"
        if dead:
            await self.outbox.call(self.outbox.dead_letter, dead)
        acked = await self.outbox.call(self.outbox.ack, [e.id for e in entries if e.id not in dead])
        self.metrics.sent.labels(kind, "accepted").inc(reply.accepted)
        self.metrics.sent.labels(kind, "duplicate").inc(reply.duplicates)
        self.metrics.sent.labels(kind, "rejected").inc(len(dead))
        return acked + len(dead)

    # -- snapshots -------------------------------------------------------------------------------

    async def send_snapshots(self) -> int:
        entries = await self.outbox.call(self.outbox.take, "snapshot", self.settings.snapshot_batch)
        if not entries:
            return 0
        sem = asyncio.Semaphore(self.settings.upload_concurrency)

        async def one(e: Entry) -> str | None:
            async with sem:
                return await self._upload(e)

        results = await asyncio.gather(
            *(one(e) for e in entries if e.object_key is None), return_exceptions=True
        )
        keys = {e.id: e.object_key for e in entries if e.object_key is not None}
        pending = [e for e in entries if e.object_key is None]
        transient: BaseException | None = None
        settled = 0
        for e, res in zip(pending, results, strict=True):
            if isinstance(res, ApiUnavailable):
                transient = res
            elif isinstance(res, BaseException):
                raise res
            elif res is not None:
                keys[e.id] = res
        uploaded = [e for e in entries if e.id in keys]
        settled += sum(1 for r in results if r is None)  # went to the dead letters
        if uploaded:
            items = []
            for e in uploaded:
                p = e.payload
                items.append(
                    {
                        "key": keys[e.id],
                        "device_id": p["device_id"],
                        "ts": p["ts"],
                        "sha256": p["sha256"],
                        "width": p["width"],
                        "height": p["height"],
                        "quality": p["quality"],
                    }
                )
            r = await self._post("/api/v1/ingest/snapshots", {"items": items}, "snapshot")
            settled += await self._settle_batch("snapshot", uploaded, r)
        if transient is not None:
            raise transient
        return settled

    async def _upload(self, e: Entry) -> str | None:
        """Presign and PUT one snapshot; its object key, or None when it went to the dead letters."""
        if not e.blob:
            await self.outbox.call(self.outbox.dead_letter, {e.id: "snapshot bytes missing from the outbox"})
            return None
        p = e.payload
        body = {
            "device_id": p["device_id"],
            "ts": p["ts"],
            "sha256": p["sha256"],
            "size": len(e.blob),
            "content_type": "image/jpeg",
        }
        for attempt in (1, 2):
            r = await self._post("/api/v1/ingest/snapshots/presign", body, "snapshot")
            if r.status_code != 200:
                await self.outbox.call(self.outbox.dead_letter, {e.id: f"presign refused: {_problem(r)}"})
                self.metrics.uploads.labels("rejected").inc()
                return None
            presign = PresignReply.model_validate(r.json())
            try:
                put = await self.put.put(presign.url, content=e.blob, headers={"Content-Type": "image/jpeg"})
            except httpx.HTTPError as exc:
                self.metrics.uploads.labels("failed").inc()
                raise ApiUnavailable(f"PUT of a snapshot: {type(exc).__name__}: {exc}") from exc
            if put.status_code in (200, 201, 204):
                await self.outbox.call(self.outbox.mark_uploaded, e.id, presign.key)
                self.metrics.uploads.labels("ok").inc()
                return presign.key
            if put.status_code == 403 and attempt == 1:
                continue  # the URL expired between presign and PUT (a slow link): presign again
            if put.status_code >= 500 or put.status_code in TRANSIENT:
                self.metrics.uploads.labels("failed").inc()
                raise ApiUnavailable(f"PUT of a snapshot: {_problem(put)}")
            await self.outbox.call(self.outbox.dead_letter, {e.id: f"upload refused: {_problem(put)}"})
            self.metrics.uploads.labels("rejected").inc()
            return None
        return None

    # -- command results -------------------------------------------------------------------------

    async def send_results(self) -> int:
        entries = await self.outbox.call(self.outbox.take, "result", 20)
        settled = 0
        for e in entries:
            settled += await self._send_result(e)
        return settled

    async def _expired(self, e: Entry, why: str) -> int:
        log.warning("result of command %s dropped: %s", e.payload.get("command_id"), why)
        self.metrics.commands.labels("probe", "expired").inc()
        return await self.outbox.call(self.outbox.drop, [e.id], "expired_results")

    async def _send_result(self, e: Entry) -> int:
        p = e.payload
        deadline = dt.datetime.fromisoformat(p["deadline"])
        if dt.datetime.now(dt.UTC) > deadline:
            return await self._expired(e, "its deadline passed before it could be sent")
        body: dict[str, Any] = p["result"]
        if e.blob and p.get("put_url") and e.object_key is None:
            try:
                put = await self.put.put(p["put_url"], content=e.blob, headers={"Content-Type": "image/jpeg"})
            except httpx.HTTPError as exc:
                raise ApiUnavailable(f"PUT of a probe snapshot: {type(exc).__name__}: {exc}") from exc
            if put.status_code >= 500 or put.status_code in (408, 429):
                raise ApiUnavailable(f"PUT of a probe snapshot: {_problem(put)}")
            if put.status_code in (200, 201, 204):
                await self.outbox.call(self.outbox.mark_uploaded, e.id, "uploaded")
                self.metrics.uploads.labels("ok").inc()
            else:
                # the result is still worth having, without a picture it does not have
                log.warning("probe snapshot upload refused: %s", _problem(put))
                snap = (body.get("result") or {}).get("snapshot")
                if isinstance(snap, dict):
                    snap["key"] = None
        r = await self._post(f"/api/v1/agents/commands/{p['command_id']}/result", body, "result")
        if r.status_code in (200, 204):
            self.metrics.commands.labels("probe", "delivered").inc()
            return await self.outbox.call(self.outbox.ack, [e.id])
        if r.status_code == 422 and "expired" in r.text:
            return await self._expired(e, "the API says the command expired")
        return await self.outbox.call(self.outbox.dead_letter, {e.id: f"result refused: {_problem(r)}"})


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
