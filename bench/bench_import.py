"""Bulk camera import: rows/s through the importer vs a bare SQLAlchemy Core executemany (the floor).

Run by hand: `.venv/bin/python bench/bench_import.py [--rows N] [--smoke]`. Uses a fresh SQLite
database, and a fresh PostgreSQL database if TIANWANG_TEST_PG_URL (default: the local test server)
answers. `--smoke`: a few seconds at a tiny size, only to check that it runs.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import resource
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import PG_URL, drop_db, make_db, parse
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from tianwang.auth.secrets_box import SecretBox
from tianwang.cameras import bulk
from tianwang.storage import migrate
from tianwang.storage.db import make_engine
from tianwang.storage.models import Camera

KINDS = ("枪机", "球机", "半球")


def record(i: int) -> dict[str, Any]:
    return {
        "device_id": f"44030500001320{i:06d}",
        "name": f"福田测试点位{i}",
        "kind": KINDS[i % 3],
        "lon": round(113.8 + (i % 1000) * 4e-4, 6),
        "lat": round(22.4 + (i // 1000) * 4e-4, 6),
        "heading_deg": float(i % 360),
        "hfov_deg": 60.0,
        "range_m": 80.0,
        "point_class": ("一类", "二类", "三类")[i % 3],
        "address": f"深圳市福田区测试路{i}号",
        "police_station": "福田派出所",
        "maintenance_unit": "某运维公司",
        "install_time": "2024-05-01 08:00:00",
        "supply_light_type": "红外补光",
        "room_type": "室外",
        "onvif_host": f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
        "onvif_port": 80,
        "onvif_username": "admin",
        "onvif_password": f"pw-{i}",
        "lifecycle": "在用",
    }


def write_sheet(path: Path, n: int) -> None:
    keys = list(record(0))
    zh = {c.key: c.zh for c in bulk.COLUMNS}
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow([zh[k] for k in keys])
        for i in range(n):
            w.writerow(record(i).values())


def floor_rows(n: int, box: SecretBox) -> Iterator[list[dict[str, Any]]]:
    """The same cameras as finished column dicts, in chunks: only the database's work is left."""
    now = dt.datetime.now(dt.UTC)
    enc = box.encrypt("pw")
    kinds = ("bullet", "ptz", "dome")
    chunk: list[dict[str, Any]] = []
    for i in range(n):
        r = record(i)
        chunk.append(
            {
                "device_id": r["device_id"], "name": r["name"], "kind": kinds[i % 3], "lon": r["lon"],
                "lat": r["lat"], "heading_deg": r["heading_deg"], "hfov_deg": 60.0, "range_m": 80.0,
                "point_class": 1 + i % 3, "area_code": "440305", "address": r["address"],
                "police_station": r["police_station"], "maintenance_unit": r["maintenance_unit"],
                "install_time": now, "supply_light_type": 2, "room_type": 1, "direction_type": 4,
                "onvif_host": r["onvif_host"], "onvif_port": 80, "onvif_username": "admin",
                "onvif_password_enc": enc, "lifecycle": "in_use", "photos": [], "status": "registered",
                "health_interval_s": 60, "snapshot_interval_s": 900, "created_at": now, "updated_at": now,
            }
        )  # fmt: skip
        if len(chunk) == bulk.CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Fresh:
    """A fresh, migrated database (a temp SQLite file, or a new PostgreSQL database dropped after)."""

    def __init__(self, kind: str, tmp: Path) -> None:
        self.name: str | None = None
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp / f'{uuid.uuid4().hex}.db'}"
            migrate.upgrade(self.url)
        else:
            self.name, self.url = make_db("import")
        self.engine = make_engine(self.url)

    def close(self) -> None:
        self.engine.dispose()
        if self.name is not None:
            drop_db(self.name)


def pg_answers() -> bool:
    try:
        e = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with e.connect() as c:
            c.execute(text("SELECT 1"))
        e.dispose()
        return True
    except Exception as e:
        print(
            f"PostgreSQL at {make_url(PG_URL).render_as_string()} does not answer "
            f"({type(e).__name__}): skipped"
        )
        return False


def bench(kind: str, sheet: Path, n: int, box: SecretBox, tmp: Path, trace: bool) -> None:
    db = Fresh(kind, tmp)
    try:
        with sheet.open("rb") as f:
            t0 = time.perf_counter()
            report = bulk.import_cameras(db.engine, f, box, filename=sheet.name, max_bytes=1 << 31)
            took = time.perf_counter() - t0
        assert report.created == n and not report.rejected, report.model_dump_json()[:500]
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    finally:
        db.close()
    floor = Fresh(kind, tmp)
    try:
        t0 = time.perf_counter()
        with floor.engine.begin() as conn:
            for chunk in floor_rows(n, box):
                conn.execute(insert(Camera.__table__), chunk)
        floor_took = time.perf_counter() - t0
    finally:
        floor.close()
    print(
        f"{kind:<10} importer {n / took:>8.0f} rows/s ({took:5.1f} s)   "
        f"Core executemany floor {n / floor_took:>8.0f} rows/s ({floor_took:5.1f} s)   "
        f"importer/floor time ×{took / floor_took:.1f}   ru_maxrss so far {rss:.0f} MiB"
    )
    if trace:
        # a separate run: tracemalloc slows Python down, so it is kept out of the timing above
        db = Fresh(kind, tmp)
        try:
            tracemalloc.start()
            with sheet.open("rb") as f:
                bulk.import_cameras(db.engine, f, box, filename=sheet.name, max_bytes=1 << 31)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        finally:
            db.close()
        print(f"{kind:<10} importer tracemalloc peak {peak / 2**20:.1f} MiB (Python allocations, {n} rows)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=100_000)
    args = parse(ap, smoke={"rows": 300})
    box = SecretBox(Fernet.generate_key())
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        sheet = tmp / "cameras.csv"
        t0 = time.perf_counter()
        write_sheet(sheet, args.rows)
        size = sheet.stat().st_size
        print(
            f"sheet: {args.rows} rows, {size / 2**20:.1f} MiB CSV, "
            f"written in {time.perf_counter() - t0:.1f} s"
        )
        bench("sqlite", sheet, args.rows, box, tmp, trace=True)
        if pg_answers():
            bench("postgresql", sheet, args.rows, box, tmp, trace=False)


if __name__ == "__main__":
    main()
