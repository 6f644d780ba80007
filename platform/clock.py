"""The one clock of the central service: every "now" the platform reads comes from here.

The retention and future checks of ingest, the day partitions, default query windows, token
expiry and the rows' timestamps all read `now()`, so a test (or a demo replaying a recorded day)
can move the whole service in time without touching the machine's clock:

- `TIANWANG_CLOCK=2028-02-29T10:00:00+08:00` in the environment starts the clock of a process at
  that instant when the module is first imported; it then runs at the real rate. An offset alone
  (`TIANWANG_CLOCK=+86400` or `-3600`, seconds) moves it by that much, the same in every process
  that reads it (an API and the agents a test starts beside it);
- `travel(instant)` / `set_offset(delta)` move it inside a process (tests).

The clock is an offset on the machine's UTC clock, never a frozen instant: time still passes, so
timeouts, expiries and the order of rows keep working. Standard library only, so the agent and the
simulator may import it too.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

ENV = "TIANWANG_CLOCK"
_lock = threading.Lock()
_offset = dt.timedelta(0)


def _real_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_setting(value: str, real_now: dt.datetime | None = None) -> dt.timedelta:
    """The offset a `TIANWANG_CLOCK` value asks for: `±SECONDS`, or an ISO-8601 instant with an
    offset (the clock starts there now). Raises ValueError with a readable reason."""
    v = value.strip()
    if not v:
        return dt.timedelta(0)
    if v[0] in "+-" and v[1:].replace(".", "", 1).isdigit():
        return dt.timedelta(seconds=float(v))
    try:
        at = dt.datetime.fromisoformat(v)
    except ValueError:
        raise ValueError(f"{ENV}={value!r}: give ±seconds or an ISO-8601 instant with an offset") from None
    if at.tzinfo is None:
        raise ValueError(f"{ENV}={value!r}: the instant needs a UTC offset (…+08:00 or …Z)")
    return at - (real_now or _real_now())


def now() -> dt.datetime:
    """The service's current instant, aware, in UTC."""
    return _real_now() + _offset


def today_utc() -> dt.date:
    return now().date()


def offset() -> dt.timedelta:
    return _offset


def set_offset(delta: dt.timedelta) -> None:
    global _offset
    with _lock:
        _offset = delta


def set_now(instant: dt.datetime) -> None:
    """Make `now()` read `instant` at this moment (and run on from there)."""
    if instant.tzinfo is None:
        raise ValueError("the clock needs an aware instant")
    set_offset(instant - _real_now())


@contextmanager
def travel(instant: dt.datetime) -> Iterator[None]:
    """Run a block with the clock at `instant` (running on), then put the previous offset back."""
    before = _offset
    set_now(instant)
    try:
        yield
    finally:
        set_offset(before)


def env_for(instant: dt.datetime) -> dict[str, str]:
    """The environment that starts a child process's clock where this one's is at `instant`:
    an offset, so a child started later still agrees with this process."""
    if instant.tzinfo is None:
        raise ValueError("the clock needs an aware instant")
    return {ENV: f"{(instant - _real_now()).total_seconds():+.3f}"}


def _from_environment() -> None:
    value = os.environ.get(ENV, "")
    if value:
        set_offset(parse_setting(value))


_from_environment()
