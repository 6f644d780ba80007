"""`tianwang serve` stops on SIGTERM even while a client holds the live alarm stream open.

The stream never ends by itself (heartbeats keep it alive), and uvicorn's graceful shutdown waits
for open responses: without a bound, a stop (docker stop, systemd, a deploy) hung until SIGKILL.
Found by bench/bench_passes.py, whose API took 13 s to stop after the alarm test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from tests.conftest import free_port
from tianwang.auth.tokens import create_token
from tianwang.cli import SHUTDOWN_GRACE_S
from tianwang.storage import migrate
from tianwang.storage.db import Database


def test_serve_stops_on_sigterm_while_an_alarm_stream_is_open(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tw.db'}"
    migrate.upgrade(url)
    db = Database(url)
    with db.session() as s:
        inv = create_token(s, "investigator", "listener")
    db.dispose()
    port = free_port()
    env = {
        **os.environ,
        "TIANWANG_DATABASE_URL": url,
        "TIANWANG_DATA_DIR": str(tmp_path),
        "TIANWANG_OBJECT_STORE": f"dir:{tmp_path / 'objects'}",
        "TIANWANG_SECRET_KEY": Fernet.generate_key().decode(),
        "TIANWANG_SSE_HEARTBEAT_S": "1",  # the stream is busy: a heartbeat a second
    }
    log = (tmp_path / "api.log").open("wb")
    cmd = [sys.executable, "-c", "from tianwang.cli import main; main()", "serve", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    opened = threading.Event()

    def listen() -> None:
        try:
            with (
                httpx.Client(base_url=base, timeout=None) as c,
                c.stream(
                    "GET",
                    "/api/v1/alarms/stream",
                    headers={"Authorization": f"Bearer {inv}", "Accept": "text/event-stream"},
                ) as r,
            ):
                opened.set()
                for _ in r.iter_lines():
                    pass  # a client that never leaves
        except httpx.HTTPError:
            pass  # the server closing the stream is what is expected

    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "api.log").read_text()[-2000:]
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the API did not start"
            time.sleep(0.2)
        threading.Thread(target=listen, daemon=True).start()
        assert opened.wait(20), "the alarm stream did not open"
        time.sleep(1.5)  # a heartbeat or two went through
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(SHUTDOWN_GRACE_S + 15)
        except subprocess.TimeoutExpired:
            code = None
        assert code is not None, f"still serving {SHUTDOWN_GRACE_S + 15} s after SIGTERM"
        # uvicorn re-raises the signal it caught once it has shut down
        assert code in (0, -signal.SIGTERM), (code, (tmp_path / "api.log").read_text()[-2000:])
        assert "Application shutdown complete" in (tmp_path / "api.log").read_text()
        assert time.monotonic() - t0 < SHUTDOWN_GRACE_S + 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()
