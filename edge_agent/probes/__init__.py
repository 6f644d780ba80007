"""Probes in the blackbox_exporter shape: `async def probe(target, settings) -> ProbeResult`, plain data.

A probe never enforces its own deadline: `run_with_deadline` does, outside it, and still returns
what the probe had measured when the deadline cut it (phases recorded through the current trace).
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from edge_agent.devices.errors import DeviceError

TargetT = TypeVar("TargetT")


@dataclass
class ProbeSettings:
    """Module configuration shared by the probes (a blackbox "module")."""

    call_timeout_s: float = 5.0  # one ONVIF call
    adjust_time: bool = True  # sign WS-Security with the device's clock when it is off
    transport_auth: Literal["wsse", "digest", "both"] = "wsse"
    max_answer_bytes: int = 2 * 1024 * 1024
    snapshot_connect_timeout_s: float = 3.0
    snapshot_read_timeout_s: float = 10.0
    snapshot_max_bytes: int = 10 * 1024 * 1024
    snapshot_auth: Literal["auto", "digest", "basic", "none"] = "auto"
    fetch_snapshot: bool = True
    decode_snapshot: bool = True
    # a shared OnvifPool (the agent's); None means a client per probe, closed at its end
    pool: Any = None


@dataclass
class ProbeResult:
    success: bool
    phases: dict[str, float] = field(default_factory=dict)  # seconds per phase
    error_code: str | None = None
    error_message: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0

    @classmethod
    def failed(cls, err: DeviceError, trace: Trace | None = None) -> ProbeResult:
        t = trace or Trace()
        return cls(False, dict(t.phases), err.code, err.message, dict(t.data))


class Trace:
    """What a probe measured so far; survives the probe being cancelled by its deadline."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self.data: dict[str, Any] = {}
        self.cancelled_in: str | None = None

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        except asyncio.CancelledError:
            self.cancelled_in = self.cancelled_in or name  # the innermost phase the deadline cut
            raise
        finally:
            self.phases[name] = round(time.perf_counter() - t0, 6)


_trace: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("probe_trace", default=None)


def current_trace() -> Trace:
    """The trace of the running probe (a throwaway one outside `run_with_deadline`)."""
    t = _trace.get()
    if t is None:
        t = Trace()
        _trace.set(t)
    return t


async def run_with_deadline(
    probe: Callable[[TargetT, ProbeSettings], Awaitable[ProbeResult]],
    target: TargetT,
    settings: ProbeSettings,
    deadline_s: float,
) -> ProbeResult:
    """Run one probe under a hard deadline; on expiry a timeout result with the phases measured so far."""
    trace = Trace()
    token = _trace.set(trace)
    t0 = time.perf_counter()
    try:
        async with asyncio.timeout(deadline_s):
            result = await probe(target, settings)
    except TimeoutError:
        cut = trace.cancelled_in
        where = f" during {cut}" if cut else ""
        result = ProbeResult(
            False,
            dict(trace.phases),
            "timeout",
            f"probe deadline of {deadline_s:g} s passed{where}",
            dict(trace.data),
        )
        result.data["deadline_phase"] = cut
    finally:
        _trace.reset(token)
    result.duration_s = round(time.perf_counter() - t0, 6)
    return result


__all__ = ["ProbeResult", "ProbeSettings", "Trace", "current_trace", "run_with_deadline"]
