"""Build a small ground-truth world, load it into a fresh SQLite database and print its figures as
JSON: run by tests/test_calendar.py under libfaketime at far-apart dates, whose figures must agree.

`python -m tests.calendar_probe DIR` (from the repository root).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from tests import movement_support
from tianwang import clock
from tianwang.analyses import clones
from tianwang.analyses.clones import CloneParams
from tianwang.config import Settings
from tianwang.context import AppContext
from tianwang.storage import migrate


def figures(tmp: Path) -> dict[str, object]:
    url = f"sqlite:///{tmp / 'world.db'}"
    migrate.upgrade(url)
    ctx = AppContext.build(
        Settings(
            data_dir=tmp,
            database_url=url,
            object_store=f"dir:{tmp / 'objects'}",
            secret_key=Fernet.generate_key().decode(),
            public_url="http://testserver",
        )
    )
    try:
        w = movement_support.world(people=300, vehicles=200, days=2, clones=2, companion_groups=1)
        stored = movement_support.load(ctx, w)
        frm, to = w.window()
        with ctx.db.session() as s:
            items, stats = clones.analyse(s, frm, to, CloneParams())
        return {
            "machine_date": dt.date.today().isoformat(),
            "world_start": w.params.start.isoformat(),
            "stored": stored,
            "passes_read": stats["passes"],
            "clones": sorted(it["plate_no"] for it in items),
            "owners": len(w.owners),
            "clock_after_load": (clock.now() - dt.datetime.now(dt.UTC)).total_seconds() < 5,
        }
    finally:
        ctx.close()


if __name__ == "__main__":
    print(json.dumps(figures(Path(sys.argv[1])), ensure_ascii=False, sort_keys=True))
