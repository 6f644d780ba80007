"""Benchmark: the movement simulator at city scale — 100k vehicles × 1 day by default. Prints passes/s
generated (to wire dicts), the counts, and peak memory; compares against the 10M-passes-a-day target.

Usage: `python bench/bench_movement.py [--vehicles N] [--people N] [--days D] [--seed S] [--smoke]`
(`--smoke`: a few seconds at a tiny size, only to check that it runs)."""

from __future__ import annotations

import argparse
import resource
import time

from common import movement_args, parse

from simulator.city import generate_city
from simulator.movement import MovementParams, simulate_movement
from simulator.movement.cli import city_for

TARGET_PASSES_PER_DAY = 10_000_000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    movement_args(ap)
    a = parse(ap, smoke={"vehicles": 1000, "people": 1500})
    t = time.perf_counter()
    city = generate_city(city_for(a.vehicles, a.seed))
    t_city = time.perf_counter() - t
    rss_city = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    batches, truth, sim = simulate_movement(
        city, MovementParams(people=a.people, vehicles=a.vehicles, days=a.days, seed=a.seed)
    )
    t_prep = time.perf_counter() - t
    print(
        f"city: {len(city.node_lon)} nodes, {len(city.edge_u)} roads, {len(city.checkpoints)} checkpoints, "
        f"{len(sim.roads.face_ids)} face cameras, {len(sim.roads.fence_bodies)} fences ({t_city:.1f}s); "
        f"world (people, routes: {len(sim.tm.dur)} templates) {t_prep:.1f}s",
        flush=True,
    )
    t = time.perf_counter()
    n_batches = biggest = 0
    for b in batches:
        n_batches += 1
        biggest = max(biggest, len(b.items))
    el = time.perf_counter() - t
    c = truth.counts
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    per_day = c["passes"] / a.days
    print(
        f"{a.vehicles} vehicles, {a.people} people × {a.days} day(s): {c['passes']:,} passes, "
        f"{c['faces']:,} face sightings, {c['phones']:,} phone sightings, {c['trips']:,} trips"
    )
    print(
        f"generated in {el:.1f}s: {c['passes'] / el:,.0f} passes/s, "
        f"{(c['passes'] + c['faces'] + c['phones']) / el:,.0f} items/s (wire dicts), "
        f"{n_batches} batches ≤ {biggest}"
    )
    print(f"peak RSS {peak:,.0f} MiB (after building the city: {rss_city:,.0f} MiB)")
    print(
        f"target: ≥ {TARGET_PASSES_PER_DAY:,} passes a day — this model makes {per_day:,.0f} "
        f"({per_day / a.vehicles:.0f} per vehicle)"
    )


if __name__ == "__main__":
    main()
