"""Drains the outbox to the API: command results first, then health batches, then snapshots
(presign → PUT the bytes → post the records), then stream checks. An item leaves the outbox only on
the API's answer.

What dead-letters an item, and nothing else does:
- the API's `rejected` list in a 2xx answer, for the items it names (except a snapshot record whose
  object the store does not have: its bytes are uploaded again);
- a 400/422 problem JSON from the API itself (RFC 9457 body, not a proxy's page) saying the request
  is invalid: for the items its errors name (`items.3.ts`), or the whole request when it names none.
Anything else (no connection, a redirect, 404, 405, 409, 413, 401/403, 5xx, a 2xx that is not the
API's reply) keeps the items: logged, counted in `tianwang_agent_unexpected_answers`, retried with
exponential backoff and full jitter (sleep uniform(0, min(cap, base·2ⁿ))), per kind, so a thousand
agents coming back do not knock the API over again in step and one failing route does not stall the
others. A 413 halves that kind's batch (down to 1) and retries at once. This keeps the promise that
the API (or the proxy in front of it) may misbehave for a day and nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import random
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from pydantic import ValidationError

from edge_agent.metrics import Metrics
from edge_agent.outbox import Entry, Kind, Outbox
from edge_agent.settings import AgentSettings
from tianwang.protocol.ingest import IngestReply, PresignReply

log = logging.getLogger("edge_agent.sender")

# a rejected snapshot record whose object is missing: upload the bytes again, never dead-letter
_NOT_IN_STORE = re.compile(r"not (found )?in the (object )?store", re.I)
_ITEM_FIELD = re.compile(r"^items\.(\d+)(\.|$)")
# after this many good posts at a batch size a 413 forced down, try twice the size again
GROW_AFTER = 100


class ApiUnavailable(Exception):
    """The API could not be reached or did not take the items right now; they are kept, try again later."""


class _TooLarge(ApiUnavailable):
    """413: the batch is over a body limit (a proxy's); its size was halved, retry at once."""


def _problem(r: httpx.Response) -> str:
    try:
        body = r.json()
        detail = body.get("detail") or body.get("title") or ""
        errors = body.get("errors")
        if errors:
            detail = f"{detail} {errors}"
        return f"HTTP {r.status_code}: {detail}"[:1000]
    except (ValueError, AttributeError):
        where = f" (to {r.headers.get('location')})" if r.is_redirect else ""
        return f"HTTP {r.status_code}{where}: {r.text[:300]}"


def _api_problem(r: httpx.Response) -> dict[str, Any] | None:
    """The API's own problem JSON (RFC 9457: its content type and a body naming this status), or None:
    a proxy's error page, a redirect, anything else is not the API speaking."""
    ctype = r.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype != "application/problem+json":
        return None
    try:
        body = r.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("status") != r.status_code or "title" not in body:
        return None
    return body


def _invalid(r: httpx.Response) -> dict[str, Any] | None:
    """The API says the request itself is invalid (400/422 problem JSON): its body, else None."""
    return _api_problem(r) if r.status_code in (400, 422) else None


def _named_items(problem: dict[str, Any], n: int) -> set[int] | None:
    """Indexes of the batch items a validation problem names, or None when it names none (whole batch)."""
    found: set[int] = set()
    for err in problem.get("errors") or []:
        m = _ITEM_FIELD.match(str(err.get("field", ""))) if isinstance(err, dict) else None
        if m is None:
            return None
        found.add(int(m.group(1)))
    return {i for i in found if i < n} or None


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
        self.failures = 0  # rounds in a row that delivered nothing and met trouble (for the log)
        # per kind: failures in a row and the monotonic time before which it is not tried again
        self._gate: dict[str, tuple[int, float]] = {}
        # per kind: the batch size now (halved by a 413) and the good posts since it last changed
        self.limits: dict[str, int] = {
            "health": settings.batch_size,
            "snapshot": settings.snapshot_batch,
            "stream": settings.batch_size,
        }
        self._good_posts: dict[str, int] = {}

    # -- HTTP ------------------------------------------------------------------------------------

    async def _post(self, path: str, body: Any, kind: str) -> httpx.Response:
        try:
            return await self.api.post(path, json=body)
        except httpx.HTTPError as e:
            self.metrics.send_failures.labels(kind).inc()
            raise ApiUnavailable(f"{path}: {type(e).__name__}: {e}") from e

    def _unexpected(self, kind: str, what: str, r: httpx.Response) -> ApiUnavailable:
        """Count and log an answer that neither took nor rejected the items; the error to raise."""
        self.metrics.send_failures.labels(kind).inc()
        self.metrics.unexpected_answers.labels(kind, str(r.status_code)).inc()
        text = _problem(r)
        if r.status_code >= 500 or r.status_code in (408, 425, 429):
            log.warning("%s: %s; items kept, retrying", what, text)
        else:
            # a redirect, 404, 413, 401/403…: a misconfigured proxy or URL, an expired token. Nothing is
            # lost, but nothing gets through either until someone looks.
            log.error("%s: unexpected answer %s; items kept, retrying with backoff", what, text)
        return ApiUnavailable(f"{what}: {text}")

    # -- the loop --------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                done = await self.drain_once()
            except ApiUnavailable as e:
                self.failures += 1
                delay = self._next_try()
                log.warning("API unavailable (%d in a row), retrying in %.1f s: %s", self.failures, delay, e)
                await _wait(stop, delay)
                continue
            except Exception:
                # a bug must not stop delivery for good: log, pause, go on
                log.exception("sender failed")
                await _wait(stop, self.settings.backoff_cap_s / 4)
                continue
            if self.failures and not self._gate:
                log.info("API reachable again after %d failed attempts", self.failures)
                self.failures = 0
            if not done:
                await self._idle(stop)

    def _next_try(self) -> float:
        """Seconds until the earliest kind that is backing off may be tried again."""
        now = time.monotonic()
        waits = [max(0.0, until - now) for _, until in self._gate.values()]
        return min(waits) if waits else 0.0

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
        self._gate.clear()  # last chance: try every kind once more
        try:
            async with asyncio.timeout(timeout_s):
                while self.outbox.items:
                    if not await self.drain_once():
                        break
        except (TimeoutError, ApiUnavailable) as e:
            log.warning("flush stopped with %d items left: %s", self.outbox.items, e or "time is up")
        return self.outbox.items == 0

    async def drain_once(self) -> int:
        """One pass over every kind not backing off; how many items left the outbox. Raises
        ApiUnavailable when some kind met trouble and no item left at all."""
        settled = 0
        trouble: ApiUnavailable | None = None
        senders: tuple[tuple[Kind, Callable[[], Awaitable[int]]], ...] = (
            ("result", self.send_results),
            ("health", self.send_health),
            ("snapshot", self.send_snapshots),
            ("stream", self.send_streams),
        )
        for kind, send in senders:
            failures, until = self._gate.get(kind, (0, 0.0))
            if time.monotonic() < until:
                continue
            try:
                settled += await send()
            except _TooLarge as e:
                trouble = trouble or e  # smaller batch, next round at once: no backoff
            except ApiUnavailable as e:
                trouble = trouble or e
                failures += 1
                delay = backoff_delay(
                    failures, self.settings.backoff_base_s, self.settings.backoff_cap_s, self.rng
                )
                self._gate[kind] = (failures, time.monotonic() + delay)
            else:
                self._gate.pop(kind, None)
        if trouble is not None and not settled:
            raise trouble
        return settled

    # -- batches ---------------------------------------------------------------------------------

    def _too_large(self, kind: str, what: str, r: httpx.Response) -> ApiUnavailable:
        err = self._unexpected(kind, what, r)
        size = self.limits[kind]
        if size <= 1:
            return err  # one item is over the limit: back off and let someone raise it
        self.limits[kind] = max(1, size // 2)
        self._good_posts[kind] = 0
        log.error("%s: batch of %d is too large, sending %d at a time", what, size, self.limits[kind])
        return _TooLarge(str(err))

    def _posted(self, kind: str) -> None:
        """A good post: after GROW_AFTER of them at a reduced size, try a larger batch again."""
        full = self.settings.batch_size if kind in ("health", "stream") else self.settings.snapshot_batch
        if self.limits[kind] >= full:
            return
        self._good_posts[kind] = self._good_posts.get(kind, 0) + 1
        if self._good_posts[kind] >= GROW_AFTER:
            self.limits[kind] = min(full, self.limits[kind] * 2)
            self._good_posts[kind] = 0

    async def _settle_batch(self, kind: str, path: str, entries: list[Entry], r: httpx.Response) -> int:
        """Act on the answer to a batch POST; how many items left the outbox (acked or dead)."""
        if r.status_code == 413:
            raise self._too_large(kind, f"POST {path}", r)
        problem = _invalid(r)
        if problem is not None:
            # the API says the request is invalid: only the items it names, or all when it names none
            named = _named_items(problem, len(entries))
            reason = _problem(r)
            bad = [entries[i] for i in sorted(named)] if named is not None else entries
            log.error(
                "POST %s refused as invalid (%d of %d items dead-lettered): %s",
                path,
                len(bad),
                len(entries),
                reason,
            )
            self.metrics.sent.labels(kind, "rejected").inc(len(bad))
            return await self.outbox.call(self.outbox.dead_letter, {e.id: reason for e in bad})
        if not r.is_success:
            raise self._unexpected(kind, f"POST {path}", r)
        try:
            reply = IngestReply.model_validate(r.json())
        except (ValueError, ValidationError):
            raise self._unexpected(kind, f"POST {path} (not the API's reply)", r) from None
        if reply.accepted + reply.duplicates + len(reply.rejected) != len(entries):
            # not an answer about these items (a portal's JSON, another API): acking would lose them
            raise self._unexpected(
                kind, f"POST {path} (the reply accounts for other than the {len(entries)} items sent)", r
            )
        dead: dict[int, str] = {}
        again: list[int] = []
        for rej in reply.rejected:
            if not 0 <= rej.index < len(entries):
                continue
            e = entries[rej.index]
            if kind == "snapshot" and any(_NOT_IN_STORE.search(m) for m in rej.errors):
                again.append(e.id)  # its bytes are still here: upload them again, then the record
            else:
                dead[e.id] = "; ".join(rej.errors) or "rejected"
        if dead:
            await self.outbox.call(self.outbox.dead_letter, dead)
        if again:
            log.warning("%d snapshot record(s) refused: object not in the store; uploading again", len(again))
            await self.outbox.call(self.outbox.retry_upload, again)
        keep = set(dead) | set(again)
        acked = await self.outbox.call(self.outbox.ack, [e.id for e in entries if e.id not in keep])
        self.metrics.sent.labels(kind, "accepted").inc(reply.accepted)
        self.metrics.sent.labels(kind, "duplicate").inc(reply.duplicates)
        self.metrics.sent.labels(kind, "rejected").inc(len(dead))
        self._posted(kind)
        return acked + len(dead)

    # -- health ----------------------------------------------------------------------------------

    async def send_health(self) -> int:
        entries = await self.outbox.call(self.outbox.take, "health", self.limits["health"])
        if not entries:
            return 0
        path = "/api/v1/ingest/health"
        r = await self._post(path, {"items": [e.payload for e in entries]}, "health")
        return await self._settle_batch("health", path, entries, r)

    # -- stream checks ---------------------------------------------------------------------------

    async def send_streams(self) -> int:
        entries = await self.outbox.call(self.outbox.take, "stream", self.limits["stream"])
        if not entries:
            return 0
        path = "/api/v1/ingest/streams"
        r = await self._post(path, {"items": [e.payload for e in entries]}, "stream")
        return await self._settle_batch("stream", path, entries, r)

    # -- snapshots -------------------------------------------------------------------------------

    async def send_snapshots(self) -> int:
        entries = await self.outbox.call(self.outbox.take, "snapshot", self.limits["snapshot"])
        if not entries:
            return 0
        sem = asyncio.Semaphore(self.settings.upload_concurrency)

        async def one(e: Entry) -> str | None:
            async with sem:
                return await self._upload(e)

        # a failed snapshot has no bytes to upload: its record goes as it is, under its own key
        failed = [e for e in entries if e.payload.get("error")]
        failed_ids = {e.id for e in failed}
        pending = [e for e in entries if e.object_key is None and not e.payload.get("error")]
        results = await asyncio.gather(*(one(e) for e in pending), return_exceptions=True)
        keys = {e.id: e.object_key for e in entries if e.object_key is not None}
        trouble: ApiUnavailable | None = None
        settled = 0
        for e, res in zip(pending, results, strict=True):
            if isinstance(res, ApiUnavailable):
                trouble = trouble or res
            elif isinstance(res, BaseException):
                raise res
            elif res is None:
                settled += 1  # went to the dead letters
            else:
                keys[e.id] = res
        uploaded = [e for e in entries if e.id in keys] + failed
        if uploaded:
            items: list[dict[str, Any]] = []
            for e in uploaded:
                if e.id in failed_ids:
                    p = e.payload
                    items.append(
                        {"key": e.key, "device_id": p["device_id"], "ts": p["ts"], "error": p["error"]}
                    )
                    continue
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
            path = "/api/v1/ingest/snapshots"
            r = await self._post(path, {"items": items}, "snapshot")
            settled += await self._settle_batch("snapshot", path, uploaded, r)
        if trouble is not None and not settled:
            raise trouble
        return settled

    async def _refused_item(self, e: Entry, r: httpx.Response) -> None:
        """A 3xx/4xx about this one item (a 5xx is the API's trouble, not the item's): count it, so
        the item is taken after fresh ones and cannot block them."""
        if r.status_code < 500:
            await self.outbox.call(self.outbox.attempted, [e.id])

    async def _upload(self, e: Entry) -> str | None:
        """Presign and PUT one snapshot: its object key, None when it went to the dead letters;
        ApiUnavailable (the item kept) on any other answer."""
        if not e.blob:
            await self.outbox.call(self.outbox.dead_letter, {e.id: "snapshot bytes missing from the outbox"})
            return None
        p = e.payload
        body = {
            "device_id": p["device_id"],
            "ts": p["ts"],
            "sha256": p["sha256"],
            "size": len(e.blob),
            "content_type": p.get("content_type", "image/jpeg"),
        }
        path = "/api/v1/ingest/snapshots/presign"
        for attempt in (1, 2):
            r = await self._post(path, body, "snapshot")
            if _invalid(r) is not None:
                await self.outbox.call(self.outbox.dead_letter, {e.id: f"presign refused: {_problem(r)}"})
                self.metrics.uploads.labels("rejected").inc()
                return None
            if not r.is_success:
                # 404 (device not registered, or a maintenance page), 409, a redirect…: kept, and
                # taken after fresh snapshots from now on so it cannot block them
                await self._refused_item(e, r)
                raise self._unexpected("snapshot", f"POST {path} for {e.key}", r)
            try:
                presign = PresignReply.model_validate(r.json())
            except (ValueError, ValidationError):
                raise self._unexpected("snapshot", f"POST {path} (not the API's reply)", r) from None
            try:
                put = await self.put.put(
                    presign.url, content=e.blob, headers={"Content-Type": body["content_type"]}
                )
            except httpx.HTTPError as exc:
                self.metrics.uploads.labels("failed").inc()
                self.metrics.send_failures.labels("snapshot").inc()
                raise ApiUnavailable(f"PUT of a snapshot: {type(exc).__name__}: {exc}") from exc
            if put.is_success:
                await self.outbox.call(self.outbox.mark_uploaded, e.id, presign.key)
                self.metrics.uploads.labels("ok").inc()
                return presign.key
            if put.status_code == 403 and attempt == 1:
                continue  # the URL expired between presign and PUT (a slow link): presign again
            # the bytes are the evidence: whatever the store (or a proxy) says, keep them and retry
            self.metrics.uploads.labels("failed").inc()
            await self._refused_item(e, put)
            raise self._unexpected("snapshot", f"PUT of snapshot {e.key}", put)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    # -- command results -------------------------------------------------------------------------

    async def send_results(self) -> int:
        entries = await self.outbox.call(self.outbox.take, "result", 20)
        settled = 0
        trouble: ApiUnavailable | None = None
        for e in entries:
            try:
                settled += await self._send_result(e)
            except ApiUnavailable as exc:
                trouble = trouble or exc  # the others may still go through
        if trouble is not None and not settled:
            raise trouble
        return settled

    async def _expired(self, e: Entry, why: str) -> int:
        log.warning("result of command %s dropped: %s", e.payload.get("command_id"), why)
        self.metrics.commands.labels("probe", "expired").inc()
        return await self.outbox.call(self.outbox.drop, [e.id], "expired_results")

    async def _send_result(self, e: Entry) -> int:
        """Deliver one probe result. A result is useless after its deadline, so one the API does not
        take is retried until then and dropped (counted) after: never kept forever."""
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
                raise self._unexpected("result", "PUT of a probe snapshot", put)
            if put.is_success:
                await self.outbox.call(self.outbox.mark_uploaded, e.id, "uploaded")
                self.metrics.uploads.labels("ok").inc()
            else:
                # the result is still worth having, without a picture it does not have
                log.warning("probe snapshot upload refused: %s", _problem(put))
                snap = (body.get("result") or {}).get("snapshot")
                if isinstance(snap, dict):
                    snap["key"] = None
        path = f"/api/v1/agents/commands/{p['command_id']}/result"
        r = await self._post(path, body, "result")
        if r.status_code in (200, 204):
            self.metrics.commands.labels("probe", "delivered").inc()
            return await self.outbox.call(self.outbox.ack, [e.id])
        if _invalid(r) is not None:
            if r.status_code == 422 and "expired" in r.text:
                return await self._expired(e, "the API says the command expired")
            return await self.outbox.call(self.outbox.dead_letter, {e.id: f"result refused: {_problem(r)}"})
        raise self._unexpected("result", f"POST {path}", r)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
