"""The stream check (码流检测): read a few seconds of a camera's RTSP stream with PyAV and judge it.

It measures what the stream really carries (codec, resolution, frame rate, bitrate, keyframe
interval, decode errors; frozen and black pictures from downscaled luma of the decoded frames),
compares it with the profile the device declared over ONVIF, and returns plain data with the
stream faults found. Everything the stream sends is untrusted: the open and every read have
timeouts (TCP interleaved, FFmpeg's socket timeout and PyAV's own), and frames, bytes and pixels
read are capped. PyAV's reads are blocking C code, so `check_stream` runs in a worker thread;
the deadline around `probe` is enforced outside, by `run_with_deadline`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from edge_agent.devices.addresses import DeviceAddresses
from edge_agent.devices.errors import BadAnswer, DeviceError, DeviceTimeout, DeviceUnreachable
from edge_agent.probes import ProbeResult, ProbeSettings, current_trace
from edge_agent.probes.rtsp import _with_credentials

MAX_PIXELS = 50_000_000
# stream faults, each a name the central side shows under the `stream` fault
STREAM_FAULTS = (
    "no_stream",
    "codec",
    "resolution",
    "low_fps",
    "bitrate",
    "decode_errors",
    "frozen",
    "black",
    "stopped",
)
# ONVIF VideoEncoderConfiguration Encoding → FFmpeg codec names that carry it
_CODECS = {"H264": {"h264"}, "H265": {"hevc"}, "JPEG": {"mjpeg"}, "MPEG4": {"mpeg4"}}


@dataclass(frozen=True)
class DeclaredProfile:
    """What the device says it sends (GetProfiles' VideoEncoderConfiguration); any field may be unknown."""

    encoding: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate_kbps: int | None = None
    gov_length: int | None = None


@dataclass(frozen=True)
class StreamCheckConfig:
    duration_s: float = 3.0  # stream time to read
    open_timeout_s: float = 5.0
    read_timeout_s: float = 3.0  # silence after which the stream counts as stopped
    max_frames: int = 400
    max_bytes: int = 16 * 1024 * 1024
    sample_every: int = 5  # luma statistics on one decoded frame in N
    fps_tolerance: float = 0.8  # measured below declared × this is low_fps
    bitrate_tolerance: float = 2.0  # measured above the declared limit × this is a bitrate fault
    max_decode_errors: int = 0  # more than this many decoder error messages is decode_errors
    frozen_diff: float = 0.5  # mean absolute luma change between samples below this: frozen
    black_luma: float = 40.0  # mean luma below this, with spread below black_spread: black
    black_spread: float = 6.0
    stop_share: float = 0.8  # stream time under duration × this when the stream ended: stopped


@dataclass
class StreamStats:
    """What a read measured (plain data, as sent in the evidence)."""

    codec: str | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    bitrate_kbps: float | None = None
    gop_frames: float | None = None  # mean frames between keyframes (None: under two keyframes seen)
    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    seconds: float = 0.0  # stream time covered (first to last packet timestamp)
    decode_errors: int = 0
    ended: bool = False  # the stream ended or went silent before the window was read
    capped: str | None = None  # which cap ended the read (frames, bytes), if one did
    luma_mean: float | None = None
    luma_spread: float | None = None
    motion: float | None = None  # mean absolute luma change between sampled frames
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StreamTarget:
    url: str
    username: str = ""
    password: str = field(default="", repr=False)
    declared: DeclaredProfile | None = None
    config: StreamCheckConfig = field(default_factory=StreamCheckConfig)


def _thumb(frame: Any) -> np.ndarray | None:
    """The luma plane of a decoded frame, every 8th pixel: cheap, and enough for frozen and black."""
    try:
        plane = frame.planes[0]
        h, stride = frame.height, plane.line_size
        y = np.frombuffer(plane, np.uint8, count=stride * h).reshape(h, stride)[:, : frame.width]
        return y[::8, ::8].astype(np.float32)
    except (ValueError, IndexError, TypeError):
        return None


def read_stream(
    url: str,
    username: str = "",
    password: str = "",
    config: StreamCheckConfig | None = None,
    addresses: DeviceAddresses | None = None,
) -> StreamStats:
    """Blocking: read `config.duration_s` of stream time and measure it; raises a DeviceError when
    the stream does not open, else returns what was measured (an end or break is in the stats)."""
    import av
    import av.logging

    cfg = config or StreamCheckConfig()
    u = urlsplit(url)
    if u.scheme.lower() not in ("rtsp", "rtsps") or not u.hostname:
        raise BadAnswer(f"not an RTSP URL: scheme {u.scheme!r}")
    if username and addresses is not None:
        addresses.check_stream(url, "RTSP URL")
    where = f"{u.hostname}:{u.port or 554}"
    # decoder errors reach us only as log lines: capture them (this thread's only) at ERROR
    av.logging.set_level(av.logging.ERROR)
    us = str(int(cfg.read_timeout_s * 1_000_000))
    options = {
        "rtsp_transport": "tcp",  # interleaved: no UDP ports to open through NAT or firewalls
        "timeout": us,  # socket I/O timeout, microseconds
        "analyzeduration": "1000000",
        "probesize": "1000000",
        "allowed_media_types": "video",
    }
    stats = StreamStats()
    with av.logging.Capture(True) as logs:
        try:
            container = av.open(
                _with_credentials(url, username, password),
                options=options,
                timeout=(cfg.open_timeout_s, cfg.read_timeout_s),
            )
        except av.error.HTTPUnauthorizedError as e:
            from edge_agent.devices.errors import AuthRefused

            raise AuthRefused(f"RTSP stream at {where} refused the credentials") from e
        except av.error.HTTPError as e:
            raise DeviceUnreachable(f"RTSP stream at {where}: {_short(e)}") from e
        except av.error.ExitError as e:
            raise DeviceTimeout(f"RTSP stream at {where} did not open in time") from e
        except (av.error.FFmpegError, OSError) as e:
            raise DeviceUnreachable(f"RTSP stream at {where} did not open: {_short(e)}") from e
        try:
            _measure(container, stats, cfg)
        finally:
            container.close()
        logged = sum(1 for level, _, _ in logs if level <= av.logging.ERROR)
        stats.decode_errors = max(stats.decode_errors, logged)
    return stats


def _short(e: BaseException) -> str:
    # FFmpeg appends every captured log line to its messages: keep the first line
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _measure(container: Any, stats: StreamStats, cfg: StreamCheckConfig) -> None:
    import av

    if not container.streams.video:
        raise BadAnswer("the stream carries no video")
    st = container.streams.video[0]
    ctx = st.codec_context
    stats.codec = ctx.name
    if ctx.width and ctx.height:
        if ctx.width * ctx.height > MAX_PIXELS:
            raise BadAnswer(f"stream declares {ctx.width}×{ctx.height} pixels, over the limit")
        stats.width, stats.height = int(ctx.width), int(ctx.height)
    tb = float(st.time_base) if st.time_base else 1 / 90000
    first_pts: int | None = None
    last_pts: int | None = None
    key_at: list[int] = []
    timed = 0  # packets with a timestamp: the frame rate counts these over their span
    decoded = 0
    previous: np.ndarray | None = None
    means: list[float] = []
    spreads: list[float] = []
    diffs: list[float] = []
    t0 = time.monotonic()
    wall_cap = cfg.duration_s + cfg.open_timeout_s + cfg.read_timeout_s
    try:
        for pkt in container.demux(st):
            if pkt.size == 0:
                continue
            stats.frames += 1
            stats.bytes += pkt.size
            if pkt.is_keyframe:
                key_at.append(stats.frames)
            if pkt.pts is not None:  # RTSP's first packet may have none: decoded, not timed
                timed += 1
                first_pts = pkt.pts if first_pts is None else first_pts
                last_pts = pkt.pts if last_pts is None else max(last_pts, pkt.pts)
            try:
                for frame in pkt.decode():
                    decoded += 1
                    if frame.width * frame.height > MAX_PIXELS:
                        raise BadAnswer(f"stream frame of {frame.width}×{frame.height} is over the limit")
                    stats.width, stats.height = int(frame.width), int(frame.height)
                    if decoded % cfg.sample_every == 1 or cfg.sample_every <= 1:
                        y = _thumb(frame)
                        if y is not None:
                            means.append(float(y.mean()))
                            spreads.append(float(y.std()))
                            if previous is not None and previous.shape == y.shape:
                                diffs.append(float(np.abs(y - previous).mean()))
                            previous = y
            except av.error.InvalidDataError:
                stats.decode_errors += 1  # counted again from the log below; at least one
            if (
                first_pts is not None
                and last_pts is not None
                and (last_pts - first_pts) * tb >= cfg.duration_s
            ):
                break
            if stats.frames >= cfg.max_frames:
                stats.capped = "frames"
                break
            if stats.bytes >= cfg.max_bytes:
                stats.capped = "bytes"
                break
            if time.monotonic() - t0 > wall_cap:
                stats.ended = True
                break
        else:
            stats.ended = True  # end of stream: the server stopped sending
    except av.error.ExitError:
        stats.ended = True  # PyAV's read timeout: silence
    except (av.error.FFmpegError, OSError) as e:
        stats.ended = True
        stats.error = _short(e)
    span = ((last_pts - first_pts) * tb) if first_pts is not None and last_pts is not None else 0.0
    stats.seconds = round(span, 3)
    if span > 0 and timed > 1:
        stats.fps = round((timed - 1) / span, 2)
        stats.bitrate_kbps = round(stats.bytes * 8 / span / 1000, 1)
    stats.keyframes = len(key_at)
    if len(key_at) >= 2:
        stats.gop_frames = round((key_at[-1] - key_at[0]) / (len(key_at) - 1), 1)
    if means:
        stats.luma_mean = round(float(np.mean(means)), 2)
        stats.luma_spread = round(float(np.mean(spreads)), 2)
    if diffs:
        stats.motion = round(float(np.mean(diffs)), 3)


def judge(stats: StreamStats, declared: DeclaredProfile | None, config: StreamCheckConfig) -> list[str]:
    """The stream faults in `stats`, against the declared profile (pure)."""
    d = declared or DeclaredProfile()
    faults: list[str] = []
    expected = _CODECS.get((d.encoding or "").upper())
    if expected is not None and stats.codec is not None and stats.codec not in expected:
        faults.append("codec")
    if d.width and d.height and stats.width and (stats.width, stats.height) != (d.width, d.height):
        faults.append("resolution")
    if d.fps and stats.fps is not None and stats.fps < d.fps * config.fps_tolerance:
        faults.append("low_fps")
    limit = d.bitrate_kbps * config.bitrate_tolerance if d.bitrate_kbps else None
    if limit is not None and stats.bitrate_kbps is not None and stats.bitrate_kbps > limit:
        faults.append("bitrate")
    if stats.decode_errors > config.max_decode_errors:
        faults.append("decode_errors")
    if stats.motion is not None and stats.motion < config.frozen_diff:
        faults.append("frozen")
    if (
        stats.luma_mean is not None
        and stats.luma_spread is not None
        and stats.luma_mean < config.black_luma
        and stats.luma_spread < config.black_spread
    ):
        faults.append("black")
    if stats.ended and stats.seconds < config.duration_s * config.stop_share:
        faults.append("stopped")
    return faults


def check_stream(target: StreamTarget, addresses: DeviceAddresses | None = None) -> dict[str, Any]:
    """Blocking: the evidence of one stream check, `{ok, faults, declared, measured, error}`."""
    declared = asdict(target.declared) if target.declared else None
    try:
        stats = read_stream(target.url, target.username, target.password, target.config, addresses)
    except DeviceError as e:
        return {
            "ok": False,
            "faults": ["no_stream"],
            "declared": declared,
            "measured": None,
            "error": f"{e.code}: {e.message}"[:500],
        }
    faults = judge(stats, target.declared, target.config)
    return {
        "ok": not faults,
        "faults": faults,
        "declared": declared,
        "measured": stats.as_dict(),
        "error": stats.error,
    }


async def probe(target: StreamTarget, settings: ProbeSettings) -> ProbeResult:
    trace = current_trace()
    with trace.phase("stream"):
        result = await asyncio.to_thread(check_stream, target)
    trace.data.update(result)
    return ProbeResult(bool(result["ok"]), dict(trace.phases), data=dict(trace.data))
