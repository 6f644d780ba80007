"""Builds the FastAPI application for one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from tianwang.api import problems
from tianwang.api.routers import (
    agent_ingest,
    agents,
    alarm_sinks,
    analysis,
    analysis_places,
    camera_bulk,
    cameras,
    checkpoints,
    coverage,
    evidence,
    fusion,
    hotlists,
    objects,
    passes,
    places,
    records_ingest,
    system,
    trajectories,
)
from tianwang.api.routers import probe as probe_router
from tianwang.config import Settings, get_settings
from tianwang.context import AppContext
from tianwang.storage import migrate
from tianwang.wakeups import WakeHub
from tianwang.web import console

log = logging.getLogger("tianwang.api")

# query parameters that authorise by themselves (presigned URLs): never written to a log
_SECRET_PARAMS = re.compile(
    r"((?:^|[?&])(?:signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&\s\"]*",
    re.IGNORECASE,
)


class RedactSignatures(logging.Filter):
    """Blanks the signatures of presigned URLs in access-log lines (uvicorn logs the query string)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _SECRET_PARAMS.sub(r"\1REDACTED", a) if isinstance(a, str) else a for a in record.args
            )
        if isinstance(record.msg, str):
            record.msg = _SECRET_PARAMS.sub(r"\1REDACTED", record.msg)
        return True


def redact_access_log() -> None:
    """Put the filter on uvicorn's access logger (once; uvicorn's logging set-up keeps it)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactSignatures) for f in access.filters):
        access.addFilter(RedactSignatures())


def warn_unbounded_agent_tokens(ctx: AppContext) -> None:
    from tianwang.auth.tokens import unbounded_agent_tokens

    with ctx.db.session() as s:
        names = unbounded_agent_tokens(s)
    if names:
        log.warning(
            "%d agent token(s) made before zones existed reach every zone (%s): bound them with"
            " `tianwang token limit ID --zones ...` or replace them",
            len(names),
            ", ".join(names[:10]) + (" …" if len(names) > 10 else ""),
        )


async def _sweep_forever(ctx: AppContext) -> None:
    """Re-derive the status of devices whose reports stopped (every replica may run it: idempotent)."""
    from starlette.concurrency import run_in_threadpool

    from tianwang.cameras.evidence import sweep

    def once() -> int:
        with ctx.db.session() as s:
            return sweep(
                s, ctx.settings.allowed_misses, allowed_snapshot_misses=ctx.settings.allowed_snapshot_misses
            )

    while True:
        await asyncio.sleep(ctx.settings.sweep_interval_s)
        try:
            changed = await run_in_threadpool(once)
            if changed:
                log.info("status sweep: %d devices changed", changed)
        except Exception:
            log.exception("status sweep failed; retrying next interval")


async def _maintain_once(ctx: AppContext) -> None:
    """Keep day partitions ahead and drop those past retention (idempotent; replicas take turns)."""
    from starlette.concurrency import run_in_threadpool

    from tianwang.records.partitions import maintain_engine

    s = ctx.settings
    try:
        rep = await run_in_threadpool(
            maintain_engine,
            ctx.db.engine,
            ahead_days=s.partitions_ahead_days,
            retention_days=s.pass_retention_days,
        )
        if rep.created or rep.dropped:
            log.info("partitions: created %s, dropped %s", rep.created, rep.dropped)
    except Exception:
        log.exception("partition maintenance failed; retrying next interval")


async def _maintain_forever(ctx: AppContext) -> None:
    """The maintenance on its timer, after the first run made at start-up (see `lifespan`)."""
    while True:
        await asyncio.sleep(ctx.settings.maintain_interval_s)
        await _maintain_once(ctx)


async def _deliver_forever(app: FastAPI, ctx: AppContext) -> None:
    """Send the alarm outbox to webhooks and MQTT (every worker and replica may: rows are leased)."""
    from tianwang.alarms.delivery import Deliverer

    metrics = getattr(app.state, "metrics", None)

    def outcome(sink: Any, result: str) -> None:
        if metrics is not None:
            metrics.alarm_deliveries.labels(str(sink.id), sink.kind, result).inc()

    await Deliverer(ctx, outcome).run()


def _seal_url_credentials(ctx: AppContext) -> None:
    """Credentials a registry URL held before they were kept apart move to their encrypted column."""
    from tianwang.cameras.service import seal_url_credentials

    with ctx.db.session() as s:
        n = seal_url_credentials(s, ctx.box)
        s.commit()
    if n:
        log.warning("moved the credentials of %d cameras' URLs out of the URLs, encrypted", n)


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    settings = settings or get_settings()
    redact_access_log()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.ctx is None
        if own:
            app.state.ctx = AppContext.build(settings)
        c: AppContext = app.state.ctx
        if not migrate.is_current(c.db.engine, c.db.url):
            raise RuntimeError("the database is not at the newest migration: run `tianwang db upgrade`")
        c.store.ensure_bucket()
        # today's partitions exist before the first request: a day partition made while that
        # day's rows stream into the default partition would race them
        await _maintain_once(c)
        redact_access_log()  # again: uvicorn may have set its logging up after create_app
        warn_unbounded_agent_tokens(c)
        _seal_url_credentials(c)
        sweeper = asyncio.create_task(_sweep_forever(c))
        maintainer = asyncio.create_task(_maintain_forever(c))
        tasks = [sweeper, maintainer]
        if c.settings.alarm_delivery:
            tasks.append(asyncio.create_task(_deliver_forever(app, c)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if own:
                c.close()

    app = FastAPI(
        title="Tianwang",
        version="1",
        description="Registry, edge agents, coverage and 三轨 trajectories for a city video network.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.wakeups = WakeHub()
    problems.install(app)
    from tianwang.api.limits import AuthFirst, BodyLimit
    from tianwang.api.routers.objects import MAX_PUT
    from tianwang.places import geojson

    geojson.set_max_vertices(settings.max_geometry_vertices)
    # inside BodyLimit (added later, so outermost): an oversized body is 413 before anything, then a
    # body-carrying request without a valid token is 401 before its body is read
    app.add_middleware(AuthFirst, prefixes=("/api/v1/", "/VIID/"))
    app.add_middleware(
        BodyLimit,
        default=settings.max_body_bytes,
        larger={
            "/api/v1/cameras/import": settings.import_max_bytes + 1024 * 1024,
            "/objects/": MAX_PUT + 1024,
        },
    )
    from tianwang.api.urlcheck import NoNulInUrl

    app.add_middleware(NoNulInUrl)
    from tianwang.api import metrics as api_metrics

    api_metrics.install(app)  # after the other middleware: outermost, so it times everything
    app.include_router(system.router)
    app.include_router(objects.router)
    app.include_router(camera_bulk.router)  # before cameras: /export is not a device_id
    app.include_router(cameras.router)
    app.include_router(probe_router.router)
    app.include_router(checkpoints.router)
    app.include_router(places.router)
    app.include_router(agents.router)
    app.include_router(agent_ingest.router)
    app.include_router(evidence.router)
    app.include_router(records_ingest.router)
    app.include_router(fusion.router)  # before trajectories: /trajectories/fusion
    app.include_router(trajectories.router)
    app.include_router(passes.router)
    app.include_router(analysis.router)
    app.include_router(analysis_places.router)
    app.include_router(hotlists.router)
    app.include_router(alarm_sinks.router)
    app.include_router(coverage.router)
    console.mount(app, settings)
    return app
