"""What the benches share: the PostgreSQL they run on, a scratch database per run, binary COPY,
percentiles, the movement simulator's sizing arguments, and the sizing pattern (the defaults are the
real run; `--smoke` swaps in a tiny size that `make test` runs, see tests/test_benches.py).

Benches are scripts, run from the repository root as `python bench/bench_x.py`: a script's own folder
is the first entry of its `sys.path`, so they import this module as `common`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_URL = os.environ.get("TIANWANG_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# tests/test_benches.py sets a tag so that it can find (and tell about) any database a bench left behind
DB_TAG = re.sub(r"[^a-z0-9]", "", os.environ.get("TIANWANG_BENCH_DB_TAG", "").lower())[:16]
SMOKE_HELP = (
    "a tiny run of a few seconds that only checks the bench still works (make test runs every bench "
    "so); its figures mean nothing"
)


def parse(
    ap: argparse.ArgumentParser, smoke: Mapping[str, Any], argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """The bench's arguments. With `--smoke`, `smoke` replaces the defaults (arguments given still win);
    it may also set values that have no option (`args.smoke` is True then)."""
    ap.add_argument("--smoke", action="store_true", help=SMOKE_HELP)
    argv = list(sys.argv[1:] if argv is None else argv)
    if ap.parse_known_args(argv)[0].smoke:
        ap.set_defaults(**smoke)
    return ap.parse_args(argv)


def movement_args(ap: argparse.ArgumentParser, vehicles: int = 100_000, people: int = 150_000) -> None:
    """The movement simulator's size: --vehicles, --people, --days, --seed."""
    ap.add_argument("--vehicles", type=int, default=vehicles)
    ap.add_argument("--people", type=int, default=people)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)


def movement_world(a: argparse.Namespace) -> tuple[Any, dt.date, Iterator[Any], Any, Any]:
    """The movement simulator's world for --vehicles, --people, --days, --seed: (city, first day,
    batches, truth, simulation). The days are the simulator's own, from a fixed Monday, so that every
    run makes the same world whatever the date (the records are COPYed in, past any retention check)."""
    from simulator.city import generate_city
    from simulator.movement import MovementParams, simulate_movement
    from simulator.movement.cli import city_for

    city = generate_city(city_for(a.vehicles, a.seed))
    mp = MovementParams(people=a.people, vehicles=a.vehicles, days=a.days, seed=a.seed)
    batches, truth, sim = simulate_movement(city, mp)
    return city, mp.start, batches, truth, sim


# a pass as the ingest stores it (image_key and device_id aside), in the order the benches write rows
PASS_COLS = ("plate_no", "ts", "key", "checkpoint_id", "plate_kind", "plate_valid", "lane", "plate_color",
             "vehicle_type", "vehicle_color", "speed_kmh", "direction_deg", "received_at")  # fmt: skip


class SimulatedPasses:
    """The movement simulator's pass items as rows in PASS_COLS order, as the ingest would store them:
    the plate classified (`plates.read`), colours as codes (each distinct value worked out once)."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self.kinds: dict[str, tuple[str, str, bool]] = {}
        self.colour: dict[Any, str | None] = {None: None}

    def rows(self, items: Iterable[Mapping[str, Any]]) -> Iterator[tuple[Any, ...]]:
        from tianwang.checkpoints import plates

        kinds, colour = self.kinds, self.colour
        for it in items:
            raw = it["plate_no"]
            k = kinds.get(raw)
            if k is None:
                p = plates.read(raw)
                k = kinds[raw] = (p.plate_no, p.kind.value, p.valid)
            pc, vc = it.get("plate_color"), it.get("vehicle_color")
            for c in (pc, vc):
                if c not in colour:
                    colour[c] = plates.colour_code(c)
            yield (
                k[0], dt.datetime.fromisoformat(it["ts"]), it["key"], it["checkpoint_id"], k[1], k[2],
                it.get("lane"), colour[pc], it.get("vehicle_type"), colour[vc], it.get("speed_kmh"),
                it.get("direction_deg"), self.now,
            )  # fmt: skip


def pct(xs: Sequence[float], p: float) -> float:
    """The p-quantile (0 ≤ p ≤ 1) of `xs`, nearest rank (NaN when empty)."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, int(p * len(s)))]


