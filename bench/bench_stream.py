"""Stream checks (码流检测) per minute per core, against the limit: a bare PyAV loop over the same streams.

The simulator's real RTSP server (GStreamer, its own process, so its encoding is not counted here)
serves N streams; each is checked once with the agent's stream check, then read once with a bare
loop (open, demux, decode every packet, nothing measured) for the same stream time. A check is
wall-clock bound (it reads seconds of live video), so the figure that says how many cameras one
core can keep checked is the CPU time per check: checks/min/core = 60 / CPU seconds per check.
`time.process_time()` counts every thread of this process, where the reads run.

Usage: `python bench/bench_stream.py [N] [SECONDS] [WIDTHxHEIGHT] [--smoke]`
(defaults 8 streams, 3 s each, 1280x720; --smoke: 2 streams of 1 s at 320x180).
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from edge_agent.probes import stream as sc
from simulator.devices import SimulatorThread
from simulator.spec import make_specs


def bare_read(url: str, seconds: float) -> int:
    """The limit: what reading and decoding the stream costs with nothing else done."""
    import av

    frames = 0
    with av.open(url, options={"rtsp_transport": "tcp", "timeout": "3000000"}, timeout=(5.0, 3.0)) as c:
        st = c.streams.video[0]
        tb = float(st.time_base or 1 / 90000)
        first = None
        for pkt in c.demux(st):
            for _ in pkt.decode():
                frames += 1
            if pkt.pts is None:
                continue
            first = pkt.pts if first is None else first
            if (pkt.pts - first) * tb >= seconds:
                break
    return frames


def run(urls: list[str], what: str, fn: Any, concurrency: int) -> tuple[float, float, list[Any]]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(concurrency) as pool:
        out = list(pool.map(fn, urls))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    per = cpu / len(urls)
    print(
        f"{what:<12} {len(urls)} streams: wall {wall:6.2f} s, CPU {cpu:6.2f} s, "
        f"{per * 1000:7.1f} ms CPU per stream → {60 / per if per else float('inf'):8.0f} per minute per core"
    )
    return wall, cpu, out


def main(argv: list[str]) -> int:
    smoke = "--smoke" in argv
    args = [a for a in argv if not a.startswith("--")]
    n = int(args[0]) if args else (2 if smoke else 8)
    seconds = float(args[1]) if len(args) > 1 else (1.0 if smoke else 3.0)
    size = args[2] if len(args) > 2 else ("320x180" if smoke else "1280x720")
    width, height = (int(v) for v in size.lower().split("x"))
    specs = make_specs(n, 0, seed=7)
    for s in specs:
        s.width, s.height = width, height
    config = sc.StreamCheckConfig(duration_s=seconds)
    concurrency = min(n, 4)
    with SimulatorThread(specs=specs, rtsp=True) as sim:
        # credentials in the URL: the bare loop and the check ask the same server the same way
        urls = [d.rtsp_url.replace("rtsp://", f"rtsp://{d.username}:{d.password}@") for d in sim.devices]
        declared = {
            url: sc.DeclaredProfile("H264", width, height, float(d.spec.fps), d.spec.bitrate_kbps)
            for url, d in zip(urls, sim.devices, strict=True)
        }
        print(f"{n} streams of {width}x{height} at 25 fps, {seconds:g} s read each, {concurrency} at once")

        def check(url: str) -> dict[str, Any]:
            return sc.check_stream(sc.StreamTarget(url, declared=declared[url], config=config))

        check(urls[0]), bare_read(urls[0], 0.2)  # warm-up: first-use costs of PyAV and FFmpeg
        _, check_cpu, results = run(urls, "stream check", check, concurrency)
        _, bare_cpu, frames = run(urls, "bare PyAV", lambda u: bare_read(u, seconds), concurrency)
    ok = sum(bool(r["ok"]) for r in results)
    fps = [r["measured"]["fps"] for r in results if r["measured"]]
    print(f"checks ok: {ok}/{n}; measured fps {min(fps, default=0):.1f}–{max(fps, default=0):.1f}")
    print(f"bare frames decoded: {sum(frames)}")
    if bare_cpu > 0:
        print(f"stream check CPU / bare PyAV CPU: {check_cpu / bare_cpu:.2f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
