"""Real RTSP for the virtual devices: each device's own stream (a mount per device) with its own faults.

`RtspServer` spawns `simulator/rtsp_server.py` under the system python3 (GStreamer's RTSP server
through python3-gi, which the project's interpreter need not have) and tells it, per device,
which GStreamer pipeline to serve; `launch_for` turns a device's declared profile and its faults
into that pipeline. A device's stream follows its picture faults where they make sense for video
(`frozen`, `signal_loss_black`, `signal_loss_blue`) and has faults of its own (STREAM_FAULTS).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
START_TIMEOUT_S = 15.0
COMMAND_TIMEOUT_S = 10.0


class RtspUnavailable(RuntimeError):
    """No GStreamer RTSP server can run here (system packages missing); the message says which."""


@dataclass(frozen=True)
class StreamProfile:
    """What a device declares for a stream (its ONVIF VideoEncoderConfiguration)."""

    width: int
    height: int
    fps: int
    bitrate_kbps: int
    gop: int
    encoding: str = "H264"  # H264 | JPEG (ONVIF's names)


def served(profile: StreamProfile, faults: Mapping[str, bool | float]) -> StreamProfile:
    """What the device really sends under its faults (wrong_resolution, low_fps)."""
    w, h, fps = profile.width, profile.height, profile.fps
    if "wrong_resolution" in faults:
        w, h = max(16, w // 2 // 2 * 2), max(16, h // 2 // 2 * 2)
    if "low_fps" in faults:
        fps = max(1, int(float(faults["low_fps"])))
    return StreamProfile(w, h, fps, profile.bitrate_kbps, profile.gop, profile.encoding)


def launch_for(profile: StreamProfile, faults: Mapping[str, bool | float]) -> str | None:
    """The gst-launch description of a device's stream under its faults; None under no_stream."""
    if "no_stream" in faults:
        return None
    p = served(profile, faults)
    pattern = "smpte100"  # colour bars without the noise patch "smpte" has
    if "signal_loss_black" in faults:
        pattern = "black"
    elif "signal_loss_blue" in faults:
        pattern = "blue"
    # a scrolling test card moves every frame; `frozen` stops the scroll (the same picture for ever)
    speed = 0 if "frozen" in faults else 4
    src = f"videotestsrc is-live=true pattern={pattern} horizontal-speed={speed}"
    if "stream_stops" in faults:
        src += f" num-buffers={max(1, round(float(faults['stream_stops']) * p.fps))}"
    caps = f"video/x-raw,format=I420,width={p.width},height={p.height},framerate={p.fps}/1"
    if p.encoding == "JPEG":
        enc = "jpegenc quality=70"
        pay = "rtpjpegpay name=pay0 pt=26"
    else:
        enc = (
            f"x264enc tune=zerolatency speed-preset=ultrafast bitrate={p.bitrate_kbps} "
            f"key-int-max={p.gop} ! video/x-h264,profile=main"
        )
        pay = "rtph264pay name=pay0 pt=96 config-interval=1"
    broken = ""
    if "broken_packets" in faults:
        # bytes of the coded video flipped at random: what a lossy link or a failing encoder gives
        broken = f" ! breakmydata probability={float(faults['broken_packets']):g} seed=7 skip=16"
    return f"( {src} ! {caps} ! {enc}{broken} ! {pay} )"


def system_python() -> str:
    """The interpreter that has python3-gi: TIANWANG_GI_PYTHON, else /usr/bin/python3."""
    if os.environ.get("TIANWANG_GI_PYTHON"):
        return os.environ["TIANWANG_GI_PYTHON"]
    if os.path.exists("/usr/bin/python3"):
        return "/usr/bin/python3"
    return shutil.which("python3") or sys.executable


class RtspServer:
    """One GStreamer RTSP server process serving every device's mounts. Thread-safe, blocking calls."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, python: str | None = None, auth: bool = False
    ) -> None:
        """`auth`: every mount asks for RTSP Basic credentials (those given to `set_mount`)."""
        self.host = host
        self.auth = auth
        self.port: int | None = None
        self._want_port = port
        self._python = python or system_python()
        self._proc: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._mounts: dict[str, tuple[str, str, str]] = {}
        self._lines: queue.Queue[str] = queue.Queue()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("RTSP server not started")
        return f"rtsp://{self.host}:{self.port}"

    def start(self) -> None:
        try:
            proc = subprocess.Popen(  # noqa: S603 - our own script, arguments we made
                [
                    self._python,
                    str(SERVER_SCRIPT),
                    self.host,
                    str(self._want_port),
                    "auth" if self.auth else "open",
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                bufsize=1,
            )
        except OSError as e:
            raise RtspUnavailable(f"cannot run {self._python}: {e}") from e
        self._proc = proc
        self._lines = queue.Queue()
        # one reader for the process's whole life: a command that timed out cannot shift the answers
        threading.Thread(target=self._read_stdout, args=(proc, self._lines), daemon=True).start()
        first = self._readline(START_TIMEOUT_S)
        try:
            port = int(json.loads(first)["port"])
        except (ValueError, KeyError, TypeError):
            err = ""
            if proc.poll() is not None and proc.stderr is not None:
                err = proc.stderr.read()[-800:]
            self.stop()
            raise RtspUnavailable(
                "the GStreamer RTSP server did not start (needs python3-gi, gir1.2-gst-rtsp-server-1.0 "
                f"and the GStreamer plugins; `make system-packages`): {first.strip() or err.strip()}"
            ) from None
        self.port = port
        # stderr is not read from here on: send it nowhere rather than let the pipe fill and block
        threading.Thread(target=self._drain_stderr, daemon=True).start()

    def _drain_stderr(self) -> None:
        proc = self._proc
        if proc is not None and proc.stderr is not None:
            for _ in proc.stderr:
                pass

    @staticmethod
    def _read_stdout(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
        if proc.stdout is not None:
            for line in proc.stdout:
                lines.put(line)

    def _readline(self, timeout_s: float) -> str:
        try:
            return self._lines.get(timeout=timeout_s)
        except queue.Empty:
            return ""

    def _command(self, cmd: dict[str, str]) -> None:
        proc = self._proc
        if proc is None or proc.stdin is None or proc.poll() is not None:
            raise RtspUnavailable("the RTSP server process is not running")
        while not self._lines.empty():  # a late answer to a command that timed out
            self._lines.get_nowait()
        proc.stdin.write(json.dumps(cmd) + "\n")
        proc.stdin.flush()
        line = self._readline(COMMAND_TIMEOUT_S)
        answer = json.loads(line) if line.strip() else {"ok": False, "error": "no answer"}
        if not answer.get("ok"):
            what = f"{cmd.get('op')} {cmd.get('path')}"
            raise RtspUnavailable(f"RTSP server refused {what}: {answer.get('error')}")

    def set_mount(self, path: str, launch: str | None, user: str = "", password: str = "") -> None:
        """Serve `launch` at `path` (None: no stream there, RTSP 404), behind `user`/`password` when
        the server asks for credentials. Unchanged mounts are left alone."""
        with self._lock:
            if launch is None:
                if self._mounts.pop(path, None) is not None:
                    self._command({"op": "remove", "path": path})
                return
            wanted = (launch, user, password)
            if self._mounts.get(path) == wanted:
                return
            self._command({"op": "set", "path": path, "launch": launch, "user": user, "password": password})
            self._mounts[path] = wanted

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()  # the server ends when its stdin closes
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        self.port = None

    def __enter__(self) -> RtspServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
