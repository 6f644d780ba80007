"""Run the simulator until Ctrl-C: print where each device is and write the devices' JSON file.

Shared by `python -m simulator` and `tianwang simulate`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from simulator.devices import Simulator
from simulator.faults import FAULT_HELP, SCENE_MODES, FaultSpecError
from simulator.rtsp import RtspUnavailable


async def serve(sim: Simulator, json_path: str | None, out: object = sys.stdout) -> None:
    await sim.start()
    try:
        print_devices(sim, json_path)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        # Pass records from checkpoints are NOT sent to the API yet (a later issue): the emitter
        # will go here, taking each checkpoint's simulator.events.passes_between() since its last run.
        await stop.wait()
    finally:
        await sim.stop()


def print_devices(sim: Simulator, json_path: str | None) -> None:
    devices = sim.describe()
    for d in devices:
        faults = ",".join(f"{k}={v}" if v is not True else k for k, v in d["faults"].items()) or "-"
        where = f"{d['onvif']['host']}:{d['onvif']['port']:<5}"
        print(f"{d['device_id']}  {d['kind']:<10}  {where}  faults={faults}  {d['name']}")
    if sim.control_url:
        print(f"control API: {sim.control_url}/devices")
    if sim.discovery_port is not None:
        print(f"WS-Discovery responder: udp://{sim.host}:{sim.discovery_port}")
    if json_path:
        Path(json_path).write_text(json.dumps(devices, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"devices written to {json_path} (strip the 'faults' key before POST /api/v1/cameras)")
    print(f"{len(devices)} devices running; Ctrl-C to stop", flush=True)


def run(
    cameras: int = 20,
    checkpoints: int = 2,
    faults: str = "",
    fault_share: float = 0.0,
    seed: int = 1,
    json_path: str | None = None,
    control_port: int = 0,
    discovery_port: int = 3702,
    mode: str = "day",
    host: str = "127.0.0.1",
    rtsp: bool = False,
) -> int:
    """Build and run a simulator; returns a process exit code (2 for bad arguments)."""
    try:
        sim = Simulator(
            cameras,
            checkpoints,
            seed,
            faults or None,
            host,
            fault_share=fault_share,
            mode=mode,
            control_port=control_port,
            discovery_port=None if discovery_port < 0 else discovery_port,
            rtsp=rtsp,
        )
    except (FaultSpecError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(sim, json_path))
    except RtspUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: cannot listen: {e}", file=sys.stderr)
        return 1
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulator",
        description="Virtual ONVIF cameras and checkpoints on 127.0.0.1, with faults.",
        epilog="faults: " + "; ".join(f"{k}: {v}" for k, v in FAULT_HELP.items()),
    )
    p.add_argument("--cameras", type=int, default=20)
    p.add_argument("--checkpoints", type=int, default=2)
    p.add_argument("--faults", default="", help='e.g. "3:offline,4:slow=5,5:blur" (0-based device index)')
    p.add_argument("--fault-share", type=float, default=0.0, help="share of devices given a random fault")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", dest="json_path", default=None, help="write the devices' JSON here")
    p.add_argument("--control-port", type=int, default=0, help="control API port (0: a free one)")
    p.add_argument("--discovery-port", type=int, default=3702, help="WS-Discovery UDP port (-1: off)")
    p.add_argument("--mode", choices=SCENE_MODES, default="day", help="scene: day, night or ir (not faults)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument(
        "--rtsp",
        action="store_true",
        help="serve each device's stream over real RTSP (GStreamer RTSP server, system python3-gi)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    a = parser().parse_args(argv)
    return run(
        a.cameras,
        a.checkpoints,
        a.faults,
        a.fault_share,
        a.seed,
        a.json_path,
        a.control_port,
        a.discovery_port,
        a.mode,
        a.host,
        a.rtsp,
    )
