"""Coverage and enclosure at city scale: vectorised model vs a naive per-pair shapely loop.

Run: .venv/bin/python bench/bench_coverage.py [--cameras 100000] [--seed 1] [--smoke]
(`--smoke`: a few seconds at a tiny size, only to check that it runs)
Prints each figure beside the peer or limit it is compared with, measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import shapely
from common import parse

from simulator.city import CityParams, generate_city
from tianwang.coverage.enclosure import CheckpointPos, RoadGraph, enclosure
from tianwang.coverage.geometry import Cells, CoverageModel, KeySites, Roads, Sectors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cameras", type=int, default=100_000)
    ap.add_argument(
        "--road-km", type=float, default=None, help="default: 0.15 km per camera (15,000 km at 100k)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--naive-pairs", type=int, default=20_000, help="pairs timed for the naive peer")
    ap.add_argument("--flips", type=int, default=1000, help="single-device updates timed")
    ap.add_argument("--road-sample", type=int, default=2000, help="roads timed for the per-road peer")
    a = parse(ap, smoke={"cameras": 300, "naive_pairs": 500, "flips": 20, "road_sample": 100})

    t = time.perf_counter()
    city = generate_city(CityParams(cameras=a.cameras, seed=a.seed, road_km=a.road_km))
    t_gen = time.perf_counter() - t
    print(
        f"city: {len(city.cameras):,} cameras, {city.road_length_km:,.0f} km of road in {len(city.edge_u):,} "
        f"segments, {len(city.key_sites):,} key sites, {len(city.entry_edges)} entry roads"
        f" — generated in {t_gen:.1f} s"
    )

    t = time.perf_counter()
    sectors = Sectors.from_records(city.cameras)
    roads = Roads.from_geojson(city.roads_geojson())
    sites = KeySites.from_records(city.key_sites)
    cells = Cells.from_records([x for x in city.areas if x["kind"] == "grid"])
    t_load = time.perf_counter() - t

    t = time.perf_counter()
    model = CoverageModel(sectors, roads, sites, cells)
    t_full = time.perf_counter() - t
    s = model.summary(designed=True)
    print(
        f"full coverage compute (sectors, STRtree pairs, intersections, unions): {t_full:.2f} s "
        f"(+ {t_load:.2f} s reading the GeoJSON/bodies)"
    )
    print(
        f"  road {s.road_covered_m / 1000:,.0f} / {s.road_length_m / 1000:,.0f} km"
        f" = {s.road_coverage_rate:.1%}; key sites {s.key_sites_covered}/{s.key_sites_total};"
        f" cells {s.grid_cells_covered}/{s.grid_cells_total}; "
        f"{len(model.iv_piece):,} sector∩road intervals"
    )

    rng = np.random.default_rng(a.seed)
    mask = rng.random(len(sectors)) < 0.9
    t = time.perf_counter()
    s90 = model.summary(mask=mask)
    t_mask = time.perf_counter() - t
    print(
        f"re-count for a new intact mask (90% intact): {t_mask * 1000:.0f} ms"
        f" → road {s90.road_coverage_rate:.1%}"
    )

    # the naive peer: for each road segment, for each camera, sector.intersection(road)
    n_pairs = a.naive_pairs
    ri = rng.integers(0, len(model.road_geoms), n_pairs)
    si = rng.integers(0, len(sectors), n_pairs)
    road_list, sector_list = list(model.road_geoms[ri]), list(model.sector_geoms[si])
    t = time.perf_counter()
    for rg, sg in zip(road_list, sector_list, strict=True):
        sg.intersection(rg)
    t_pair = (time.perf_counter() - t) / n_pairs
    naive_total = t_pair * len(model.road_geoms) * len(sectors)
    print(
        f"naive peer: {t_pair * 1e6:.1f} µs per pair × {len(model.road_geoms):,} roads"
        f" × {len(sectors):,} cameras "
        f"= {naive_total:,.0f} s ({naive_total / 3600:,.1f} h), scaled from {n_pairs:,} timed pairs"
    )
    print(f"  speed-up: {naive_total / t_full:,.0f}× (goal ≥ 50×)")

    # a fairer peer: STRtree candidates, then per road a Python union_all of its sectors
    sample = rng.choice(len(model.road_geoms), min(a.road_sample, len(model.road_geoms)), replace=False)
    tree = shapely.STRtree(model.sector_geoms)
    t = time.perf_counter()
    for r in sample:
        g = model.road_geoms[r]
        cand = tree.query(g, predicate="intersects")
        if len(cand):
            _ = g.intersection(shapely.union_all(model.sector_geoms[cand])).length
    t_road = (time.perf_counter() - t) / len(sample)
    print(
        f"per-road loop peer (STRtree + union_all per road): {t_road * len(model.road_geoms):,.1f} s scaled "
        f"from {len(sample):,} roads → {t_road * len(model.road_geoms) / t_full:,.1f}× slower than the model"
    )

    # one device's status change
    order = rng.permutation(len(sectors))[: a.flips]
    times = []
    for i in order:
        t = time.perf_counter()
        model.set_intact(int(i), not bool(model.intact[i]))
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    print(
        f"incremental update, one device: median {np.median(ms):.3f} ms, p99 {np.percentile(ms, 99):.3f} ms, "
        f"max {ms.max():.2f} ms over {len(ms)} flips (goal ≤ 50 ms)"
    )
    full = model.summary(mask=model.intact)
    inc = model.summary()
    print(
        f"  after the flips, incremental vs full recompute: {inc.road_covered_m:,.3f}"
        f" vs {full.road_covered_m:,.3f} m"
    )

    t = time.perf_counter()
    graph = RoadGraph.from_arrays(city.graph(), city.roads_geojson())
    t_graph = time.perf_counter() - t
    t = time.perf_counter()
    r = enclosure(city.city_polygon(), graph, CheckpointPos.from_records(city.checkpoints))
    t_enc = time.perf_counter() - t
    print(
        f"enclosure: {len(r.entry_roads)} entry roads, {len(r.guarded)} guarded, {len(r.unguarded)} leaks, "
        f"closed={r.closed}: {t_enc:.2f} s (+ {t_graph:.2f} s loading the graph)"
    )


if __name__ == "__main__":
    main()