def db_url(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the bench's PostgreSQL server."""
    return make_url(PG_URL).set(database=name).render_as_string(hide_password=False)


def raw_dsn(url: str) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _admin(sql: str) -> None:
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 10})
    try:
        with admin.connect() as c:
            c.execute(text(sql))
    finally:
        admin.dispose()


def make_db(kind: str, *, migrated: bool = True, name: str | None = None) -> tuple[str, str]:
    """A new database, `name` or `tw_bench_[TAG_]KIND_xxxxxxxx`, migrated to the head unless told:
    (name, URL)."""
    from tianwang.storage import migrate

    name = name or "_".join(x for x in ("tw_bench", DB_TAG, kind, uuid.uuid4().hex[:8]) if x)
    try:
        _admin(f'CREATE DATABASE "{name}"')
    except Exception as e:
        shown = make_url(PG_URL).render_as_string()
        why = f"{type(e).__name__}: {e}"
        raise SystemExit(f"PostgreSQL at {shown} does not answer ({why}); set TIANWANG_TEST_PG_URL") from e
    url = db_url(name)
    if migrated:
        try:
            migrate.upgrade(url)
        except BaseException:
            drop_db(name)
            raise
    return name, url


def drop_db(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_db(kind: str, *, keep: bool = False, migrated: bool = True) -> Iterator[tuple[str, str]]:
    """A new database for the block, (name, URL); dropped at the end, even on errors, unless `keep`."""
    name, url = make_db(kind, migrated=migrated)
    try:
        yield name, url
    finally:
        if keep:
            print(f"kept database {name}: {url}")
        else:
            drop_db(name)


def copy_rows(
    conn: psycopg.Connection[Any], table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Binary COPY of `rows` (values in `columns` order) into `table`, each column sent as the type the
    database gives it (the fastest way in). Returns the rows written; the caller commits."""
    oids = dict(
        conn.execute(
            "SELECT attname, atttypid::int FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table,),
        ).fetchall()
    )
    n = 0
    with (
        conn.cursor() as cur,
        cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as cp,
    ):
        cp.set_types([oids[c] for c in columns])
        for r in rows:
            cp.write_row(r)
            n += 1
    return n


def start_api(url: str, data_dir: str, workers: int = 1, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """`tianwang serve` in child processes on a free port of 127.0.0.1, on database `url`, its files
    and log in `data_dir`: (the process, the base URL). Extra settings as TIANWANG_* variables."""
    import httpx
    from cryptography.fernet import Fernet

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        **os.environ,
        "TIANWANG_DATABASE_URL": url,
        "TIANWANG_DATA_DIR": data_dir,
        "TIANWANG_OBJECT_STORE": f"dir:{data_dir}/objects",
        # PostgreSQL is shared, so the API insists on a configured key (any Fernet key will do here)
        "TIANWANG_SECRET_KEY": Fernet.generate_key().decode(),
        **env,
    }
    log_path = os.path.join(data_dir, "api.log")
    cmd = [sys.executable, "-c", "from tianwang.cli import main; main()", "serve", "--port", str(port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [*cmd, "--workers", str(workers)], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                time.sleep(1.0 if workers > 1 else 0)  # let every worker finish starting
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_api(proc)
    with open(log_path, encoding="utf-8", errors="replace") as f:
        tail = f.read()[-2000:]
    raise SystemExit(f"the API did not start:\n{tail}")


def stop_api(proc: subprocess.Popen[bytes] | None) -> None:
    """Stop what `start_api` started (its workers go with it), and wait for it."""
    if proc is None:
        return
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(15)
