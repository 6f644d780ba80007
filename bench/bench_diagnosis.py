"""ms per 1080p snapshot for `diagnose_jpeg` (decode included) against a plain full-size colour decode
of the same JPEG, measured in the same run; the goal is at most 2x the plain decode.

Usage: `python bench/bench_diagnosis.py [--rounds N] [--smoke]` (`--smoke`: a few seconds, only to
check that it runs)."""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np
from common import parse

from edge_agent.diagnosis import ReferenceStore, diagnose_jpeg
from edge_agent.diagnosis.synth import StreetScene, encode_jpeg


def _ms(fn: Callable[[], object], rounds: int) -> float:
    fn()
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main(rounds: int = 40) -> None:
    scene = StreetScene(seed=7, size=(1920, 1080))
    frames = [
        encode_jpeg(scene.frame(i, variant), 85) for i, variant in enumerate(("day", "night", "fog", "ir"))
    ]
    store = ReferenceStore()
    first = diagnose_jpeg(frames[0])
    store.set("bench", first.as_reference())
    refs = store.for_camera("bench")
    print(f"1080p JPEG sizes: {[len(f) // 1024 for f in frames]} KiB, {rounds} rounds each, median ms")
    print(f"{'frame':6s} {'imdecode':>9s} {'diagnose':>9s} {'ratio':>6s}")
    ratios = []
    for name, data in zip(("day", "night", "fog", "ir"), frames, strict=True):
        buf = np.frombuffer(data, np.uint8)
        peer = _ms(functools.partial(cv2.imdecode, buf, cv2.IMREAD_COLOR), rounds)
        ours = _ms(functools.partial(diagnose_jpeg, data, previous=first.state, reference=refs), rounds)
        ratios.append(ours / peer)
        print(f"{name:6s} {peer:9.2f} {ours:9.2f} {ours / peer:6.2f}")
    print(f"worst ratio {max(ratios):.2f} (goal <= 2.0), cv2 threads {cv2.getNumThreads()}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--rounds", type=int, default=40, help="timed rounds per frame (the median is the figure)"
    )
    main(parse(ap, smoke={"rounds": 2}).rounds)
