"""Helpers for the edge-agent integration tests: register simulated devices, run an agent subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from tests.conftest import auth, free_port
from tianwang.auth.tokens import create_token
from tianwang.context import AppContext

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent


def tokens_for(ctx: AppContext) -> dict[str, str]:
    with ctx.db.session() as s:
        return {r: create_token(s, r, f"agent-test-{r}") for r in ("installer", "agent", "staff")}


def register(base_url: str, installer: str, described: list[dict[str, Any]], **over: Any) -> None:
    """POST each simulator entry (minus its `faults`) as a camera; `over` maps device_id → extra fields."""
    with httpx.Client(base_url=base_url, headers=auth(installer), timeout=30) as c:
        for d in described:
            body = {k: v for k, v in d.items() if k not in ("faults", "resolution")}
            body.update(over.get(d["device_id"], {}))
            r = c.post("/api/v1/cameras", json=body)
            assert r.status_code == 201, r.text


def wait_until(what: str, fn: Callable[[], T | None], timeout_s: float, every_s: float = 0.5) -> T:
    """Poll `fn` until it returns something truthy; fail naming `what` after `timeout_s` (a bound)."""
    end = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < end:
        last = fn()
        if last:
            return last
        time.sleep(every_s)
    raise AssertionError(f"gave up waiting for {what} after {timeout_s:g} s (last: {last!r})")


class AgentProcess:
    """`tianwang agent` as a subprocess (its own GIL, killable with SIGKILL), logging to a file."""

    def __init__(self, central: str, token: str, outbox: Path, log: Path, **env: Any) -> None:
        self.metrics_port = free_port()
        self.args = [
            sys.executable, "-m", "tianwang.cli", "agent", "--central", central, "--token", token,
            "--agent-id", env.pop("agent_id", "edge-test"), "--outbox", str(outbox),
            "--metrics-port", str(self.metrics_port),
        ]  # fmt: skip
        self.env = {**os.environ, **{f"TIANWANG_AGENT_{k.upper()}": str(v) for k, v in env.items()}}
        self.env.setdefault("TIANWANG_AGENT_OUTBOX_JOURNAL", "true")
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> AgentProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                cwd=REPO,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def metrics(self) -> dict[str, float]:
        """The agent's /metrics as {name{labels}: value}."""
        r = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5)
        out = {}
        for line in r.text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                out[name] = float(value)
        return out

    def wait_ready(self, devices: int, timeout_s: float = 60) -> None:
        """Until the agent answers /metrics, had a heartbeat answered and runs `devices` devices."""

        def ready() -> bool:
            assert self.alive(), self.log_tail()
            try:
                m = self.metrics()
            except httpx.HTTPError:
                return False  # still starting
            return (
                m.get("tianwang_agent_heartbeats_total", 0) >= 1
                and m.get("tianwang_agent_devices") == devices
            )

        wait_until("the agent ready", ready, timeout_s)

    def rss_peak_kb(self) -> int:
        """VmHWM: the peak resident set of the agent process, from /proc."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        raise AssertionError("no VmHWM in /proc status")

    def terminate(self, timeout_s: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return int(self.proc.returncode)

    def kill(self) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""
