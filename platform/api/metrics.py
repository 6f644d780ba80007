"""`GET /metrics` (Prometheus text format) for the API: request latency, ingest rates, device states,
alarms, live alarm listeners, and alarm delivery (outbox depth, tries by sink and outcome).

Each app has a registry of its own (tests build many apps in one process). Requests are measured by
one ASGI middleware, labelled by route template (never by raw path, so ids do not explode the label
set). Ingest items are counted from the replies of the ingest routes as they go out, so the routers
stay as they are. Device states, alarms and alarm listeners are read at scrape time: two GROUP BY
queries and one attribute, cheap at any registry size.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tianwang import wakeups
from tianwang.alarms import sinks as alarm_sinks
from tianwang.api.deps import require
from tianwang.auth.tokens import Principal
from tianwang.storage.models import Alarm, AlarmSink, Camera, Checkpoint, Role

log = logging.getLogger("tianwang.api.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# the ingest routes whose replies are counted, and the kind each one carries
INGEST_ROUTES = {
    "/api/v1/ingest/passes": "passes",
    "/api/v1/ingest/faces": "faces",
    "/api/v1/ingest/phones": "phones",
    "/api/v1/ingest/health": "health",
    "/api/v1/ingest/snapshots": "snapshots",
    "/VIID/MotorVehicles": "passes",
}
MAX_REPLY_BYTES = 16 * 1024 * 1024  # a reply larger than this is passed on uncounted
# statuses always published (at 0 when no device has them), so a dashboard's series never vanish
KNOWN_STATUSES = ("registered", "online", "fault", "offline")
ALARM_KINDS = ("plate", "imsi", "person")


def route_template(scope: Scope) -> str:
    """The route's path template (`/api/v1/cameras/{device_id}`), or `unmatched` (a 404 nothing served)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    if isinstance(route, Mount):
        return path.rstrip("/") + "/{path}"
    return path or "/"


class ApiMetrics:
    """The app's metrics: updated by the middleware, the rest collected from the database at scrape."""

    def __init__(self, app: FastAPI) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.latency = Histogram(
            "tianwang_http_request_duration_seconds",
            "API request time, to the last byte (server-sent event streams: to the headers)",
            ["method", "route", "status"],
            registry=r,
            buckets=LATENCY_BUCKETS,
        )
        self.ingest_items = Counter(
            "tianwang_ingest_items",
            "ingested items by kind and outcome (accepted, duplicate, rejected)",
            ["kind", "outcome"],
            registry=r,
        )
        self.ingest_batches = Counter(
            "tianwang_ingest_batches",
            "ingest requests by kind and status class (a 4xx/5xx batch stored nothing)",
            ["kind", "status"],
            registry=r,
        )
        self.not_owned = Counter(
            "tianwang_ingest_not_owned",
            "agent reports refused because the device is outside the sending token's zones, by kind"
            " (health, snapshots, presign, result)",
            ["kind"],
            registry=r,
        )
        self.alarm_deliveries = Counter(
            "tianwang_alarm_deliveries",
            "alarm deliveries tried by this process, by sink, sink kind and outcome (delivered, failed:"
            " due again after a backoff)",
            ["sink", "kind", "outcome"],
            registry=r,
        )
        for kind in ("health", "snapshots", "presign", "result"):
            self.not_owned.labels(kind)  # published at 0, so an alert on its rate has a series
        r.register(_StateCollector(app))

    def count_reply(self, kind: str, status: int, body: bytes | None) -> None:
        self.ingest_batches.labels(kind, f"{status // 100}xx").inc()
        if status >= 300 or not body:
            return
        try:
            reply = json.loads(body)
        except ValueError:
            return
        if not isinstance(reply, dict):
            return
        if "ResponseStatusListObject" in reply:  # GA/T 1400: one status per object
            statuses = (reply.get("ResponseStatusListObject") or {}).get("ResponseStatusObject") or []
            for st in statuses if isinstance(statuses, list) else []:
                if not isinstance(st, dict):
                    continue
                if st.get("StatusCode") != 0:
                    self.ingest_items.labels(kind, "rejected").inc()
                elif "already stored" in str(st.get("StatusString", "")):
                    self.ingest_items.labels(kind, "duplicate").inc()
                else:
                    self.ingest_items.labels(kind, "accepted").inc()
            return
        for field, outcome in (("accepted", "accepted"), ("duplicates", "duplicate")):
            n = reply.get(field)
            if isinstance(n, int) and n > 0:
                self.ingest_items.labels(kind, outcome).inc(n)
        rejected = reply.get("rejected")
        if isinstance(rejected, list) and rejected:
            self.ingest_items.labels(kind, "rejected").inc(len(rejected))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def count_not_owned(request: Request, kind: str, n: int = 1) -> None:
    """Count agent reports refused because the device is outside the sender's token zones."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None and n:
        metrics.not_owned.labels(kind).inc(n)


class _StateCollector(Collector):
    """Device states, stored alarms and alarm-stream listeners, read when Prometheus scrapes."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def collect(self) -> Iterator[Any]:
        hub = getattr(self.app.state, "wakeups", None)
        yield GaugeMetricFamily(
            "tianwang_alarm_listeners",
            "clients listening to the live alarm stream (SSE) in this process",
            value=hub.listeners(wakeups.ALARMS) if hub is not None else 0,
        )
        ctx = getattr(self.app.state, "ctx", None)
        if ctx is None:
            return
        try:
            with ctx.db.session() as s:
                cams = dict(s.execute(select(Camera.status, func.count()).group_by(Camera.status)).all())
                cps = dict(
                    s.execute(select(Checkpoint.status, func.count()).group_by(Checkpoint.status)).all()
                )
                alarms = dict(s.execute(select(Alarm.kind, func.count()).group_by(Alarm.kind)).all())
                sinks = list(s.execute(select(AlarmSink.id, AlarmSink.kind)).all())
                pending = alarm_sinks.pending_by_sink(s)
        except Exception:  # a scrape must answer even while the database does not
            log.exception("metrics: reading device states failed")
            return
        devices = GaugeMetricFamily(
            "tianwang_devices", "registered devices by type and status", labels=["type", "status"]
        )
        for kind, counts in (("camera", cams), ("checkpoint", cps)):
            for status in sorted(set(KNOWN_STATUSES) | {str(k) for k in counts}):
                devices.add_metric([kind, status], int(counts.get(status, 0)))
        yield devices
        total = CounterMetricFamily(
            "tianwang_alarms", "hotlist alarms stored (all replicas), by kind", labels=["kind"]
        )
        for kind in sorted(set(ALARM_KINDS) | {str(k) for k in alarms}):
            total.add_metric([kind], int(alarms.get(kind, 0)))
        yield total
        depth = GaugeMetricFamily(
            "tianwang_alarm_outbox_depth",
            "alarm deliveries not yet delivered (all replicas), by sink and sink kind",
            labels=["sink", "kind"],
        )
        for sid, kind in sinks:
            depth.add_metric([str(sid), str(kind)], pending.get(int(sid), 0))
        yield depth


