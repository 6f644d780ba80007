"""Shared fixtures: both databases, an API context, tokens for every role, a live server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tianwang.api.app import create_app
from tianwang.auth.tokens import create_token
from tianwang.config import Settings
from tianwang.context import AppContext
from tianwang.storage import migrate
from tianwang.storage.models import Base

PG_URL = os.environ.get("TIANWANG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ROLES = ("admin", "staff", "investigator", "installer", "agent")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as c:
            c.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as e:
        return f"{type(e).__name__}: {e}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated; dropped at the end."""
    why = _pg_available()
    if why:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true and is not reachable at {PG_URL}: {why}")
        pytest.skip(f"PostgreSQL not reachable ({why}); set TIANWANG_TEST_PG_URL")
    name = f"tw_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    try:
        yield url
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("db") / "tianwang.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each database test runs on SQLite and on PostgreSQL; tables are emptied after each test."""
    url: str = request.getfixturevalue("sqlite_database" if request.param == "sqlite" else "pg_database")
    yield url
    eng = create_engine(url)
    with eng.begin() as c:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name == "audit_log" and c.dialect.name == "postgresql":
                # append-only: triggers refuse DELETE and TRUNCATE; the owner lifts one on purpose
                c.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_truncate"))
                c.execute(text("TRUNCATE audit_log"))
                c.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_truncate"))
            else:
                c.execute(table.delete())
    eng.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=db_url,
        object_store=f"dir:{tmp_path / 'objects'}",
        secret_key=Fernet.generate_key().decode(),
        public_url="http://testserver",
    )


@pytest.fixture
def ctx(settings: Settings) -> Iterator[AppContext]:
    c = AppContext.build(settings)
    yield c
    c.close()


@pytest.fixture
def tokens(ctx: AppContext) -> dict[str, str]:
    with ctx.db.session() as s:
        return {r: create_token(s, r, f"test-{r}") for r in ROLES}


@pytest.fixture
def client(settings: Settings, ctx: AppContext) -> Iterator[TestClient]:
    with TestClient(create_app(settings, ctx), raise_server_exceptions=False) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class LiveServer:
    def __init__(self, app: object, port: int) -> None:
        import uvicorn

        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def live_server(tmp_path: Path, db_url: str) -> Iterator[tuple[LiveServer, AppContext]]:
    """The API on a real socket on 127.0.0.1 (a free port), with its own context."""
    port = free_port()
    s = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        object_store=f"dir:{tmp_path / 'objects'}",
        secret_key=Fernet.generate_key().decode(),
        public_url=f"http://127.0.0.1:{port}",
    )
    c = AppContext.build(s)
    srv = LiveServer(create_app(s, c), port).start()
    try:
        yield srv, c
    finally:
        srv.stop()
        c.close()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A local S3-compatible server PROCESS (moto in server mode) on a free port; yields `127.0.0.1:PORT`.

    Any access key and secret are accepted; buckets persist for the session, so each test uses
    its own bucket. The process is stopped at the end of the session.
    """
    import httpx

    port = free_port()
    log_path = tmp_path_factory.mktemp("s3") / "moto.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the S3 server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1.0)
                break  # any HTTP answer means it is serving
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    pytest.fail(f"the S3 server did not answer on port {port} within 30 s")
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _fresh_pg_database() -> tuple[str, str]:
    why = _pg_available()
    if why:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true and is not reachable at {PG_URL}: {why}")
        pytest.skip(f"PostgreSQL not reachable ({why}); set TIANWANG_TEST_PG_URL")
    name = f"tw_world_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session", params=["sqlite", pytest.param("pg", marks=pytest.mark.pg)])
def movement_world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple]:
    """(ctx, world): the movement simulator's default ground-truth world (tests/movement_support.py)
    loaded into its own database, once per session and database kind. Read-only: do not write to it."""
    from tests import movement_support

    pg_name = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('world') / 'world.db'}"
    else:
        pg_name, url = _fresh_pg_database()
    migrate.upgrade(url)
    tmp = tmp_path_factory.mktemp("world-data")
    s = Settings(
        data_dir=tmp,
        database_url=url,
        object_store=f"dir:{tmp / 'objects'}",
        secret_key=Fernet.generate_key().decode(),
        public_url="http://testserver",
    )
    c = AppContext.build(s)
    w = movement_support.world()
    movement_support.load(c, w)
    try:
        yield c, w
    finally:
        c.close()
        if pg_name:
            admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()
