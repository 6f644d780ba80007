"""Every bench in bench/ still runs: each at its `--smoke` size, as a user runs it (`python bench/X.py`
from the repository root, in a child process), finishes, prints its figures, and leaves nothing
behind: no process, no temporary file, no PostgreSQL database. The figures are never judged here.

Benches found by the glob, so a new one is covered as soon as it is added. Those that use PostgreSQL
(bench/common.py's databases) are marked `pg`: under CI=true a missing PostgreSQL fails them. The
whole module is marked `bench`: `pytest -m "not bench"` leaves it out.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import IN_CI, PG_URL, _pg_available

ROOT = Path(__file__).resolve().parents[1]
BENCHES = sorted((ROOT / "bench").glob("bench_*.py"))
TIMEOUT_S = 180
# a bench uses PostgreSQL when it makes a database through bench/common.py or reads its server's URL
USES_PG = re.compile(r"\b(scratch_db|make_db|PG_URL)\b")

pytestmark = pytest.mark.bench


def _uses_pg(bench: Path) -> bool:
    return bool(USES_PG.search(bench.read_text(encoding="utf-8")))


def _session(sid: int) -> list[int]:
    """The processes still alive in session `sid` (the bench's children outliving it), Linux /proc."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                fields = Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                out.append(int(d))
    return out


def _left_processes(sid: int) -> list[int]:
    """Waits a little for the bench's children to go, then kills (and returns) those that stay."""
    if not Path("/proc/self/stat").exists():
        return []
    deadline = time.monotonic() + 5
    while (left := _session(sid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return left


def _drop_databases(tag: str) -> list[str]:
    """Drops (and returns) the databases named with `tag` that are left: the bench's own leftovers."""
    eng = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    like = f"tw\\_bench\\_{tag}\\_%"
    try:
        with eng.connect() as c:
            names = list(
                c.scalars(text("SELECT datname FROM pg_database WHERE datname LIKE :p"), {"p": like})
            )
            for name in names:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return names
    finally:
        eng.dispose()


@pytest.mark.parametrize(
    "bench",
    [pytest.param(b, id=b.stem, marks=[pytest.mark.pg] if _uses_pg(b) else []) for b in BENCHES],
)
def test_bench_runs_at_smoke_size(bench: Path, tmp_path: Path) -> None:
    pg = _uses_pg(bench)
    if pg and (why := _pg_available()):
        if IN_CI:
            pytest.fail(f"PostgreSQL is required under CI=true and is not reachable at {PG_URL}: {why}")
        pytest.skip(f"PostgreSQL not reachable ({why}); set TIANWANG_TEST_PG_URL")
    tag = uuid.uuid4().hex[:12]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {
        **os.environ,
        "TMPDIR": str(tmp),  # every temporary file and folder of the bench lands here
        "TIANWANG_BENCH_DB_TAG": tag,  # and every database it makes is named with this tag
        "PYTHONUNBUFFERED": "1",
    }
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    t0 = time.monotonic()
    # output to files, not pipes: a child left behind holding a pipe would keep the test waiting
    with out_path.open("wb") as o, err_path.open("wb") as e:
        proc = subprocess.Popen(
            [sys.executable, f"bench/{bench.name}", "--smoke"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=o,
            stderr=e,
            start_new_session=True,  # its children share its session: those left behind are found by it
        )
    timed_out = False
    try:
        proc.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        left = _left_processes(proc.pid)
        dbs = _drop_databases(tag) if pg else []
    took = time.monotonic() - t0
    out = out_path.read_text(encoding="utf-8", errors="replace")
    said = f"{out[-2000:]}\n{err_path.read_text(encoding='utf-8', errors='replace')[-4000:]}"
    assert not timed_out, f"{bench.name} --smoke did not finish in {TIMEOUT_S} s:\n{said}"
    assert proc.returncode == 0, f"{bench.name} --smoke exited {proc.returncode}:\n{said}"
    figures = [line for line in out.splitlines() if re.search(r"\d", line)]
    assert figures, f"{bench.name} --smoke printed no figures:\n{out[-2000:]}"
    assert not left, f"{bench.name} left processes running: {left}"
    assert not list(tmp.iterdir()), f"{bench.name} left temporary files: {sorted(tmp.iterdir())}"
    assert not dbs, f"{bench.name} left databases (dropped now): {dbs}"
    print(f"{bench.name} --smoke: {took:.1f} s, {len(figures)} lines with figures")


def _common() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_common", ROOT / "bench" / "common.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_smoke_sizes_replace_the_defaults_but_not_what_is_given() -> None:
    common = _common()

    def ap() -> argparse.ArgumentParser:
        p = argparse.ArgumentParser()
        p.add_argument("n", nargs="?", type=int, default=200)
        p.add_argument("--rows", type=int, default=100_000)
        return p

    smoke = {"n": 3, "rows": 10, "seconds": 0.5}
    full = common.parse(ap(), smoke, [])
    assert (full.n, full.rows, full.smoke) == (200, 100_000, False)
    small = common.parse(ap(), smoke, ["--smoke"])
    assert (small.n, small.rows, small.seconds, small.smoke) == (3, 10, 0.5, True)
    given = common.parse(ap(), smoke, ["7", "--smoke", "--rows", "50"])
    assert (given.n, given.rows) == (7, 50)
    assert common.pct([], 0.5) != common.pct([], 0.5)  # NaN when there is nothing to rank
    assert common.pct([3.0, 1.0, 2.0, 4.0], 0.5) == 3.0
    assert common.pct([3.0, 1.0, 2.0, 4.0], 0.99) == 4.0
