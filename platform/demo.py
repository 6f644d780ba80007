"""`tianwang demo`: the main job on one machine — the API on SQLite and a directory object store,
a simulated site of ONVIF cameras and checkpoints (some faulty), and one edge agent watching them.

The simulator and the agent run as child processes (`tianwang simulate`, `tianwang agent`), just as
they would on their own machines; the demo registers the simulated devices, mints a token per
role (kept, so a restart prints the same ones) and stops everything on Ctrl-C, leaving the data.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tianwang.config import get_settings

DEMO_ROLES = ("admin", "staff", "installer", "investigator", "agent")
log = logging.getLogger("tianwang.demo")


def demo_tokens(ctx: object, path: Path) -> dict[str, str]:
    """The demo's tokens, made on the first start and kept (0600) so a restart prints the same ones."""
    from tianwang.auth.tokens import authenticate, create_token
    from tianwang.context import AppContext
    from tianwang.errors import Unauthorized

    assert isinstance(ctx, AppContext)
    tokens: dict[str, str] = {}
    if path.exists():
        try:
            tokens = {k: v for k, v in json.loads(path.read_text()).items() if k in DEMO_ROLES}
        except ValueError:
            tokens = {}
    with ctx.db.session() as s:
        for role in DEMO_ROLES:
            tok = tokens.get(role)
            if tok:
                try:
                    authenticate(s, tok)
                    continue
                except Unauthorized:  # the database was reset: mint a new one
                    pass
            tokens[role] = create_token(s, role, f"demo-{role}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(tokens, f, indent=2)
    return tokens


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_json(path: Path, proc: subprocess.Popen[bytes], log_path: Path, timeout_s: float = 90) -> Any:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the simulator exited ({proc.returncode}): {log_path.read_text()[-2000:]}")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            time.sleep(0.2)  # not written yet, or half-written
    raise RuntimeError(f"the simulator did not list its devices within {timeout_s:g} s")


def register_devices(ctx: object, devices: list[dict[str, Any]]) -> tuple[int, int]:
    """Create the simulated devices, or update where they listen (ports change between runs)."""
    from sqlalchemy import select

    from tianwang.cameras import service
    from tianwang.cameras.schemas import CameraSpec
    from tianwang.context import AppContext
    from tianwang.storage.models import Camera

    assert isinstance(ctx, AppContext)
    created = updated = 0
    with ctx.db.session() as s:
        for d in devices:
            body = {k: v for k, v in d.items() if k != "faults"}
            # a lively demo: checks every 30 s, a picture every 2 minutes
            body.setdefault("health_interval_s", 30)
            body.setdefault("snapshot_interval_s", 120)
            spec = CameraSpec.model_validate(body)
            row = s.scalar(select(Camera).where(Camera.device_id == spec.device_id))
            if row is None:
                service.create(s, spec, ctx.box)
                created += 1
            else:
                service.apply_spec(row, spec, ctx.box)
                updated += 1
    return created, updated


def run_demo(port: int = 8000, cameras: int = 50, checkpoints: int = 4, fault_share: float = 0.2) -> None:
    import uvicorn

    from tianwang.api.app import create_app
    from tianwang.context import AppContext
    from tianwang.storage import migrate

    settings = get_settings()
    settings.public_url = f"http://127.0.0.1:{port}"
    url = settings.effective_database_url
    data = settings.data_dir.resolve()
    data.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url)
    ctx = AppContext.build(settings)
    tokens = demo_tokens(ctx, data / "demo-tokens.json")
    children: list[subprocess.Popen[bytes]] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    try:
        sim_json, sim_log = data / "demo-devices.json", data / "demo-simulator.log"
        sim_json.unlink(missing_ok=True)
        with sim_log.open("ab") as out:
            sim = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [sys.executable, "-m", "tianwang.cli", "simulate", "--cameras", str(cameras),
                 "--checkpoints", str(checkpoints), "--fault-share", str(fault_share), "--seed", "1",
                 "--json", str(sim_json), "--discovery-port", "-1"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            )  # fmt: skip
        children.append(sim)
        print(f"Starting {cameras} simulated cameras and {checkpoints} checkpoints …", flush=True)
        devices = _wait_for_json(sim_json, sim, sim_log)
        created, updated = register_devices(ctx, devices)
        faulty = sum(1 for d in devices if d.get("faults"))
        metrics_port = _free_port()
        agent_log = data / "demo-agent.log"
        with agent_log.open("ab") as out:
            agent = subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
                [sys.executable, "-m", "tianwang.cli", "agent", "--central", settings.public_url,
                 "--agent-id", "demo-agent",
                 "--outbox", str(data / "demo-agent-outbox.db"), "--metrics-port", str(metrics_port)],
                # the token in the environment, not on a command line that ps shows to everyone
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**env, "TIANWANG_AGENT_TOKEN": tokens["agent"]},
            )  # fmt: skip
        children.append(agent)
        print(f"Tianwang demo — database {url}, objects {settings.effective_object_store}")
        print(
            f"  devices:   {len(devices)} registered ({created} new, {updated} updated), {faulty} with faults"
        )
        print(f"  API docs:  http://127.0.0.1:{port}/docs")
        print(f"  agent:     http://127.0.0.1:{metrics_port}/metrics   (log: {agent_log})")
        for role, tok in tokens.items():
            print(f"  {role + ' token:':<20} {tok}")
        print(
            f"  try:       curl -H 'Authorization: Bearer {tokens['staff']}' http://127.0.0.1:{port}/api/v1/faults"
        )
        kept = data / "demo-tokens.json"
        print(f"  (tokens kept in {kept}; Ctrl-C stops everything, the data stays)", flush=True)
        logging.basicConfig(level=logging.WARNING)
        uvicorn.run(create_app(settings, ctx), host="127.0.0.1", port=port, log_level="warning")
    finally:
        for p in reversed(children):
            if p.poll() is None:
                p.terminate()
        for p in reversed(children):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        ctx.close()
