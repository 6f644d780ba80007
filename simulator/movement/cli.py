"""`python -m simulator.movement`: simulate people and vehicles moving for days; write JSONL files and the
truth (--out DIR), or POST the batches to an API (--feed URL --token T). Shared by `tianwang movement`."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from simulator.city import CityParams, generate_city
from simulator.movement.model import MovementParams
from simulator.movement.simulate import simulate_movement


def city_for(vehicles: int, seed: int, cameras: int | None = None) -> CityParams:
    """A city sized for the fleet: ~1 camera per 5 vehicles, a checkpoint on ~1 road in 4, face cameras."""
    cams = cameras or max(300, vehicles // 5)
    road_edges = cams * 0.15 * 1000 / 150  # ≈ edges of the city's grid
    return CityParams(
        cameras=cams,
        seed=seed,
        inner_checkpoints=min(100_000, int(road_edges * 0.25)),
        face_cameras=min(100_000, max(10, cams // 20)),
    )


def run(
    *,
    people: int,
    vehicles: int,
    days: int,
    seed: int,
    out: str | None = None,
    feed_url: str | None = None,
    token: str | None = None,
    speedup: float = 0.0,
    cameras: int | None = None,
    ocr_error: float = 0.01,
    pass_miss: float = 0.05,
    face_miss: float = 0.3,
    start: str | None = None,
) -> int:
    """Returns the exit code; prints one progress line per simulated hour."""
    import datetime as dt

    from simulator.movement.feed import FeedError, feed
    from simulator.movement.output import write_batches, write_truth, write_world

    if not out and not feed_url:
        print("error: give --out DIR, --feed URL, or both", file=sys.stderr)
        return 2
    if feed_url and not token:
        print("error: --feed needs --token (an agent-role token)", file=sys.stderr)
        return 2
    try:
        mp = MovementParams(
            people=people,
            vehicles=vehicles,
            days=days,
            seed=seed,
            ocr_error=ocr_error,
            pass_miss=pass_miss,
            face_miss=face_miss,
            start=dt.date.fromisoformat(start) if start else MovementParams.start,
        )
        city = generate_city(city_for(vehicles, seed, cameras))
        t0 = time.monotonic()
        batches, truth, sim = simulate_movement(city, mp)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"world ready in {time.monotonic() - t0:.1f}s: {people} people, {vehicles} vehicles, "
        f"{len(city.checkpoints)} checkpoints, {len(sim.roads.face_ids)} face cameras, "
        f"{len(sim.roads.fence_bodies)} fences",
        flush=True,
    )
    directory = Path(out) if out else None
    if directory:
        write_world(sim, directory)
    stream = write_batches(batches, directory) if directory else ((b, 0) for b in batches)
    plain = (b for b, _ in stream)
    t1 = time.monotonic()
    try:
        if feed_url:
            rep = feed(plain, feed_url, token or "", speedup=speedup)
            print(
                f"fed {rep.sent} items in {rep.batches} batches: {rep.accepted} accepted, "
                f"{rep.duplicates} duplicates, {len(rep.rejected)} rejected, {rep.retries} retries"
            )
            for rj in rep.rejected[:20]:
                print(f"  rejected {rj['kind']} {rj['key']}: {rj['errors']}")
        else:
            for _ in plain:
                pass
    except FeedError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    el = time.monotonic() - t1
    c = truth.counts
    print(
        f"{c['passes']} passes, {c['faces']} face sightings, {c['phones']} phone sightings in {el:.1f}s "
        f"({c['passes'] / max(el, 1e-9):,.0f} passes/s); {c['ocr_errors']} OCR errors planted"
    )
    if directory:
        write_truth(truth, directory)
        print(
            f"written to {directory}/ (passes/faces/phones .jsonl.gz, truth.json, owners.jsonl.gz, "
            f"fences.json, city/)"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m simulator.movement", description=__doc__)
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--vehicles", type=int, default=600)
    ap.add_argument("--days", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="directory for the JSONL files and the truth")
    ap.add_argument("--feed", dest="feed_url", help="API base URL to POST the batches to")
    ap.add_argument("--token", help="agent-role token for --feed")
    ap.add_argument(
        "--speedup", type=float, default=0.0, help="simulated seconds per wall second (0: flat out)"
    )
    ap.add_argument("--cameras", type=int, help="size of the city (default: vehicles / 5)")
    ap.add_argument("--ocr-error", type=float, default=0.01)
    ap.add_argument("--pass-miss", type=float, default=0.05)
    ap.add_argument("--face-miss", type=float, default=0.3)
    ap.add_argument("--start", help="first simulated day, YYYY-MM-DD (default 2024-03-04)")
    a = ap.parse_args(argv)
    return run(**vars(a))


if __name__ == "__main__":
    sys.exit(main())
