"""RTSP probe: open a stream with OpenCV (FFmpeg), read one frame, encode it as JPEG, within timeouts.

OpenCV's capture is blocking C code, so it runs in a worker thread with its own open/read
timeouts (the thread cannot be cancelled from asyncio; the timeouts are what end it). The
deadline around `probe` is still enforced outside by `run_with_deadline`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit, urlunsplit

from edge_agent.devices.addresses import DeviceAddresses
from edge_agent.devices.errors import BadAnswer, DeviceError, DeviceTimeout, DeviceUnreachable
from edge_agent.probes import ProbeResult, ProbeSettings, current_trace

# FFmpeg options for a fast, bounded open: TCP interleaved (no UDP port dance through NAT/firewalls),
# a socket timeout in microseconds, and little probing of the stream before the first frame.
_FFMPEG_OPTIONS = "rtsp_transport;tcp|stimeout;{us}|timeout;{us}|analyzeduration;1000000|probesize;500000"
_env_lock = threading.Lock()
MAX_PIXELS = 50_000_000


@dataclass(frozen=True)
class RtspTarget:
    url: str
    username: str = ""
    password: str = field(default="", repr=False)


def _with_credentials(url: str, username: str, password: str) -> str:
    if not username:
        return url
    u = urlsplit(url)
    if u.username:  # the URL already carries them
        return url
    host = u.hostname or ""
    netloc = f"{quote(username, safe='')}:{quote(password, safe='')}@{host}" + (
        f":{u.port}" if u.port else ""
    )
    return urlunsplit((u.scheme, netloc, u.path, u.query, u.fragment))


def grab_jpeg(
    url: str,
    username: str = "",
    password: str = "",
    timeout_s: float = 8.0,
    addresses: DeviceAddresses | None = None,
) -> tuple[bytes, int, int]:
    """Blocking: one frame of the stream as JPEG (bytes, width, height); raises a DeviceError.

    With credentials and `addresses`, a URL on another host than the device's is refused before
    anything connects (the credentials would go into it).
    """
    import cv2

    u = urlsplit(url)
    if u.scheme.lower() not in ("rtsp", "rtsps") or not u.hostname:
        raise BadAnswer(f"not an RTSP URL: scheme {u.scheme!r}")
    if username and addresses is not None:
        addresses.check_stream(url, "RTSP URL")
    ms = int(timeout_s * 1000)
    with _env_lock:  # OpenCV reads the options from the environment at open time
        os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = _FFMPEG_OPTIONS.format(us=ms * 1000)
        # a refused or broken stream is an outcome here, not something FFmpeg should print
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        with contextlib.suppress(AttributeError):  # errors only, not "backend can't capture by name"
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        cap = cv2.VideoCapture(
            _with_credentials(url, username, password),
            cv2.CAP_FFMPEG,
            [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms],
        )
    try:
        if not cap.isOpened():
            raise DeviceUnreachable(f"RTSP stream at {u.hostname}:{u.port or 554} did not open")
        ok, frame = cap.read()
        if not ok or frame is None or frame.size == 0:
            raise DeviceTimeout(f"RTSP stream at {u.hostname}:{u.port or 554} gave no frame in time")
        h, w = frame.shape[:2]
        if w * h > MAX_PIXELS:
            raise BadAnswer(f"RTSP frame of {w}×{h} pixels is over the limit")
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise BadAnswer("RTSP frame could not be encoded as JPEG")
        return buf.tobytes(), int(w), int(h)
    finally:
        cap.release()


async def fetch_frame(
    url: str,
    username: str = "",
    password: str = "",
    timeout_s: float = 8.0,
    addresses: DeviceAddresses | None = None,
) -> tuple[bytes, int, int]:
    """`grab_jpeg` in a worker thread."""
    try:
        return await asyncio.to_thread(grab_jpeg, url, username, password, timeout_s, addresses)
    except DeviceError:
        raise
    except Exception as e:  # OpenCV raises cv2.error on broken streams
        raise BadAnswer(f"RTSP stream broke: {type(e).__name__}: {e}") from e


async def probe(target: RtspTarget, settings: ProbeSettings) -> ProbeResult:
    trace = current_trace()
    try:
        with trace.phase("frame"):
            jpeg, w, h = await fetch_frame(
                target.url, target.username, target.password, settings.snapshot_read_timeout_s
            )
    except DeviceError as e:
        return ProbeResult.failed(e, trace)
    trace.data.update(width=w, height=h, size=len(jpeg), jpeg=jpeg)
    return ProbeResult(True, dict(trace.phases), data=dict(trace.data))
