"""Builds the FastAPI application for one process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tianwang.api import problems
from tianwang.api.routers import cameras, checkpoints, objects, places, system
from tianwang.config import Settings, get_settings
from tianwang.context import AppContext
from tianwang.storage import migrate

log = logging.getLogger("tianwang.api")


def create_app(settings: Settings | None = None, ctx: AppContext | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = app.state.ctx is None
        if own:
            app.state.ctx = AppContext.build(settings)
        c: AppContext = app.state.ctx
        if not migrate.is_current(c.db.engine, c.db.url):
            raise RuntimeError("the database is not at the newest migration: run `tianwang db upgrade`")
        c.store.ensure_bucket()
        try:
            yield
        finally:
            if own:
                c.close()

    app = FastAPI(
        title="Tianwang",
        version="1",
        description="Registry, edge agents, coverage and 三轨 trajectories for a city video network.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    problems.install(app)
    app.include_router(system.router)
    app.include_router(objects.router)
    app.include_router(cameras.router)
    app.include_router(checkpoints.router)
    app.include_router(places.router)
    return app
