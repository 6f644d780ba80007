"""Feed batches to a Tianwang API: POST /api/v1/ingest/{passes,faces,phones} in bounded batches, with
retries and backoff, optionally paced to simulated time; rejected items are reported, not retried."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from simulator.movement.simulate import Batch

MAX_BATCH = 5000
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}


class FeedError(RuntimeError):
    """The API refused a batch for good (4xx other than throttling) or stayed unreachable."""


@dataclass
class FeedReport:
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {kind, index, key, errors}
    retries: int = 0
    batches: int = 0


def _first_ts(b: Batch) -> float | None:
    import datetime as dt

    if not b.items:
        return None
    return dt.datetime.fromisoformat(b.items[0]["ts"]).timestamp()


def feed(
    batches: Iterable[Batch],
    central: str,
    token: str,
    *,
    speedup: float = 0.0,
    timeout_s: float = 30.0,
    max_retries: int = 6,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_batch: Callable[[Batch, FeedReport], None] | None = None,
) -> FeedReport:
    """POST every batch; `speedup` > 0 paces batches to simulated time (60 = one simulated minute per
    second), 0 sends as fast as the API takes them. Raises FeedError on a batch that cannot land."""
    report = FeedReport()
    own = client is None
    http = client or httpx.Client(
        base_url=central.rstrip("/"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
    )
    t_sim0: float | None = None
    t_wall0 = time.monotonic()
    try:
        for b in batches:
            if not b.items:
                continue
            if speedup > 0:
                ts = _first_ts(b)
                if ts is not None:
                    t_sim0 = ts if t_sim0 is None else t_sim0
                    wait = (ts - t_sim0) / speedup - (time.monotonic() - t_wall0)
                    if wait > 0:
                        sleep(wait)
            for i in range(0, len(b.items), MAX_BATCH):
                part = b.items[i : i + MAX_BATCH]
                reply = _post(http, f"/api/v1/ingest/{b.kind}", part, max_retries, sleep, report)
                report.sent += len(part)
                report.batches += 1
                report.accepted += int(reply.get("accepted", 0))
                report.duplicates += int(reply.get("duplicates", 0))
                for rj in reply.get("rejected") or []:
                    report.rejected.append(
                        {
                            "kind": b.kind,
                            "index": i + int(rj.get("index", -1)),
                            "key": rj.get("key"),
                            "errors": rj.get("errors"),
                        }
                    )
            if on_batch:
                on_batch(b, report)
    finally:
        if own:
            http.close()
    return report


def _post(
    http: httpx.Client,
    path: str,
    items: list[dict[str, Any]],
    max_retries: int,
    sleep: Callable[[float], None],
    report: FeedReport,
) -> dict[str, Any]:
    delay = 0.5
    last = ""
    for attempt in range(max_retries + 1):
        try:
            r = http.post(path, json={"items": items})
        except httpx.TransportError as e:
            last = f"{type(e).__name__}: {e}"
        else:
            if r.status_code < 300:
                try:
                    body = r.json()
                except ValueError as e:
                    raise FeedError(f"{path}: answer is not JSON") from e
                if not isinstance(body, dict):
                    raise FeedError(f"{path}: answer is not a JSON object")
                return body
            if r.status_code not in RETRY_STATUS:
                raise FeedError(f"{path}: HTTP {r.status_code}: {r.text[:300]}")
            last = f"HTTP {r.status_code}"
            ra = r.headers.get("Retry-After", "")
            if ra.isdigit():
                delay = max(delay, min(float(ra), 60.0))
        if attempt == max_retries:
            break
        report.retries += 1
        sleep(delay)
        delay = min(delay * 2, 30.0)
    raise FeedError(f"{path}: gave up after {max_retries + 1} tries ({last})")
