"""The demo keeps its tokens across restarts and mints new ones when the database was reset."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from tianwang.auth.tokens import authenticate
from tianwang.context import AppContext
from tianwang.demo import DEMO_ROLES, demo_tokens


def test_demo_tokens_are_stable_and_valid(ctx: AppContext, tmp_path: Path) -> None:
    path = tmp_path / "demo-tokens.json"
    first = demo_tokens(ctx, path)
    assert set(first) == set(DEMO_ROLES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert demo_tokens(ctx, path) == first
    with ctx.db.session() as s:
        for role, tok in first.items():
            assert authenticate(s, tok).role.value == role
    path.write_text(json.dumps(dict(first, staff="tw_forgotten")))
    again = demo_tokens(ctx, path)
    assert again["staff"] != "tw_forgotten" and again["admin"] == first["admin"]