class MetricsMiddleware:
    """Times every HTTP request and counts the items in the ingest routes' replies."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        state: dict[str, Any] = {"status": 500, "started": False, "observed": False, "body": [], "size": 0}

        def observe() -> None:
            if state["observed"]:
                return
            state["observed"] = True
            status = int(state["status"])
            self.metrics.latency.labels(
                scope.get("method", "GET"), route_template(scope), f"{status // 100}xx"
            ).observe(time.perf_counter() - t0)

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"], state["started"] = message["status"], True
                headers = dict(message.get("headers") or [])
                if headers.get(b"content-type", b"").startswith(b"text/event-stream"):
                    observe()  # a stream lasts as long as its listener: time to the headers
            elif message["type"] == "http.response.body" and route_template(scope) in INGEST_ROUTES:
                chunk = message.get("body", b"")
                state["size"] += len(chunk)
                if state["size"] <= MAX_REPLY_BYTES:
                    state["body"].append(chunk)
            await send(message)

        try:
            await self.app(scope, receive, wrapped)
        except asyncio.CancelledError:
            # cut off (shutdown, client gone) before any answer: no request answered, no reply to count
            if not state["started"]:
                state["observed"] = state["cut"] = True
            raise
        finally:
            observe()
            kind = INGEST_ROUTES.get(route_template(scope))
            if kind is not None and scope.get("method") == "POST" and not state.get("cut"):
                body = b"".join(state["body"]) if state["size"] <= MAX_REPLY_BYTES else None
                self.metrics.count_reply(kind, int(state["status"]), body)


router = APIRouter(tags=["system"])


@router.get(
    "/metrics",
    summary="Prometheus metrics: request latency, ingest rates, device states, alarms, alarm delivery"
    " (admin, staff)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(request: Request, _who: Annotated[Principal, Depends(require(Role.staff))]) -> Response:
    m: ApiMetrics = request.app.state.metrics
    return Response(m.exposition(), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> ApiMetrics:
    """Give `app` its metrics: the middleware (outermost, so it times everything) and GET /metrics."""
    m = ApiMetrics(app)
    app.state.metrics = m
    app.add_middleware(MetricsMiddleware, metrics=m)
    app.include_router(router)
    return m
