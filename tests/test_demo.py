"""`tianwang demo`: a living city that stops on Ctrl-C and goes on from its data on the next start; its
tokens and plan survive restarts."""

from __future__ import annotations

import datetime as dt
import json
import os
import queue
import re
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import auth, free_port
from tianwang.auth.tokens import authenticate
from tianwang.context import AppContext
from tianwang.demo import DEMO_ROLES, Plan, demo_tokens, local_today, resolve_plan
from tianwang.storage.models import Camera, Checkpoint, Fence, Pass


def test_demo_tokens_are_stable_and_valid(ctx: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "demo-tokens.json"
    first = demo_tokens(ctx, path)
    assert set(first) == set(DEMO_ROLES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert demo_tokens(ctx, path) == first
    with ctx.db.session() as s:
        for role, tok in first.items():
            assert authenticate(s, tok).role.value == role
    path.write_text(json.dumps(dict(first, staff="tw_forgotten")))
    again = demo_tokens(ctx, path)
    assert again["staff"] != "tw_forgotten" and again["admin"] == first["admin"]


def test_plan_is_kept_and_checked() -> None:
    asked_none = {"cameras": None, "seed": None, "people": None, "vehicles": None}
    fresh = resolve_plan({}, {**asked_none, "cameras": 30})
    assert fresh.cameras == 30 and fresh.people == 1000
    assert fresh.start == (local_today() - dt.timedelta(days=1)).isoformat()
    stored = {"plan": {"cameras": 30, "seed": 1, "people": 1000, "vehicles": 600, "start": fresh.start}}
    assert resolve_plan(stored, asked_none) == fresh
    assert resolve_plan(stored, {**asked_none, "cameras": 30}) == fresh  # the same, said again
    with pytest.raises(RuntimeError, match="--cameras 50"):
        resolve_plan(stored, {**asked_none, "cameras": 50})
    # a first day long past moves to yesterday: the same city and people, less to replay
    old = {"plan": {**stored["plan"], "start": (local_today() - dt.timedelta(days=30)).isoformat()}}
    assert resolve_plan(old, asked_none) == Plan(30, 1, 1000, 600, fresh.start)
    # the demo city: a checkpoint on about one road in four, a face camera per ten cameras
    p = fresh.city_params()
    assert (p.cameras, p.inner_checkpoints, p.face_cameras) == (30, 7, 3)


# ---- the demo as a user runs it -------------------------------------------------------------------


class Demo:
    """`tianwang demo` in a child process; its output lines are read as they come."""

    def __init__(self, data: Path, port: int, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIANWANG_")}
        env.update(TIANWANG_DATA_DIR=str(data), PYTHONUNBUFFERED="1")
        self.lines: list[str] = []
        self._q: queue.Queue[str] = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tianwang.cli", "demo", "--port", str(port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=data.parent,
            env=env,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._q.put(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """The first output line (so far or to come) matching `pattern`."""
        rx = re.compile(pattern)
        for line in self.lines:
            if m := rx.search(line):
                return m
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            try:
                line = self._q.get(timeout=0.2)
            except queue.Empty:
                assert self.proc.poll() is None, "the demo exited:\n" + "\n".join(self.lines)
                continue
            self.lines.append(line)
            if m := rx.search(line):
                return m
        raise AssertionError(f"no line matching {pattern!r} within {timeout_s} s:\n" + "\n".join(self.lines))

    def tokens(self) -> dict[str, str]:
        return {r: self.wait_for(rf"^\s+{r} token:\s+(\S+)$", 60).group(1) for r in DEMO_ROLES}

    def interrupt(self, timeout_s: float = 60) -> int:
        """Ctrl-C: the demo must stop everything and exit 0."""
        self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the demo did not stop within {timeout_s} s") from None
        time.sleep(0.3)
        while not self._q.empty():
            self.lines.append(self._q.get())
        return rc

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def metrics(base: str, token: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(f"{base}/metrics", headers=auth(token), timeout=30)
    assert r.status_code == 200, r.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(r.text)
        for s in fam.samples
    }


def count(db: Path, stmt: object) -> int:
    engine = create_engine(f"sqlite:///{db}")
    try:
        with Session(engine) as s:
            return int(s.scalar(stmt) or 0)  # type: ignore[call-overload]
    finally:
        engine.dispose()


def test_demo_lives_stops_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "var"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ("--cameras", "12", "--people", "200", "--vehicles", "120", "--fault-share", "0.25")
    demo = Demo(data, port, *args)
    try:
        assert demo.wait_for(r"console:\s+(\S+)", 90).group(1) == f"{base}/console"
        tokens = demo.tokens()
        staff, inv = auth(tokens["staff"]), auth(tokens["investigator"])
        assert httpx.get(f"{base}/console", timeout=30).status_code == 200
        cams = httpx.get(f"{base}/api/v1/cameras?limit=1000", headers=staff, timeout=30).json()["items"]
        cps = httpx.get(f"{base}/api/v1/checkpoints?limit=1000", headers=staff, timeout=30).json()["items"]
        # the city's cameras, face cameras and checkpoint cameras among them, each a live device
        assert len(cams) == 12 + 2 and {"face", "checkpoint"} <= {c["kind"] for c in cams}
        assert all(c["onvif"]["host"] == "127.0.0.1" for c in cams)
        assert len(cps) >= 4
        for path, field in (
            ("areas", "items"),
            ("key-sites", "items"),
            ("fences", "items"),
            ("roads", "features"),
        ):
            r = httpx.get(f"{base}/api/v1/{path}", headers=staff, timeout=30)
            assert r.status_code == 200 and r.json()[field], path

        # the history is in: the printed plate has a trajectory
        plate = demo.wait_for(r"sample plate:\s+(\S+)", 120).group(1)
        person = demo.wait_for(r"sample person:\s+(\S+)", 5).group(1)
        imsi = demo.wait_for(r"sample phone:\s+(\S+)", 5).group(1)
        truth = demo.wait_for(r"ground truth:\s+(\S+truth\.json)", 5).group(1)
        owners = json.loads(Path(truth).read_text(encoding="utf-8"))
        assert owners["run"] and (Path(truth).parent / "owners.jsonl.gz").exists()
        r = httpx.get(
            f"{base}/api/v1/trajectories/vehicle/{quote(plate, safe='')}",
            params={"case_no": "DEMO-TEST-1"},
            headers=inv,
            timeout=30,
        )
        assert r.status_code == 200, r.text
        assert r.json()["points"], "the sample plate has no passes"
        r = httpx.get(
            f"{base}/api/v1/trajectories/phone/{imsi}", params={"case_no": "DEMO-TEST-1"}, headers=inv
        )
        assert r.status_code == 200 and r.json()["points"]
        assert person.startswith("P")

        # the API's metrics: ingest counted; the agent's health checks bring cameras online
        m = metrics(base, tokens["staff"])
        assert m[("tianwang_ingest_items_total", (("kind", "passes"), ("outcome", "accepted")))] > 0
        assert (
            sum(v for (n, lab), v in m.items() if n == "tianwang_devices" and ("type", "camera") in lab) == 14
        )
        end = time.monotonic() + 60
        while time.monotonic() < end:
            m = metrics(base, tokens["staff"])
            if m.get(("tianwang_devices", (("status", "online"), ("type", "camera"))), 0) >= 1:
                break
            time.sleep(2)
        else:
            raise AssertionError("no camera came online: the agent is not polling the devices")

        assert demo.interrupt() == 0, "\n".join(demo.lines)
    finally:
        demo.kill()
    assert any("Stopped." in line for line in demo.lines)
    db = data / "tianwang.db"
    state = json.loads((data / "demo-state.json").read_text())
    frontier = dt.datetime.fromtimestamp(state["frontier"], dt.UTC)
    n_cams = count(db, select(func.count()).select_from(Camera))
    n_cps = count(db, select(func.count()).select_from(Checkpoint))
    n_fences = count(db, select(func.count()).select_from(Fence))
    before = count(db, select(func.count()).select_from(Pass).where(Pass.ts < frontier))
    assert before > 0

    # a second start on the same data: same tokens, same registry, the feed goes on without doubling
    demo = Demo(data, port, *args[2:])  # the plan is kept: --cameras may be left out
    try:
        assert demo.tokens() == tokens
        assert demo.wait_for(r"devices:\s+14 cameras live \(0 new, 14 updated\)", 5)
        assert demo.wait_for(r"sample plate:\s+(\S+)", 120).group(1) == plate
        assert demo.interrupt() == 0, "\n".join(demo.lines)
    finally:
        demo.kill()
    assert count(db, select(func.count()).select_from(Camera)) == n_cams
    assert count(db, select(func.count()).select_from(Checkpoint)) == n_cps
    assert count(db, select(func.count()).select_from(Fence)) == n_fences
    # what was delivered before the frontier is not sent again under other keys
    assert count(db, select(func.count()).select_from(Pass).where(Pass.ts < frontier)) == before
    assert count(db, select(func.count()).select_from(Pass)) >= before


def test_demo_refuses_another_city_on_the_same_data(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir()
    plan = {"cameras": 30, "seed": 1, "people": 1000, "vehicles": 600, "start": local_today().isoformat()}
    (data / "demo-state.json").write_text(json.dumps({"plan": plan}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIANWANG_")}
    r = subprocess.run(
        [sys.executable, "-m", "tianwang.cli", "demo", "--port", str(free_port()), "--cameras", "12"],
        env={**env, "TIANWANG_DATA_DIR": str(data)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    assert "--cameras 12 (this data holds 30)" in r.stderr
