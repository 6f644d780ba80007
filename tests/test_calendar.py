"""The suite's worlds do not depend on the day it runs: the same figures on far-apart machine dates.

The machine's clock is moved with libfaketime (an independent implementation of a fake clock, not
ours) for a child process that builds a small ground-truth world, loads it through the ingest code
and runs an analysis: a Saturday and the 29th of February of a leap year, years apart, must give
the same records and the same findings as a run on today's date. The service's own clock
(`tianwang.clock`) is checked beside it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tianwang import clock

ROOT = Path(__file__).resolve().parent.parent
LIBFAKETIME = [
    Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"),
    Path("/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1"),
]
# a Saturday, and the 29th of February of a leap year (a Tuesday), far apart
DATES = ["2027-02-27 09:30:00", "2028-02-29 23:45:00"]


def _libfaketime() -> Path:
    for p in LIBFAKETIME:
        if p.is_file():
            return p
    found = shutil.which("faketime")
    if os.environ.get("CI") == "true" or found:
        pytest.fail("libfaketime is missing: make test installs Debian's libfaketime")
    pytest.skip("libfaketime is not installed (Debian package libfaketime; make test installs it)")


def _figures(tmp: Path, fake: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if k != clock.ENV}
    if fake:
        # the calendar moves; the monotonic clock does not (timed waits are measured against it, and
        # a monotonic clock years ahead of the kernel's would make every timeout last for years)
        env |= {
            "LD_PRELOAD": str(_libfaketime()),
            "FAKETIME": f"@{fake}",
            "FAKETIME_DONT_RESET": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
    tmp.mkdir()
    out = subprocess.run(
        [sys.executable, "-m", "tests.calendar_probe", str(tmp)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_same_world_on_far_apart_dates(tmp_path: Path) -> None:
    _libfaketime()
    runs = {d: _figures(tmp_path / f"run{i}", d) for i, d in enumerate(DATES)}
    runs["today"] = _figures(tmp_path / "today", None)
    # the fake clock really moved the child's calendar
    for d in DATES:
        assert runs[d]["machine_date"] == d[:10]
    assert runs["today"]["machine_date"] == dt.date.today().isoformat()
    figures = {d: {k: v for k, v in r.items() if k != "machine_date"} for d, r in runs.items()}
    first = figures[DATES[0]]
    assert first["stored"]["passes"] > 0 and 0.95 * first["stored"]["passes"] < first["passes_read"]
    assert first["passes_read"] <= first["stored"]["passes"]
    assert first["clones"], "the planted cloned plates are found"
    for d, f in figures.items():
        assert f == first, (d, f, first)


def test_clock_setting() -> None:
    """`TIANWANG_CLOCK` takes an instant or ±seconds; `travel` moves a block and puts it back."""
    real = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
    at = dt.datetime(2028, 2, 29, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert clock.parse_setting("2028-02-29T10:00:00+08:00", real) == at - real
    assert clock.parse_setting("+86400", real) == dt.timedelta(days=1)
    assert clock.parse_setting("-3600.5", real) == dt.timedelta(seconds=-3600.5)
    assert clock.parse_setting("", real) == dt.timedelta(0)
    for bad in ("2028-02-29T10:00:00", "yesterday", "+1d"):
        with pytest.raises(ValueError, match="TIANWANG_CLOCK"):
            clock.parse_setting(bad, real)
    before = clock.offset()
    with clock.travel(at):
        assert abs((clock.now() - at).total_seconds()) < 2
        assert clock.today_utc() == dt.date(2028, 2, 29)
        env = clock.env_for(at)
    assert clock.offset() == before
    # a child process started with env_for(at) agrees with this one
    code = "from tianwang import clock; print(clock.now().isoformat())"
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    child = dt.datetime.fromisoformat(out.stdout.strip())
    assert abs((child - at).total_seconds()) < 30


def test_retention_and_future_checks_read_the_clock() -> None:
    """A record from the world's days is refused on the machine's day and accepted on the world's."""
    from tianwang.record_time import ts_problem

    ts = dt.datetime(2026, 3, 3, 8, 0, tzinfo=dt.UTC)
    with clock.travel(dt.datetime(2026, 3, 5, tzinfo=dt.UTC)):
        assert ts_problem(ts, clock.now(), 365) is None
    with clock.travel(dt.datetime(2028, 2, 29, tzinfo=dt.UTC)):
        assert "older than the retention" in (ts_problem(ts, clock.now(), 365) or "")
    with clock.travel(dt.datetime(2026, 3, 1, tzinfo=dt.UTC)):
        assert "in the future" in (ts_problem(ts, clock.now(), 365) or "")
