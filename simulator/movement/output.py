"""Writers: one gzip JSONL file per kind (passes, faces, phones), the truth files, and the city's
fences and devices, all in one directory."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import IO, Any

from simulator.movement.simulate import KINDS, Batch, Simulation, Truth


def _dump(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def write_batches(batches: Iterable[Batch], directory: Path) -> Iterator[tuple[Batch, int]]:
    """Stream batches into passes.jsonl.gz, faces.jsonl.gz, phones.jsonl.gz; yields each batch and
    the running item count so a caller can show progress. Memory holds one batch at a time."""
    directory.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        files: dict[str, IO[str]] = {
            k: stack.enter_context(
                gzip.open(directory / f"{k}.jsonl.gz", "wt", encoding="utf-8", compresslevel=3)
            )
            for k in KINDS
        }
        total = 0
        for b in batches:
            f = files[b.kind]
            f.write("\n".join(_dump(it) for it in b.items))
            if b.items:
                f.write("\n")
            total += len(b.items)
            yield b, total


def write_truth(truth: Truth, directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / "truth.json", directory / "owners.jsonl.gz", directory / "ocr_errors.jsonl.gz"]
    paths[0].write_text(_dump(truth.summary()) + "\n", encoding="utf-8")
    for path, rows in ((paths[1], truth.owners), (paths[2], truth.ocr_errors)):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            for row in rows:
                f.write(_dump(row) + "\n")
    return paths


def write_world(sim: Simulation, directory: Path) -> list[Path]:
    """The registry side a consumer needs to load first: the city (cameras, checkpoints, roads, areas,
    key sites) and the phone fences (POST /api/v1/fences bodies)."""
    city_dir = directory / "city"
    paths = sim.city.write(city_dir)
    p = directory / "fences.json"
    p.write_text(_dump(sim.roads.fence_bodies) + "\n", encoding="utf-8")
    return [*paths, p]


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
